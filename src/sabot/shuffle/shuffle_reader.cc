#include "sabot/shuffle/shuffle_reader.h"

#include <algorithm>

#include "sabot/common/error_detail.h"

namespace sabot {

arrow::Result<std::unique_ptr<ShuffleReader>> ShuffleReader::Make(
    std::shared_ptr<const ShuffleDescriptor> descriptor, PartitionId partition_id,
    std::vector<std::unique_ptr<BlockInput>> inputs, int64_t max_queued_batches,
    std::function<void()> on_close, size_t max_running_inputs) {
  ARROW_RETURN_NOT_OK(WithShuffleContext(descriptor->CheckPartition(partition_id),
                                         {.shuffle_id = descriptor->shuffle_id}));
  std::unique_ptr<ShuffleReader> reader(new ShuffleReader());
  reader->on_close_ = std::move(on_close);
  reader->descriptor_ = std::move(descriptor);
  reader->partition_id_ = partition_id;
  reader->inputs_ = std::move(inputs);
  const size_t running = max_running_inputs == 0
                            ? reader->inputs_.size()
                            : std::min(max_running_inputs, reader->inputs_.size());
  reader->max_queued_ = max_queued_batches > 0 ? static_cast<size_t>(max_queued_batches)
                                               : std::max<size_t>(4, 2 * running);
  {
    std::lock_guard<std::mutex> lock(reader->mutex_);
    reader->inputs_open_ = reader->inputs_.size();
    reader->slots_.assign(reader->inputs_.size(), InputSlot{});
    reader->stats_.rows_per_input.assign(reader->inputs_.size(), 0);
  }
  reader->threads_.reserve(running);
  for (size_t i = 0; i < running; ++i) {
    reader->threads_.emplace_back([r = reader.get()] { r->RunInputs(); });
  }
  return reader;
}

ShuffleReader::~ShuffleReader() {
  StopAndJoin();
  if (on_close_) on_close_();
}

void ShuffleReader::RunInputs() {
  while (true) {
    {
      // A cancelled read starts no more inputs (the consumer reports the cancellation).
      std::lock_guard<std::mutex> lock(mutex_);
      if (cancelled_) return;
    }
    const size_t index = next_input_.fetch_add(1);
    if (index >= inputs_.size()) return;
    RunInput(index);
  }
}

void ShuffleReader::RunInput(size_t index) {
  arrow::Status status = inputs_[index]->Run([this, index](StreamItem item) {
    if (!Push({index, std::move(item), arrow::Status::OK()})) {
      return arrow::Status::Cancelled("the reader was cancelled");
    }
    return arrow::Status::OK();
  });
  Push({index, StreamItem{}, std::move(status)});
}

bool ShuffleReader::RoomForLocked(size_t input) const {
  const InputSlot& slot = slots_[input];
  if (slot.paused) return slot.queued < kPausedInputQueue;
  return active_queued_ < static_cast<int64_t>(max_queued_);
}

bool ShuffleReader::Push(Item item) {
  std::shared_ptr<const std::function<void()>> on_ready;
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
    const bool deliverable = !slot.paused || (item.is_end() && !item.status.ok());
    if (!item.is_end()) {
      slot.queued += 1;
      if (!slot.paused) active_queued_ += 1;
    }
    queue_.push_back(std::move(item));
    if (deliverable) on_ready = on_ready_;
  }
  not_empty_.notify_one();
  if (on_ready != nullptr && *on_ready) (*on_ready)();
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
    std::unique_lock<std::mutex> lock(mutex_);
    if (!error_.ok()) return error_;
    if (inputs_open_ == 0) return ShuffleReaderItem{ShuffleReaderItem::Kind::kEnd};
    auto it = FirstDeliverableLocked();
    if (it == queue_.end() && wait) {
      not_empty_.wait(lock, [&] {
        if (cancelled_) return true;
        it = FirstDeliverableLocked();
        return it != queue_.end();
      });
    }
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
    error_ = WithShuffleContext(item.status, {.shuffle_id = descriptor_->shuffle_id,
                                              .partition_id = partition_id_});
    arrow::Status error = error_;
    lock.unlock();
    Cancel();
    return error;
  }
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
  std::lock_guard<std::mutex> lock(mutex_);
  on_ready_ = std::move(shared);
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
  not_full_.notify_all();
  not_empty_.notify_all();
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
  not_empty_.notify_all();
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
