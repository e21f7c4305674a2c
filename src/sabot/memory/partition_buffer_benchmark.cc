// Buffer-and-seal throughput: slices of generated rows go through a PartitionBuffer (coalesce,
// concatenate, encode once, optionally compress, crc32c) into a sink that drops the blocks.
// Each run also measures memcpy of the same bytes (the ceiling of any step that must touch
// every byte) and reports the ratio.

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <benchmark/benchmark.h>

#include <arrow/util/byte_size.h>

#include "sabot/common/data_generator.h"
#include "sabot/memory/budget_pool.h"
#include "sabot/memory/crc32c.h"
#include "sabot/memory/partition_buffer.h"
#include "sabot/testing/benchmark_main.h"

namespace sabot {
namespace {

// Bytes per second of memcpy over `bytes` bytes (cache-cold sizes), median of five runs.
double MemcpyBytesPerSecond(int64_t bytes) {
  std::vector<uint8_t> src(static_cast<size_t>(bytes), 1), dst(static_cast<size_t>(bytes));
  std::vector<double> rates;
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(static_cast<double>(bytes) / s);
  }
  std::sort(rates.begin(), rates.end());
  return rates[2];
}

void BM_BufferAndSeal(benchmark::State& state) {
  const auto compression = static_cast<arrow::Compression::type>(state.range(0));
  const int64_t slice_rows = state.range(1);
  DataGeneratorOptions gen;
  gen.batch_rows = testing::IsSmokeRun() ? 4096 : 1 << 20;
  // With the string key, blocks are cut by the rows' actual bytes (offsets); without it the
  // schema is fixed-width only and rows are cut by their uniform width.
  gen.string_key = state.range(2) != 0;
  auto input = GenerateBatch(gen, 0).ValueOrDie();
  const int64_t input_bytes = arrow::util::TotalBufferSize(*input);
  std::vector<std::shared_ptr<arrow::RecordBatch>> slices;
  for (int64_t off = 0; off < input->num_rows(); off += slice_rows) {
    slices.push_back(input->Slice(off, std::min(slice_rows, input->num_rows() - off)));
  }
  auto pool = BudgetedMemoryPool::Make(256 << 20).ValueOrDie();
  PartitionBufferOptions options;
  options.codec.compression = compression;
  options.buffer_timeout = std::chrono::nanoseconds(0);
  int64_t blocks = 0;
  int64_t sealed_bytes = 0;
  auto sink = [&](SealedBlock block) {
    ++blocks;
    sealed_bytes += block.size_bytes();
    return arrow::Status::OK();
  };
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto buffer = PartitionBuffer::Make(StreamKey{"bench", 0, 0, 0}, input->schema(), options,
                                        pool.get(), sink)
                      .ValueOrDie();
    for (const auto& slice : slices) {
      if (!buffer->Append(slice).ok()) state.SkipWithError("append failed");
    }
    if (!buffer->Finish().ok()) state.SkipWithError("finish failed");
  }
  const double per_iteration =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
      static_cast<double>(state.iterations());
  state.SetBytesProcessed(state.iterations() * input_bytes);
  state.SetItemsProcessed(state.iterations() * input->num_rows());
  const double memcpy_rate = MemcpyBytesPerSecond(input_bytes);
  state.counters["memcpy_MBps"] = memcpy_rate / 1e6;
  state.counters["seal_MBps"] = static_cast<double>(input_bytes) / per_iteration / 1e6;
  // This benchmark's bytes per second over memcpy's, for the same bytes.
  state.counters["vs_memcpy"] = static_cast<double>(input_bytes) / per_iteration / memcpy_rate;
  state.counters["seal_ratio"] =
      static_cast<double>(sealed_bytes) / static_cast<double>(state.iterations() * input_bytes);
  state.counters["blocks"] =
      static_cast<double>(blocks) / static_cast<double>(state.iterations());
}

void BM_Crc32c(benchmark::State& state) {
  std::vector<uint8_t> data(static_cast<size_t>(testing::IsSmokeRun() ? 4096 : 1 << 20), 7);
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = state.range(0) ? Crc32c(data.data(), data.size(), crc)
                         : Crc32cPortable(data.data(), data.size(), crc);
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(data.size()));
  state.SetLabel(state.range(0) ? (Crc32cHardwareAvailable() ? "sse4.2" : "portable")
                                : "portable");
}

BENCHMARK(BM_BufferAndSeal)
    ->ArgNames({"codec", "slice_rows", "strings"})
    ->Args({arrow::Compression::UNCOMPRESSED, 1024, 1})
    ->Args({arrow::Compression::UNCOMPRESSED, 65536, 1})
    ->Args({arrow::Compression::UNCOMPRESSED, 1024, 0})
    ->Args({arrow::Compression::UNCOMPRESSED, 65536, 0})
    ->Args({arrow::Compression::LZ4_FRAME, 1024, 1})
    ->Args({arrow::Compression::ZSTD, 1024, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Crc32c)->ArgNames({"hw"})->Arg(0)->Arg(1);

}  // namespace
}  // namespace sabot
