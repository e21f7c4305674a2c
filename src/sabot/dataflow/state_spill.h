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
#include <utility>
#include <vector>

#include <arrow/io/type_fwd.h>
#include <arrow/ipc/type_fwd.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/table.h>

#include "sabot/dataflow/grouped_aggregation.h"
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

// What a stateful operator of an unbounded input (window aggregates, window and interval joins,
// the changelog aggregate) needs to know of its task's state budget and to name itself. A
// value.
struct TaskStateBudget {
  explicit TaskStateBudget(const TaskContext& task)
      : bytes(task.state_budget_bytes),
        operator_name(task.spec != nullptr ? task.spec->name : std::string()),
        subtask(task.subtask) {}
  int64_t bytes = 0;  // 0: no limit
  std::string operator_name;
  int32_t subtask = 0;
};

// Both are also the spill format of the stateful operators of unbounded inputs, whose state
// is read back and written again while the input goes on (windows, sessions, event-time joins,
// the changelog aggregate): `SpillRuns` is such a state on disk, partitioned by key hash,
// appended to in runs and read back by partition.

class KeyHasher;

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

// Snapshot parts of a few numbers (watermarks, counters): one row of non-null int64 columns named
// as given. ReadInt64Row gives the values of `names` in that order; Invalid naming the missing
// column or a table that is not one such row.
std::shared_ptr<arrow::Table> Int64Row(
    const std::vector<std::pair<std::string, int64_t>>& values);
arrow::Result<std::vector<int64_t>> ReadInt64Row(const arrow::Table& table,
                                                 const std::vector<std::string>& names);

// An appendable, partitioned state on disk: rows written by key hash (PartitionOf, level 0)
// into runs, each run one SpillPartitions level whose files are closed when a partition is
// read (the next Append opens a new run). Read(p) gives the rows of partition p of every run, in
// the order written. Clear(p) removes partition p's files from every run (its state was read
// back and is written again, or evicted). Files are named `<prefix>-r<run>-<p>.arrow`. Past
// kMaxRuns runs, sealing one compacts them all into one (batch by batch), so reading a
// partition opens a bounded number of files.
// Same thread safety and ownership as SpillPartitions.
class SpillRuns {
 public:
  static constexpr size_t kMaxRuns = 16;

  SpillRuns(SpillDirectory* directory, std::string prefix, arrow::MemoryPool* pool);

  int32_t PartitionOf(uint64_t hash) const;
  arrow::Status Append(const std::shared_ptr<arrow::RecordBatch>& rows, const uint64_t* hashes);
  arrow::Status AppendTo(int32_t p, const std::shared_ptr<arrow::RecordBatch>& rows);
  // Every batch of partition p, run by run (nothing when it has none).
  arrow::Status Read(int32_t p,
                     const std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>)>&
                         consume);
  void Clear(int32_t p);
  // Removes every file.
  void Clear();
  // Rows held by partition p (in every run), and by all partitions.
  int64_t rows(int32_t p) const;
  int64_t rows() const;
  bool empty() const { return rows() == 0; }

 private:
  arrow::Status Seal();

  SpillDirectory* directory_;
  std::string prefix_;
  arrow::MemoryPool* pool_;
  std::vector<std::unique_ptr<SpillPartitions>> runs_;
  bool open_ = false;  // the last run is still being written
  int64_t next_run_ = 0;
};

// A bounded grouped aggregation under a memory budget (grace hash aggregation). While its state
// is within the budget, every row goes into it. Past the budget the state stops taking new keys:
// rows of keys it has keep being aggregated (ConsumeKnown), rows of other keys are written to
// kSpillPartitions IPC files by key hash (SpillPartitions). Finish emits the state's result and
// aggregates each partition in turn by a GraceAggregation one level down (its keys are disjoint
// from the state's and from the other partitions'), so every key's rows meet in one state, in
// their arrival order. The bounded aggregate (aggregate_operator.h) runs one per task; a
// windowed aggregate runs one per window whose state outgrew the budget.
class GraceAggregation {
 public:
  // `budget`: bytes of state before new keys spill (0: no limit); `prefix`: names this
  // aggregation's spill files in `spill` (unique within the directory).
  GraceAggregation(std::shared_ptr<const BoundAggregation> bound, arrow::MemoryPool* pool,
                   int64_t budget, SpillDirectory* spill, int level, std::string prefix);
  ~GraceAggregation();

  arrow::Status Init();
  arrow::Status Consume(const std::shared_ptr<arrow::RecordBatch>& batch);
  // Starts spilling now (rows of keys the state has not seen go to disk), whatever the state
  // holds: what an owner that counts its memory itself does when it is over its budget.
  arrow::Status StartSpilling();
  bool spilling() const { return spilled_ != nullptr; }
  // The state's bytes beyond its empty state's.
  int64_t memory_bytes() const;
  // Emits every group's result through `emit` (slices of at most 64K rows), then aggregates the
  // spilled partitions. The aggregation is spent afterwards.
  arrow::Status Finish(
      const std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>)>& emit);

 private:
  arrow::Status Spill(const std::shared_ptr<arrow::RecordBatch>& rows);

  std::shared_ptr<const BoundAggregation> bound_;
  arrow::MemoryPool* pool_;
  int64_t budget_;
  SpillDirectory* spill_;
  int level_;
  std::string prefix_;  // file names of this level's partitions start with it
  std::unique_ptr<GroupedAggregation> state_;
  int64_t baseline_ = 0;
  std::unique_ptr<KeyHasher> hasher_;
  std::vector<uint64_t> hashes_;
  std::unique_ptr<SpillPartitions> spilled_;  // null until spilling
};

}  // namespace sabot
