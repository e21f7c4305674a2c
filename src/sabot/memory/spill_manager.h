#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <arrow/filesystem/filesystem.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/common/ids.h"
#include "sabot/common/thread_annotations.h"
#include "sabot/memory/budget_pool.h"
#include "sabot/memory/sealed_block.h"
#include "sabot/memory/spill_file.h"

namespace sabot {

struct SpillOptions {
  // Where spill files go; empty means the system's temporary directory. Each SpillManager
  // works in its own fresh subdirectory "sabot-spill-<pid>-<n>" of it (its spill root), which
  // holds a file "lock" the manager keeps locked (flock) for its whole life on the local
  // filesystem: a root whose lock can be taken belongs to no live manager
  // (SweepStaleSpillRoots).
  std::string directory;
  // The filesystem spill files live on; null means the local one. Tests inject faults here.
  std::shared_ptr<arrow::fs::FileSystem> filesystem;
  // Spilling starts when the budget pool's bytes_allocated() exceeds high_watermark * budget
  // and stops once it is at or below low_watermark * budget. 0 and 0 spill every block.
  double high_watermark = 0.8;
  double low_watermark = 0.5;
};

// Owns the spill directory of one BlockStore and decides when to spill: the watermarks of the
// budget, the files' paths (one per StreamKey: <root>/<shuffle_id>/p<partition>-w<writer>-
// a<attempt>.arrows, the shuffle id validated by ValidateId), and their deletion (per shuffle on
// release; the whole root when the manager is destroyed, and, for the local filesystem, at
// normal process exit if the manager was never destroyed). A process killed before either
// leaves its root behind: whoever started it removes it (RemoveSpillRootsOf), and the next
// agent started on the same directory sweeps it (SweepStaleSpillRoots).
//
// Lifetime: `pool` (not owned) outlives the manager. Thread-safe.
class SpillManager {
 public:
  static arrow::Result<std::unique_ptr<SpillManager>> Make(SpillOptions options,
                                                           const BudgetedMemoryPool* pool);
  ~SpillManager();

  // bytes_allocated() is above the high watermark.
  bool AboveHighWatermark() const;
  // bytes_allocated() is at or below the low watermark.
  bool AtOrBelowLowWatermark() const;

  // The spill file path of `key`; Invalid for an id unsafe in a path.
  arrow::Result<std::string> PathFor(const StreamKey& key) const;
  // Opens (creating the shuffle's directory and the file as needed) the spill file of `key`.
  arrow::Result<std::unique_ptr<SpillFileWriter>> OpenWriter(
      const StreamKey& key, std::shared_ptr<arrow::Buffer> schema_message) SABOT_EXCLUDES(mutex_);
  arrow::Result<std::unique_ptr<SpillFileReader>> OpenReader(const StreamKey& key) const;
  // Deletes every spill file of `shuffle_id` (nothing to do when it never spilled).
  arrow::Status DeleteShuffle(const ShuffleId& shuffle_id) SABOT_EXCLUDES(mutex_);

  // The spill root: "<directory>/sabot-spill-<pid>-<n>".
  const std::string& root() const { return root_; }
  const std::shared_ptr<arrow::fs::FileSystem>& filesystem() const { return filesystem_; }
  const SpillOptions& options() const { return options_; }

 private:
  SpillManager() = default;

  SpillOptions options_;
  const BudgetedMemoryPool* pool_ = nullptr;
  std::shared_ptr<arrow::fs::FileSystem> filesystem_;
  std::string root_;
  bool registered_for_exit_ = false;
  int lock_fd_ = -1;  // the root's lock file, locked while this manager lives (local only)

  std::mutex mutex_;
  std::set<ShuffleId> created_ SABOT_GUARDED_BY(mutex_);
};

// `directory` of SpillOptions made absolute in the sense spill managers use it: the system's
// temporary directory when empty, without trailing slashes.
arrow::Result<std::string> ResolveSpillDirectory(const std::string& directory);

// Removes the spill roots ("sabot-spill-<pid>-<n>") in the local directory `directory` that no
// live spill manager uses, and returns their paths. A root is stale when its lock file can be
// locked (its manager's process is gone, whatever process now has its pid), or when it has no
// lock file and its pid names no live process. Roots of this process, and anything else in the
// directory, are left alone; a stale root that cannot be removed (another user's, say) is
// logged as a warning and left. An error only when the directory cannot be listed. Call it when
// an agent starts, before it spills. Thread-safe.
arrow::Result<std::vector<std::string>> SweepStaleSpillRoots(const std::string& directory);

// Removes the stale spill roots of process `pid` in the local directory `directory` (as
// SweepStaleSpillRoots, restricted to that pid) and returns their paths: what the parent of an
// agent process calls once it reaped it, whether it exited or was killed.
arrow::Result<std::vector<std::string>> RemoveSpillRootsOf(const std::string& directory,
                                                           pid_t pid);

}  // namespace sabot
