// Spill write and read throughput, with no compression, LZ4_FRAME and ZSTD, next to a plain
// sequential write and read of the same bytes (arrow::io local files, same sizes, same run).
//
// Write: sealed blocks (encoded beforehand, as PartitionBuffer does once per block) appended
// to a spill file through SpillFileWriter, then closed. Baseline: the same bytes written to
// another file with one sequential stream.
// Read: every block read back through SpillFileReader (ReadAt + crc32c check), and with
// decode:1 also decoded to a RecordBatch by BlockDecoder (decompressing if needed; the
// checksum is not checked twice). Baseline:
// the same bytes read sequentially from a plain file in 1 MiB chunks.
// Both go through the page cache (no fsync): the figures compare software overhead on the
// same path, not disk speed. MB/s counters are of on-disk bytes; "logical" of input bytes.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <vector>

#include <benchmark/benchmark.h>

#include <arrow/filesystem/localfs.h>
#include <arrow/io/file.h>
#include <arrow/util/byte_size.h>

#include "sabot/common/data_generator.h"
#include "sabot/memory/block_codec.h"
#include "sabot/memory/spill_file.h"
#include "sabot/testing/benchmark_main.h"

namespace sabot {
namespace {

struct Fixture {
  std::filesystem::path dir;
  std::shared_ptr<arrow::fs::FileSystem> fs = std::make_shared<arrow::fs::LocalFileSystem>();
  std::unique_ptr<BlockEncoder> encoder;
  std::vector<SealedBlock> blocks;
  int64_t logical_bytes = 0;
  int64_t encoded_bytes = 0;

  explicit Fixture(arrow::Compression::type compression) {
    dir = std::filesystem::temp_directory_path() /
          ("sabot-spill-benchmark-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    DataGeneratorOptions gen;
    gen.batch_rows = 16 * 1024;  // ~650 KiB blocks with the string key
    gen.string_key = true;
    const int batches = testing::IsSmokeRun() ? 2 : 100;
    BlockCodecOptions options;
    options.compression = compression;
    auto schema = GeneratedSchema(gen);
    encoder = BlockEncoder::Make(schema, options, arrow::default_memory_pool()).ValueOrDie();
    for (int i = 0; i < batches; ++i) {
      auto batch = GenerateBatch(gen, i).ValueOrDie();
      logical_bytes += arrow::util::TotalBufferSize(*batch);
      blocks.push_back(encoder->Encode(*batch).ValueOrDie());
      encoded_bytes += blocks.back().ipc_bytes->size();
    }
  }
  ~Fixture() { std::filesystem::remove_all(dir); }

  std::string Path(const char* name) const { return (dir / name).string(); }

  std::vector<SpillBlockLocation> SpillWrite() const {
    std::filesystem::remove(Path("spill.arrows"));
    auto writer = SpillFileWriter::Open(fs, Path("spill.arrows"), encoder->schema_message())
                      .ValueOrDie();
    std::vector<SpillBlockLocation> locations;
    for (const auto& b : blocks) locations.push_back(writer->Append(b).ValueOrDie());
    if (!writer->Close().ok()) std::abort();
    return locations;
  }

  void PlainWrite() const {
    std::filesystem::remove(Path("plain.bin"));  // as SpillWrite: a new file each time
    auto out = arrow::io::FileOutputStream::Open(Path("plain.bin")).ValueOrDie();
    if (!out->Write(encoder->schema_message()).ok()) std::abort();
    for (const auto& b : blocks) {
      if (!out->Write(b.ipc_bytes).ok()) std::abort();
    }
    if (!out->Close().ok()) std::abort();
  }

  void SpillRead(const std::vector<SpillBlockLocation>& locations, bool decode) const {
    auto reader = SpillFileReader::Open(fs, Path("spill.arrows")).ValueOrDie();
    auto decoder = BlockDecoder::Make(encoder->schema()).ValueOrDie();
    for (const auto& l : locations) {
      auto block = reader->Read(l, arrow::default_memory_pool()).ValueOrDie();
      if (decode) {
        auto batch = decoder->Decode(block, /*verify_checksum=*/false).ValueOrDie();
        benchmark::DoNotOptimize(batch);
      }
    }
  }

  void PlainRead() const {
    auto in = arrow::io::ReadableFile::Open(Path("plain.bin")).ValueOrDie();
    while (true) {
      auto chunk = in->Read(1 << 20).ValueOrDie();
      if (chunk->size() == 0) break;
      benchmark::DoNotOptimize(chunk->data());
    }
  }
};

template <typename F>
double MedianSeconds(F&& f) {
  std::vector<double> runs;
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(runs.begin(), runs.end());
  return runs[2];
}

// `seconds`: wall time of the benchmark loop; `baseline_seconds`: of one plain run.
void Report(benchmark::State& state, const Fixture& f, double seconds, double baseline_seconds) {
  const double per_iteration = seconds / static_cast<double>(state.iterations());
  state.SetBytesProcessed(state.iterations() * f.encoded_bytes);
  state.counters["disk_MBps"] = static_cast<double>(f.encoded_bytes) / per_iteration / 1e6;
  state.counters["logical_MBps"] = static_cast<double>(f.logical_bytes) / per_iteration / 1e6;
  state.counters["plain_MBps"] = static_cast<double>(f.encoded_bytes) / baseline_seconds / 1e6;
  // This benchmark's rate over the plain one's, for the same bytes: 1.0 = no overhead.
  state.counters["vs_plain"] = baseline_seconds / per_iteration;
  state.counters["compression"] =
      static_cast<double>(f.encoded_bytes) / static_cast<double>(f.logical_bytes);
}

void BM_SpillWrite(benchmark::State& state) {
  Fixture f(static_cast<arrow::Compression::type>(state.range(0)));
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) f.SpillWrite();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Report(state, f, seconds, MedianSeconds([&] { f.PlainWrite(); }));
}

void BM_SpillRead(benchmark::State& state) {
  Fixture f(static_cast<arrow::Compression::type>(state.range(0)));
  auto locations = f.SpillWrite();
  f.PlainWrite();
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) f.SpillRead(locations, state.range(1) != 0);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Report(state, f, seconds, MedianSeconds([&] { f.PlainRead(); }));
}

BENCHMARK(BM_SpillWrite)
    ->ArgNames({"codec"})
    ->Arg(arrow::Compression::UNCOMPRESSED)
    ->Arg(arrow::Compression::LZ4_FRAME)
    ->Arg(arrow::Compression::ZSTD)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_SpillRead)
    ->ArgNames({"codec", "decode"})
    ->Args({arrow::Compression::UNCOMPRESSED, 0})
    ->Args({arrow::Compression::LZ4_FRAME, 0})
    ->Args({arrow::Compression::ZSTD, 0})
    ->Args({arrow::Compression::UNCOMPRESSED, 1})
    ->Args({arrow::Compression::LZ4_FRAME, 1})
    ->Args({arrow::Compression::ZSTD, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace sabot
