#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/common/ids.h"
#include "sabot/common/thread_annotations.h"
#include "sabot/memory/memory_metrics.h"

namespace sabot {

struct NetworkBufferPoolOptions {
  // The unit of buffer memory and of credit.
  int64_t segment_size = 32 * 1024;
  // Segments in the pool; 0 means as many as fit in `budget_bytes` given to Make.
  int64_t total_segments = 0;
  // Set aside for each output channel when it registers, usable only by it.
  int32_t exclusive_segments_per_channel = 2;
  // Segments the channels of one shuffle may borrow, together, from the pool's shared rest.
  int32_t floating_segments_per_shuffle = 8;
  // How long a producer waits for segments before Reserve fails.
  std::chrono::milliseconds request_timeout{30000};
};

class NetworkBufferPool;
class NetworkChannel;
namespace internal {
struct NetworkChannelState;  // defined in network_buffer_pool.cc
struct NetworkShuffleState;
}  // namespace internal

// Segments held by a producer for one block in flight: exclusive ones of its channel and
// floating ones of its shuffle. Returned to the pool when destroyed or Release()d, which wakes
// waiting producers. Move-only RAII; the pool must outlive it.
class SegmentReservation {
 public:
  SegmentReservation() = default;
  SegmentReservation(SegmentReservation&& other) noexcept { *this = std::move(other); }
  SegmentReservation& operator=(SegmentReservation&& other) noexcept;
  SegmentReservation(const SegmentReservation&) = delete;
  SegmentReservation& operator=(const SegmentReservation&) = delete;
  ~SegmentReservation() { Release(); }

  int64_t exclusive_segments() const { return exclusive_; }
  int64_t floating_segments() const { return floating_; }
  int64_t segments() const { return exclusive_ + floating_; }
  bool empty() const { return segments() == 0; }
  void Release();

 private:
  friend class NetworkBufferPool;
  SegmentReservation(NetworkBufferPool* pool,
                     std::shared_ptr<internal::NetworkChannelState> channel, int64_t exclusive,
                     int64_t floating)
      : pool_(pool), channel_(std::move(channel)), exclusive_(exclusive), floating_(floating) {}

  NetworkBufferPool* pool_ = nullptr;
  std::shared_ptr<internal::NetworkChannelState> channel_;
  int64_t exclusive_ = 0;
  int64_t floating_ = 0;
};

// Bounds the data in flight on the agent's output channels, counted in fixed-size segments of
// the memory budget, as Flink's NetworkBufferPool does.
//
// Each output channel registers (RegisterChannel) and gets `exclusive_segments_per_channel`
// segments set aside for it alone. Each shuffle may also borrow up to
// `floating_segments_per_shuffle` floating segments, shared by its channels, from what is not
// set aside. A producer reserves the segments covering a sealed block before handing it to its
// channel (Reserve, one reservation per block); the reservation travels with the block and is
// returned when the consumer is done with it. When the segments are not there, the producer
// waits on a condition variable, without spinning and without allocating, until a reservation
// is returned, the channel is cancelled (NetworkChannel::Cancel, which ends the wait at once with
// its cause), or `request_timeout` passes, which fails with a clear IOError (retryable).
//
// A producer that must not wait (a task run as steps on a bounded thread pool) calls
// TryReserve instead; when it comes back empty, the channel's on-available callback
// (NetworkChannel::SetOnAvailable) is called once returned segments could grant that request,
// or the channel is cancelled, and the producer tries again.
//
// Credits are counted in segments: a block of b bytes needs SegmentsFor(b) of them. The
// segments are units of the budget, not memory the pool allocates: the block's bytes are
// allocated by the encoder from the BudgetedMemoryPool, which enforces the budget itself;
// this pool makes producers wait before they produce more than the configured in-flight
// memory. Size `total_segments * segment_size` to a part of the budget.
//
// Lifetime: outlives every channel and reservation made from it. Thread-safe.
class NetworkBufferPool {
 public:
  // `budget_bytes` sizes the pool when options.total_segments is 0. `metrics` (optional, not
  // owned) must outlive the pool.
  static arrow::Result<std::unique_ptr<NetworkBufferPool>> Make(
      NetworkBufferPoolOptions options, int64_t budget_bytes, MemoryMetrics* metrics = nullptr);
  ~NetworkBufferPool();

  // Registers an output channel of `shuffle_id`, setting aside its exclusive segments.
  // CapacityError when the pool cannot set them aside. The channel unregisters when destroyed;
  // its exclusive segments return to the pool as its reservations are released.
  arrow::Result<std::unique_ptr<NetworkChannel>> RegisterChannel(const ShuffleId& shuffle_id)
      SABOT_EXCLUDES(mutex_);

  int64_t SegmentsFor(int64_t bytes) const;
  int64_t segment_size() const { return options_.segment_size; }
  int64_t total_segments() const { return total_segments_; }
  const NetworkBufferPoolOptions& options() const { return options_; }

  struct Stats {
    int64_t total_segments = 0;
    int64_t set_aside_segments = 0;  // exclusive segments of registered channels
    int64_t exclusive_in_use = 0;
    int64_t floating_in_use = 0;
    int64_t waiting_producers = 0;
  };
  Stats stats() const SABOT_EXCLUDES(mutex_);

 private:
  friend class NetworkChannel;
  friend class SegmentReservation;
  using ChannelState = internal::NetworkChannelState;
  using ShuffleState = internal::NetworkShuffleState;

  NetworkBufferPool(NetworkBufferPoolOptions options, int64_t total_segments,
                    MemoryMetrics* metrics);

  arrow::Result<SegmentReservation> Reserve(const std::shared_ptr<ChannelState>& channel,
                                            int64_t segments,
                                            std::optional<std::chrono::milliseconds> timeout,
                                            bool wait) SABOT_EXCLUDES(mutex_);
  void Cancel(const std::shared_ptr<ChannelState>& channel, const arrow::Status& cause)
      SABOT_EXCLUDES(mutex_);
  // Grants the request when it can be granted now.
  std::optional<SegmentReservation> TryGrantLocked(const std::shared_ptr<ChannelState>& channel,
                                                   int64_t segments) SABOT_REQUIRES(mutex_);
  // Whether TryGrantLocked(channel, segments) would grant now.
  bool CanGrantLocked(const ChannelState& channel, int64_t segments) const SABOT_REQUIRES(mutex_);
  // The callbacks of armed channels (a TryReserve came back empty) whose request fits now;
  // disarms them. The caller calls them after unlocking.
  std::vector<std::shared_ptr<const std::function<void()>>> TakeAvailableCallbacksLocked()
      SABOT_REQUIRES(mutex_);
  void SetOnAvailable(const std::shared_ptr<ChannelState>& channel,
                      std::function<void()> callback) SABOT_EXCLUDES(mutex_);
  void Return(ChannelState* channel, int64_t exclusive, int64_t floating) SABOT_EXCLUDES(mutex_);
  void Unregister(const std::shared_ptr<ChannelState>& channel) SABOT_EXCLUDES(mutex_);
  int64_t FreeSharedLocked() const SABOT_REQUIRES(mutex_);
  void EraseShuffleLocked(const ShuffleState& shuffle) SABOT_REQUIRES(mutex_);

  const NetworkBufferPoolOptions options_;
  const int64_t total_segments_;
  MemoryMetrics* const metrics_;

  mutable std::mutex mutex_;
  std::condition_variable returned_;
  int64_t set_aside_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t exclusive_in_use_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t floating_in_use_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t waiting_ SABOT_GUARDED_BY(mutex_) = 0;
  std::map<ShuffleId, std::shared_ptr<ShuffleState>> shuffles_ SABOT_GUARDED_BY(mutex_);
  // Channels whose last TryReserve came back empty, waiting for their on-available callback.
  std::vector<std::shared_ptr<ChannelState>> armed_ SABOT_GUARDED_BY(mutex_);
};

// One output channel's claim on the NetworkBufferPool. Made by RegisterChannel; unregisters
// when destroyed. Thread-safe; the pool must outlive it.
class NetworkChannel {
 public:
  ~NetworkChannel();
  NetworkChannel(const NetworkChannel&) = delete;
  NetworkChannel& operator=(const NetworkChannel&) = delete;

  const ShuffleId& shuffle_id() const;

  // Reserves `segments` (>= 1), waiting up to `timeout` (the pool's request_timeout when unset)
  // while they are not available. Invalid when the request exceeds what one channel can ever
  // hold (its exclusive plus its shuffle's floating segments); IOError on timeout; the Cancel
  // cause once the channel was cancelled.
  arrow::Result<SegmentReservation> Reserve(
      int64_t segments, std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Reserve(SegmentsFor(bytes)).
  arrow::Result<SegmentReservation> ReserveBytes(
      int64_t bytes, std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Never waits: an empty reservation when the segments are not available now; then the
  // on-available callback (SetOnAvailable) is armed for this request.
  arrow::Result<SegmentReservation> TryReserve(int64_t segments);
  // The callback a TryReserve() that came back empty arms: called once, after segments were
  // returned (or channels unregistered) such that the request could be granted now, and when
  // the channel is cancelled. Another producer may take those segments first: then the next
  // TryReserve() comes back empty and arms it again. It runs on the thread that returned the
  // segments (typically a reader done with a block) or cancelled, under no lock, possibly
  // concurrently with itself, and may still run shortly after being replaced or after the
  // channel was destroyed: capture what it touches by shared ownership. Keep it short and never
  // call the pool from it. Empty: no callback.
  void SetOnAvailable(std::function<void()> callback);
  // From any thread: a Reserve() waiting on this channel, and every later Reserve() or
  // TryReserve(), fails at once with a Cancelled status (the cause's message, code Cancelled,
  // naming the channel's shuffle). Reservations already granted stay valid. Idempotent; the
  // first cause wins.
  void Cancel(const arrow::Status& cause);

  // The largest block, in bytes, this channel can ever reserve for.
  int64_t max_block_bytes() const;

 private:
  friend class NetworkBufferPool;
  NetworkChannel(NetworkBufferPool* pool, std::shared_ptr<internal::NetworkChannelState> state)
      : pool_(pool), state_(std::move(state)) {}

  NetworkBufferPool* pool_;
  std::shared_ptr<internal::NetworkChannelState> state_;
};

}  // namespace sabot
