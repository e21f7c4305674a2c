#pragma once

// What the stateful operators of bounded inputs share to spill state that outgrows a task's
// state budget (TaskContext::state_budget_bytes) to disk, partitioned by key hash: the grace
// hash aggregation (aggregate_operator.cc) and the grace hash join (join_operator.cc).
//
// A `SpillDirectory` is one operator instance's directory of spill files, created on first use
// under TaskContext::spill_directory (or the system's temporary directory), removed with its
// files by Remove() or its destructor. `SpillPartitions` is one level of a spill: rows written
// to kSpillPartitions Arrow IPC stream files by a hash of their key (the row hash of
// partition/key_hash.h, remixed per level so that a partition spilled again splits again), read
// back partition by partition. The file format is Arrow's IPC stream format (batches may replace
// a dictionary), one file per partition that received rows, named `<prefix>-<partition>.arrow`.
//
// Thread safety: none; both are used by the one thread that runs their operator instance.
// Ownership: a SpillPartitions holds a non-owning pointer to its SpillDirectory, which must
// outlive it; files are closed when the SpillPartitions is destroyed (and removed with the
// directory).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <arrow/io/type_fwd.h>
#include <arrow/ipc/type_fwd.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/dataflow/operator.h"

namespace sabot {

// Partitions of one spill level.
inline constexpr int32_t kSpillPartitions = 16;
// Spill levels below this one may spill again (a partition still too large splits again); a
// partition at this level is processed whole, over the budget (its keys no longer split: a few
// keys with very large state).
inline constexpr int kMaxSpillLevel = 6;

class SpillDirectory {
 public:
  // `root`: where the directory is created (empty: the system's temporary directory); `name`:
  // the directory's name, unique per instance (SpillDirectoryName); `owner`: what the operator
  // is, for error messages ("aggregate 'agg'").
  SpillDirectory(std::string root, std::string name, std::string owner);
  ~SpillDirectory();
  SpillDirectory(const SpillDirectory&) = delete;
  SpillDirectory& operator=(const SpillDirectory&) = delete;

  // The path of `file` in the directory, which is created on the first call. IOError naming the
  // operator and the directory when it cannot be created.
  arrow::Result<std::string> FilePath(const std::string& file);
  // Removes the directory and every file in it (nothing when it was never created). A later
  // FilePath creates it again.
  void Remove();

  // Bytes written to the directory's files, at every level (OperatorReport's state spilled).
  void AddSpilledBytes(int64_t bytes) { spilled_bytes_ += bytes; }
  int64_t spilled_bytes() const { return spilled_bytes_; }
  const std::string& owner() const { return owner_; }

 private:
  std::string root_;
  std::string name_;
  std::string owner_;
  std::filesystem::path path_;
  bool created_ = false;
  int64_t spilled_bytes_ = 0;
};

// What a stateful operator whose state is evicted by watermark rather than spilled (window
// aggregates, window and interval joins) needs to enforce its task's state budget and name
// itself in the error past it. A value.
struct TaskStateBudget {
  explicit TaskStateBudget(const TaskContext& task)
      : bytes(task.state_budget_bytes),
        operator_name(task.spec != nullptr ? task.spec->name : std::string()),
        subtask(task.subtask) {}
  int64_t bytes = 0;  // 0: no limit
  std::string operator_name;
  int32_t subtask = 0;
};

// A directory name unique to one instance of operator kind `kind` ("aggregate", "join") in
// this process: `sabot-<kind>-<job>-<operator>-<subtask>-<pid>-<instance>`.
std::string SpillDirectoryName(const std::string& kind, const TaskContext& task);

// One spill level: kSpillPartitions files of rows split by key hash.
class SpillPartitions {
 public:
  // Files are named `<prefix>-<p>.arrow` in `directory`; `level` remixes the hash (rows of one
  // partition of level L spread over the partitions of level L + 1). Batches read back are
  // allocated in `pool`.
  SpillPartitions(SpillDirectory* directory, std::string prefix, int level,
                  arrow::MemoryPool* pool);
  ~SpillPartitions();

  // The partition of a row whose key has row hash `hash`, at this level.
  int32_t PartitionOf(uint64_t hash) const;

  // Writes each row i of `rows` to partition PartitionOf(hashes[i]); every batch given must
  // have one schema.
  arrow::Status Append(const std::shared_ptr<arrow::RecordBatch>& rows, const uint64_t* hashes);
  // Writes every row of `rows` to partition `p`.
  arrow::Status AppendTo(int32_t p, const std::shared_ptr<arrow::RecordBatch>& rows);
  // Closes every file; their bytes are added to the directory's spilled bytes. Required before
  // Read.
  arrow::Status Close();

  // Whether partition `p` received rows, and the bytes of its file (after Close).
  bool has(int32_t p) const { return files_[p].writer != nullptr || files_[p].closed; }
  int64_t bytes(int32_t p) const { return files_[p].bytes; }
  int64_t rows(int32_t p) const { return files_[p].rows; }
  const std::string& prefix() const { return prefix_; }
  int level() const { return level_; }

  // Calls `consume` with each batch of partition `p`, in the order written (nothing when it
  // received no rows). After Close.
  arrow::Status Read(int32_t p,
                     const std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>)>&
                         consume) const;
  // Removes partition p's file (done with it).
  void Remove(int32_t p);

 private:
  struct File {
    std::string path;
    std::shared_ptr<arrow::io::FileOutputStream> stream;
    std::shared_ptr<arrow::ipc::RecordBatchWriter> writer;
    bool closed = false;
    int64_t bytes = 0;
    int64_t rows = 0;
  };

  SpillDirectory* directory_;
  std::string prefix_;
  int level_;
  arrow::MemoryPool* pool_;
  uint64_t seed_;
  std::vector<File> files_;
};

}  // namespace sabot
