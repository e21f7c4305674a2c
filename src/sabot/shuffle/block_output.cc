#include "sabot/shuffle/block_output.h"

#include "sabot/memory/block_store.h"
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

class ChannelOutput final : public EndOnce {
 public:
  explicit ChannelOutput(std::unique_ptr<ChannelWriter> writer) : writer_(std::move(writer)) {}
  ~ChannelOutput() override { AbortIfOpen(); }

  arrow::Status Write(SealedBlock block) override { return writer_->Write(block); }
  bool would_block() const override { return writer_->credits() <= 0; }

 private:
  arrow::Status DoFinish() override { return writer_->Finish(); }
  arrow::Status DoAbort(const arrow::Status& cause) override { return writer_->Abort(cause); }

  std::unique_ptr<ChannelWriter> writer_;
};

class StoreOutput final : public EndOnce {
 public:
  StoreOutput(BlockStore* store, StreamKey key) : store_(store), key_(std::move(key)) {}
  ~StoreOutput() override { AbortIfOpen(); }

  arrow::Status Write(SealedBlock block) override { return store_->Append(key_, std::move(block)); }
  bool would_block() const override { return false; }

 private:
  arrow::Status DoFinish() override { return store_->Finish(key_); }
  arrow::Status DoAbort(const arrow::Status& cause) override { return store_->Abort(key_, cause); }

  BlockStore* store_;
  StreamKey key_;
};

}  // namespace

BlockOutputFactory ChannelOutputFactory(Transport* transport, ChannelOptions options) {
  return [transport, options](const StreamKey& key, const std::shared_ptr<arrow::Schema>& schema)
             -> arrow::Result<std::unique_ptr<BlockOutput>> {
    ARROW_ASSIGN_OR_RAISE(auto writer, transport->OpenWriter(key, schema, options));
    return std::make_unique<ChannelOutput>(std::move(writer));
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
