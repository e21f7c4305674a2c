#include "sabot/transport/flight_transport.h"

#include <algorithm>
#include <atomic>

#include <arrow/flight/types.h>

#include "sabot/common/error_detail.h"
#include "sabot/transport/deadline_watchdog.h"
#include "sabot/transport/ipc_block.h"
#include "sabot/transport/in_process_transport.h"

namespace sabot {

namespace flight = arrow::flight;

namespace {

// Encodes bare batches once, with the channel's codec, before they wait for credit.
class EncodingChannelWriter : public ChannelWriter {
 public:
  EncodingChannelWriter(std::unique_ptr<ChannelWriter> inner, Compression compression)
      : inner_(std::move(inner)), compression_(compression) {}

  arrow::Status Write(const SealedBlock& block) override {
    if (block.encoded() || block.is_event()) return inner_->Write(block);
    ARROW_ASSIGN_OR_RAISE(auto encoded, EncodeIpcBlock(*block.batch, compression_));
    encoded.segments = block.segments;  // the reservation travels with the bytes sent
    return inner_->Write(encoded);
  }
  // A bare batch is encoded once: when it must wait for credit, its encoding is kept for the
  // next TryWrite of the same block.
  arrow::Result<bool> TryWrite(const SealedBlock& block) override {
    // Encoded blocks and events go as they are (an event has no batch to encode).
    if (block.encoded() || block.is_event()) return inner_->TryWrite(block);
    if (waiting_source_ != block.batch) {
      waiting_.reset();
      ARROW_ASSIGN_OR_RAISE(auto encoded, EncodeIpcBlock(*block.batch, compression_));
      encoded.segments = block.segments;
      waiting_ = std::make_unique<SealedBlock>(std::move(encoded));
      waiting_source_ = block.batch;
    }
    ARROW_ASSIGN_OR_RAISE(bool sent, inner_->TryWrite(*waiting_));
    if (sent) {
      waiting_.reset();
      waiting_source_.reset();
    }
    return sent;
  }
  void SetOnWritable(std::function<void()> callback) override {
    inner_->SetOnWritable(std::move(callback));
  }
  arrow::Status Finish() override { return inner_->Finish(); }
  arrow::Status Abort(const arrow::Status& cause) override { return inner_->Abort(cause); }
  void Cancel(const arrow::Status& cause) override { inner_->Cancel(cause); }
  int32_t backlog() const override { return inner_->backlog(); }
  int32_t credits() const override { return inner_->credits(); }

 private:
  std::unique_ptr<ChannelWriter> inner_;
  Compression compression_;
  // The encoding of the bare batch a TryWrite could not send yet, and that batch.
  std::unique_ptr<SealedBlock> waiting_;
  std::shared_ptr<arrow::RecordBatch> waiting_source_;
};

class FlightChannelReader : public ChannelReader {
 public:
  FlightChannelReader(StreamKey key, std::string location, ChannelOptions options,
                      std::unique_ptr<flight::FlightStreamWriter> writer,
                      std::unique_ptr<flight::FlightStreamReader> reader)
      : key_(std::move(key)),
        location_(std::move(location)),
        options_(std::move(options)),
        writer_(std::move(writer)),
        reader_(std::move(reader)) {}

  ~FlightChannelReader() override {
    if (!done_) reader_->Cancel();
    ARROW_UNUSED(writer_->Close());
    if (options_.floating_credits) {
      for (; floating_held_ > 0; --floating_held_) options_.floating_credits->Release();
    }
  }

  arrow::Status Start() { return SendCredits(options_.exclusive_credits); }

  arrow::Result<std::shared_ptr<arrow::Schema>> schema() override {
    if (decoder_ == nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto message, ReadMessage());
      if (message.kind != ChannelMessageKind::kSchema) {
        return Fail(arrow::Status::IOError("protocol error: first message is not the schema"));
      }
      ARROW_RETURN_NOT_OK(TakeSchema(message));
    }
    return decoder_->schema();
  }

  arrow::Result<StreamItem> NextItem() override {
    if (done_) return StreamItem{};
    ARROW_RETURN_NOT_OK(ReturnCredit());
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto message, ReadMessage());
      switch (message.kind) {
        case ChannelMessageKind::kSchema:
          ARROW_RETURN_NOT_OK(TakeSchema(message));
          break;
        case ChannelMessageKind::kData: {
          if (body_ != nullptr) {
            // The block came as the message's IPC record batch (docs/wire-protocol.md).
            if (decoder_ == nullptr || (message.payload != nullptr && message.payload->size() > 0)) {
              return Fail(arrow::Status::IOError(
                  "protocol error: data before schema, or a block both as body and payload"));
            }
            owe_credit_ = true;
            return StreamItem{std::move(body_), nullptr};
          }
          if (decoder_ == nullptr || message.payload == nullptr) {
            return Fail(arrow::Status::IOError("protocol error: data before schema or empty"));
          }
          owe_credit_ = true;
          auto batch = decoder_->Decode(message.payload);
          if (!batch.ok()) return Fail(batch.status());
          return StreamItem{std::move(batch).ValueUnsafe(), nullptr};
        }
        case ChannelMessageKind::kEvent: {
          if (decoder_ == nullptr) {
            return Fail(arrow::Status::IOError("protocol error: event before schema"));
          }
          const int64_t size = message.payload == nullptr ? 0 : message.payload->size();
          if (size > kMaxEventBytes) {
            return Fail(arrow::Status::IOError("protocol error: event of ", size,
                                               " bytes exceeds the limit of ", kMaxEventBytes));
          }
          owe_credit_ = true;
          return StreamItem{nullptr, message.payload != nullptr ? std::move(message.payload)
                                                                : EmptyEventPayload()};
        }
        case ChannelMessageKind::kBacklog:
          if (message.value > 0 && options_.floating_credits &&
              options_.floating_credits->TryAcquire()) {
            ++floating_held_;
            ARROW_RETURN_NOT_OK(SendCredits(1));
          }
          break;
        case ChannelMessageKind::kEnd:
          done_ = true;
          ARROW_UNUSED(writer_->DoneWriting());
          return StreamItem{};
        case ChannelMessageKind::kError: {
          // The call's final status carries the failure once this side half-closed.
          ARROW_UNUSED(writer_->DoneWriting());
          std::string text = message.payload ? message.payload->ToString() : "stream failed";
          for (int i = 0; i < 1'000'000; ++i) {
            auto chunk = reader_->Next();
            if (!chunk.ok()) return Fail(chunk.status());
            if (chunk->data == nullptr && chunk->app_metadata == nullptr) break;
          }
          return Fail(arrow::Status::IOError("writer failed: ", text));
        }
        case ChannelMessageKind::kCredit:
          return Fail(arrow::Status::IOError("protocol error: credit sent to a reader"));
      }
    }
  }

  // A Flight stream's next message arrives through a blocking gRPC read: no polling here.
  arrow::Result<bool> TryNextItem(StreamItem*) override {
    return arrow::Status::NotImplemented(
        "a Flight channel reader cannot poll without blocking (", DescribeStream(key_),
        "): read it with NextItem() on a thread of its own");
  }

  // TryNextItem never answers "not yet" here, so there is nothing to wake.
  void SetOnReadable(std::function<void()>) override {}

  void Cancel() override { reader_->Cancel(); }

 private:
  arrow::Status TakeSchema(const ChannelMessage& message) {
    if (message.payload == nullptr) {
      return Fail(arrow::Status::IOError("protocol error: empty schema message"));
    }
    auto decoder = IpcBlockDecoder::MakeFromMessage(message.payload);
    if (!decoder.ok()) return Fail(decoder.status());
    decoder_ = std::move(*decoder);
    return arrow::Status::OK();
  }

  // The credit of the item consumed last goes back: to the floating pool when the channel holds
  // a floating credit, otherwise to the writer, in groups of credit_batch_ (one CREDIT message,
  // one wake-up of the writer's side per group; docs/wire-protocol.md). Holding back fewer than
  // credit_batch_ <= exclusive / 2 credits cannot stall the channel: the writer still holds a
  // credit, or a block it sent is on its way here.
  arrow::Status ReturnCredit() {
    if (!owe_credit_) return arrow::Status::OK();
    owe_credit_ = false;
    if (floating_held_ > 0) {
      --floating_held_;
      options_.floating_credits->Release();
      return arrow::Status::OK();
    }
    if (++unreturned_credits_ < credit_batch_) return arrow::Status::OK();
    const int32_t credits = unreturned_credits_;
    unreturned_credits_ = 0;
    return SendCredits(credits);
  }

  arrow::Status SendCredits(int32_t credits) {
    ARROW_ASSIGN_OR_RAISE(auto message,
                          EncodeChannelMessage(ChannelMessageKind::kCredit, credits, nullptr));
    auto status = writer_->WriteMetadata(message);
    return status.ok() ? status : Fail(status);
  }

  arrow::Result<ChannelMessage> ReadMessage() {
    // The stream's Next() takes no timeout: the watchdog cancels it when the channel's timeout
    // passes without a message, and the wait ends with a clear error instead of a hang.
    std::atomic<bool> expired{false};
    auto& watchdog = DeadlineWatchdog::Global();
    auto deadline = watchdog.Arm(DeadlineWatchdog::Clock::now() + options_.timeout, [&] {
      expired.store(true);
      reader_->Cancel();
    });
    auto chunk = reader_->Next();
    watchdog.Disarm(deadline);
    if (expired.load()) {
      return Fail(arrow::Status::IOError("timed out after ", options_.timeout.count(),
                                         " ms waiting for the writer's next message"));
    }
    if (!chunk.ok()) return Fail(chunk.status());
    if (chunk->app_metadata == nullptr) {
      if (chunk->data == nullptr) {
        return Fail(arrow::Status::IOError("stream ended without an end-of-stream message"));
      }
      return Fail(arrow::Status::IOError("protocol error: record batch outside a message"));
    }
    auto message = DecodeChannelMessage(chunk->app_metadata);
    if (!message.ok()) return Fail(message.status());
    if (chunk->data != nullptr && message->kind != ChannelMessageKind::kData) {
      return Fail(arrow::Status::IOError("protocol error: a record batch with a message of kind ",
                                         static_cast<int32_t>(message->kind)));
    }
    body_ = std::move(chunk->data);
    return message;
  }

  arrow::Status Fail(const arrow::Status& status) {
    done_ = true;
    ShuffleErrorContext context;
    context.shuffle_id = key_.shuffle_id;
    context.partition_id = key_.partition_id;
    context.writer_task = key_.writer_task;
    context.agent = location_;
    context.retryable = IsTransient(status);
    return WithShuffleContext(status, context);
  }

  const StreamKey key_;
  const std::string location_;
  const ChannelOptions options_;
  std::unique_ptr<flight::FlightStreamWriter> writer_;
  std::unique_ptr<flight::FlightStreamReader> reader_;
  std::unique_ptr<IpcBlockDecoder> decoder_;
  // The record batch that came with the last message read (a DATA message's block as its IPC
  // body), until NextItem hands it out.
  std::shared_ptr<arrow::RecordBatch> body_;
  int32_t floating_held_ = 0;
  // Exclusive credits of consumed items not yet sent back, and the group size they go back in.
  int32_t unreturned_credits_ = 0;
  const int32_t credit_batch_ = std::max<int32_t>(1, options_.exclusive_credits / 2);
  bool owe_credit_ = false;
  bool done_ = false;
};

}  // namespace

arrow::Result<std::unique_ptr<FlightTransport>> FlightTransport::Make(
    ShuffleServer* server, ShuffleClient* client, StreamLocator locator,
    bool local_channels_in_process) {
  if (server == nullptr || client == nullptr || !locator) {
    return arrow::Status::Invalid("FlightTransport needs a server, a client and a locator");
  }
  return std::unique_ptr<FlightTransport>(
      new FlightTransport(server, client, std::move(locator), local_channels_in_process));
}

arrow::Result<std::unique_ptr<ChannelWriter>> FlightTransport::OpenWriter(
    const StreamKey& key, const std::shared_ptr<arrow::Schema>& schema,
    const ChannelOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateId(key.shuffle_id, "shuffle id"));
  if (schema == nullptr) return arrow::Status::Invalid("OpenWriter needs a schema");
  auto state = server_->hub()->Acquire(key);
  ARROW_RETURN_NOT_OK(state->AttachWriter(schema));
  return std::make_unique<EncodingChannelWriter>(
      MakeLocalChannelWriter(server_->hub(), std::move(state), options), options.compression);
}

arrow::Result<std::unique_ptr<ChannelReader>> FlightTransport::OpenReader(
    const StreamKey& key, const ChannelOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateId(key.shuffle_id, "shuffle id"));
  if (options.exclusive_credits < 1) {
    return arrow::Status::Invalid("exclusive_credits must be >= 1, got ",
                                  options.exclusive_credits);
  }
  ARROW_ASSIGN_OR_RAISE(std::string location, locator_(key));
  if (!own_location_.empty() && location == own_location_) {
    // The writer is (or will be) served by this process's server: read its channel in place.
    auto state = server_->hub()->Acquire(key);
    auto attached = state->AttachReader();
    if (!attached.ok()) return attached;
    return MakeLocalChannelReader(server_->hub(), std::move(state), options);
  }
  ARROW_ASSIGN_OR_RAISE(auto client, client_->ConnectForChannels(location));
  auto call = client_->CallOptions();
  call.timeout = flight::TimeoutDuration(-1);  // a pipelined stream lives as long as its job
  // Blocks that arrive as IPC bodies may sit at any address in gRPC's buffers: misaligned
  // buffers (only those) are copied to their natural alignment, as the block decoder does.
  call.read_options.ensure_alignment = arrow::ipc::Alignment::kDataTypeSpecificAlignment;
  PartitionPath path{key.shuffle_id, key.partition_id, key.writer_task, key.writer_attempt};
  ARROW_ASSIGN_OR_RAISE(auto exchange,
                        client->DoExchange(call, flight::FlightDescriptor::Path(path.ToComponents())));
  auto reader = std::make_unique<FlightChannelReader>(key, location, options,
                                                      std::move(exchange.writer),
                                                      std::move(exchange.reader));
  ARROW_RETURN_NOT_OK(reader->Start());
  return reader;
}

}  // namespace sabot
