#include "sabot/verify/generated_shuffle_check.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <thread>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/type.h>

#include "sabot/common/ids.h"

namespace sabot {

namespace {

uint64_t Fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDULL;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ULL;
  k ^= k >> 33;
  return k;
}

constexpr int64_t kRowIdStride = 16;  // payload column j of row r holds r * 16 + j

}  // namespace

int32_t ReferenceHashPartitionOfInt64(int64_t key, int32_t num_partitions) {
  // An int64 key's column hash is the value itself; one combine step from the row seed mixes it.
  const uint64_t golden = 0x9E3779B97F4A7C15ULL;
  const uint64_t column_hash = static_cast<uint64_t>(key);
  const uint64_t row_hash = Fmix(0x5341424F542D3031ULL * golden + column_hash);
  return static_cast<int32_t>(
      (static_cast<unsigned __int128>(row_hash) * static_cast<uint64_t>(num_partitions)) >> 64);
}

int64_t GeneratedJob::rows_per_writer() const {
  int64_t rows = 0;
  if (__builtin_mul_overflow(batches_per_writer, data.batch_rows, &rows)) return INT64_MAX;
  return rows;
}

int64_t GeneratedJob::total_rows() const {
  int64_t rows = 0;
  if (__builtin_mul_overflow(int64_t{num_writers}, rows_per_writer(), &rows)) return INT64_MAX;
  return rows;
}

arrow::Status GeneratedJob::Validate() const {
  ARROW_RETURN_NOT_OK(ValidateCount(num_writers, "a job's number of writers"));
  if (batches_per_writer < 0) {
    return arrow::Status::Invalid("batches per writer must be >= 0, got ", batches_per_writer);
  }
  if (data.batch_rows < 0 || data.batch_rows > kMaxBatchRows) {
    return arrow::Status::Invalid("batch rows must be between 0 and ", kMaxBatchRows, ", got ",
                                  data.batch_rows);
  }
  if (total_rows() > kMaxTotalRows) {
    return arrow::Status::Invalid("a job of ", num_writers, " writers x ", batches_per_writer,
                                  " batches x ", data.batch_rows, " rows exceeds ", kMaxTotalRows,
                                  " rows");
  }
  if (data.key_cardinality < 1) {
    return arrow::Status::Invalid("key cardinality must be >= 1, got ", data.key_cardinality);
  }
  if (!(data.hot_key_fraction >= 0.0 && data.hot_key_fraction <= 1.0)) {
    return arrow::Status::Invalid("hot key fraction must be in [0, 1], got ",
                                  data.hot_key_fraction);
  }
  if (data.payload_columns < 1 || data.payload_columns > kMaxPayloadColumns) {
    return arrow::Status::Invalid("a checked job needs 1 to ", kMaxPayloadColumns,
                                  " payload columns (row ids live there), got ",
                                  data.payload_columns);
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> GeneratedJob::WriterBatch(
    int32_t writer, int64_t index, arrow::MemoryPool* pool) const {
  return GenerateBatch(data, writer * batches_per_writer + index, pool);
}

arrow::Result<std::shared_ptr<const PartitionSpec>> GeneratedJob::MakeSpec(
    EdgeType type, int32_t num_partitions) const {
  switch (type) {
    case EdgeType::kHash:
      return PartitionSpec::Hash({"key"}, num_partitions);
    case EdgeType::kBroadcast:
      return PartitionSpec::Broadcast(num_partitions);
    case EdgeType::kRebalance:
      return PartitionSpec::Rebalance(num_partitions);
    case EdgeType::kForward:
      return PartitionSpec::Forward(num_partitions);
    case EdgeType::kRange: {
      arrow::Int64Builder builder;
      for (int32_t i = 1; i < num_partitions; ++i) {
        ARROW_RETURN_NOT_OK(builder.Append(data.key_cardinality * i / num_partitions));
      }
      ARROW_ASSIGN_OR_RAISE(auto column, builder.Finish());
      auto schema = arrow::schema({arrow::field("key", arrow::int64(), false)});
      return PartitionSpec::Range(arrow::RecordBatch::Make(schema, num_partitions - 1, {column}));
    }
  }
  return arrow::Status::Invalid("unknown edge type");
}

arrow::Result<std::unique_ptr<GeneratedShuffleCheck>> GeneratedShuffleCheck::Make(
    const GeneratedJob& job, std::shared_ptr<const PartitionSpec> spec) {
  ARROW_RETURN_NOT_OK(job.Validate());
  std::unique_ptr<GeneratedShuffleCheck> check(new GeneratedShuffleCheck());
  check->job_ = job;
  check->spec_ = spec;
  const EdgeType type = spec->edge_type();
  if (type == EdgeType::kHash || type == EdgeType::kRange) {
    if (spec->key_columns() != std::vector<std::string>{"key"}) {
      return arrow::Status::Invalid("the generated-data check computes HASH and RANGE only for the ",
                                    "single int64 key column 'key', not ", spec->ToString());
    }
  }
  if (type == EdgeType::kRange) {
    auto column = std::dynamic_pointer_cast<arrow::Int64Array>(spec->boundaries()->column(0));
    if (column == nullptr) return arrow::Status::Invalid("RANGE boundaries on 'key' must be int64");
    for (int64_t i = 0; i < column->length(); ++i) check->boundaries_.push_back(column->Value(i));
  }
  if (type == EdgeType::kForward && job.num_writers != spec->num_partitions()) {
    return arrow::Status::Invalid("FORWARD needs as many writers as partitions");
  }
  // What the state below takes (two int64 per (partition, writer) stream), computed without
  // overflow (each factor is bounded by Validate() and kMaxPartitions) and bounded before
  // anything is allocated.
  const int64_t state_bytes = int64_t{spec->num_partitions()} * job.num_writers * 2 *
                              static_cast<int64_t>(sizeof(int64_t));
  if (state_bytes > kMaxStateBytes) {
    return arrow::Status::Invalid("checking ", job.num_writers, " writers over ",
                                  spec->num_partitions(), " partitions needs ", state_bytes,
                                  " bytes of state; the check allows at most ", kMaxStateBytes);
  }
  check->last_row_.assign(spec->num_partitions(), std::vector<int64_t>(job.num_writers, -1));
  check->received_.assign(spec->num_partitions(), std::vector<int64_t>(job.num_writers, 0));
  return check;
}

int32_t GeneratedShuffleCheck::ExpectedPartition(int64_t row, int64_t key) const {
  const int32_t n = spec_->num_partitions();
  const int64_t writer = row / job_.rows_per_writer();
  switch (spec_->edge_type()) {
    case EdgeType::kHash:
      return ReferenceHashPartitionOfInt64(key, n);
    case EdgeType::kRange:
      return static_cast<int32_t>(std::upper_bound(boundaries_.begin(), boundaries_.end(), key) -
                                  boundaries_.begin());
    case EdgeType::kRebalance:
      // Row j of a writer's stream goes to (writer + j) % n.
      return static_cast<int32_t>((writer + (row - writer * job_.rows_per_writer())) % n);
    case EdgeType::kForward:
      return static_cast<int32_t>(writer);
    case EdgeType::kBroadcast:
      return -1;  // every partition
  }
  return -1;
}

arrow::Status GeneratedShuffleCheck::Check(int32_t partition_id, const arrow::RecordBatch& batch) {
  if (partition_id < 0 || partition_id >= spec_->num_partitions()) {
    return arrow::Status::IndexError("partition ", partition_id, " out of range");
  }
  auto keys = std::dynamic_pointer_cast<arrow::Int64Array>(batch.GetColumnByName("key"));
  auto p0 = std::dynamic_pointer_cast<arrow::Int64Array>(batch.GetColumnByName("p0"));
  if (keys == nullptr || p0 == nullptr) {
    return arrow::Status::Invalid("partition ", partition_id,
                                  " received a batch without int64 columns 'key' and 'p0': ",
                                  batch.schema()->ToString());
  }
  std::vector<std::shared_ptr<arrow::Int64Array>> payloads;
  for (int32_t j = 1; j < job_.data.payload_columns; ++j) {
    payloads.push_back(std::dynamic_pointer_cast<arrow::Int64Array>(
        batch.GetColumnByName("p" + std::to_string(j))));
    if (payloads.back() == nullptr) {
      return arrow::Status::Invalid("partition ", partition_id, " received a batch without p", j);
    }
  }
  auto& last = last_row_[partition_id];
  auto& received = received_[partition_id];
  const bool broadcast = spec_->edge_type() == EdgeType::kBroadcast;
  for (int64_t i = 0; i < batch.num_rows(); ++i) {
    const int64_t id = p0->Value(i);
    const int64_t row = id / kRowIdStride;
    if (id % kRowIdStride != 0 || row < 0 || row >= job_.total_rows()) {
      return arrow::Status::Invalid("partition ", partition_id, " received an unknown row (p0 = ",
                                    id, ")");
    }
    const int64_t key = keys->Value(i);
    if (key != GeneratedKey(job_.data, row)) {
      return arrow::Status::Invalid("partition ", partition_id, " received row ", row,
                                    " with key ", key, " instead of ",
                                    GeneratedKey(job_.data, row));
    }
    for (size_t j = 0; j < payloads.size(); ++j) {
      if (payloads[j]->Value(i) != id + static_cast<int64_t>(j) + 1) {
        return arrow::Status::Invalid("partition ", partition_id, " received row ", row,
                                      " with payload p", j + 1, " altered");
      }
    }
    if (!broadcast) {
      int32_t expected = ExpectedPartition(row, key);
      if (expected != partition_id) {
        return arrow::Status::Invalid("row ", row, " (key ", key, ") arrived at partition ",
                                      partition_id, " but belongs to partition ", expected);
      }
    }
    const int64_t writer = row / job_.rows_per_writer();
    if (row == last[writer]) {
      return arrow::Status::Invalid("row ", row, " arrived twice at partition ", partition_id);
    }
    if (row < last[writer]) {
      return arrow::Status::Invalid("partition ", partition_id, " received row ", row,
                                    " of writer ", writer, " after row ", last[writer],
                                    ": order within a (writer, partition) stream was not kept");
    }
    last[writer] = row;
    ++received[writer];
  }
  rows_checked_.fetch_add(batch.num_rows());
  return arrow::Status::OK();
}

arrow::Result<GeneratedShuffleCheck::PartitionProgress> GeneratedShuffleCheck::Progress(
    int32_t partition_id) const {
  if (partition_id < 0 || static_cast<size_t>(partition_id) >= received_.size()) {
    return arrow::Status::Invalid("partition ", partition_id, " is not one of the ",
                                  received_.size(), " partitions");
  }
  return PartitionProgress{last_row_[partition_id], received_[partition_id]};
}

arrow::Status GeneratedShuffleCheck::RestorePartition(int32_t partition_id,
                                                      const PartitionProgress& progress) {
  if (partition_id < 0 || static_cast<size_t>(partition_id) >= received_.size()) {
    return arrow::Status::Invalid("partition ", partition_id, " is not one of the ",
                                  received_.size(), " partitions");
  }
  const size_t writers = static_cast<size_t>(job_.num_writers);
  if (progress.last_row.size() != writers || progress.received.size() != writers) {
    return arrow::Status::Invalid("the progress of partition ", partition_id, " has ",
                                  progress.last_row.size(), " and ", progress.received.size(),
                                  " entries for ", writers, " writers");
  }
  int64_t delta = 0;
  for (size_t w = 0; w < writers; ++w) {
    if (progress.received[w] < 0 || progress.last_row[w] < -1 ||
        progress.last_row[w] >= job_.total_rows()) {
      return arrow::Status::Invalid("the progress of partition ", partition_id, " writer ", w,
                                    " is out of range");
    }
    delta += progress.received[w] - received_[partition_id][w];
  }
  last_row_[partition_id] = progress.last_row;
  received_[partition_id] = progress.received;
  rows_checked_.fetch_add(delta);
  return arrow::Status::OK();
}

std::vector<int64_t> GeneratedShuffleCheck::ExpectedCounts() const {
  const int32_t n = spec_->num_partitions();
  const int32_t writers = job_.num_writers;
  const int64_t per_writer = job_.rows_per_writer();
  std::vector<int64_t> expected(static_cast<size_t>(n) * writers, 0);
  if (spec_->edge_type() == EdgeType::kBroadcast) {
    for (auto& count : expected) count = per_writer;
    return expected;
  }
  // Row by row, each writer's rows on a thread of its own (up to the cores): what the check
  // compares with must not come from the partition layer, nor from what arrived.
  const int32_t threads = static_cast<int32_t>(
      std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, static_cast<unsigned>(writers)));
  std::vector<std::thread> workers;
  for (int32_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int32_t w = t; w < writers; w += threads) {
        std::vector<int64_t> mine(n, 0);
        for (int64_t row = w * per_writer; row < (w + 1) * per_writer; ++row) {
          ++mine[ExpectedPartition(row, GeneratedKey(job_.data, row))];
        }
        for (int32_t p = 0; p < n; ++p) expected[static_cast<size_t>(p) * writers + w] = mine[p];
      }
    });
  }
  for (auto& worker : workers) worker.join();
  return expected;
}

arrow::Status GeneratedShuffleCheck::Finish() const {
  std::vector<int32_t> all(received_.size());
  for (size_t p = 0; p < all.size(); ++p) all[p] = static_cast<int32_t>(p);
  return FinishPartitions(all);
}

arrow::Status GeneratedShuffleCheck::FinishPartitions(const std::vector<int32_t>& partitions) const {
  const std::vector<int64_t> expected = ExpectedCounts();
  const std::vector<int64_t> got = counts();
  const int32_t writers = job_.num_writers;
  std::vector<bool> selected(received_.size(), false);
  for (int32_t p : partitions) {
    if (p >= 0 && static_cast<size_t>(p) < selected.size()) selected[p] = true;
  }
  int64_t missing = 0;
  int64_t total = 0;
  int64_t first = -1;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (writers == 0 || !selected[i / writers]) continue;
    total += expected[i];
    if (got[i] > expected[i]) {
      return arrow::Status::Invalid("partition ", i / writers, " received ", got[i],
                                    " rows of writer ", i % writers, " but only ", expected[i],
                                    " belong there");
    }
    missing += expected[i] - got[i];
    if (got[i] < expected[i] && first < 0) first = static_cast<int64_t>(i);
  }
  if (missing > 0) {
    return arrow::Status::Invalid(missing, " of ", total, " rows never arrived; partition ",
                                  first / writers, " received ", got[first], " of the ",
                                  expected[first], " rows writer ", first % writers,
                                  " sent it");
  }
  return arrow::Status::OK();
}

std::vector<int64_t> GeneratedShuffleCheck::counts() const {
  std::vector<int64_t> out;
  out.reserve(received_.size() * static_cast<size_t>(job_.num_writers));
  for (const auto& partition : received_) out.insert(out.end(), partition.begin(), partition.end());
  return out;
}

arrow::Status GeneratedShuffleCheck::MergeCounts(const std::vector<int64_t>& counts) {
  const int32_t writers = job_.num_writers;
  if (counts.size() != received_.size() * static_cast<size_t>(writers)) {
    return arrow::Status::Invalid("received-row counts of ", counts.size(),
                                  " streams do not match this job (", received_.size(), " x ",
                                  writers, ")");
  }
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t& mine = received_[i / writers][i % writers];
    if (counts[i] < 0) return arrow::Status::Invalid("a received-row count is negative");
    if (counts[i] > 0 && mine > 0) {
      return arrow::Status::Invalid("rows of writer ", i % writers, " for partition ",
                                    i / writers, " arrived twice (at two agents)");
    }
    mine += counts[i];
    rows_checked_.fetch_add(counts[i]);
  }
  return arrow::Status::OK();
}

}  // namespace sabot
