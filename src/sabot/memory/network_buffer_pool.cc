#include "sabot/memory/network_buffer_pool.h"

#include <algorithm>
#include <vector>

#include "sabot/common/error_detail.h"

namespace sabot {

namespace internal {

// Guarded by the pool's mutex.
struct NetworkShuffleState {
  ShuffleId shuffle_id;
  int64_t floating_used = 0;
  int64_t channels = 0;
  std::shared_ptr<ShuffleMemoryCounters> counters;  // null without metrics
};

// Guarded by the pool's mutex (fields other than the constant ones).
struct NetworkChannelState {
  std::shared_ptr<NetworkShuffleState> shuffle;
  int64_t exclusive_total = 0;
  int64_t exclusive_used = 0;
  bool registered = true;
  std::optional<std::string> cancelled;  // the cause's message, once NetworkChannel::Cancel ran
  // Non-blocking producers: the callback, and the request of the last empty TryReserve while
  // `armed` (the channel is then in the pool's armed_ list).
  std::shared_ptr<const std::function<void()>> on_available;
  int64_t wanted = 0;
  bool armed = false;
};

}  // namespace internal

SegmentReservation& SegmentReservation::operator=(SegmentReservation&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = other.pool_;
    channel_ = std::move(other.channel_);
    exclusive_ = other.exclusive_;
    floating_ = other.floating_;
    other.pool_ = nullptr;
    other.exclusive_ = 0;
    other.floating_ = 0;
  }
  return *this;
}

void SegmentReservation::Release() {
  if (pool_ != nullptr && (exclusive_ > 0 || floating_ > 0)) {
    pool_->Return(channel_.get(), exclusive_, floating_);
  }
  pool_ = nullptr;
  channel_.reset();
  exclusive_ = 0;
  floating_ = 0;
}

arrow::Result<std::unique_ptr<NetworkBufferPool>> NetworkBufferPool::Make(
    NetworkBufferPoolOptions options, int64_t budget_bytes, MemoryMetrics* metrics) {
  if (options.segment_size < 1024) {
    return arrow::Status::Invalid("network buffer segment size must be at least 1024 bytes, got ",
                                  options.segment_size);
  }
  if (options.exclusive_segments_per_channel < 0 || options.floating_segments_per_shuffle < 0 ||
      options.exclusive_segments_per_channel + options.floating_segments_per_shuffle < 1) {
    return arrow::Status::Invalid(
        "a channel needs at least one exclusive or floating segment; got ",
        options.exclusive_segments_per_channel, " exclusive and ",
        options.floating_segments_per_shuffle, " floating");
  }
  if (options.request_timeout.count() < 0) {
    return arrow::Status::Invalid("network buffer request timeout must not be negative");
  }
  int64_t total = options.total_segments;
  if (total == 0) total = budget_bytes / options.segment_size;
  if (total < 1) {
    return arrow::Status::Invalid("network buffer pool of ", budget_bytes,
                                  " bytes holds no segment of ", options.segment_size, " bytes");
  }
  return std::unique_ptr<NetworkBufferPool>(new NetworkBufferPool(options, total, metrics));
}

NetworkBufferPool::NetworkBufferPool(NetworkBufferPoolOptions options, int64_t total_segments,
                                     MemoryMetrics* metrics)
    : options_(options), total_segments_(total_segments), metrics_(metrics) {}

NetworkBufferPool::~NetworkBufferPool() = default;

int64_t NetworkBufferPool::SegmentsFor(int64_t bytes) const {
  if (bytes <= 0) return 1;
  return (bytes + options_.segment_size - 1) / options_.segment_size;
}

void NetworkBufferPool::EraseShuffleLocked(const ShuffleState& shuffle) {
  auto it = shuffles_.find(shuffle.shuffle_id);
  if (it != shuffles_.end() && it->second.get() == &shuffle) shuffles_.erase(it);
}

int64_t NetworkBufferPool::FreeSharedLocked() const {
  return total_segments_ - set_aside_ - floating_in_use_;
}

arrow::Result<std::unique_ptr<NetworkChannel>> NetworkBufferPool::RegisterChannel(
    const ShuffleId& shuffle_id) {
  ARROW_RETURN_NOT_OK(ValidateId(shuffle_id, "shuffle id"));
  std::shared_ptr<ShuffleMemoryCounters> counters;
  if (metrics_ != nullptr) counters = metrics_->ForShuffle(shuffle_id);
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t exclusive = options_.exclusive_segments_per_channel;
  if (exclusive > FreeSharedLocked()) {
    return arrow::Status::CapacityError(
        "network buffer pool cannot set aside ", exclusive, " exclusive segments for a channel of "
        "shuffle '", shuffle_id, "': ", FreeSharedLocked(), " of ", total_segments_,
        " segments are free (too many channels for the budget; raise it or lower "
        "exclusive_segments_per_channel)");
  }
  auto& shuffle = shuffles_[shuffle_id];
  if (shuffle == nullptr) {
    shuffle = std::make_shared<ShuffleState>();
    shuffle->shuffle_id = shuffle_id;
    shuffle->counters = std::move(counters);
  }
  ++shuffle->channels;
  set_aside_ += exclusive;
  auto state = std::make_shared<ChannelState>();
  state->shuffle = shuffle;
  state->exclusive_total = exclusive;
  return std::unique_ptr<NetworkChannel>(new NetworkChannel(this, std::move(state)));
}

void NetworkBufferPool::Unregister(const std::shared_ptr<ChannelState>& channel) {
  std::vector<std::shared_ptr<const std::function<void()>>> wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    channel->registered = false;
    channel->on_available.reset();
    if (channel->armed) {
      channel->armed = false;
      std::erase(armed_, channel);
    }
    // Unused exclusive segments return now; used ones when their reservations are released.
    set_aside_ -= channel->exclusive_total - channel->exclusive_used;
    auto& shuffle = channel->shuffle;
    if (--shuffle->channels == 0 && shuffle->floating_used == 0) EraseShuffleLocked(*shuffle);
    wake = TakeAvailableCallbacksLocked();
  }
  returned_.notify_all();
  for (const auto& callback : wake) (*callback)();
}

bool NetworkBufferPool::CanGrantLocked(const ChannelState& channel, int64_t segments) const {
  const int64_t exclusive =
      std::min(segments, channel.exclusive_total - channel.exclusive_used);
  const int64_t floating = segments - exclusive;
  if (floating <= 0) return true;
  return floating <= options_.floating_segments_per_shuffle - channel.shuffle->floating_used &&
         floating <= FreeSharedLocked();
}

std::vector<std::shared_ptr<const std::function<void()>>>
NetworkBufferPool::TakeAvailableCallbacksLocked() {
  std::vector<std::shared_ptr<const std::function<void()>>> wake;
  std::erase_if(armed_, [&](const std::shared_ptr<ChannelState>& channel) {
    if (!CanGrantLocked(*channel, channel->wanted)) return false;
    channel->armed = false;
    if (channel->on_available != nullptr) wake.push_back(channel->on_available);
    return true;
  });
  return wake;
}

void NetworkBufferPool::SetOnAvailable(const std::shared_ptr<ChannelState>& channel,
                                       std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (callback) {
    channel->on_available = std::make_shared<const std::function<void()>>(std::move(callback));
  } else {
    channel->on_available.reset();
  }
}

std::optional<SegmentReservation> NetworkBufferPool::TryGrantLocked(
    const std::shared_ptr<ChannelState>& channel, int64_t segments) {
  if (!CanGrantLocked(*channel, segments)) return std::nullopt;
  ShuffleState& shuffle = *channel->shuffle;
  const int64_t exclusive = std::min(segments, channel->exclusive_total - channel->exclusive_used);
  const int64_t floating = segments - exclusive;
  channel->exclusive_used += exclusive;
  exclusive_in_use_ += exclusive;
  shuffle.floating_used += floating;
  floating_in_use_ += floating;
  if (shuffle.counters != nullptr) {
    shuffle.counters->exclusive_segments_in_use.fetch_add(exclusive, std::memory_order_relaxed);
    shuffle.counters->floating_segments_in_use.fetch_add(floating, std::memory_order_relaxed);
  }
  return SegmentReservation(this, channel, exclusive, floating);
}

arrow::Result<SegmentReservation> NetworkBufferPool::Reserve(
    const std::shared_ptr<ChannelState>& channel, int64_t segments,
    std::optional<std::chrono::milliseconds> timeout, bool wait) {
  if (segments < 1) return arrow::Status::Invalid("reserve at least one segment, got ", segments);
  const int64_t most = options_.exclusive_segments_per_channel +
                       std::min<int64_t>(options_.floating_segments_per_shuffle,
                                         total_segments_ - options_.exclusive_segments_per_channel);
  const ShuffleId& shuffle_id = channel->shuffle->shuffle_id;
  if (segments > most) {
    return WithShuffleContext(
        arrow::Status::Invalid("a block needing ", segments, " segments of ",
                               options_.segment_size, " bytes can never be reserved: a channel "
                               "holds at most ", most, " (lower the partition buffer's target "
                               "size or raise the floating segments per shuffle)"),
        {shuffle_id});
  }
  std::unique_lock<std::mutex> lock(mutex_);
  if (!channel->registered) return arrow::Status::Invalid("channel is unregistered");
  if (channel->cancelled) {
    return WithShuffleContext(
        arrow::Status::Cancelled("cannot reserve ", segments, " network buffer segments: the "
                                 "channel was cancelled: ", *channel->cancelled),
        {shuffle_id});
  }
  if (auto granted = TryGrantLocked(channel, segments)) {
    if (channel->armed) {
      channel->armed = false;
      std::erase(armed_, channel);
    }
    return std::move(*granted);
  }
  if (!wait) {
    // Armed for this request: the on-available callback runs once it could be granted.
    channel->wanted = segments;
    if (!channel->armed) {
      channel->armed = true;
      armed_.push_back(channel);
    }
    return SegmentReservation();
  }

  const auto limit = timeout.value_or(options_.request_timeout);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + limit;
  std::optional<SegmentReservation> granted;
  ++waiting_;
  while (true) {
    if (returned_.wait_until(lock, deadline) == std::cv_status::timeout) {
      granted = TryGrantLocked(channel, segments);
      break;
    }
    if (!channel->registered || channel->cancelled) break;
    granted = TryGrantLocked(channel, segments);
    if (granted) break;
  }
  --waiting_;
  const bool registered = channel->registered;
  const std::optional<std::string> cancelled = channel->cancelled;
  auto counters = channel->shuffle->counters;
  lock.unlock();

  const auto blocked = std::chrono::steady_clock::now() - start;
  if (counters != nullptr) {
    counters->blocked_waits.fetch_add(1, std::memory_order_relaxed);
    counters->blocked_nanos.fetch_add(
        std::chrono::duration_cast<std::chrono::nanoseconds>(blocked).count(),
        std::memory_order_relaxed);
  }
  if (granted) return std::move(*granted);
  if (cancelled) {
    return WithShuffleContext(
        arrow::Status::Cancelled("cancelled while waiting for ", segments,
                                 " network buffer segments: ", *cancelled),
        {shuffle_id});
  }
  if (!registered) return arrow::Status::Invalid("channel was unregistered while waiting");
  ShuffleErrorContext context{shuffle_id};
  context.retryable = true;
  return WithShuffleContext(
      arrow::Status::IOError("timed out after ", limit.count(), " ms waiting for ", segments,
                             " network buffer segments (backpressure: the consumers did not "
                             "release buffers in time)"),
      std::move(context));
}

void NetworkBufferPool::Cancel(const std::shared_ptr<ChannelState>& channel,
                               const arrow::Status& cause) {
  std::shared_ptr<const std::function<void()>> wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (channel->cancelled) return;
    channel->cancelled = cause.ok() ? std::string("the channel was cancelled") : cause.message();
    if (channel->armed) {
      channel->armed = false;
      std::erase(armed_, channel);
    }
    // A producer waiting for segments without blocking learns of it at its next TryReserve.
    wake = channel->on_available;
  }
  // Every waiter rechecks its own channel; only the cancelled one leaves.
  returned_.notify_all();
  if (wake != nullptr) (*wake)();
}

void NetworkBufferPool::Return(ChannelState* channel, int64_t exclusive, int64_t floating) {
  std::vector<std::shared_ptr<const std::function<void()>>> wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ShuffleState& shuffle = *channel->shuffle;
    channel->exclusive_used -= exclusive;
    exclusive_in_use_ -= exclusive;
    if (!channel->registered) set_aside_ -= exclusive;
    shuffle.floating_used -= floating;
    floating_in_use_ -= floating;
    if (shuffle.counters != nullptr) {
      shuffle.counters->exclusive_segments_in_use.fetch_sub(exclusive, std::memory_order_relaxed);
      shuffle.counters->floating_segments_in_use.fetch_sub(floating, std::memory_order_relaxed);
    }
    if (shuffle.channels == 0 && shuffle.floating_used == 0) EraseShuffleLocked(shuffle);
    wake = TakeAvailableCallbacksLocked();
  }
  returned_.notify_all();
  for (const auto& callback : wake) (*callback)();
}

NetworkBufferPool::Stats NetworkBufferPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats s;
  s.total_segments = total_segments_;
  s.set_aside_segments = set_aside_;
  s.exclusive_in_use = exclusive_in_use_;
  s.floating_in_use = floating_in_use_;
  s.waiting_producers = waiting_;
  return s;
}

NetworkChannel::~NetworkChannel() { pool_->Unregister(state_); }

const ShuffleId& NetworkChannel::shuffle_id() const { return state_->shuffle->shuffle_id; }

arrow::Result<SegmentReservation> NetworkChannel::Reserve(
    int64_t segments, std::optional<std::chrono::milliseconds> timeout) {
  return pool_->Reserve(state_, segments, timeout, /*wait=*/true);
}

arrow::Result<SegmentReservation> NetworkChannel::ReserveBytes(
    int64_t bytes, std::optional<std::chrono::milliseconds> timeout) {
  return Reserve(pool_->SegmentsFor(bytes), timeout);
}

arrow::Result<SegmentReservation> NetworkChannel::TryReserve(int64_t segments) {
  return pool_->Reserve(state_, segments, std::nullopt, /*wait=*/false);
}

void NetworkChannel::Cancel(const arrow::Status& cause) { pool_->Cancel(state_, cause); }

void NetworkChannel::SetOnAvailable(std::function<void()> callback) {
  pool_->SetOnAvailable(state_, std::move(callback));
}

int64_t NetworkChannel::max_block_bytes() const {
  const auto& o = pool_->options();
  int64_t most = o.exclusive_segments_per_channel +
                 std::min<int64_t>(o.floating_segments_per_shuffle,
                                   pool_->total_segments() - o.exclusive_segments_per_channel);
  return most * o.segment_size;
}

}  // namespace sabot
