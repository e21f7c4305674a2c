#include "sabot/dataflow/state_spill.h"

#include <unistd.h>

#include <atomic>
#include <system_error>
#include <utility>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/exec.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>

#include "sabot/partition/key_hash.h"

namespace sabot {

SpillDirectory::SpillDirectory(std::string root, std::string name, std::string owner)
    : root_(std::move(root)), name_(std::move(name)), owner_(std::move(owner)) {}

SpillDirectory::~SpillDirectory() { Remove(); }

arrow::Result<std::string> SpillDirectory::FilePath(const std::string& file) {
  if (!created_) {
    std::error_code error;
    std::filesystem::path root = root_.empty() ? std::filesystem::temp_directory_path(error)
                                               : std::filesystem::path(root_);
    if (error) {
      return arrow::Status::IOError(owner_, ": no temporary directory to spill state to: ",
                                    error.message());
    }
    path_ = root / name_;
    std::filesystem::create_directories(path_, error);
    if (error) {
      return arrow::Status::IOError(owner_, ": cannot create spill directory '", path_.string(),
                                    "': ", error.message());
    }
    created_ = true;
  }
  return (path_ / file).string();
}

void SpillDirectory::Remove() {
  if (!created_) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
  created_ = false;
}

std::string SpillDirectoryName(const std::string& kind, const TaskContext& task) {
  static std::atomic<int64_t> next_instance{0};
  return "sabot-" + kind + "-" + task.job_id + "-" +
         (task.spec != nullptr ? task.spec->name : kind) + "-" + std::to_string(task.subtask) +
         "-" + std::to_string(::getpid()) + "-" +
         std::to_string(next_instance.fetch_add(1, std::memory_order_relaxed));
}

SpillPartitions::SpillPartitions(SpillDirectory* directory, std::string prefix, int level,
                                 arrow::MemoryPool* pool)
    : directory_(directory),
      prefix_(std::move(prefix)),
      level_(level),
      pool_(pool),
      seed_(0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(level + 1)),
      files_(kSpillPartitions) {}

SpillPartitions::~SpillPartitions() {
  for (File& file : files_) {
    if (file.stream != nullptr && !file.stream->closed()) (void)file.stream->Close();
  }
}

int32_t SpillPartitions::PartitionOf(uint64_t hash) const {
  return HashToPartition(Fmix64(hash ^ seed_), kSpillPartitions);
}

arrow::Status SpillPartitions::AppendTo(int32_t p,
                                        const std::shared_ptr<arrow::RecordBatch>& rows) {
  File& out = files_[p];
  if (out.closed) {
    return arrow::Status::Invalid(directory_->owner(), ": spill partition ", prefix_, "-", p,
                                  " written after it was closed");
  }
  if (out.writer == nullptr) {
    ARROW_ASSIGN_OR_RAISE(out.path,
                          directory_->FilePath(prefix_ + "-" + std::to_string(p) + ".arrow"));
    ARROW_ASSIGN_OR_RAISE(out.stream, arrow::io::FileOutputStream::Open(out.path));
    ARROW_ASSIGN_OR_RAISE(out.writer, arrow::ipc::MakeStreamWriter(out.stream, rows->schema()));
  }
  out.rows += rows->num_rows();
  return out.writer->WriteRecordBatch(*rows);
}

arrow::Status SpillPartitions::Append(const std::shared_ptr<arrow::RecordBatch>& rows,
                                      const uint64_t* hashes) {
  const int64_t n = rows->num_rows();
  if (n == 0) return arrow::Status::OK();
  // A counting sort of the row indices by partition, one take, then a slice per partition.
  std::vector<int32_t> partition(static_cast<size_t>(n));
  int64_t counts[kSpillPartitions] = {};
  for (int64_t i = 0; i < n; ++i) {
    partition[i] = PartitionOf(hashes[i]);
    ++counts[partition[i]];
  }
  for (int32_t p = 0; p < kSpillPartitions; ++p) {
    if (counts[p] == n) return AppendTo(p, rows);  // every row in one partition
  }
  int64_t starts[kSpillPartitions];
  int64_t next = 0;
  for (int32_t p = 0; p < kSpillPartitions; ++p) {
    starts[p] = next;
    next += counts[p];
  }
  ARROW_ASSIGN_OR_RAISE(auto indices, arrow::AllocateBuffer(n * int64_t{sizeof(int64_t)}, pool_));
  auto* order = reinterpret_cast<int64_t*>(indices->mutable_data());
  int64_t fill[kSpillPartitions];
  std::copy(starts, starts + kSpillPartitions, fill);
  for (int64_t i = 0; i < n; ++i) order[fill[partition[i]]++] = i;
  auto index_array = std::make_shared<arrow::Int64Array>(n, std::move(indices));
  arrow::compute::ExecContext context(pool_);
  ARROW_ASSIGN_OR_RAISE(arrow::Datum taken,
                        arrow::compute::Take(arrow::Datum(rows), index_array,
                                             arrow::compute::TakeOptions::NoBoundsCheck(),
                                             &context));
  const auto& sorted = taken.record_batch();
  for (int32_t p = 0; p < kSpillPartitions; ++p) {
    if (counts[p] == 0) continue;
    ARROW_RETURN_NOT_OK(AppendTo(p, sorted->Slice(starts[p], counts[p])));
  }
  return arrow::Status::OK();
}

arrow::Status SpillPartitions::Close() {
  for (File& file : files_) {
    if (file.writer == nullptr || file.closed) continue;
    ARROW_RETURN_NOT_OK(file.writer->Close());
    ARROW_ASSIGN_OR_RAISE(file.bytes, file.stream->Tell());
    ARROW_RETURN_NOT_OK(file.stream->Close());
    directory_->AddSpilledBytes(file.bytes);
    file.writer.reset();
    file.stream.reset();
    file.closed = true;
  }
  return arrow::Status::OK();
}

arrow::Status SpillPartitions::Read(
    int32_t p,
    const std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>)>& consume) const {
  const File& file = files_[p];
  if (!file.closed) {
    if (file.writer != nullptr) {
      return arrow::Status::Invalid(directory_->owner(), ": spill partition ", prefix_, "-", p,
                                    " read before it was closed");
    }
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto input, arrow::io::ReadableFile::Open(file.path, pool_));
  auto options = arrow::ipc::IpcReadOptions::Defaults();
  options.memory_pool = pool_;
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchStreamReader::Open(input, options));
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto batch, reader->Next());
    if (batch == nullptr) break;
    ARROW_RETURN_NOT_OK(consume(std::move(batch)));
  }
  return input->Close();
}

void SpillPartitions::Remove(int32_t p) {
  File& file = files_[p];
  if (file.path.empty()) return;
  if (file.stream != nullptr && !file.stream->closed()) (void)file.stream->Close();
  file.writer.reset();
  file.stream.reset();
  std::error_code ignored;
  std::filesystem::remove(file.path, ignored);
  file.path.clear();
  file.closed = false;
}

std::shared_ptr<arrow::Table> Int64Row(
    const std::vector<std::pair<std::string, int64_t>>& values) {
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (const auto& [name, value] : values) {
    fields.push_back(arrow::field(name, arrow::int64(), /*nullable=*/false));
    auto buffer = arrow::Buffer::FromString(
        std::string(reinterpret_cast<const char*>(&value), sizeof(value)));
    columns.push_back(std::make_shared<arrow::Int64Array>(1, std::move(buffer)));
  }
  return arrow::Table::Make(arrow::schema(std::move(fields)), columns, 1);
}

arrow::Result<std::vector<int64_t>> ReadInt64Row(const arrow::Table& table,
                                                 const std::vector<std::string>& names) {
  if (table.num_rows() != 1) {
    return arrow::Status::Invalid("a snapshot's progress part has ", table.num_rows(),
                                  " rows, not 1");
  }
  std::vector<int64_t> values;
  for (const std::string& name : names) {
    auto column = table.GetColumnByName(name);
    if (column == nullptr || column->type()->id() != arrow::Type::INT64 ||
        column->null_count() != 0) {
      return arrow::Status::Invalid("a snapshot's progress part has no int64 column '", name,
                                    "': ", table.schema()->ToString());
    }
    for (const auto& chunk : column->chunks()) {
      if (chunk->length() == 1) {
        values.push_back(static_cast<const arrow::Int64Array&>(*chunk).Value(0));
      }
    }
  }
  return values;
}

// ---- SpillRuns ---------------------------------------------------------------------------------

SpillRuns::SpillRuns(SpillDirectory* directory, std::string prefix, arrow::MemoryPool* pool)
    : directory_(directory), prefix_(std::move(prefix)), pool_(pool) {}

int32_t SpillRuns::PartitionOf(uint64_t hash) const {
  // Level 0 of SpillPartitions, whichever run.
  return HashToPartition(Fmix64(hash ^ 0x9E3779B97F4A7C15ULL), kSpillPartitions);
}

arrow::Status SpillRuns::Append(const std::shared_ptr<arrow::RecordBatch>& rows,
                                const uint64_t* hashes) {
  if (rows->num_rows() == 0) return arrow::Status::OK();
  if (!open_) {
    runs_.push_back(std::make_unique<SpillPartitions>(
        directory_, prefix_ + "-r" + std::to_string(next_run_++), 0, pool_));
    open_ = true;
  }
  return runs_.back()->Append(rows, hashes);
}

arrow::Status SpillRuns::AppendTo(int32_t p, const std::shared_ptr<arrow::RecordBatch>& rows) {
  if (rows->num_rows() == 0) return arrow::Status::OK();
  if (!open_) {
    runs_.push_back(std::make_unique<SpillPartitions>(
        directory_, prefix_ + "-r" + std::to_string(next_run_++), 0, pool_));
    open_ = true;
  }
  return runs_.back()->AppendTo(p, rows);
}

arrow::Status SpillRuns::Seal() {
  if (!open_) return arrow::Status::OK();
  open_ = false;
  ARROW_RETURN_NOT_OK(runs_.back()->Close());
  if (runs_.size() <= kMaxRuns) return arrow::Status::OK();
  // Compaction: every partition's rows, run by run, copied batch by batch into one new run.
  auto compacted = std::make_unique<SpillPartitions>(
      directory_, prefix_ + "-r" + std::to_string(next_run_++), 0, pool_);
  for (int32_t p = 0; p < kSpillPartitions; ++p) {
    for (const auto& run : runs_) {
      if (!run->has(p)) continue;
      ARROW_RETURN_NOT_OK(run->Read(p, [&](std::shared_ptr<arrow::RecordBatch> batch) {
        return compacted->AppendTo(p, batch);
      }));
      run->Remove(p);
    }
  }
  ARROW_RETURN_NOT_OK(compacted->Close());
  runs_.clear();
  runs_.push_back(std::move(compacted));
  return arrow::Status::OK();
}

arrow::Status SpillRuns::Read(
    int32_t p,
    const std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>)>& consume) {
  ARROW_RETURN_NOT_OK(Seal());
  for (const auto& run : runs_) {
    if (run->has(p)) ARROW_RETURN_NOT_OK(run->Read(p, consume));
  }
  return arrow::Status::OK();
}

void SpillRuns::Clear(int32_t p) {
  for (const auto& run : runs_) run->Remove(p);
  // Runs left without files are dropped (an open run stays: it is being written).
  std::vector<std::unique_ptr<SpillPartitions>> kept;
  for (size_t r = 0; r < runs_.size(); ++r) {
    bool any = open_ && r + 1 == runs_.size();
    for (int32_t q = 0; q < kSpillPartitions && !any; ++q) any = runs_[r]->has(q);
    if (any) kept.push_back(std::move(runs_[r]));
  }
  runs_ = std::move(kept);
}

void SpillRuns::Clear() {
  for (const auto& run : runs_) {
    for (int32_t p = 0; p < kSpillPartitions; ++p) run->Remove(p);
  }
  runs_.clear();
  open_ = false;
}

int64_t SpillRuns::rows(int32_t p) const {
  int64_t n = 0;
  for (const auto& run : runs_) {
    if (run->has(p)) n += run->rows(p);
  }
  return n;
}

int64_t SpillRuns::rows() const {
  int64_t n = 0;
  for (int32_t p = 0; p < kSpillPartitions; ++p) n += rows(p);
  return n;
}

// ---- GraceAggregation --------------------------------------------------------------------------

namespace {
// Result batches of a grace aggregation are emitted in slices of at most this many rows.
constexpr int64_t kMaxOutputRows = 64 * 1024;
}  // namespace

GraceAggregation::GraceAggregation(std::shared_ptr<const BoundAggregation> bound,
                                   arrow::MemoryPool* pool, int64_t budget, SpillDirectory* spill,
                                   int level, std::string prefix)
    : bound_(std::move(bound)),
      pool_(pool),
      budget_(budget),
      spill_(spill),
      level_(level),
      prefix_(std::move(prefix)) {}

GraceAggregation::~GraceAggregation() = default;

arrow::Status GraceAggregation::Init() {
  ARROW_ASSIGN_OR_RAISE(state_, GroupedAggregation::Make(bound_, pool_));
  // The empty state's fixed buffers (the grouper's scratch) are not what the budget limits.
  baseline_ = state_->memory_bytes();
  return arrow::Status::OK();
}

int64_t GraceAggregation::memory_bytes() const {
  return state_ == nullptr ? 0 : state_->memory_bytes() - baseline_;
}

arrow::Status GraceAggregation::Consume(const std::shared_ptr<arrow::RecordBatch>& batch) {
  if (spilled_ == nullptr && budget_ > 0 && level_ < kMaxSpillLevel &&
      state_->memory_bytes() - baseline_ > budget_) {
    ARROW_RETURN_NOT_OK(StartSpilling());
  }
  if (spilled_ == nullptr) return state_->Consume(*batch);
  ARROW_ASSIGN_OR_RAISE(auto rest, state_->ConsumeKnown(batch));
  if (rest->num_rows() == 0) return arrow::Status::OK();
  return Spill(rest);
}

arrow::Status GraceAggregation::StartSpilling() {
  // A global aggregation has one group: nothing to spill.
  if (spilled_ != nullptr || bound_->keys().empty() || level_ >= kMaxSpillLevel) {
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(hasher_, KeyHasher::Make(bound_->keys(), *bound_->input_schema()));
  spilled_ = std::make_unique<SpillPartitions>(spill_, prefix_, level_, pool_);
  return arrow::Status::OK();
}

arrow::Status GraceAggregation::Spill(const std::shared_ptr<arrow::RecordBatch>& rows) {
  hashes_.resize(static_cast<size_t>(rows->num_rows()));
  ARROW_RETURN_NOT_OK(hasher_->Hash(*rows, hashes_.data()));
  return spilled_->Append(rows, hashes_.data());
}

arrow::Status GraceAggregation::Finish(
    const std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>)>& emit) {
  ARROW_ASSIGN_OR_RAISE(auto result, state_->Finish());
  state_.reset();
  for (int64_t offset = 0; offset < result->num_rows(); offset += kMaxOutputRows) {
    ARROW_RETURN_NOT_OK(emit(result->Slice(offset, kMaxOutputRows)));
  }
  result.reset();
  if (spilled_ == nullptr) return arrow::Status::OK();
  ARROW_RETURN_NOT_OK(spilled_->Close());
  for (int32_t p = 0; p < kSpillPartitions; ++p) {
    if (!spilled_->has(p)) continue;
    GraceAggregation partition(bound_, pool_, budget_, spill_, level_ + 1,
                               prefix_ + "-" + std::to_string(p));
    ARROW_RETURN_NOT_OK(partition.Init());
    ARROW_RETURN_NOT_OK(spilled_->Read(p, [&](std::shared_ptr<arrow::RecordBatch> batch) {
      return partition.Consume(batch);
    }));
    spilled_->Remove(p);
    ARROW_RETURN_NOT_OK(partition.Finish(emit));
  }
  spilled_.reset();
  return arrow::Status::OK();
}

}  // namespace sabot
