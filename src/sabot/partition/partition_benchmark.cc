// HASH partitioning throughput, next to its ceiling and its baseline measured in the same run:
//   - the ceiling: single-thread memcpy of the same bytes (BM_Memcpy);
//   - the baseline: Arrow compute alone (BM_ArrowComputeBaseline): a multiplicative hash of the
//     key through compute functions (Arrow 26 has no hash64 compute function), sort_indices of
//     the partition ids, then one `take` per partition; and a plainer one
//     (BM_ArrowComputeFilterBaseline): the same hash, then `equal` + `filter` per partition.
// Each HASH benchmark reports counters `of_memcpy` (its bytes/s over memcpy's), `x_baseline` and
// `x_filter_baseline` (over the baselines' at the same partition count); a summary is printed
// after the run. Ratios need the reference benchmarks in the same run (no --benchmark_filter
// that drops them).
//
// Data: the generated table (common/data_generator.h), in batches of 64Ki rows, 16 batches per
// iteration: key int64 + payload p0..p2 int64 (32 bytes a row), or with key_string.

#include <time.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <benchmark/benchmark.h>

#include "sabot/common/batch_bytes.h"
#include "sabot/common/data_generator.h"
#include "sabot/partition/key_hash.h"
#include "sabot/partition/partitioner.h"
#include "sabot/testing/benchmark_main.h"

namespace sabot {
namespace {

struct Table {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  int64_t rows = 0;
  int64_t bytes = 0;  // the bytes of every buffer of every column (what a partitioner moves)
};


const Table& GetTable(bool string_key) {
  static std::map<bool, Table> tables;
  auto it = tables.find(string_key);
  if (it != tables.end()) return it->second;
  DataGeneratorOptions options;
  const bool smoke = testing::IsSmokeRun();
  options.batch_rows = smoke ? 1024 : 64 * 1024;
  options.key_cardinality = 1 << 20;
  options.string_key = string_key;
  Table table;
  for (int64_t b = 0; b < (smoke ? 2 : 16); ++b) {
    auto batch = GenerateBatch(options, b).ValueOrDie();
    table.rows += batch->num_rows();
    table.bytes += BatchBufferBytes(*batch);
    table.batches.push_back(std::move(batch));
  }
  return tables.emplace(string_key, std::move(table)).first->second;
}

// Bytes/s measured by the reference benchmarks, for the ratios.
// Never destroyed: the summary reads it at exit.
std::map<std::string, double>& Measured() {
  static auto* measured = new std::map<std::string, double>();
  return *measured;
}

std::string Key(const std::string& what, int64_t partitions) {
  return what + "/" + std::to_string(partitions);
}

// This thread's CPU time, as Google Benchmark's own rates use: on a shared 2-core machine it is
// inflated less than wall time by other processes (it still feels their cache pressure).
class Stopwatch {
 public:
  Stopwatch() : start_(Now()) {}
  double Seconds() const { return Now() - start_; }

 private:
  static double Now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  double start_;
};

void Report(benchmark::State& state, const Table& table) {
  state.SetItemsProcessed(state.iterations() * table.rows);
  state.SetBytesProcessed(state.iterations() * table.bytes);
}

double BytesPerSecond(const benchmark::State& state, const Table& table, double seconds) {
  return seconds > 0 ? static_cast<double>(state.iterations() * table.bytes) / seconds : 0;
}

void BM_Memcpy(benchmark::State& state) {
  const bool string_key = state.range(0) != 0;
  const Table& table = GetTable(string_key);
  // One destination per buffer, as large as the source; every buffer copied once per iteration.
  std::vector<std::pair<const uint8_t*, int64_t>> sources;
  for (const auto& batch : table.batches) {
    for (const auto& column : batch->columns()) {
      for (const auto& buffer : column->data()->buffers) {
        if (buffer) sources.emplace_back(buffer->data(), buffer->size());
      }
    }
  }
  std::vector<std::vector<uint8_t>> destinations;
  for (const auto& [data, size] : sources) destinations.emplace_back(static_cast<size_t>(size), 1);
  Stopwatch watch;
  for (auto _ : state) {
    for (size_t i = 0; i < sources.size(); ++i) {
      std::memcpy(destinations[i].data(), sources[i].first, static_cast<size_t>(sources[i].second));
      benchmark::DoNotOptimize(destinations[i].data());
    }
    benchmark::ClobberMemory();
  }
  const double seconds = watch.Seconds();
  Report(state, table);
  Measured()[string_key ? "memcpy/string" : "memcpy/int64"] = BytesPerSecond(state, table, seconds);
}

// The baselines' hash, with Arrow compute alone: (uint64(key) * 0x9E3779B97F4A7C15) >>
// (64 - log2 n), a multiplicative hash (n is a power of two). Arrow 26 has no hash64 function.
arrow::Datum BaselinePartitionIds(const arrow::RecordBatch& batch, int64_t n) {
  namespace cp = arrow::compute;
  int shift = 64;
  for (int64_t v = n; v > 1; v >>= 1) --shift;
  const arrow::Datum multiplier(std::make_shared<arrow::UInt64Scalar>(0x9E3779B97F4A7C15ULL));
  const arrow::Datum shift_by(std::make_shared<arrow::UInt64Scalar>(static_cast<uint64_t>(shift)));
  auto key = cp::Cast(batch.GetColumnByName("key"), arrow::uint64()).ValueOrDie();
  auto hashed = cp::CallFunction("multiply", {key, multiplier}).ValueOrDie();
  return cp::CallFunction("shift_right", {hashed, shift_by}).ValueOrDie();
}

// The baseline: Arrow compute alone. BaselinePartitionIds, then sort_indices of the ids,
// value_counts for the partition sizes, and take per partition.
void BM_ArrowComputeBaseline(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Table& table = GetTable(false);
  namespace cp = arrow::compute;
  int64_t rows_out = 0;
  Stopwatch watch;
  for (auto _ : state) {
    for (const auto& batch : table.batches) {
      arrow::Datum ids = BaselinePartitionIds(*batch, n);
      auto order = cp::SortIndices(ids, cp::SortOptions()).ValueOrDie();
      auto counts = cp::ValueCounts(ids).ValueOrDie();
      auto values = std::static_pointer_cast<arrow::UInt64Array>(counts->field(0));
      auto sizes = std::static_pointer_cast<arrow::Int64Array>(counts->field(1));
      std::vector<int64_t> size_of(static_cast<size_t>(n), 0);
      for (int64_t i = 0; i < values->length(); ++i) size_of[values->Value(i)] = sizes->Value(i);
      int64_t start = 0;
      for (int64_t p = 0; p < n; ++p) {
        if (size_of[p] == 0) continue;
        auto part = cp::Take(batch, order->Slice(start, size_of[p])).ValueOrDie();
        rows_out += part.record_batch()->num_rows();
        start += size_of[p];
      }
    }
  }
  const double seconds = watch.Seconds();
  benchmark::DoNotOptimize(rows_out);
  Report(state, table);
  Measured()[Key("baseline", n)] = BytesPerSecond(state, table, seconds);
}

// The plainer Arrow-compute baseline: the same hash, then for each partition `equal` + `filter`
// of the batch (one pass over the batch per partition).
void BM_ArrowComputeFilterBaseline(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Table& table = GetTable(false);
  namespace cp = arrow::compute;
  int64_t rows_out = 0;
  Stopwatch watch;
  for (auto _ : state) {
    for (const auto& batch : table.batches) {
      arrow::Datum ids = BaselinePartitionIds(*batch, n);
      for (int64_t p = 0; p < n; ++p) {
        auto mask =
            cp::CallFunction("equal", {ids, arrow::Datum(std::make_shared<arrow::UInt64Scalar>(p))})
                .ValueOrDie();
        auto part = cp::Filter(batch, mask).ValueOrDie();
        rows_out += part.record_batch()->num_rows();
      }
    }
  }
  const double seconds = watch.Seconds();
  benchmark::DoNotOptimize(rows_out);
  Report(state, table);
  Measured()[Key("baseline_filter", n)] = BytesPerSecond(state, table, seconds);
}

void RunHash(benchmark::State& state, const std::vector<std::string>& keys, bool string_table,
             const std::string& label) {
  const int64_t n = state.range(0);
  const Table& table = GetTable(string_table);
  auto spec = PartitionSpec::Hash(keys, n).ValueOrDie();
  auto partitioner = MakePartitioner(spec, table.batches[0]->schema(), 0).ValueOrDie();
  Stopwatch watch;
  for (auto _ : state) {
    for (const auto& batch : table.batches) {
      auto parts = partitioner->Partition(batch).ValueOrDie();
      benchmark::DoNotOptimize(parts.batches.data());
    }
  }
  const double seconds = watch.Seconds();
  Report(state, table);
  const double rate = BytesPerSecond(state, table, seconds);
  Measured()[Key(label, n)] = rate;
  const double memcpy_rate = Measured()[string_table ? "memcpy/string" : "memcpy/int64"];
  if (memcpy_rate > 0) state.counters["of_memcpy"] = rate / memcpy_rate;
  const double baseline = Measured()[Key("baseline", n)];
  if (!string_table && keys.size() == 1 && baseline > 0) {
    state.counters["x_baseline"] = rate / baseline;
  }
  const double filter_baseline = Measured()[Key("baseline_filter", n)];
  if (!string_table && keys.size() == 1 && filter_baseline > 0) {
    state.counters["x_filter_baseline"] = rate / filter_baseline;
  }
}

// The key hashing, id mapping and histogram alone (no scatter), to show where the time goes.
void BM_HashIdsOnlyInt64Key(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Table& table = GetTable(false);
  auto hasher = KeyHasher::Make({"key"}, *table.batches[0]->schema()).ValueOrDie();
  std::vector<PartitionId> ids(static_cast<size_t>(table.batches[0]->num_rows()));
  std::vector<int64_t> counts(static_cast<size_t>(n));
  for (auto _ : state) {
    for (const auto& batch : table.batches) {
      auto status =
          hasher->HashToPartitions(*batch, static_cast<int32_t>(n), ids.data(), counts.data());
      benchmark::DoNotOptimize(status);
      benchmark::DoNotOptimize(ids.data());
    }
  }
  Report(state, table);
}

void BM_HashInt64Key(benchmark::State& state) { RunHash(state, {"key"}, false, "hash_int64"); }
void BM_HashStringKey(benchmark::State& state) {
  RunHash(state, {"key_string"}, true, "hash_string");
}
void BM_HashTwoColumnKey(benchmark::State& state) {
  RunHash(state, {"key", "p0"}, false, "hash_two_int64");
}

// Registration order is run order: references first, so the ratios can use them.
BENCHMARK(BM_Memcpy)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ArrowComputeBaseline)->Arg(8)->Arg(64)->Arg(512)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ArrowComputeFilterBaseline)->Arg(8)->Arg(64)->Arg(512)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HashInt64Key)->Arg(8)->Arg(64)->Arg(512)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HashIdsOnlyInt64Key)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HashStringKey)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HashTwoColumnKey)->Arg(64)->Unit(benchmark::kMillisecond);

// Prints the ratios once the run is over (at exit, after the benchmark table).
struct Summary {
  ~Summary() {
    const auto& m = Measured();
    auto get = [&](const std::string& k) {
      auto it = m.find(k);
      return it == m.end() ? 0.0 : it->second;
    };
    if (m.empty()) return;
    std::printf("\nPartitioning summary (GB/s = 1e9 bytes/s of input columns moved)\n");
    std::printf("%-24s %8s %10s %12s %12s\n", "benchmark", "GB/s", "of memcpy", "x baseline",
                "x filter bl");
    const double memcpy_int = get("memcpy/int64");
    const double memcpy_str = get("memcpy/string");
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    std::printf("%-24s %8.2f %10s %12s %12s\n", "memcpy (int64 table)", memcpy_int / 1e9, "1.00",
                "-", "-");
    if (memcpy_str > 0) {
      std::printf("%-24s %8.2f %10s %12s %12s\n", "memcpy (string table)", memcpy_str / 1e9, "1.00",
                  "-", "-");
    }
    for (int n : {8, 64, 512}) {
      const double base = get(Key("baseline", n));
      const double filter = get(Key("baseline_filter", n));
      const double hash = get(Key("hash_int64", n));
      if (base > 0) {
        std::printf("%-24s %8.2f %10.2f %12s %12s\n", Key("baseline sort+take", n).c_str(),
                    base / 1e9, ratio(base, memcpy_int), "1.00", "-");
      }
      if (filter > 0) {
        std::printf("%-24s %8.2f %10.2f %12s %12s\n", Key("baseline filter", n).c_str(),
                    filter / 1e9, ratio(filter, memcpy_int), "-", "1.00");
      }
      if (hash > 0) {
        std::printf("%-24s %8.2f %10.2f %12.2f %12.2f\n", Key("hash int64 key", n).c_str(),
                    hash / 1e9, ratio(hash, memcpy_int), ratio(hash, base), ratio(hash, filter));
      }
    }
    const double str = get(Key("hash_string", 64));
    if (str > 0) {
      std::printf("%-24s %8.2f %10.2f %12s %12s\n", "hash string key/64", str / 1e9,
                  ratio(str, memcpy_str), "-", "-");
    }
    const double two = get(Key("hash_two_int64", 64));
    if (two > 0) {
      std::printf("%-24s %8.2f %10.2f %12s %12s\n", "hash two-col key/64", two / 1e9,
                  ratio(two, memcpy_int), "-", "-");
    }
    std::fflush(stdout);
  }
} summary;

}  // namespace
}  // namespace sabot
