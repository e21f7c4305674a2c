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

}  // namespace sabot
