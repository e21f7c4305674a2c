#include "sabot/shuffle/block_input.h"

#include <atomic>
#include <mutex>
#include <thread>

#include <arrow/util/cancel.h>

#include "sabot/common/error_detail.h"
#include "sabot/memory/block_codec.h"
#include "sabot/memory/budget_pool.h"
#include "sabot/memory/block_store.h"
#include "sabot/transport/channel.h"
#include "sabot/transport/protocol.h"
#include "sabot/transport/shuffle_client.h"

namespace sabot {

namespace {

using Clock = std::chrono::steady_clock;

ShuffleErrorContext Where(const StreamKey& key, std::string agent = "") {
  return {.shuffle_id = key.shuffle_id, .partition_id = key.partition_id,
          .writer_task = key.writer_task, .agent = std::move(agent)};
}

// Polls `open` until it stops failing with KeyError (the writer has not declared its stream
// yet), the deadline passes, or `cancelled` is set. Backs off from 1 ms to 50 ms.
template <typename Open>
auto RetryWhileUnknown(const StreamKey& key, std::chrono::milliseconds timeout,
                       const std::atomic<bool>& cancelled, Open&& open) -> decltype(open()) {
  auto deadline = Clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    auto result = open();
    if (result.ok() || !result.status().IsKeyError()) return result;
    if (cancelled.load()) return arrow::Status::Cancelled("reading ", DescribeStream(key));
    if (Clock::now() + pause > deadline) {
      return arrow::Status::IOError("timed out after ", timeout.count(), " ms waiting for ",
                                    DescribeStream(key), " to be written: its writer never started");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

class ChannelInput final : public BlockInput {
 public:
  ChannelInput(std::unique_ptr<ChannelReader> reader, bool pollable,
               std::chrono::milliseconds timeout)
      : reader_(std::move(reader)), pollable_(pollable), timeout_(timeout) {}

  arrow::Status Run(const ItemSink& sink) override {
    while (true) {
      ARROW_ASSIGN_OR_RAISE(StreamItem item, reader_->NextItem());
      if (item.is_end()) return arrow::Status::OK();
      ARROW_RETURN_NOT_OK(sink(std::move(item)));
    }
  }
  void Cancel() override { reader_->Cancel(); }

  bool pollable() const override { return pollable_; }
  arrow::Result<bool> TryNextItem(StreamItem* item) override {
    if (!pollable_) return BlockInput::TryNextItem(item);
    return reader_->TryNextItem(item);
  }
  void SetOnReadable(std::function<void()> callback) override {
    if (pollable_) reader_->SetOnReadable(std::move(callback));
  }
  std::chrono::milliseconds poll_timeout() const override { return timeout_; }

 private:
  std::unique_ptr<ChannelReader> reader_;
  const bool pollable_;
  const std::chrono::milliseconds timeout_;
};

class StoreInput final : public BlockInput {
 public:
  StoreInput(BlockStore* store, StreamKey key, std::chrono::milliseconds timeout,
             arrow::MemoryPool* pool)
      : store_(store), key_(std::move(key)), timeout_(timeout), pool_(pool) {}

  arrow::Status Run(const ItemSink& sink) override {
    auto status = RunUnchecked(sink);
    return status.ok() ? status : WithShuffleContext(status, Where(key_));
  }
  void Cancel() override {
    cancelled_.store(true);
    std::lock_guard<std::mutex> lock(mutex_);
    if (reader_ != nullptr) reader_->Cancel();
  }

 private:
  arrow::Status RunUnchecked(const ItemSink& sink) {
    // Cancel() also ends a wait for budget memory to read a spilled block back.
    AllocationWaitCancel wait_cancel(&cancelled_);
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<BlockStreamReader> reader,
                          RetryWhileUnknown(key_, timeout_, cancelled_, [&] {
                            return store_->OpenReader(key_);
                          }));
    {
      // Published so Cancel() can wake a Next() that waits for an unfinished stream.
      std::lock_guard<std::mutex> lock(mutex_);
      reader_ = reader;
      if (cancelled_.load()) reader->Cancel();
    }
    ARROW_ASSIGN_OR_RAISE(auto decoder, BlockDecoder::Make(reader->schema(), pool_));
    while (!cancelled_.load()) {
      ARROW_ASSIGN_OR_RAISE(auto block, reader->Next());
      if (!block.has_value()) return arrow::Status::OK();
      StreamItem item;
      if (block->is_event()) {
        item.event = std::move(block->event);
      } else {
        ARROW_ASSIGN_OR_RAISE(item.batch, decoder->Decode(*block));
      }
      ARROW_RETURN_NOT_OK(sink(std::move(item)));
    }
    return arrow::Status::Cancelled("reading ", DescribeStream(key_));
  }

  BlockStore* store_;
  StreamKey key_;
  std::chrono::milliseconds timeout_;
  arrow::MemoryPool* pool_;
  std::atomic<bool> cancelled_{false};
  std::mutex mutex_;
  std::shared_ptr<BlockStreamReader> reader_;  // guarded by mutex_
};

class RemoteInput final : public BlockInput {
 public:
  RemoteInput(ShuffleClient* client, std::string location, StreamKey key,
              std::chrono::milliseconds timeout)
      : client_(client), location_(std::move(location)), key_(std::move(key)), timeout_(timeout) {}

  arrow::Status Run(const ItemSink& sink) override {
    PartitionPath path{key_.shuffle_id, key_.partition_id, key_.writer_task, key_.writer_attempt};
    int64_t delivered = 0;
    // A stream not declared yet fails the fetch with KeyError before any batch; retry it then.
    auto fetch = [&]() -> arrow::Result<bool> {
      ARROW_RETURN_NOT_OK(client_->FetchItems(
          location_, path,
          [&](StreamItem item) {
            ++delivered;
            return sink(std::move(item));
          },
          stop_.token()));
      return true;
    };
    auto result = RetryWhileUnknown(key_, timeout_, cancelled_, [&]() -> arrow::Result<bool> {
      auto attempt = fetch();
      if (!attempt.ok() && attempt.status().IsKeyError() && delivered > 0) {
        return arrow::Status::IOError("the stream disappeared after ", delivered,
                                      " items: ", attempt.status().message());
      }
      return attempt;
    });
    if (result.ok()) return arrow::Status::OK();
    return WithShuffleContext(result.status(), Where(key_, location_));
  }
  void Cancel() override {
    cancelled_.store(true);
    stop_.RequestStop();
  }

 private:
  ShuffleClient* client_;
  std::string location_;
  StreamKey key_;
  std::chrono::milliseconds timeout_;
  arrow::StopSource stop_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

arrow::Result<std::unique_ptr<BlockInput>> MakeChannelInput(Transport* transport,
                                                            const StreamKey& key,
                                                            const ChannelOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto reader, transport->OpenReader(key, options));
  // Only a reader of a channel in this process can poll (a Flight reader's next message comes
  // from a blocking gRPC read).
  const bool pollable = reader->pollable();
  return std::make_unique<ChannelInput>(std::move(reader), pollable, options.timeout);
}

arrow::Result<bool> BlockInput::TryNextItem(StreamItem*) {
  return arrow::Status::NotImplemented("this shuffle input is read on a thread (Run), not polled");
}

void BlockInput::SetOnReadable(std::function<void()>) {}

std::unique_ptr<BlockInput> MakeStoreInput(BlockStore* store, StreamKey key,
                                           std::chrono::milliseconds timeout,
                                           arrow::MemoryPool* pool) {
  return std::make_unique<StoreInput>(store, std::move(key), timeout, pool);
}

std::unique_ptr<BlockInput> MakeRemoteInput(ShuffleClient* client, std::string location,
                                            StreamKey key, std::chrono::milliseconds timeout) {
  return std::make_unique<RemoteInput>(client, std::move(location), std::move(key), timeout);
}

}  // namespace sabot
