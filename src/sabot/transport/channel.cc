#include "sabot/transport/channel.h"

namespace sabot {

bool FloatingCreditPool::TryAcquire() {
  int32_t current = free_.load();
  while (current > 0) {
    if (free_.compare_exchange_weak(current, current - 1)) return true;
  }
  return false;
}

void FloatingCreditPool::Release() { free_.fetch_add(1); }

std::string DescribeStream(const StreamKey& key) {
  return "shuffle '" + key.shuffle_id + "' partition " + std::to_string(key.partition_id) +
         " writer " + std::to_string(key.writer_task) + " attempt " +
         std::to_string(key.writer_attempt);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> ChannelReader::Next() {
  while (true) {
    ARROW_ASSIGN_OR_RAISE(StreamItem item, NextItem());
    if (!item.is_event()) return std::move(item.batch);
  }
}

arrow::Result<bool> ChannelReader::TryNext(std::shared_ptr<arrow::RecordBatch>* batch) {
  while (true) {
    StreamItem item;
    ARROW_ASSIGN_OR_RAISE(bool taken, TryNextItem(&item));
    if (!taken) return false;
    if (!item.is_event()) {
      *batch = std::move(item.batch);
      return true;
    }
  }
}

}  // namespace sabot
