#pragma once

// Where a job's checkpoints live (docs/fault-tolerance.md, "Storage"): a directory on any Arrow
// filesystem (a local path, file:///..., s3://...), laid out as
//
//   <directory>/<job name>/chk-000007/                 one checkpoint (id 7)
//   <directory>/<job name>/chk-000007/<chain>-<subtask>/<operator id>-<part>.arrow
//                                                      one part a task's operator (or source) put
//                                                      into its snapshot: one Arrow IPC file
//   <directory>/<job name>/chk-000007/MANIFEST.json    the commit point: written to
//                                                      MANIFEST.json.tmp, then renamed
//
// A checkpoint is complete once its manifest exists. The manifest lists every task's snapshot
// and every file with its size and CRC-32C (memory/crc32c.h); LatestValid() picks the newest
// checkpoint whose manifest parses and whose files all verify, so a corrupt or truncated file
// makes the job restart from the previous checkpoint (logged). A failed write (a full disk)
// fails that checkpoint only: the task reports the error, the driver calls Abort(id) and the
// job runs on. Complete() keeps the newest `retained` complete checkpoints and removes older
// ones (and the leftovers of failed ones below the newest complete id).
//
// Task side: on a barrier a task makes a TaskSnapshotWriter, hands each operator the StateWriter
// of its operator id (Put keeps the table, nothing is written yet), then Commit() queues the
// writes on Arrow's IO executor and returns: the files are written off the task's thread and
// the callback hears the TaskSnapshot (or the error) once they are durable.
//
// Driver side (local executor, distributed driver): Complete(id, every task's snapshot) once
// every task acked; Abort(id) when one failed; LatestValid() and OpenState() on restart.
//
// Thread safety: every method of CheckpointStorage may be called from any thread. A
// TaskSnapshotWriter is used by one thread (its task's) until Commit.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/filesystem/filesystem.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/table.h>

#include "sabot/dataflow/checkpoint.h"
#include "sabot/dataflow/logical_plan.h"

namespace sabot {

// One file of a task's snapshot.
struct SnapshotFile {
  std::string path;     // relative to the checkpoint's directory: "<chain>-<subtask>/<op>-<part>.arrow"
  int64_t bytes = 0;    // its size
  uint32_t crc32c = 0;  // CRC-32C of its bytes
  bool operator==(const SnapshotFile&) const = default;
};

// What one task wrote for checkpoint `id`: the files of its source and operators.
struct TaskSnapshot {
  int32_t chain = 0;
  int32_t subtask = 0;
  CheckpointId id = kNoCheckpoint;
  std::vector<SnapshotFile> files;
  // The task had ended (its chain finished and sent its end of input) before the barrier
  // reached it: it has no files, and a restart restores it as ended (it produces nothing more).
  bool finished = false;
  int64_t bytes() const;
  bool operator==(const TaskSnapshot&) const = default;
};

// A complete checkpoint: what its MANIFEST.json says.
struct CheckpointManifest {
  std::string job_name;
  CheckpointId id = kNoCheckpoint;
  int64_t created_unix_ms = 0;
  std::vector<TaskSnapshot> tasks;  // sorted by (chain, subtask)
  int64_t bytes() const;            // the files' total size
  // The snapshot of task (chain, subtask), or nullptr.
  const TaskSnapshot* FindTask(int32_t chain, int32_t subtask) const;
  // The manifest's JSON text and back (Invalid naming what is wrong for anything else).
  std::string ToJson() const;
  static arrow::Result<CheckpointManifest> FromJson(const std::string& text);
  bool operator==(const CheckpointManifest&) const = default;
};

class CheckpointStorage;

// The snapshot one task takes at one barrier. Make it, give each operator ForOperator(id), then
// Commit() once (or drop it: nothing is written).
class TaskSnapshotWriter {
 public:
  using Callback = std::function<void(CheckpointId, const arrow::Result<TaskSnapshot>&)>;
  ~TaskSnapshotWriter();

  // Where operator (or source) `op` of the task puts its parts; owned by this writer. Put
  // rejects a part name that is empty, not [A-Za-z0-9_] or already put by this operator.
  StateWriter* ForOperator(OperatorId op);
  // The tables put so far, in bytes of their buffers (an estimate of the snapshot's size).
  int64_t pending_bytes() const;
  // Queues the writes on the storage's IO executor and returns at once; `done` runs once, from an
  // IO thread, with the task's snapshot when every file was written and closed, or with the first
  // error (naming the checkpoint, the task and the file; the files written are left to Abort).
  void Commit(Callback done);

 private:
  friend class CheckpointStorage;
  class OperatorWriter;
  TaskSnapshotWriter(std::shared_ptr<CheckpointStorage> storage, CheckpointId id, int32_t chain,
                     int32_t subtask);
  std::shared_ptr<CheckpointStorage> storage_;
  CheckpointId id_;
  int32_t chain_;
  int32_t subtask_;
  std::map<OperatorId, std::unique_ptr<OperatorWriter>> operators_;
};

class CheckpointStorage : public std::enable_shared_from_this<CheckpointStorage> {
 public:
  // The checkpoints of job `job_name` under `directory_or_uri` (a local path or an Arrow
  // filesystem URI; arrow::fs::FileSystemFromUriOrPath); creates the job's directory. `retained`
  // >= 1. Errors name the directory.
  static arrow::Result<std::shared_ptr<CheckpointStorage>> Open(const std::string& directory_or_uri,
                                                                const std::string& job_name,
                                                                int32_t retained = 2);
  // The same on a given filesystem (tests: a FaultyFileSystem) under `base_path`.
  static arrow::Result<std::shared_ptr<CheckpointStorage>> Open(
      std::shared_ptr<arrow::fs::FileSystem> fs, const std::string& base_path,
      const std::string& job_name, int32_t retained = 2);

  // A task's snapshot of checkpoint `id`.
  std::unique_ptr<TaskSnapshotWriter> BeginTask(CheckpointId id, int32_t chain, int32_t subtask);

  // Every task acked checkpoint `id` with `tasks`: writes the manifest (to a temporary name,
  // then renamed: the commit point), then removes complete checkpoints beyond the newest
  // `retained` and failed ones below `id`. Returns the manifest. An error leaves the checkpoint
  // incomplete (the caller then Abort()s it); a failed clean-up is logged, not returned.
  arrow::Result<CheckpointManifest> Complete(CheckpointId id, std::vector<TaskSnapshot> tasks);
  // Removes what was written of checkpoint `id` (a failed or abandoned checkpoint). Never
  // removes a complete checkpoint's files.
  arrow::Status Abort(CheckpointId id);

  // The newest complete checkpoint whose manifest parses and whose files all have their listed
  // size and CRC-32C; older ones are tried in turn (each rejection logged with its reason).
  // Only checkpoints with id >= `at_least` count (a run restores none of an earlier run's).
  // nullopt: none (a fresh start).
  arrow::Result<std::optional<CheckpointManifest>> LatestValid(CheckpointId at_least = 1);
  // Why checkpoint `id` is not valid (OK when it is): the manifest is missing or does not parse,
  // or a file is missing, truncated or fails its checksum.
  arrow::Status Verify(CheckpointId id);
  // Ids of the checkpoint directories present (complete or not), ascending.
  arrow::Result<std::vector<CheckpointId>> ListCheckpoints();
  // The id after every checkpoint directory present: a new run's (or restart's) first id, so a
  // restarted job never writes into a directory a failed attempt left.
  arrow::Result<CheckpointId> NextId();

  // The snapshot operator (or source) `op` of task (chain, subtask) put into `manifest`'s
  // checkpoint. Invalid when the manifest has no snapshot of that task (the plan's parallelism
  // or chains changed). Get(name) gives nullptr for a part the operator did not put.
  arrow::Result<std::unique_ptr<StateReader>> OpenState(const CheckpointManifest& manifest,
                                                        int32_t chain, int32_t subtask,
                                                        OperatorId op);

  const std::shared_ptr<arrow::fs::FileSystem>& filesystem() const { return fs_; }
  // <base path>/<job name>, on filesystem().
  const std::string& job_path() const { return job_path_; }
  // The directory of checkpoint `id`: <job path>/chk-<id, 6 digits>.
  std::string CheckpointPath(CheckpointId id) const;
  int32_t retained() const { return retained_; }

  // The file name of part `part` of operator `op` of task (chain, subtask), relative to the
  // checkpoint's directory.
  static std::string PartPath(int32_t chain, int32_t subtask, OperatorId op,
                              const std::string& part);

 private:
  friend class TaskSnapshotWriter;
  CheckpointStorage(std::shared_ptr<arrow::fs::FileSystem> fs, std::string job_name,
                    std::string job_path, int32_t retained);
  arrow::Result<CheckpointManifest> ReadManifest(CheckpointId id);
  arrow::Status VerifyFiles(const CheckpointManifest& manifest);
  // Removes checkpoints beyond the retained ones and failed ones below `completed`.
  void Prune(CheckpointId completed);

  std::shared_ptr<arrow::fs::FileSystem> fs_;
  const std::string job_name_;
  const std::string job_path_;
  const int32_t retained_;
};

}  // namespace sabot
