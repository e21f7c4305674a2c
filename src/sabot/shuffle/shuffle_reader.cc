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
  reader->inputs_open_ = reader->inputs_.size();
  const size_t running = max_running_inputs == 0
                            ? reader->inputs_.size()
                            : std::min(max_running_inputs, reader->inputs_.size());
  reader->max_queued_ = max_queued_batches > 0 ? static_cast<size_t>(max_queued_batches)
                                               : std::max<size_t>(4, 2 * running);
  reader->stats_.rows_per_input.assign(reader->inputs_.size(), 0);
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
      // A cancelled read starts no more inputs (Next() reports the cancellation).
      std::lock_guard<std::mutex> lock(mutex_);
      if (cancelled_) return;
    }
    const size_t index = next_input_.fetch_add(1);
    if (index >= inputs_.size()) return;
    RunInput(index);
  }
}

void ShuffleReader::RunInput(size_t index) {
  arrow::Status status = inputs_[index]->Run([this, index](std::shared_ptr<arrow::RecordBatch> b) {
    if (!Push({index, std::move(b), arrow::Status::OK()})) {
      return arrow::Status::Cancelled("the reader was cancelled");
    }
    return arrow::Status::OK();
  });
  Push({index, nullptr, std::move(status)});
}

bool ShuffleReader::Push(Item item) {
  std::unique_lock<std::mutex> lock(mutex_);
  // End-of-input items always fit, so the consumer can never miss one.
  if (item.batch != nullptr) {
    not_full_.wait(lock, [&] { return cancelled_ || queue_.size() < max_queued_; });
  }
  if (cancelled_) return false;
  queue_.push_back(std::move(item));
  lock.unlock();
  not_empty_.notify_one();
  return true;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> ShuffleReader::Next() {
  while (true) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!error_.ok()) return error_;
    if (inputs_open_ == 0) return nullptr;
    not_empty_.wait(lock, [&] { return cancelled_ || !queue_.empty(); });
    if (queue_.empty()) {
      return WithShuffleContext(arrow::Status::Cancelled("the reader was cancelled"),
                                {.shuffle_id = descriptor_->shuffle_id,
                                 .partition_id = partition_id_});
    }
    Item item = std::move(queue_.front());
    queue_.pop_front();
    // Any item taken makes room, an input's end too: an input waiting for room must hear of it,
    // or a queue that held only ends would leave it waiting for ever.
    not_full_.notify_one();
    if (item.batch != nullptr) {
      stats_.rows += item.batch->num_rows();
      stats_.batches += 1;
      stats_.rows_per_input[item.input] += item.batch->num_rows();
      return std::move(item.batch);
    }
    --inputs_open_;
    if (item.status.ok()) continue;
    error_ = WithShuffleContext(item.status, {.shuffle_id = descriptor_->shuffle_id,
                                              .partition_id = partition_id_});
    arrow::Status error = error_;
    lock.unlock();
    Cancel();
    return error;
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
