#include "sabot/shuffle/generated_shuffle_check.h"

#include <algorithm>
#include <climits>
#include <cstring>

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
  const int64_t words = (job.total_rows() + 63) / 64;
  const size_t bitmaps = type == EdgeType::kBroadcast ? spec->num_partitions() : 1;
  // What the state below takes, computed (without overflow: each factor is bounded by
  // Validate() and kMaxPartitions) and bounded before anything is allocated.
  const int64_t state_bytes =
      static_cast<int64_t>(bitmaps) * words * 8 +
      int64_t{spec->num_partitions()} * job.num_writers * static_cast<int64_t>(sizeof(int64_t));
  if (state_bytes > kMaxStateBytes) {
    return arrow::Status::Invalid("checking ", job.total_rows(), " rows from ", job.num_writers,
                                  " writers over ", spec->num_partitions(),
                                  " partitions needs ", state_bytes,
                                  " bytes of state; the check allows at most ", kMaxStateBytes);
  }
  check->seen_ = std::vector<std::vector<std::atomic<uint64_t>>>(bitmaps);
  for (auto& bitmap : check->seen_) bitmap = std::vector<std::atomic<uint64_t>>(words);
  check->last_row_.assign(spec->num_partitions(), std::vector<int64_t>(job.num_writers, -1));
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

std::vector<std::atomic<uint64_t>>& GeneratedShuffleCheck::SeenFor(int32_t partition_id) {
  return seen_.size() == 1 ? seen_[0] : seen_[partition_id];
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
  auto& seen = SeenFor(partition_id);
  auto& last = last_row_[partition_id];
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
    if (row <= last[writer]) {
      return arrow::Status::Invalid("partition ", partition_id, " received row ", row,
                                    " of writer ", writer, " after row ", last[writer],
                                    ": order within a (writer, partition) stream was not kept");
    }
    last[writer] = row;
    const uint64_t bit = uint64_t{1} << (row % 64);
    if (seen[row / 64].fetch_or(bit, std::memory_order_relaxed) & bit) {
      return arrow::Status::Invalid("row ", row, " arrived twice (second time at partition ",
                                    partition_id, ")");
    }
  }
  rows_checked_.fetch_add(batch.num_rows());
  return arrow::Status::OK();
}

arrow::Status GeneratedShuffleCheck::Finish() const {
  for (size_t b = 0; b < seen_.size(); ++b) {
    int64_t missing = 0;
    int64_t first_missing = -1;
    for (int64_t row = 0; row < job_.total_rows(); ++row) {
      if ((seen_[b][row / 64].load() >> (row % 64) & 1) == 0) {
        if (first_missing < 0) first_missing = row;
        ++missing;
      }
    }
    if (missing > 0) {
      int64_t key = GeneratedKey(job_.data, first_missing);
      int32_t partition = seen_.size() > 1 ? static_cast<int32_t>(b)
                                           : ExpectedPartition(first_missing, key);
      return arrow::Status::Invalid(missing, " of ", job_.total_rows(),
                                    " rows never arrived; the first is row ", first_missing,
                                    " (key ", key, ") for partition ", partition);
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Buffer>> GeneratedShuffleCheck::SerializeSeen() const {
  const int64_t words = (job_.total_rows() + 63) / 64;
  ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateBuffer(words * 8 * seen_.size()));
  auto* out = reinterpret_cast<uint64_t*>(buffer->mutable_data());
  for (const auto& bitmap : seen_) {
    for (int64_t w = 0; w < words; ++w) *out++ = bitmap[w].load();
  }
  return std::shared_ptr<arrow::Buffer>(std::move(buffer));
}

arrow::Status GeneratedShuffleCheck::MergeSeen(const arrow::Buffer& serialized) {
  const int64_t words = (job_.total_rows() + 63) / 64;
  if (serialized.size() != words * 8 * static_cast<int64_t>(seen_.size())) {
    return arrow::Status::Invalid("seen-rows bitmap of ", serialized.size(),
                                  " bytes does not match this job (expected ",
                                  words * 8 * static_cast<int64_t>(seen_.size()), ")");
  }
  const auto* in = reinterpret_cast<const uint64_t*>(serialized.data());
  for (size_t b = 0; b < seen_.size(); ++b) {
    for (int64_t w = 0; w < words; ++w) {
      uint64_t incoming = in[b * words + w];
      uint64_t before = seen_[b][w].fetch_or(incoming);
      if (before & incoming) {
        int64_t row = w * 64 + __builtin_ctzll(before & incoming);
        return arrow::Status::Invalid("row ", row, " arrived twice (at two agents)");
      }
      rows_checked_.fetch_add(__builtin_popcountll(incoming));
    }
  }
  return arrow::Status::OK();
}

}  // namespace sabot
