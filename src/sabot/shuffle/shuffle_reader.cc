#include "sabot/shuffle/shuffle_reader.h"

#include "sabot/memory/row_bytes.h"

#include <algorithm>

#include "sabot/common/error_detail.h"

namespace sabot {

arrow::Result<std::unique_ptr<ShuffleReader>> ShuffleReader::Make(
    std::shared_ptr<const ShuffleDescriptor> descriptor, PartitionId partition_id,
    std::vector<std::unique_ptr<BlockInput>> inputs, int64_t max_queued_batches,
    std::function<void()> on_close, size_t max_running_inputs, InputRecovery recovery) {
  ARROW_RETURN_NOT_OK(WithShuffleContext(descriptor->CheckPartition(partition_id),
                                         {.shuffle_id = descriptor->shuffle_id}));
  std::unique_ptr<ShuffleReader> reader(new ShuffleReader());
  reader->on_close_ = std::move(on_close);
  reader->descriptor_ = std::move(descriptor);
  reader->partition_id_ = partition_id;
  reader->inputs_ = std::move(inputs);
  reader->recovery_ = std::move(recovery);
  for (size_t i = 0; i < reader->inputs_.size(); ++i) {
    if (reader->inputs_[i]->pollable()) {
      reader->polled_.push_back(PolledInput{.index = i});
    } else {
      reader->threaded_.push_back(i);
    }
  }
  const size_t running = max_running_inputs == 0
                            ? reader->threaded_.size()
                            : std::min(max_running_inputs, reader->threaded_.size());
  reader->max_queued_ = max_queued_batches > 0 ? static_cast<size_t>(max_queued_batches)
                                               : std::max<size_t>(4, 2 * running);
  {
    std::lock_guard<std::mutex> lock(reader->mutex_);
    reader->inputs_open_ = reader->inputs_.size();
    reader->slots_.assign(reader->inputs_.size(), InputSlot{});
    reader->stats_.rows_per_input.assign(reader->inputs_.size(), 0);
    reader->stats_.bytes_per_input.assign(reader->inputs_.size(), 0);
  }
  // A polled input's channel wakes the consumer; the callback holds only the shared Wakeup, as
  // it may run after the reader is gone.
  for (const PolledInput& polled : reader->polled_) {
    reader->inputs_[polled.index]->SetOnReadable(
        [wakeup = reader->wakeup_] { wakeup->Notify(/*call_on_ready=*/true); });
  }
  reader->threads_.reserve(running);
  for (size_t i = 0; i < running; ++i) {
    reader->threads_.emplace_back([r = reader.get()] { r->RunInputs(); });
  }
  return reader;
}

ShuffleReader::~ShuffleReader() {
  StopAndJoin();
  // The polled inputs' channels may still call back: no on-ready call once this returns.
  wakeup_->Close();
  if (on_close_) on_close_();
}

void ShuffleReader::RunInputs() {
  while (true) {
    {
      // A cancelled read starts no more inputs (the consumer reports the cancellation).
      std::lock_guard<std::mutex> lock(mutex_);
      if (cancelled_) return;
    }
    const size_t next = next_input_.fetch_add(1);
    if (next >= threaded_.size()) return;
    RunInput(threaded_[next]);
  }
}

void ShuffleReader::RunInput(size_t index) {
  if (recovery_.replace && (recovery_.inputs.empty() ||
                            (index < recovery_.inputs.size() && recovery_.inputs[index]))) {
    RunRecoverableInput(index);
    return;
  }
  arrow::Status status = inputs_[index]->Run([this, index](StreamItem item) {
    if (!Push({index, std::move(item), arrow::Status::OK()})) {
      return arrow::Status::Cancelled("the reader was cancelled");
    }
    return arrow::Status::OK();
  });
  Push({index, StreamItem{}, std::move(status)});
}

bool ShuffleReader::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_;
}

void ShuffleReader::RunRecoverableInput(size_t index) {
  BlockInput* input = nullptr;
  {
    std::lock_guard<std::mutex> lock(inputs_mutex_);
    input = inputs_[index].get();
  }
  while (true) {
    // The whole stream first: nothing of an attempt that fails half way is delivered.
    std::vector<StreamItem> staged;
    arrow::Status status = input->Run([&staged](StreamItem item) {
      staged.push_back(std::move(item));
      return arrow::Status::OK();
    });
    if (status.ok()) {
      for (StreamItem& item : staged) {
        if (!Push({index, std::move(item), arrow::Status::OK()})) return;
      }
      Push({index, StreamItem{}, arrow::Status::OK()});
      return;
    }
    staged.clear();
    // Only this reader's own cancellation ends it: a remote agent going away may end the
    // stream with any code, Cancelled included.
    if (cancelled()) {
      Push({index, StreamItem{}, std::move(status)});
      return;
    }
    auto replacement = recovery_.replace(index, status, [this] { return cancelled(); });
    if (!replacement.ok()) {
      Push({index, StreamItem{}, replacement.status()});
      return;
    }
    std::unique_ptr<BlockInput> failed;
    {
      std::lock_guard<std::mutex> lock(inputs_mutex_);
      failed = std::move(inputs_[index]);
      inputs_[index] = std::move(*replacement);
      input = inputs_[index].get();
    }
    // A Cancel() that ran before the swap cancelled the failed input only.
    if (cancelled()) input->Cancel();
  }
}

bool ShuffleReader::RoomForLocked(size_t input) const {
  const InputSlot& slot = slots_[input];
  if (slot.paused) return slot.queued < kPausedInputQueue;
  return active_queued_ < static_cast<int64_t>(max_queued_);
}

void ShuffleReader::Wakeup::Notify(bool call_on_ready) {
  std::shared_ptr<const std::function<void()>> callback;
  {
    std::lock_guard<std::mutex> lock(mutex);
    count += 1;
    if (call_on_ready && !closed && on_ready != nullptr && *on_ready) {
      callback = on_ready;
      calling += 1;
    }
  }
  changed.notify_all();
  if (callback == nullptr) return;
  (*callback)();
  {
    std::lock_guard<std::mutex> lock(mutex);
    calling -= 1;
  }
  changed.notify_all();
}

void ShuffleReader::Wakeup::Close() {
  std::unique_lock<std::mutex> lock(mutex);
  closed = true;
  on_ready.reset();
  changed.wait(lock, [&] { return calling == 0; });
}

uint64_t ShuffleReader::Wakeup::Count() {
  std::lock_guard<std::mutex> lock(mutex);
  return count;
}

void ShuffleReader::Wakeup::WaitChange(uint64_t seen,
                                       std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex);
  if (deadline == std::chrono::steady_clock::time_point::max()) {
    changed.wait(lock, [&] { return count != seen; });
  } else {
    changed.wait_until(lock, deadline, [&] { return count != seen; });
  }
}

bool ShuffleReader::Push(Item item) {
  bool deliverable = false;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    // End-of-input items always fit, so the consumer can never miss one. A paused input waits
    // here once it has an item queued: it takes nothing more from its channel, whose writer
    // then runs out of credit.
    if (!item.is_end()) {
      not_full_.wait(lock, [&] { return cancelled_ || RoomForLocked(item.input); });
    }
    if (cancelled_) return false;
    InputSlot& slot = slots_[item.input];
    deliverable = !slot.paused || (item.is_end() && !item.status.ok());
    if (!item.is_end()) {
      slot.queued += 1;
      if (!slot.paused) active_queued_ += 1;
    }
    queue_.push_back(std::move(item));
  }
  wakeup_->Notify(/*call_on_ready=*/deliverable);
  return true;
}

std::deque<ShuffleReader::Item>::iterator ShuffleReader::FirstDeliverableLocked() {
  // A failed input's error goes out at once, paused or not; anything else of a paused input
  // waits, in order, for ResumeInput.
  return std::find_if(queue_.begin(), queue_.end(), [&](const Item& item) {
    return !slots_[item.input].paused || (item.is_end() && !item.status.ok());
  });
}

arrow::Result<ShuffleReaderItem> ShuffleReader::Take(bool wait) {
  while (true) {
    // Read before looking, so that whatever arrives after the look changes it: no lost wake-up.
    const uint64_t seen = wakeup_->Count();
    ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem item, TakeQueued());
    if (item.kind != ShuffleReaderItem::Kind::kNotReady) return item;
    auto deadline = std::chrono::steady_clock::time_point::max();
    ARROW_ASSIGN_OR_RAISE(item, Poll(&deadline));
    if (item.kind != ShuffleReaderItem::Kind::kNotReady || !wait) return item;
    wakeup_->WaitChange(seen, deadline);
  }
}

arrow::Result<ShuffleReaderItem> ShuffleReader::TakeQueued() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!error_.ok()) return error_;
  if (inputs_open_ == 0) return ShuffleReaderItem{ShuffleReaderItem::Kind::kEnd};
  auto it = FirstDeliverableLocked();
  if (it == queue_.end()) {
    if (cancelled_) {
      return WithShuffleContext(arrow::Status::Cancelled("the reader was cancelled"),
                                {.shuffle_id = descriptor_->shuffle_id,
                                 .partition_id = partition_id_});
    }
    return ShuffleReaderItem{ShuffleReaderItem::Kind::kNotReady};
  }
  Item item = std::move(*it);
  queue_.erase(it);
  InputSlot& slot = slots_[item.input];
  if (!item.is_end()) {
    slot.queued -= 1;
    if (!slot.paused) active_queued_ -= 1;
  }
  // Any item taken makes room, an input's end too: an input waiting for room must hear of it,
  // or a queue that held only ends would leave it waiting for ever. Inputs wait under
  // different conditions (paused or not), so all of them are told.
  not_full_.notify_all();
  ShuffleReaderItem out;
  out.input = item.input;
  if (item.item.is_batch()) {
    stats_.rows += item.item.batch->num_rows();
    stats_.batches += 1;
    stats_.rows_per_input[item.input] += item.item.batch->num_rows();
    stats_.bytes_per_input[item.input] +=
        RowBytes::RangeBytes(*item.item.batch, 0, item.item.batch->num_rows());
    out.kind = ShuffleReaderItem::Kind::kBatch;
    out.batch = std::move(item.item.batch);
    return out;
  }
  if (item.item.is_event()) {
    stats_.events += 1;
    out.kind = ShuffleReaderItem::Kind::kEvent;
    out.event = std::move(item.item.event);
    return out;
  }
  --inputs_open_;
  if (item.status.ok()) {
    out.kind = ShuffleReaderItem::Kind::kInputEnded;
    return out;
  }
  lock.unlock();
  return FailRead(item.status);
}

arrow::Status ShuffleReader::FailRead(const arrow::Status& status) {
  arrow::Status error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_.ok()) {
      error_ = WithShuffleContext(status, {.shuffle_id = descriptor_->shuffle_id,
                                           .partition_id = partition_id_});
    }
    error = error_;
  }
  Cancel();
  return error;
}

arrow::Result<ShuffleReaderItem> ShuffleReader::Poll(
    std::chrono::steady_clock::time_point* deadline) {
  const size_t count = polled_.size();
  for (size_t k = 0; k < count; ++k) {
    const size_t position = (poll_cursor_ + k) % count;
    PolledInput& polled = polled_[position];
    if (polled.ended) continue;
    bool paused;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      paused = slots_[polled.index].paused;
    }
    if (paused) {
      ARROW_RETURN_NOT_OK(FillPaused(&polled));
      continue;
    }
    if (!polled.held.empty()) {
      StreamItem item = std::move(polled.held.front());
      polled.held.pop_front();
      poll_cursor_ = (position + 1) % count;
      return DeliverPolled(&polled, std::move(item));
    }
    StreamItem item;
    auto taken = inputs_[polled.index]->TryNextItem(&item);
    if (!taken.ok()) {
      polled.ended = true;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --inputs_open_;
      }
      return FailRead(taken.status());
    }
    if (!*taken) {
      const std::chrono::milliseconds timeout = inputs_[polled.index]->poll_timeout();
      if (timeout.count() <= 0) continue;
      const auto now = std::chrono::steady_clock::now();
      if (!polled.idle_since.has_value()) polled.idle_since = now;
      const auto expires = *polled.idle_since + timeout;
      if (now >= expires) {
        polled.ended = true;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          --inputs_open_;
        }
        return FailRead(arrow::Status::IOError("timed out after ", timeout.count(),
                                               " ms waiting for a block of input ",
                                               polled.index, " (an in-process channel)"));
      }
      *deadline = std::min(*deadline, expires);
      continue;
    }
    polled.idle_since.reset();
    poll_cursor_ = (position + 1) % count;
    return DeliverPolled(&polled, std::move(item));
  }
  return ShuffleReaderItem{ShuffleReaderItem::Kind::kNotReady};
}

arrow::Status ShuffleReader::FillPaused(PolledInput* polled) {
  // A paused input's wait does not time out (a threaded one waits for room in the queue).
  polled->idle_since.reset();
  while (polled->held.size() < static_cast<size_t>(kPausedInputQueue) + 1 &&
         (polled->held.empty() || !polled->held.back().is_end())) {
    StreamItem item;
    auto taken = inputs_[polled->index]->TryNextItem(&item);
    if (!taken.ok()) {
      polled->ended = true;
      polled->held.clear();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --inputs_open_;
      }
      return FailRead(taken.status());
    }
    if (!*taken) return arrow::Status::OK();  // armed: the channel's callback tells of more
    polled->held.push_back(std::move(item));
  }
  return arrow::Status::OK();
}

ShuffleReaderItem ShuffleReader::DeliverPolled(PolledInput* polled, StreamItem item) {
  ShuffleReaderItem out;
  out.input = polled->index;
  const int64_t bytes =
      item.is_batch() ? RowBytes::RangeBytes(*item.batch, 0, item.batch->num_rows()) : 0;
  std::lock_guard<std::mutex> lock(mutex_);
  if (item.is_batch()) {
    stats_.rows += item.batch->num_rows();
    stats_.batches += 1;
    stats_.rows_per_input[polled->index] += item.batch->num_rows();
    stats_.bytes_per_input[polled->index] += bytes;
    out.kind = ShuffleReaderItem::Kind::kBatch;
    out.batch = std::move(item.batch);
  } else if (item.is_event()) {
    stats_.events += 1;
    out.kind = ShuffleReaderItem::Kind::kEvent;
    out.event = std::move(item.event);
  } else {
    polled->ended = true;
    --inputs_open_;
    out.kind = ShuffleReaderItem::Kind::kInputEnded;
  }
  return out;
}

arrow::Result<ShuffleReaderItem> ShuffleReader::NextItem() { return Take(/*wait=*/true); }

arrow::Result<ShuffleReaderItem> ShuffleReader::TryNextItem() { return Take(/*wait=*/false); }

arrow::Result<std::shared_ptr<arrow::RecordBatch>> ShuffleReader::Next() {
  while (true) {
    ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem item, Take(/*wait=*/true));
    switch (item.kind) {
      case ShuffleReaderItem::Kind::kBatch:
        return std::move(item.batch);
      case ShuffleReaderItem::Kind::kEnd:
        return nullptr;
      default:
        break;  // events and input ends
    }
  }
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ShuffleReader::ReadAll() {
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto batch, Next());
    if (batch == nullptr) return out;
    out.push_back(std::move(batch));
  }
}

void ShuffleReader::SetOnReady(std::function<void()> on_ready) {
  auto shared = on_ready ? std::make_shared<const std::function<void()>>(std::move(on_ready))
                         : nullptr;
  std::lock_guard<std::mutex> lock(wakeup_->mutex);
  wakeup_->on_ready = std::move(shared);
}

arrow::Status ShuffleReader::PauseInput(size_t input) {
  if (input >= inputs_.size()) {
    return arrow::Status::Invalid("PauseInput: input ", input, " is out of range for a reader of ",
                                  inputs_.size(), " inputs");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    InputSlot& slot = slots_[input];
    if (slot.paused) return arrow::Status::OK();
    slot.paused = true;
    active_queued_ -= slot.queued;
  }
  // A polled input takes what it may hold now, which also arms its channel's callback: its
  // error then reaches the consumer (through SetOnReady) while it stays paused. An error ends
  // the read; the consumer's next call returns it.
  for (PolledInput& polled : polled_) {
    if (polled.index == input && !polled.ended) (void)FillPaused(&polled);
  }
  // Its queued items no longer count against the shared bound: other inputs may have room.
  not_full_.notify_all();
  return arrow::Status::OK();
}

arrow::Status ShuffleReader::ResumeInput(size_t input) {
  if (input >= inputs_.size()) {
    return arrow::Status::Invalid("ResumeInput: input ", input,
                                  " is out of range for a reader of ", inputs_.size(), " inputs");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    InputSlot& slot = slots_[input];
    if (!slot.paused) return arrow::Status::OK();
    slot.paused = false;
    active_queued_ += slot.queued;
  }
  // A polled input's wait for a block starts again from now, as a threaded one's would.
  for (PolledInput& polled : polled_) {
    if (polled.index == input) polled.idle_since.reset();
  }
  not_full_.notify_all();
  wakeup_->Notify(/*call_on_ready=*/false);
  return arrow::Status::OK();
}

bool ShuffleReader::input_paused(size_t input) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return input < slots_.size() && slots_[input].paused;
}

void ShuffleReader::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cancelled_) return;
    cancelled_ = true;
  }
  not_full_.notify_all();
  wakeup_->Notify(/*call_on_ready=*/false);
  std::lock_guard<std::mutex> lock(inputs_mutex_);
  for (auto& input : inputs_) input->Cancel();
}

void ShuffleReader::StopAndJoin() {
  Cancel();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

ShuffleReaderStats ShuffleReader::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace sabot
