#include "sabot/transport/in_process_transport.h"

#include "sabot/common/error_detail.h"
#include "sabot/transport/ipc_block.h"

namespace sabot {
namespace {

Deadline DeadlineAfter(std::chrono::milliseconds timeout) {
  return std::chrono::steady_clock::now() + timeout;
}

class LocalChannelWriter : public ChannelWriter {
 public:
  LocalChannelWriter(ChannelHub* hub, std::shared_ptr<ChannelState> state,
                     const ChannelOptions& options)
      : hub_(hub), state_(std::move(state)), options_(options) {}

  ~LocalChannelWriter() override {
    state_->SetOnWritable({});
    if (!closed_) state_->Close(arrow::Status::Cancelled("writer of ", DescribeStream(state_->key()),
                                                         " went away before finishing"));
    hub_->Detach(state_, ChannelHub::Side::kWriter);
  }

  arrow::Status Write(const SealedBlock& block) override {
    if (closed_) return arrow::Status::Invalid(DescribeStream(state_->key()), " was finished");
    return state_->Push(block, DeadlineAfter(options_.timeout));
  }

  arrow::Result<bool> TryWrite(const SealedBlock& block) override {
    if (closed_) return arrow::Status::Invalid(DescribeStream(state_->key()), " was finished");
    SealedBlock copy = block;  // shares the block's buffers and segment reservation
    return state_->TryPush(&copy);
  }

  void SetOnWritable(std::function<void()> callback) override {
    state_->SetOnWritable(std::move(callback));
  }

  arrow::Status Finish() override {
    if (closed_) return arrow::Status::Invalid(DescribeStream(state_->key()), " was finished");
    closed_ = true;
    state_->Close(arrow::Status::OK());
    return arrow::Status::OK();
  }

  arrow::Status Abort(const arrow::Status& cause) override {
    if (cause.ok()) return arrow::Status::Invalid("Abort needs an error");
    if (closed_) return arrow::Status::Invalid(DescribeStream(state_->key()), " was finished");
    closed_ = true;
    state_->Close(cause);
    return arrow::Status::OK();
  }

  void Cancel(const arrow::Status& cause) override { state_->Cancel(cause); }

  int32_t backlog() const override { return state_->backlog(); }
  int32_t credits() const override { return state_->credits(); }

 private:
  ChannelHub* hub_;
  std::shared_ptr<ChannelState> state_;
  ChannelOptions options_;
  bool closed_ = false;
};

class LocalChannelReader : public ChannelReader {
 public:
  LocalChannelReader(ChannelHub* hub, std::shared_ptr<ChannelState> state,
                     const ChannelOptions& options)
      : hub_(hub), state_(std::move(state)), options_(options) {
    state_->Grant(options_.exclusive_credits);
  }

  ~LocalChannelReader() override {
    state_->SetOnReadable({});
    if (!done_) state_->Cancel(arrow::Status::Cancelled("reader of ", DescribeStream(state_->key()),
                                                        " went away"));
    if (options_.floating_credits) {
      for (; floating_held_ > 0; --floating_held_) options_.floating_credits->Release();
    }
    hub_->Detach(state_, ChannelHub::Side::kReader);
  }

  arrow::Result<std::shared_ptr<arrow::Schema>> schema() override {
    return state_->WaitSchema(DeadlineAfter(options_.timeout));
  }

  arrow::Result<StreamItem> NextItem() override {
    if (done_) return StreamItem{};
    ReturnCredit();
    const Deadline deadline = DeadlineAfter(options_.timeout);
    while (true) {
      StreamItem item;
      ARROW_ASSIGN_OR_RAISE(bool taken, Take(state_->Poll(deadline, reported_backlog_), &item));
      if (taken) return item;
      if (last_event_idle_) {
        ShuffleErrorContext context{state_->key().shuffle_id, state_->key().partition_id,
                                    state_->key().writer_task, "", true};
        return WithShuffleContext(
            arrow::Status::IOError("timed out after ", options_.timeout.count(),
                                   " ms waiting for a block"),
            context);
      }
    }
  }

  arrow::Result<bool> TryNextItem(StreamItem* item) override {
    *item = StreamItem{};
    if (done_) return true;
    ReturnCredit();
    while (true) {
      ARROW_ASSIGN_OR_RAISE(bool taken, Take(state_->TryPoll(reported_backlog_), item));
      if (taken) return true;
      if (last_event_idle_) return false;
    }
  }

  bool pollable() const override { return true; }

  void SetOnReadable(std::function<void()> callback) override {
    state_->SetOnReadable(std::move(callback));
  }

  void Cancel() override {
    state_->Cancel(arrow::Status::Cancelled("reader cancelled ", DescribeStream(state_->key())));
  }

 private:
  // Acts on one event of the channel: true with `*item` set (a batch, an event, or neither at
  // end of stream) when it was a block or the end; false after a backlog (handled: a floating
  // credit lent when one is free) or nothing (last_event_idle_).
  arrow::Result<bool> Take(arrow::Result<ChannelState::Event> event, StreamItem* item) {
    last_event_idle_ = false;
    if (!event.ok()) {
      done_ = true;
      return event.status();
    }
    switch (event->kind) {
      case ChannelState::Event::Kind::kBlock: {
        reported_backlog_ = 0;
        owe_credit_ = true;
        if (event->block.is_event()) {
          item->event = std::move(event->block.event);
          return true;
        }
        if (event->block.batch != nullptr) {
          item->batch = std::move(event->block.batch);
          return true;
        }
        if (decoder_ == nullptr) {
          ARROW_ASSIGN_OR_RAISE(auto schema,
                                state_->WaitSchema(DeadlineAfter(options_.timeout)));
          ARROW_ASSIGN_OR_RAISE(decoder_, IpcBlockDecoder::Make(schema));
        }
        ARROW_ASSIGN_OR_RAISE(item->batch, decoder_->Decode(event->block.ipc_bytes));
        return true;
      }
      case ChannelState::Event::Kind::kEnd:
        done_ = true;
        *item = StreamItem{};
        return true;
      case ChannelState::Event::Kind::kBacklog:
        reported_backlog_ = event->backlog;
        if (options_.floating_credits && options_.floating_credits->TryAcquire()) {
          ++floating_held_;
          state_->Grant(1);
        }
        return false;
      case ChannelState::Event::Kind::kIdle:
        last_event_idle_ = true;
        return false;
    }
    return false;
  }

  // The block handed out by the previous Next() has been consumed: its credit goes back, to the
  // floating pool when it was lent from there.
  void ReturnCredit() {
    if (!owe_credit_) return;
    owe_credit_ = false;
    if (floating_held_ > 0) {
      --floating_held_;
      options_.floating_credits->Release();
    } else {
      state_->Grant(1);
    }
  }

  ChannelHub* hub_;
  std::shared_ptr<ChannelState> state_;
  ChannelOptions options_;
  std::unique_ptr<IpcBlockDecoder> decoder_;
  int32_t reported_backlog_ = 0;
  int32_t floating_held_ = 0;
  bool owe_credit_ = false;
  bool done_ = false;
  bool last_event_idle_ = false;  // the last event Take() saw was kIdle
};

}  // namespace

std::unique_ptr<ChannelWriter> MakeLocalChannelWriter(ChannelHub* hub,
                                                      std::shared_ptr<ChannelState> state,
                                                      const ChannelOptions& options) {
  return std::make_unique<LocalChannelWriter>(hub, std::move(state), options);
}

std::unique_ptr<ChannelReader> MakeLocalChannelReader(ChannelHub* hub,
                                                      std::shared_ptr<ChannelState> state,
                                                      const ChannelOptions& options) {
  return std::make_unique<LocalChannelReader>(hub, std::move(state), options);
}

arrow::Result<std::unique_ptr<InProcessTransport>> InProcessTransport::Make() {
  return std::unique_ptr<InProcessTransport>(new InProcessTransport());
}

arrow::Result<std::unique_ptr<ChannelWriter>> InProcessTransport::OpenWriter(
    const StreamKey& key, const std::shared_ptr<arrow::Schema>& schema,
    const ChannelOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateId(key.shuffle_id, "shuffle id"));
  if (schema == nullptr) return arrow::Status::Invalid("OpenWriter needs a schema");
  auto state = hub_.Acquire(key);
  auto attached = state->AttachWriter(schema);
  if (!attached.ok()) return attached;
  return MakeLocalChannelWriter(&hub_, std::move(state), options);
}

arrow::Result<std::unique_ptr<ChannelReader>> InProcessTransport::OpenReader(
    const StreamKey& key, const ChannelOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateId(key.shuffle_id, "shuffle id"));
  if (options.exclusive_credits < 1) {
    return arrow::Status::Invalid("exclusive_credits must be >= 1, got ",
                                  options.exclusive_credits);
  }
  auto state = hub_.Acquire(key);
  auto attached = state->AttachReader();
  if (!attached.ok()) return attached;
  return MakeLocalChannelReader(&hub_, std::move(state), options);
}

}  // namespace sabot
