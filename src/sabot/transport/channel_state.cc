#include "sabot/transport/channel_state.h"

#include <algorithm>

#include "sabot/common/error_detail.h"
#include "sabot/transport/channel.h"

namespace sabot {
namespace {

arrow::Status TimedOut(const StreamKey& key, const char* what) {
  ShuffleErrorContext context;
  context.shuffle_id = key.shuffle_id;
  context.partition_id = key.partition_id;
  context.writer_task = key.writer_task;
  context.retryable = true;
  return WithShuffleContext(arrow::Status::IOError("timed out waiting for ", what), context);
}

}  // namespace

arrow::Status ChannelState::AttachWriter(std::shared_ptr<arrow::Schema> schema) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (writer_attached_) {
      return arrow::Status::Invalid(DescribeStream(key_), " already has a writer");
    }
    writer_attached_ = true;
    schema_ = std::move(schema);
  }
  changed_.notify_all();
  return arrow::Status::OK();
}

arrow::Status ChannelState::Push(SealedBlock block, Deadline deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (closed_) return arrow::Status::Invalid(DescribeStream(key_), " was already finished");
  if (credits_ == 0 && cancelled_.ok()) {
    ++backlog_;
    if (auto wake = TakeReadableCallbackLocked()) {
      lock.unlock();
      (*wake)();
      lock.lock();
    }
    changed_.notify_all();
    bool ready = changed_.wait_until(lock, deadline,
                                     [&] { return credits_ > 0 || !cancelled_.ok(); });
    --backlog_;
    if (!ready) return TimedOut(key_, "credit from the reader");
  }
  if (!cancelled_.ok()) return cancelled_;
  --credits_;
  blocks_.push_back(std::move(block));
  auto wake = TakeReadableCallbackLocked();
  lock.unlock();
  changed_.notify_all();
  if (wake != nullptr) (*wake)();
  return arrow::Status::OK();
}

arrow::Result<bool> ChannelState::TryPush(SealedBlock* block) {
  std::shared_ptr<const std::function<void()>> wake;
  bool pushed = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return arrow::Status::Invalid(DescribeStream(key_), " was already finished");
    if (!cancelled_.ok()) return cancelled_;
    if (credits_ == 0) {
      writable_armed_ = true;
      if (try_push_waiting_) return false;
      // Reported once, as a waiting Push would: the reader may lend a floating credit.
      try_push_waiting_ = true;
      ++backlog_;
    } else {
      --credits_;
      if (try_push_waiting_) {
        try_push_waiting_ = false;
        --backlog_;
      }
      writable_armed_ = false;
      blocks_.push_back(std::move(*block));
      pushed = true;
    }
    wake = TakeReadableCallbackLocked();
  }
  changed_.notify_all();
  if (wake != nullptr) (*wake)();
  return pushed;
}

void ChannelState::SetOnWritable(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (callback) {
    on_writable_ = std::make_shared<const std::function<void()>>(std::move(callback));
  } else {
    on_writable_.reset();
  }
}

void ChannelState::SetOnReadable(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (callback) {
    on_readable_ = std::make_shared<const std::function<void()>>(std::move(callback));
  } else {
    on_readable_.reset();
  }
}

std::shared_ptr<const std::function<void()>> ChannelState::TakeWritableCallbackLocked() {
  if (!writable_armed_ || on_writable_ == nullptr) return nullptr;
  writable_armed_ = false;
  return on_writable_;
}

std::shared_ptr<const std::function<void()>> ChannelState::TakeReadableCallbackLocked() {
  if (!readable_armed_ || on_readable_ == nullptr) return nullptr;
  readable_armed_ = false;
  return on_readable_;
}

void ChannelState::Close(const arrow::Status& outcome) {
  std::shared_ptr<const std::function<void()>> wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
    outcome_ = outcome;
    if (try_push_waiting_) {
      try_push_waiting_ = false;
      --backlog_;
    }
    writable_armed_ = false;
    wake = TakeReadableCallbackLocked();
  }
  changed_.notify_all();
  if (wake != nullptr) (*wake)();
}

arrow::Status ChannelState::AttachReader() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reader_attached_) {
    return arrow::Status::Invalid(DescribeStream(key_), " already has a reader");
  }
  reader_attached_ = true;
  return arrow::Status::OK();
}

void ChannelState::Grant(int32_t credits) {
  if (credits <= 0) return;
  std::shared_ptr<const std::function<void()>> wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    credits_ = static_cast<int32_t>(
        std::min<int64_t>(int64_t{credits_} + credits, kMaxChannelCredits));
    wake = TakeWritableCallbackLocked();
  }
  changed_.notify_all();
  if (wake != nullptr) (*wake)();
}

arrow::Result<std::shared_ptr<arrow::Schema>> ChannelState::WaitSchema(Deadline deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  bool ready = changed_.wait_until(lock, deadline, [&] {
    return schema_ != nullptr || !cancelled_.ok() || (closed_ && !outcome_.ok());
  });
  if (schema_ != nullptr) return schema_;
  if (!cancelled_.ok()) return cancelled_;
  if (closed_ && !outcome_.ok()) return outcome_;
  if (!ready) return TimedOut(key_, "the writer to open the stream");
  return arrow::Status::UnknownError("unreachable");
}

arrow::Result<ChannelState::Event> ChannelState::Poll(Deadline deadline,
                                                      int32_t reported_backlog) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_until(lock, deadline, [&] {
    return !blocks_.empty() || closed_ || !cancelled_.ok() ||
           (credits_ == 0 && backlog_ != reported_backlog);
  });
  return TakeEventLocked(reported_backlog);
}

arrow::Result<ChannelState::Event> ChannelState::TryPoll(int32_t reported_backlog) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto event = TakeEventLocked(reported_backlog);
  if (event.ok() && event->kind == Event::Kind::kIdle) readable_armed_ = true;
  return event;
}

arrow::Result<ChannelState::Event> ChannelState::TakeEventLocked(int32_t reported_backlog) {
  Event event;
  if (!cancelled_.ok()) return cancelled_;
  // A new backlog is reported before blocks already there, so the reader can lend a floating
  // credit while it works through them.
  if (credits_ == 0 && backlog_ != reported_backlog && !closed_) {
    event.kind = Event::Kind::kBacklog;
    event.backlog = backlog_;
    return event;
  }
  if (!blocks_.empty()) {
    event.kind = Event::Kind::kBlock;
    event.block = std::move(blocks_.front());
    blocks_.pop_front();
    event.backlog = backlog_;
    return event;
  }
  if (closed_) {
    if (!outcome_.ok()) return outcome_;
    event.kind = Event::Kind::kEnd;
    return event;
  }
  return event;  // kIdle
}

void ChannelState::Cancel(const arrow::Status& cause) {
  // Dropped after the lock: a block's segments return to the network pool, which may call
  // other writers' callbacks.
  std::deque<SealedBlock> dropped;
  std::shared_ptr<const std::function<void()>> wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!cancelled_.ok()) return;
    cancelled_ = cause.ok() ? arrow::Status::Cancelled("reader cancelled ", DescribeStream(key_))
                            : cause;
    dropped.swap(blocks_);
    // A writer waiting in TryPush learns of the cancel at its next call: wake it.
    wake = on_writable_;
    writable_armed_ = false;
  }
  changed_.notify_all();
  if (wake != nullptr) (*wake)();
}

int32_t ChannelState::credits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return credits_;
}

int32_t ChannelState::backlog() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return backlog_;
}

std::shared_ptr<ChannelState> ChannelHub::Acquire(const StreamKey& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = channels_[key];
  if (slot == nullptr) slot = std::make_shared<ChannelState>(key);
  return slot;
}

void ChannelHub::Detach(const std::shared_ptr<ChannelState>& state, Side side) {
  bool both = false;
  {
    std::lock_guard<std::mutex> lock(state->mutex_);
    // A reader leaving a stream whose writer never came leaves nothing worth keeping; a writer
    // leaving first keeps the state for the reader still to come.
    both = ++state->detached_sides_ >= 2 ||
           (side == Side::kReader && !state->writer_attached_);
  }
  if (!both) return;
  std::shared_ptr<ChannelState> forgotten;  // destroyed, with any block left, after the lock
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = channels_.find(state->key());
  if (it != channels_.end() && it->second == state) {
    forgotten = std::move(it->second);
    channels_.erase(it);
  }
}

int64_t ChannelHub::num_channels() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(channels_.size());
}

}  // namespace sabot
