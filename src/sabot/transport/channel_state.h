#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/memory/sealed_block.h"

namespace sabot {

using Deadline = std::chrono::steady_clock::time_point;

// The most credits a channel's writer holds at once; further grants are absorbed.
inline constexpr int32_t kMaxChannelCredits = 1 << 30;

// The state one pipelined channel shares between its writing side (a ChannelWriter) and its
// reading side (a ChannelReader in-process, or the server's DoExchange handler that forwards to
// a remote reader): the schema, the blocks handed over but not yet taken, the credits, the
// backlog, and how the stream ended. Both transports build on it, so credits, backpressure and
// end-of-stream behave the same in both.
//
// Lifecycle: made by ChannelHub::Acquire when the first side opens; each side attaches once and
// detaches once (ChannelHub::Detach); the hub forgets the state when both sides detached, or
// when the reader leaves before any writer opened.
// Thread safety: all methods are safe for concurrent use. Waits never hold the mutex.
class ChannelState {
 public:
  explicit ChannelState(StreamKey key) : key_(std::move(key)) {}

  const StreamKey& key() const { return key_; }

  // Writer side. Invalid when a writer attached before.
  arrow::Status AttachWriter(std::shared_ptr<arrow::Schema> schema);
  // Hands `block` over once a credit is available. Cancelled when the reader cancelled;
  // IOError at `deadline`; Invalid after Close.
  arrow::Status Push(SealedBlock block, Deadline deadline);
  // Never waits: hands `*block` over (moving it out) and returns true when a credit is
  // available; otherwise leaves `*block` untouched, returns false and, until the next push or
  // Close, counts one block in the backlog the reader sees (as a waiting Push does, so the
  // reader may lend a floating credit) and arms the on-writable callback. Errors as Push.
  arrow::Result<bool> TryPush(SealedBlock* block);
  // The writer's wake-up for TryPush: called after a TryPush returned false, once a credit was
  // granted since, or the reader cancelled (then at every cancel). Called on the granting or
  // cancelling thread with no lock held, possibly concurrently with itself; a call that started
  // may still run after SetOnWritable({}) returned, so it must capture what it touches by
  // shared ownership. It must not call into this channel. Empty: no callback.
  void SetOnWritable(std::function<void()> callback);
  // Ends the stream: OK means end-of-stream, anything else aborts it with that error.
  void Close(const arrow::Status& outcome);

  // Reader side. Invalid when a reader attached before.
  arrow::Status AttachReader();
  // Grants the writer `credits` more blocks. The credits held saturate at kMaxChannelCredits (far
  // above what any reader grants: exclusive plus floating credits are each at most 2^16), so no
  // sequence of grants can overflow; `credits` <= 0 grants nothing. A remote reader's CREDIT
  // messages are checked before they get here (DecodeCreditMessage).
  void Grant(int32_t credits);
  arrow::Result<std::shared_ptr<arrow::Schema>> WaitSchema(Deadline deadline);

  struct Event {
    enum class Kind { kBlock, kEnd, kBacklog, kIdle };
    Kind kind = Kind::kIdle;
    SealedBlock block;      // kBlock
    int32_t backlog = 0;    // kBlock (after this block) and kBacklog
  };
  // Waits until a block is there (kBlock), the stream ended (kEnd; or the abort cause as an
  // error, after all blocks were taken), the writer waits without credit and its backlog
  // differs from `reported_backlog` (kBacklog), or `deadline` passed (kIdle).
  arrow::Result<Event> Poll(Deadline deadline, int32_t reported_backlog);
  // Never waits: Poll's answer for the state as it is now (kIdle when it would wait; that arms
  // the on-readable callback).
  arrow::Result<Event> TryPoll(int32_t reported_backlog);
  // The reader's wake-up for TryPoll: called after a TryPoll answered kIdle, once a block
  // arrived, the stream ended, or the writer's backlog changed since. Same calling rules as
  // SetOnWritable.
  void SetOnReadable(std::function<void()> callback);
  // Stops the stream from the reading side: the writer's waits and pushes fail with `cause`.
  void Cancel(const arrow::Status& cause);

  int32_t credits() const;
  int32_t backlog() const;

 private:
  friend class ChannelHub;

  // Poll's answer once its wait is over; requires the mutex.
  arrow::Result<Event> TakeEventLocked(int32_t reported_backlog) SABOT_REQUIRES(mutex_);
  // The on-writable callback to call now (after unlocking) when a TryPush is waiting for it.
  std::shared_ptr<const std::function<void()>> TakeWritableCallbackLocked()
      SABOT_REQUIRES(mutex_);
  // The on-readable callback to call now (after unlocking) when a TryPoll is waiting for it.
  std::shared_ptr<const std::function<void()>> TakeReadableCallbackLocked()
      SABOT_REQUIRES(mutex_);

  const StreamKey key_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::shared_ptr<arrow::Schema> schema_ SABOT_GUARDED_BY(mutex_);
  std::deque<SealedBlock> blocks_ SABOT_GUARDED_BY(mutex_);
  int32_t credits_ SABOT_GUARDED_BY(mutex_) = 0;
  int32_t backlog_ SABOT_GUARDED_BY(mutex_) = 0;
  // A TryPush returned false and no push followed: one block of backlog_ is that one.
  bool try_push_waiting_ SABOT_GUARDED_BY(mutex_) = false;
  // Set when a TryPush returned false; the next grant then calls on_writable_ (once).
  bool writable_armed_ SABOT_GUARDED_BY(mutex_) = false;
  std::shared_ptr<const std::function<void()>> on_writable_ SABOT_GUARDED_BY(mutex_);
  // Set when a TryPoll answered kIdle; the next block, end or backlog change calls on_readable_.
  bool readable_armed_ SABOT_GUARDED_BY(mutex_) = false;
  std::shared_ptr<const std::function<void()>> on_readable_ SABOT_GUARDED_BY(mutex_);
  bool writer_attached_ SABOT_GUARDED_BY(mutex_) = false;
  bool reader_attached_ SABOT_GUARDED_BY(mutex_) = false;
  bool closed_ SABOT_GUARDED_BY(mutex_) = false;
  arrow::Status outcome_ SABOT_GUARDED_BY(mutex_);  // set with closed_
  arrow::Status cancelled_ SABOT_GUARDED_BY(mutex_);  // not OK once the reader cancelled
  int detached_sides_ SABOT_GUARDED_BY(mutex_) = 0;
};

// The channels of one process (in-process transport) or one server (Flight), by stream key.
// Safe for concurrent use.
class ChannelHub {
 public:
  // The state of `key`'s channel, made when absent.
  std::shared_ptr<ChannelState> Acquire(const StreamKey& key);
  enum class Side { kWriter, kReader };
  // One side is done with `state`. The hub forgets it after both sides, or when the reader
  // leaves a stream no writer opened.
  void Detach(const std::shared_ptr<ChannelState>& state, Side side);
  // Channels currently known (for leak checks and stats).
  int64_t num_channels() const;

 private:
  mutable std::mutex mutex_;
  std::map<StreamKey, std::shared_ptr<ChannelState>> channels_ SABOT_GUARDED_BY(mutex_);
};

}  // namespace sabot
