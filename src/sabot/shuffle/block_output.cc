#include "sabot/shuffle/block_output.h"

#include "sabot/common/error_detail.h"
#include "sabot/memory/block_store.h"
#include "sabot/memory/network_buffer_pool.h"
#include "sabot/transport/channel.h"

namespace sabot {

namespace {

// Shared lifecycle: tracks whether the stream was ended, and aborts it on destruction if not.
class EndOnce : public BlockOutput {
 public:
  arrow::Status Finish() final {
    if (ended_) return arrow::Status::Invalid("stream already ended");
    ended_ = true;
    return DoFinish();
  }
  arrow::Status Abort(const arrow::Status& cause) final {
    if (ended_) return arrow::Status::OK();
    ended_ = true;
    return DoAbort(cause);
  }

 protected:
  // Derived destructors call this first, while their members still live.
  void AbortIfOpen() {
    if (!ended_) {
      (void)Abort(arrow::Status::Cancelled("the writer of this stream went away before finishing"));
    }
  }
  virtual arrow::Status DoFinish() = 0;
  virtual arrow::Status DoAbort(const arrow::Status& cause) = 0;

 private:
  bool ended_ = false;
};

using Clock = std::chrono::steady_clock;

class ChannelOutput final : public EndOnce {
 public:
  ChannelOutput(StreamKey key, const NetworkBufferPool* network,
                std::unique_ptr<NetworkChannel> segments, std::unique_ptr<ChannelWriter> writer,
                std::chrono::milliseconds timeout)
      : key_(std::move(key)),
        network_(network),
        segments_(std::move(segments)),
        writer_(std::move(writer)),
        timeout_(timeout) {}
  ~ChannelOutput() override { AbortIfOpen(); }

  // Any error names the stream: shuffle, partition and writer.
  arrow::Status Write(SealedBlock block) override {
    arrow::Status status = Send(std::move(block));
    if (status.ok()) return status;
    return WithShuffleContext(status, {.shuffle_id = key_.shuffle_id,
                                       .partition_id = key_.partition_id,
                                       .writer_task = key_.writer_task});
  }
  arrow::Result<bool> TryWrite(SealedBlock* block) override {
    auto sent = TrySend(block);
    if (sent.ok()) return sent;
    return WithShuffleContext(sent.status(), {.shuffle_id = key_.shuffle_id,
                                              .partition_id = key_.partition_id,
                                              .writer_task = key_.writer_task});
  }
  void SetOnWritable(std::function<void()> callback) override {
    segments_->SetOnAvailable(callback);
    writer_->SetOnWritable(std::move(callback));
  }
  std::chrono::nanoseconds blocked() const override { return blocked_; }
  int64_t max_block_bytes() const override { return segments_->max_block_bytes(); }
  // Ends both waits of Write(): for network segments and for the reader's credit.
  void Cancel(const arrow::Status& cause) override {
    const arrow::Status cancelled =
        cause.IsCancelled() ? cause
                            : arrow::Status::Cancelled(cause.ok() ? "the writer was cancelled"
                                                                  : cause.message());
    segments_->Cancel(cancelled);
    writer_->Cancel(cancelled);
  }

 private:
  arrow::Status Send(SealedBlock block) {
    // Pay for the block in network segments first: waiting here is backpressure too.
    const int64_t count = network_->SegmentsFor(block.size_bytes());
    ARROW_ASSIGN_OR_RAISE(SegmentReservation reservation, segments_->TryReserve(count));
    if (reservation.empty()) {
      auto start = Clock::now();
      auto waited = segments_->Reserve(count, timeout_);
      blocked_ += Clock::now() - start;
      ARROW_ASSIGN_OR_RAISE(reservation, std::move(waited));
    }
    block.segments = std::make_shared<SegmentReservation>(std::move(reservation));
    if (writer_->credits() > 0) return writer_->Write(block);
    auto start = Clock::now();
    arrow::Status status = writer_->Write(block);
    blocked_ += Clock::now() - start;
    return status;
  }
  // Segments first, as in Send; a block that got them keeps them while it waits for credit.
  arrow::Result<bool> TrySend(SealedBlock* block) {
    if (block->segments == nullptr) {
      const int64_t count = network_->SegmentsFor(block->size_bytes());
      ARROW_ASSIGN_OR_RAISE(SegmentReservation reservation, segments_->TryReserve(count));
      if (reservation.empty()) return false;
      block->segments = std::make_shared<SegmentReservation>(std::move(reservation));
    }
    ARROW_ASSIGN_OR_RAISE(bool sent, writer_->TryWrite(*block));
    if (sent) *block = SealedBlock();
    return sent;
  }
  arrow::Status DoFinish() override { return writer_->Finish(); }
  arrow::Status DoAbort(const arrow::Status& cause) override { return writer_->Abort(cause); }

  const StreamKey key_;
  const NetworkBufferPool* network_;
  std::unique_ptr<NetworkChannel> segments_;
  std::unique_ptr<ChannelWriter> writer_;
  std::chrono::milliseconds timeout_;
  std::chrono::nanoseconds blocked_{0};
};

class StoreOutput final : public EndOnce {
 public:
  StoreOutput(BlockStore* store, StreamKey key) : store_(store), key_(std::move(key)) {}
  ~StoreOutput() override { AbortIfOpen(); }

  arrow::Status Write(SealedBlock block) override { return store_->Append(key_, std::move(block)); }
  arrow::Result<bool> TryWrite(SealedBlock* block) override {
    SealedBlock taken = std::move(*block);
    *block = SealedBlock();
    ARROW_RETURN_NOT_OK(store_->Append(key_, std::move(taken)));
    return true;
  }
  // Never waits for a reader, so never has anything to wake.
  void SetOnWritable(std::function<void()>) override {}
  // The store never waits for a reader: beyond its budget it spills.
  std::chrono::nanoseconds blocked() const override { return std::chrono::nanoseconds(0); }
  int64_t max_block_bytes() const override { return 0; }
  void Cancel(const arrow::Status&) override {}

 private:
  arrow::Status DoFinish() override { return store_->Finish(key_); }
  arrow::Status DoAbort(const arrow::Status& cause) override { return store_->Abort(key_, cause); }

  BlockStore* store_;
  StreamKey key_;
};

}  // namespace

BlockOutputFactory ChannelOutputFactory(Transport* transport, NetworkBufferPool* network,
                                        ChannelOptions options) {
  return [transport, network, options](const StreamKey& key,
                                       const std::shared_ptr<arrow::Schema>& schema)
             -> arrow::Result<std::unique_ptr<BlockOutput>> {
    ARROW_ASSIGN_OR_RAISE(auto segments, network->RegisterChannel(key.shuffle_id));
    ARROW_ASSIGN_OR_RAISE(auto writer, transport->OpenWriter(key, schema, options));
    return std::make_unique<ChannelOutput>(key, network, std::move(segments), std::move(writer),
                                           options.timeout);
  };
}

BlockOutputFactory StoreOutputFactory(BlockStore* store) {
  return [store](const StreamKey& key, const std::shared_ptr<arrow::Schema>& schema)
             -> arrow::Result<std::unique_ptr<BlockOutput>> {
    ARROW_RETURN_NOT_OK(store->AddStream(key, schema));
    return std::make_unique<StoreOutput>(store, key);
  };
}

}  // namespace sabot
