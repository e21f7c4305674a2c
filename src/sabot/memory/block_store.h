#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "sabot/common/ids.h"
#include "sabot/common/thread_annotations.h"
#include "sabot/memory/block_codec.h"
#include "sabot/memory/budget_pool.h"
#include "sabot/memory/memory_metrics.h"
#include "sabot/memory/sealed_block.h"
#include "sabot/memory/spill_manager.h"

namespace sabot {

struct BlockStoreOptions {
  SpillOptions spill;
  // Encodes blocks that arrive unencoded (in-process channels) when they must spill.
  BlockCodecOptions codec;
  // How long a reader waits for the next block of a stream that is not finished yet.
  std::chrono::milliseconds read_timeout{std::chrono::minutes(5)};
};

class BlockStreamReader;

struct BlockStreamStats {
  int64_t blocks = 0;  // in memory and on disk
  int64_t rows = 0;
  int64_t bytes = 0;   // in memory (encoded or batch bytes) and on disk
  bool finished = false;
};

// The sealed blocks of many streams (one per StreamKey, kept in order), in memory under the
// agent's budget and on disk beyond it. Event blocks (SealedBlock::event) are stored, spilled
// and read back in their places like row blocks; they count in a stream's blocks and bytes,
// not its rows. Blocking shuffles store their output here; the Flight
// server and the shuffle manager serve and read it (OpenReader).
//
// Lifecycle of a stream: AddStream(key, schema), Append(key, block)..., Finish(key); readers
// (OpenReader) may read while it is written and wait for more blocks until it is finished.
// Release(shuffle_id) drops every stream of a shuffle: memory freed, spill files deleted.
//
// Spill: after each Append, when the budget pool is above the high watermark, the streams
// holding the most memory move their in-memory blocks, oldest first, to their spill file
// (SpillFileWriter) until the pool is at or below the low watermark, or nothing is left to
// spill; and, through Reclaim, whenever an allocation from the budget pool does not fit. This runs in the appending thread, without holding the store's lock; disk errors reach
// that Append as an IOError and the blocks stay in memory (nothing is lost, nothing partial
// becomes readable). Readers get spilled blocks back transparently, checksum-verified.
//
// Lifetime: `pool` and `metrics` (not owned) outlive the store; readers must not outlive it.
// Destroying the store deletes its spill directory; no call may run concurrently with the
// destructor. Thread safety: every method is safe for concurrent use.
class BlockStore {
 public:
  static arrow::Result<std::unique_ptr<BlockStore>> Make(BlockStoreOptions options,
                                                         BudgetedMemoryPool* pool,
                                                         MemoryMetrics* metrics = nullptr);
  ~BlockStore();

  // Declares a stream and its schema. AlreadyExists when declared before (and not released).
  arrow::Status AddStream(const StreamKey& key, std::shared_ptr<arrow::Schema> schema)
      SABOT_EXCLUDES(mutex_);
  // Adds the next block of a declared, unfinished stream; then spills if the budget asks for it.
  arrow::Status Append(const StreamKey& key, SealedBlock block) SABOT_EXCLUDES(mutex_);
  // No more blocks for `key`; readers see the end after its last block.
  arrow::Status Finish(const StreamKey& key) SABOT_EXCLUDES(mutex_);
  // Ends `key` as failed with `cause` (not OK): readers get `cause` after its last block instead
  // of the end, so a stream whose writer failed is never mistaken for a complete one.
  arrow::Status Abort(const StreamKey& key, const arrow::Status& cause) SABOT_EXCLUDES(mutex_);
  // A reader of the stream from its first block. KeyError for an unknown stream.
  arrow::Result<std::unique_ptr<BlockStreamReader>> OpenReader(const StreamKey& key)
      SABOT_EXCLUDES(mutex_);
  // The streams of `shuffle_id`, ordered by partition, writer, attempt.
  std::vector<StreamKey> ListStreams(const ShuffleId& shuffle_id) const SABOT_EXCLUDES(mutex_);
  // Drops every stream of `shuffle_id` and deletes its spill files. Readers of them fail.
  arrow::Status Release(const ShuffleId& shuffle_id) SABOT_EXCLUDES(mutex_);

  // Spills if above the high watermark, down to the low one (Append calls it).
  arrow::Status SpillIfNeeded() SABOT_EXCLUDES(mutex_);
  // Makes room for an allocation of `bytes` that does not fit in the budget: spills the largest
  // streams until it fits and the pool is at or below the low watermark, or until nothing is
  // left in memory that another thread is not already spilling. The budget pool's reclaimer
  // (BudgetedMemoryPool::SetReclaimer; the shuffle manager installs it): spilling allocates
  // nothing from the pool for encoded or uncompressed blocks, so it works with the pool full.
  // An error is a spill that failed (the blocks stay in memory).
  arrow::Status Reclaim(int64_t bytes) SABOT_EXCLUDES(mutex_);
  // Spills every in-memory block of every stream.
  arrow::Status SpillAll() SABOT_EXCLUDES(mutex_);

  // Figures of one stream so far. KeyError for an unknown stream.
  arrow::Result<BlockStreamStats> StreamStats(const StreamKey& key) const SABOT_EXCLUDES(mutex_);

  struct Stats {
    int64_t streams = 0;
    int64_t blocks_in_memory = 0;
    int64_t bytes_in_memory = 0;
    int64_t blocks_on_disk = 0;
    int64_t bytes_on_disk = 0;
  };
  Stats stats() const SABOT_EXCLUDES(mutex_);
  const SpillManager& spill_manager() const { return *spill_; }
  BudgetedMemoryPool* pool() const { return pool_; }

 private:
  friend class BlockStreamReader;
  struct Stream;

  BlockStore() = default;
  // Moves the in-memory blocks of `stream` to its spill file.
  arrow::Status SpillStream(const std::shared_ptr<Stream>& stream) SABOT_EXCLUDES(mutex_);
  // Spills the largest stream in memory, again and again, while `more()` is true and a stream
  // has blocks in memory.
  template <typename Predicate>
  arrow::Status SpillLargestWhile(Predicate&& more) SABOT_EXCLUDES(mutex_);
  // The unspilled, unreleased stream holding the most memory, or null.
  std::shared_ptr<Stream> LargestLocked() const SABOT_REQUIRES(mutex_);
  arrow::Result<std::shared_ptr<Stream>> FindLocked(const StreamKey& key) const
      SABOT_REQUIRES(mutex_);

  BlockStoreOptions options_;
  BudgetedMemoryPool* pool_ = nullptr;
  MemoryMetrics* metrics_ = nullptr;
  std::unique_ptr<SpillManager> spill_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // a block appended, a stream finished or released
  std::map<StreamKey, std::shared_ptr<Stream>> streams_ SABOT_GUARDED_BY(mutex_);
};

// Reads one stream of a BlockStore in order: schema() (and its encoded schema_message(), what
// a server sends first), then Next() block by block, from memory or, transparently, from the
// spill file. Blocks come back as stored (encoded ones byte for byte; unencoded ones as their
// batch, or encoded if they were spilled); decode them with a BlockDecoder.
//
// Lifetime: must not outlive its store. Thread safety: one thread at a time; any number of
// readers per stream.
class BlockStreamReader {
 public:
  ~BlockStreamReader();

  const StreamKey& key() const;
  const std::shared_ptr<arrow::Schema>& schema() const;
  const std::shared_ptr<arrow::Buffer>& schema_message() const;

  // The next block; nullopt after the last block of a finished stream. Waits while the stream
  // is not finished and has no next block yet (up to the store's read_timeout: IOError).
  // IOError for a spilled block that is truncated or corrupted; Invalid after Release.
  arrow::Result<std::optional<SealedBlock>> Next();
  // Makes a waiting or later Next() return Cancelled. Any thread may call it.
  void Cancel();

 private:
  friend class BlockStore;
  BlockStreamReader(BlockStore* store, std::shared_ptr<BlockStore::Stream> stream);
  arrow::Result<SealedBlock> ReadSpilled(const SpillBlockLocation& location);

  BlockStore* store_;
  std::shared_ptr<BlockStore::Stream> stream_;
  int64_t next_ = 0;
  std::unique_ptr<SpillFileReader> file_;
  bool cancelled_ = false;  // guarded by the store's mutex
};

}  // namespace sabot
