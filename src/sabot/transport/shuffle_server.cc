#include "sabot/transport/shuffle_server.h"

#include <deque>
#include <sstream>
#include <thread>

#include <arrow/array.h>
#include <arrow/flight/types.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/record_batch.h>
#include <arrow/util/byte_size.h>

#include "sabot/common/error_detail.h"
#include "sabot/common/logging.h"
#include "sabot/common/quoted_input.h"
#include "sabot/transport/ipc_block.h"
#include "sabot/transport/channel.h"
#include "sabot/transport/flight_status.h"
#include "sabot/transport/token_auth.h"

namespace sabot {

namespace flight = arrow::flight;

namespace {

// True when every buffer of `data` (children included; empty ones aside) lies inside `bytes`.
bool BuffersWithin(const arrow::ArrayData& data, const uint8_t* begin, const uint8_t* end) {
  for (const auto& buffer : data.buffers) {
    if (buffer == nullptr || buffer->size() == 0) continue;
    if (buffer->data() < begin || buffer->data() + buffer->size() > end) return false;
  }
  for (const auto& child : data.child_data) {
    if (!BuffersWithin(*child, begin, end)) return false;
  }
  return data.dictionary == nullptr || BuffersWithin(*data.dictionary, begin, end);
}

bool HasDictionaries(const arrow::DataType& type) {
  if (type.id() == arrow::Type::DICTIONARY) return true;
  for (const auto& field : type.fields()) {
    if (HasDictionaries(*field->type())) return true;
  }
  return false;
}

// The record batch of a stored block when sending it as the DATA message's IPC body costs no
// copy: the stream has no dictionaries (a block may carry dictionary messages, which the Flight
// writer would not reproduce as they were) and the block decodes into slices of its own bytes
// (not compressed, aligned). Null otherwise: the block then goes as the message's payload.
std::shared_ptr<arrow::RecordBatch> ZeroCopyBatchOf(IpcBlockDecoder* decoder,
                                                    const std::shared_ptr<arrow::Buffer>& bytes) {
  if (decoder == nullptr) return nullptr;
  auto decoded = decoder->Decode(bytes);
  if (!decoded.ok()) return nullptr;
  const uint8_t* begin = bytes->data();
  const uint8_t* end = begin + bytes->size();
  for (const auto& column : (*decoded)->columns()) {
    if (!BuffersWithin(*column->data(), begin, end)) return nullptr;
  }
  return std::move(decoded).ValueUnsafe();
}

}  // namespace

std::string ShuffleServerStats::ToJson() const {
  std::ostringstream out;
  out << "{\"active_calls\":" << active_calls << ",\"open_channels\":" << open_channels
      << ",\"blocks_sent\":" << blocks_sent << ",\"bytes_sent\":" << bytes_sent
      << ",\"blocks_received\":" << blocks_received << ",\"calls_failed\":" << calls_failed
      << "}";
  return out.str();
}

namespace {

// Counts a call as active for its lifetime.
class ActiveCall {
 public:
  explicit ActiveCall(std::shared_ptr<ShuffleServer::Counters> counters)
      : counters_(std::move(counters)) {
    ++counters_->active_calls;
  }
  ~ActiveCall() { --counters_->active_calls; }
  ActiveCall(const ActiveCall&) = delete;
  ActiveCall& operator=(const ActiveCall&) = delete;

 private:
  std::shared_ptr<ShuffleServer::Counters> counters_;
};

// DoGet's answer: the schema, then the stored IPC messages of every requested stream, in
// order, as Flight payloads sliced from the stored bytes (no decode, no re-encode). Blocks the
// store holds unencoded are encoded once here with the shuffle's codec. An event is sent in its
// place as a zero-row record batch of the shuffle's schema whose app_metadata is an EVENT
// channel message carrying the event's bytes (docs/wire-protocol.md): any Flight client reads
// it as an empty batch, Sabot's client as the event.
class PartitionDataStream : public flight::FlightDataStream {
 public:
  PartitionDataStream(std::shared_ptr<PartitionStore> store, ShuffleDescription description,
                      std::vector<StreamKey> streams,
                      std::shared_ptr<ShuffleServer::Counters> counters)
      : store_(std::move(store)),
        description_(std::move(description)),
        streams_(std::move(streams)),
        counters_(counters),
        active_(std::move(counters)) {}

  std::shared_ptr<arrow::Schema> schema() override { return description_.schema; }

  // Errors while streaming reach the client through ToFlightStatus too.
  arrow::Result<flight::FlightPayload> GetSchemaPayload() override {
    auto payload = SchemaPayload();
    if (!payload.ok()) return ToFlightStatus(payload.status());
    return payload;
  }

  arrow::Result<flight::FlightPayload> Next() override {
    auto payload = NextPayload();
    if (!payload.ok()) return ToFlightStatus(payload.status());
    return payload;
  }

 private:
  arrow::Result<flight::FlightPayload> SchemaPayload() {
    flight::FlightPayload payload;
    arrow::ipc::DictionaryFieldMapper mapper(*description_.schema);
    ARROW_ASSIGN_OR_RAISE(auto options, MakeIpcWriteOptions(description_.compression));
    ARROW_RETURN_NOT_OK(arrow::ipc::GetSchemaPayload(*description_.schema, options, mapper,
                                                     &payload.ipc_message));
    return payload;
  }

  arrow::Result<flight::FlightPayload> NextPayload() {
    while (pending_.empty()) {
      if (iterator_ == nullptr) {
        if (next_stream_ >= streams_.size()) return flight::FlightPayload{};  // end
        ARROW_ASSIGN_OR_RAISE(iterator_, store_->OpenStream(streams_[next_stream_++]));
      }
      ARROW_ASSIGN_OR_RAISE(auto block, iterator_->Next());
      if (!block.has_value()) {
        iterator_.reset();
        continue;
      }
      if (block->is_event()) {
        ARROW_ASSIGN_OR_RAISE(auto payloads, EventPayloads(*block->event));
        for (auto& p : payloads) pending_.push_back(std::move(p));
        ++counters_->blocks_sent;
        counters_->bytes_sent += block->event->size();
        continue;
      }
      if (!block->encoded()) {
        ARROW_ASSIGN_OR_RAISE(*block, EncodeIpcBlock(*block->batch, description_.compression));
      }
      ARROW_ASSIGN_OR_RAISE(auto payloads, SplitIpcBlock(block->ipc_bytes));
      for (auto& p : payloads) {
        flight::FlightPayload payload;
        payload.ipc_message = std::move(p);
        pending_.push_back(std::move(payload));
      }
      ++counters_->blocks_sent;
      counters_->bytes_sent += block->ipc_bytes->size();
    }
    flight::FlightPayload payload = std::move(pending_.front());
    pending_.pop_front();
    return payload;
  }

  // The messages standing for an event: the zero-row batch (encoded once per call, with its
  // dictionaries, if any, as every block carries them) and the EVENT message as the batch's
  // app_metadata.
  arrow::Result<std::vector<flight::FlightPayload>> EventPayloads(const arrow::Buffer& event) {
    if (empty_batch_ == nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto empty, arrow::RecordBatch::MakeEmpty(description_.schema));
      ARROW_ASSIGN_OR_RAISE(SealedBlock encoded, EncodeIpcBlock(*empty, Compression::kNone));
      empty_batch_ = std::move(encoded.ipc_bytes);
    }
    ARROW_ASSIGN_OR_RAISE(auto messages, SplitIpcBlock(empty_batch_));
    ARROW_ASSIGN_OR_RAISE(auto metadata,
                          EncodeChannelMessage(ChannelMessageKind::kEvent, 0, &event));
    std::vector<flight::FlightPayload> out;
    for (auto& message : messages) {
      flight::FlightPayload payload;
      payload.ipc_message = std::move(message);
      out.push_back(std::move(payload));
    }
    out.back().app_metadata = std::move(metadata);
    return out;
  }

  std::shared_ptr<PartitionStore> store_;
  ShuffleDescription description_;
  std::vector<StreamKey> streams_;
  std::shared_ptr<ShuffleServer::Counters> counters_;
  ActiveCall active_;
  size_t next_stream_ = 0;
  std::unique_ptr<BlockIterator> iterator_;
  std::deque<flight::FlightPayload> pending_;
  std::shared_ptr<arrow::Buffer> empty_batch_;  // the zero-row batch events are sent as
};

constexpr auto kShutdownGrace = std::chrono::seconds(5);

arrow::Status ShuttingDown() {
  return flight::MakeFlightError(flight::FlightStatusCode::Unavailable,
                                 "shuffle server is shutting down");
}

arrow::Result<PartitionPath> PathOf(const flight::FlightDescriptor& descriptor) {
  if (descriptor.type != flight::FlightDescriptor::PATH) {
    return arrow::Status::Invalid("expected a path descriptor naming "
                                  "/shuffle/{shuffle_id}/partition/{partition_id}/writer/{task}/"
                                  "attempt/{n}, got a command descriptor");
  }
  return PartitionPath::FromComponents(descriptor.path);
}

StreamKey KeyOf(const PartitionPath& path) {
  return StreamKey{path.shuffle_id, path.partition_id, path.writer_task.value_or(0),
                   path.writer_attempt.value_or(0)};
}

}  // namespace

ShuffleServer::ShuffleServer(ShuffleServerOptions options, std::shared_ptr<PartitionStore> store)
    : options_(std::move(options)), store_(std::move(store)) {}

ShuffleServer::~ShuffleServer() {
  auto status = Shutdown();
  if (!status.ok()) {
    SABOT_LOG(kWarning) << "shuffle server shutdown: " << status.ToString();
  }
}

arrow::Result<std::unique_ptr<ShuffleServer>> ShuffleServer::Make(
    const ShuffleServerOptions& options, std::shared_ptr<PartitionStore> store) {
  if (store == nullptr) return arrow::Status::Invalid("ShuffleServer needs a partition store");
  if (options.port < 0 || options.port > 65535) {
    return arrow::Status::Invalid("port ", options.port, " is out of range");
  }
  const bool tls = !options.tls_cert_pem.empty() || !options.tls_key_pem.empty();
  if (tls && (options.tls_cert_pem.empty() || options.tls_key_pem.empty())) {
    return arrow::Status::Invalid("TLS needs both a certificate and a private key");
  }
  if (options.verify_client && (!tls || options.client_root_pem.empty())) {
    return arrow::Status::Invalid("verifying clients needs TLS and client root certificates");
  }
  flight::Location location;
  if (tls) {
    ARROW_ASSIGN_OR_RAISE(location, flight::Location::ForGrpcTls(options.host, options.port));
  } else {
    ARROW_ASSIGN_OR_RAISE(location, flight::Location::ForGrpcTcp(options.host, options.port));
  }
  flight::FlightServerOptions flight_options(location);
  if (tls) {
    flight_options.tls_certificates.push_back({options.tls_cert_pem, options.tls_key_pem});
    flight_options.verify_client = options.verify_client;
    flight_options.root_certificates = options.client_root_pem;
  }
  if (!options.auth_token.empty()) {
    flight_options.middleware.emplace_back(
        BearerTokenMiddlewareFactory::kName,
        std::make_shared<BearerTokenMiddlewareFactory>(options.auth_token));
  }
  std::unique_ptr<ShuffleServer> server(new ShuffleServer(options, std::move(store)));
  if (arrow::Status started = server->Init(flight_options); !started.ok()) {
    // It never served: nothing to shut down (FlightServerBase::Shutdown of a server whose Init
    // failed dereferences its missing gRPC server).
    server->shut_down_.store(true);
    return started.WithMessage("shuffle server: cannot listen on ", options.host, ":",
                               options.port, ": ", started.message());
  }
  SABOT_LOG(kInfo) << "shuffle server listening on " << server->uri();
  return server;
}

std::string ShuffleServer::uri() const {
  const bool tls = !options_.tls_cert_pem.empty();
  return std::string(tls ? "grpc+tls://" : "grpc+tcp://") + options_.host + ":" +
         std::to_string(port());
}

ShuffleServerStats ShuffleServer::stats() const {
  ShuffleServerStats stats;
  stats.active_calls = counters_->active_calls.load();
  stats.open_channels = hub_.num_channels();
  stats.blocks_sent = counters_->blocks_sent.load();
  stats.bytes_sent = counters_->bytes_sent.load();
  stats.blocks_received = counters_->blocks_received.load();
  stats.calls_failed = counters_->calls_failed.load();
  return stats;
}

arrow::Status ShuffleServer::Shutdown() {
  if (shut_down_.exchange(true)) return arrow::Status::OK();
  // Pipelined channels notice shut_down_ within one poll interval and end their calls; calls
  // still running after the grace period are cancelled.
  const auto deadline = std::chrono::system_clock::now() + kShutdownGrace;
  ARROW_RETURN_NOT_OK(FlightServerBase::Shutdown(&deadline));
  return FlightServerBase::Wait();
}

arrow::Status ShuffleServer::Failed(const arrow::Status& status) {
  if (!status.ok()) ++counters_->calls_failed;
  return status;
}

arrow::Result<std::unique_ptr<flight::FlightInfo>> ShuffleServer::MakeInfo(
    const ShuffleDescription& description, std::optional<int32_t> partition) {
  std::vector<flight::FlightEndpoint> endpoints;
  int64_t rows = 0, bytes = 0;
  ARROW_ASSIGN_OR_RAISE(auto location, flight::Location::Parse(uri()));
  for (const auto& stats : description.partitions) {
    if (partition && stats.partition_id != *partition) continue;
    PartitionPath path{description.shuffle_id, stats.partition_id, std::nullopt, std::nullopt};
    flight::FlightEndpoint endpoint;
    endpoint.ticket.ticket = path.ToString();
    endpoint.locations.push_back(location);
    std::ostringstream meta;
    meta << "{\"partition_id\":" << stats.partition_id << ",\"streams\":" << stats.num_streams
         << ",\"blocks\":" << stats.num_blocks << ",\"rows\":" << stats.num_rows
         << ",\"bytes\":" << stats.num_bytes << "}";
    endpoint.app_metadata = meta.str();
    endpoints.push_back(std::move(endpoint));
    rows += stats.num_rows;
    bytes += stats.num_bytes;
  }
  std::vector<std::string> components = {"shuffle", description.shuffle_id};
  if (partition) {
    components = PartitionPath{description.shuffle_id, *partition, std::nullopt, std::nullopt}
                     .ToComponents();
  }
  std::ostringstream app;
  app << "{\"num_partitions\":" << description.num_partitions << ",\"compression\":\""
      << CompressionName(description.compression) << "\"}";
  ARROW_ASSIGN_OR_RAISE(auto info,
                        flight::FlightInfo::Make(*description.schema,
                                                 flight::FlightDescriptor::Path(components),
                                                 endpoints, rows, bytes, /*ordered=*/true,
                                                 app.str()));
  return std::make_unique<flight::FlightInfo>(std::move(info));
}

arrow::Status ShuffleServer::ListFlights(const flight::ServerCallContext& context,
                                         const flight::Criteria* criteria,
                                         std::unique_ptr<flight::FlightListing>* listings) {
  return ToFlightStatus(ServeListFlights(context, criteria, listings));
}

arrow::Status ShuffleServer::GetFlightInfo(const flight::ServerCallContext& context,
                                           const flight::FlightDescriptor& request,
                                           std::unique_ptr<flight::FlightInfo>* info) {
  return ToFlightStatus(ServeGetFlightInfo(context, request, info));
}

arrow::Status ShuffleServer::GetSchema(const flight::ServerCallContext& context,
                                       const flight::FlightDescriptor& request,
                                       std::unique_ptr<flight::SchemaResult>* schema) {
  return ToFlightStatus(ServeGetSchema(request, schema));
}

arrow::Status ShuffleServer::DoGet(const flight::ServerCallContext& context,
                                   const flight::Ticket& request,
                                   std::unique_ptr<flight::FlightDataStream>* stream) {
  return ToFlightStatus(ServeDoGet(context, request, stream));
}

arrow::Status ShuffleServer::DoPut(const flight::ServerCallContext& context,
                                   std::unique_ptr<flight::FlightMessageReader> reader,
                                   std::unique_ptr<flight::FlightMetadataWriter> writer) {
  return ToFlightStatus(ServeDoPut(context, std::move(reader), std::move(writer)));
}

arrow::Status ShuffleServer::DoExchange(const flight::ServerCallContext& context,
                                        std::unique_ptr<flight::FlightMessageReader> reader,
                                        std::unique_ptr<flight::FlightMessageWriter> writer) {
  return ToFlightStatus(ServeDoExchange(context, std::move(reader), std::move(writer)));
}

arrow::Status ShuffleServer::DoAction(const flight::ServerCallContext& context,
                                      const flight::Action& action,
                                      std::unique_ptr<flight::ResultStream>* result) {
  return ToFlightStatus(ServeDoAction(context, action, result));
}

arrow::Status ShuffleServer::ServeListFlights(const flight::ServerCallContext& context,
                                              const flight::Criteria* criteria,
                                              std::unique_ptr<flight::FlightListing>* listings) {
  std::vector<flight::FlightInfo> infos;
  for (const auto& id : store_->ListShuffles()) {
    auto description = store_->Describe(id);
    if (!description.ok()) continue;  // released meanwhile
    ARROW_ASSIGN_OR_RAISE(auto info, MakeInfo(*description, std::nullopt));
    infos.push_back(std::move(*info));
  }
  *listings = std::make_unique<flight::SimpleFlightListing>(std::move(infos));
  return arrow::Status::OK();
}

arrow::Result<std::pair<std::string, std::optional<int32_t>>> ShuffleServer::DescribedBy(
    const flight::FlightDescriptor& request) {
  if (request.type != flight::FlightDescriptor::PATH) {
    return arrow::Status::Invalid(
        "expected a path descriptor naming /shuffle/{shuffle_id} or "
        "/shuffle/{shuffle_id}/partition/{partition_id}, got a command descriptor");
  }
  if (request.path.size() == 2 && request.path[0] == "shuffle") {
    ARROW_RETURN_NOT_OK(ValidateId(request.path[1], "shuffle id"));
    return std::make_pair(request.path[1], std::optional<int32_t>());
  }
  ARROW_ASSIGN_OR_RAISE(auto path, PartitionPath::FromComponents(request.path));
  return std::make_pair(path.shuffle_id, std::optional<int32_t>(path.partition_id));
}

arrow::Result<std::pair<ShuffleDescription, std::optional<int32_t>>>
ShuffleServer::DescribeRequest(const flight::FlightDescriptor& request) {
  ARROW_ASSIGN_OR_RAISE(auto described, DescribedBy(request));
  const auto& [shuffle_id, partition] = described;
  ARROW_ASSIGN_OR_RAISE(ShuffleDescription description, store_->Describe(shuffle_id));
  if (partition) {
    ARROW_RETURN_NOT_OK(CheckPartitionInRange(shuffle_id, *partition, description.num_partitions));
  }
  return std::make_pair(std::move(description), partition);
}

arrow::Status ShuffleServer::ServeGetFlightInfo(const flight::ServerCallContext& context,
                                                const flight::FlightDescriptor& request,
                                                std::unique_ptr<flight::FlightInfo>* info) {
  auto described = DescribeRequest(request);
  if (!described.ok()) return Failed(described.status());
  ARROW_ASSIGN_OR_RAISE(*info, MakeInfo(described->first, described->second));
  return arrow::Status::OK();
}

arrow::Status ShuffleServer::ServeGetSchema(const flight::FlightDescriptor& request,
                                            std::unique_ptr<flight::SchemaResult>* schema) {
  auto described = DescribeRequest(request);
  if (!described.ok()) return Failed(described.status());
  ARROW_ASSIGN_OR_RAISE(*schema, flight::SchemaResult::Make(*described->first.schema));
  return arrow::Status::OK();
}

arrow::Status ShuffleServer::ServeDoGet(const flight::ServerCallContext& context,
                                        const flight::Ticket& request,
                                        std::unique_ptr<flight::FlightDataStream>* stream) {
  auto path = PartitionPath::Parse(request.ticket);
  if (!path.ok()) return Failed(path.status());
  auto description = store_->Describe(path->shuffle_id);
  if (!description.ok()) return Failed(description.status());
  std::vector<StreamKey> streams;
  if (path->writer_task) {
    StreamKey key = KeyOf(*path);
    // Checks range and existence now, so the error comes before any data.
    auto probe = store_->OpenStream(key);
    if (!probe.ok()) return Failed(probe.status());
    streams.push_back(key);
  } else {
    auto listed = store_->ListStreams(path->shuffle_id, path->partition_id);
    if (!listed.ok()) return Failed(listed.status());
    streams = std::move(*listed);
  }
  *stream = std::make_unique<PartitionDataStream>(store_, std::move(*description),
                                                  std::move(streams), counters_);
  return arrow::Status::OK();
}

arrow::Status ShuffleServer::ServeDoPut(const flight::ServerCallContext& context,
                                        std::unique_ptr<flight::FlightMessageReader> reader,
                                        std::unique_ptr<flight::FlightMetadataWriter> writer) {
  ActiveCall active(counters_);
  auto path = PathOf(reader->descriptor());
  if (!path.ok()) return Failed(path.status());
  if (!path->writer_task) {
    return Failed(arrow::Status::Invalid("DoPut path '", path->ToString(),
                                         "' must name the writer task and attempt"));
  }
  const StreamKey key = KeyOf(*path);
  auto description = store_->Describe(key.shuffle_id);
  if (!description.ok()) return Failed(description.status());
  ARROW_RETURN_NOT_OK(
      Failed(CheckPartitionInRange(key.shuffle_id, key.partition_id, description->num_partitions)));
  auto schema = reader->GetSchema();
  if (!schema.ok()) return Failed(schema.status());
  if (!(*schema)->Equals(*description->schema)) {
    return Failed(arrow::Status::Invalid(
        "schema mismatch on DoPut to ", path->ToString(), ": shuffle has ",
        description->schema->ToString(), ", stream has ", (*schema)->ToString()));
  }
  // Blocks are collected and appended together at the end: a client that goes away mid-stream
  // leaves nothing behind.
  std::vector<SealedBlock> blocks;
  int64_t rows = 0;
  while (true) {
    auto chunk = reader->Next();
    if (!chunk.ok()) return Failed(chunk.status());
    if (chunk->data == nullptr) break;
    const int64_t bytes = arrow::util::TotalBufferSize(*chunk->data);
    if (bytes > options_.max_block_bytes) {
      return Failed(arrow::Status::Invalid("oversized block on DoPut to ", path->ToString(),
                                           ": ", bytes, " bytes exceed the limit of ",
                                           options_.max_block_bytes));
    }
    SealedBlock block;
    block.batch = chunk->data;
    block.num_rows = chunk->data->num_rows();
    rows += block.num_rows;
    blocks.push_back(std::move(block));
  }
  // gRPC reports a cancelled call (client gone, deadline passed) as the end of the stream;
  // only a call that is still alive finished its upload.
  if (context.is_cancelled()) {
    return Failed(arrow::Status::Cancelled("DoPut to ", path->ToString(),
                                           " was cancelled mid-stream; nothing appended"));
  }
  const int64_t count = static_cast<int64_t>(blocks.size());
  ARROW_RETURN_NOT_OK(Failed(store_->Append(key, **schema, std::move(blocks))));
  counters_->blocks_received += count;
  const std::string ack = "{\"blocks\":" + std::to_string(count) +
                          ",\"rows\":" + std::to_string(rows) + "}";
  return writer->WriteMetadata(arrow::Buffer(ack));
}

arrow::Status ShuffleServer::ServeDoExchange(const flight::ServerCallContext& context,
                                             std::unique_ptr<flight::FlightMessageReader> reader,
                                             std::unique_ptr<flight::FlightMessageWriter> writer) {
  ActiveCall active(counters_);
  auto path = PathOf(reader->descriptor());
  if (!path.ok()) return Failed(path.status());
  if (!path->writer_task) {
    return Failed(arrow::Status::Invalid("DoExchange path '", path->ToString(),
                                         "' must name the writer task and attempt"));
  }
  auto state = hub_.Acquire(KeyOf(*path));
  auto attached = state->AttachReader();
  if (!attached.ok()) {
    // Another reader owns the channel; this call never attached, so it does not detach.
    return Failed(attached);
  }
  // The reader's messages (credits) arrive on their own thread, so a writer waiting for credit
  // and a reader waiting for data never wait on each other. The thread ends when the client
  // closes its side; it is joined before the call returns.
  std::atomic<bool> finished{false};
  std::thread credit_reader([&] {
    while (true) {
      auto chunk = reader->Next();
      if (!chunk.ok() || (chunk->data == nullptr && chunk->app_metadata == nullptr)) {
        if (!finished.load()) {
          state->Cancel(arrow::Status::Cancelled("reader of ", DescribeStream(state->key()),
                                                 " disconnected"));
        }
        return;
      }
      // Whatever else the reader sends breaks the protocol: the channel ends with that error.
      arrow::Result<int32_t> credits =
          chunk->data != nullptr
              ? arrow::Status::Invalid("a reader sends no record batches on DoExchange")
              : DecodeCreditMessage(chunk->app_metadata);
      if (!credits.ok()) {
        state->Cancel(arrow::Status::Invalid("reader of ", DescribeStream(state->key()),
                                             " broke the channel protocol: ",
                                             credits.status().message()));
        return;
      }
      state->Grant(*credits);
    }
  });
  auto run = [&]() -> arrow::Status {
    constexpr auto kPollInterval = std::chrono::milliseconds(100);
    ARROW_ASSIGN_OR_RAISE(auto schema, [&]() -> arrow::Result<std::shared_ptr<arrow::Schema>> {
      while (true) {
        auto schema = state->WaitSchema(std::chrono::steady_clock::now() + kPollInterval);
        if (schema.ok() || !schema.status().IsIOError()) return schema;
        if (shut_down_.load()) return ShuttingDown();
      }
    }());
    ARROW_ASSIGN_OR_RAISE(auto schema_message, SerializeSchemaMessage(*schema));
    ARROW_ASSIGN_OR_RAISE(auto header, EncodeChannelMessage(ChannelMessageKind::kSchema, 0,
                                                            schema_message.get()));
    ARROW_RETURN_NOT_OK(writer->WriteMetadata(header));
    // Blocks go as the IPC record batch of their DATA message where that copies nothing
    // (ZeroCopyBatchOf): the body's buffers are slices of the stored bytes, which gRPC sends
    // as they are. The Flight writer sends the stream's IPC schema once, before the first.
    std::unique_ptr<IpcBlockDecoder> body_decoder;
    if (!HasDictionaries(*arrow::struct_(schema->fields()))) {
      ARROW_ASSIGN_OR_RAISE(body_decoder, IpcBlockDecoder::MakeFromMessage(schema_message));
    }
    bool body_started = false;
    int32_t reported_backlog = 0;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(
          auto event, state->Poll(std::chrono::steady_clock::now() + kPollInterval,
                                  reported_backlog));
      switch (event.kind) {
        case ChannelState::Event::Kind::kBlock: {
          reported_backlog = 0;
          SealedBlock& block = event.block;
          if (block.is_event()) {
            ARROW_ASSIGN_OR_RAISE(auto message,
                                  EncodeChannelMessage(ChannelMessageKind::kEvent, event.backlog,
                                                       block.event.get()));
            ARROW_RETURN_NOT_OK(writer->WriteMetadata(message));
            ++counters_->blocks_sent;
            counters_->bytes_sent += block.event->size();
            break;
          }
          if (!block.encoded()) {
            ARROW_ASSIGN_OR_RAISE(block, EncodeIpcBlock(*block.batch, Compression::kNone));
          }
          if (auto batch = ZeroCopyBatchOf(body_decoder.get(), block.ipc_bytes)) {
            if (!body_started) {
              ARROW_RETURN_NOT_OK(writer->Begin(schema));
              body_started = true;
            }
            ARROW_ASSIGN_OR_RAISE(auto message, EncodeChannelMessage(ChannelMessageKind::kData,
                                                                     event.backlog, nullptr));
            ARROW_RETURN_NOT_OK(writer->WriteWithMetadata(*batch, message));
          } else {
            ARROW_ASSIGN_OR_RAISE(auto message,
                                  EncodeChannelMessage(ChannelMessageKind::kData, event.backlog,
                                                       block.ipc_bytes.get()));
            ARROW_RETURN_NOT_OK(writer->WriteMetadata(message));
          }
          ++counters_->blocks_sent;
          counters_->bytes_sent += block.ipc_bytes->size();
          break;
        }
        case ChannelState::Event::Kind::kBacklog: {
          reported_backlog = event.backlog;
          ARROW_ASSIGN_OR_RAISE(auto message, EncodeChannelMessage(ChannelMessageKind::kBacklog,
                                                                   event.backlog, nullptr));
          ARROW_RETURN_NOT_OK(writer->WriteMetadata(message));
          break;
        }
        case ChannelState::Event::Kind::kEnd: {
          ARROW_ASSIGN_OR_RAISE(auto message,
                                EncodeChannelMessage(ChannelMessageKind::kEnd, 0, nullptr));
          return writer->WriteMetadata(message);
        }
        case ChannelState::Event::Kind::kIdle:
          if (shut_down_.load()) return ShuttingDown();
          break;
      }
    }
  };
  arrow::Status status = run();
  finished.store(true);
  if (!status.ok()) {
    // Whatever ended the call (the reader went away, the server shuts down), the writer can no
    // longer deliver: its writes fail with Cancelled from now on. (A writer that aborted is
    // closed already and never sees this.)
    state->Cancel(arrow::Status::Cancelled("reader of ", DescribeStream(state->key()),
                                           " is gone: ", status.ToString()));
    // Tell the reader, so it half-closes and the credit reader below can finish; the call's
    // status then carries the failure. A reader that is gone makes this write fail: fine.
    auto text = arrow::Buffer::FromString(status.ToString());
    auto message = EncodeChannelMessage(ChannelMessageKind::kError,
                                        static_cast<int32_t>(status.code()), text.get());
    if (message.ok()) ARROW_UNUSED(writer->WriteMetadata(*message));
  }
  credit_reader.join();
  hub_.Detach(state, ChannelHub::Side::kReader);
  return Failed(status);
}

arrow::Status ShuffleServer::ServeDoAction(const flight::ServerCallContext& context,
                                           const flight::Action& action,
                                           std::unique_ptr<flight::ResultStream>* result) {
  std::vector<flight::Result> results;
  if (action.body != nullptr && action.body->size() > kMaxActionBodyBytes) {
    return Failed(arrow::Status::Invalid("the body of action ", QuoteInput(action.type), " has ",
                                         action.body->size(), " bytes; at most ",
                                         kMaxActionBodyBytes, " are accepted"));
  }
  const std::string body = action.body ? action.body->ToString() : "";
  if (action.type == kActionReleaseShuffle) {
    ARROW_RETURN_NOT_OK(Failed(ValidateId(body, "shuffle id")));
    ARROW_RETURN_NOT_OK(Failed(store_->Release(body)));
    results.push_back({arrow::Buffer::FromString("released " + body)});
  } else if (action.type == kActionStats) {
    results.push_back({arrow::Buffer::FromString(stats().ToJson())});
  } else if (action.type == kActionHealth) {
    results.push_back({arrow::Buffer::FromString("ok")});
  } else if (options_.actions) {
    auto reply = options_.actions(action.type, body);
    if (!reply.ok()) return Failed(reply.status());
    results.push_back({arrow::Buffer::FromString(std::move(reply).ValueUnsafe())});
  } else {
    return Failed(arrow::Status::NotImplemented("unknown action ", QuoteInput(action.type),
                                                " (expected release_shuffle, stats, health)"));
  }
  *result = std::make_unique<flight::SimpleResultStream>(std::move(results));
  return arrow::Status::OK();
}

arrow::Status ShuffleServer::ListActions(const flight::ServerCallContext& context,
                                         std::vector<flight::ActionType>* actions) {
  *actions = {
      {std::string(kActionReleaseShuffle), "Drop a shuffle's blocks; body: the shuffle id"},
      {std::string(kActionStats), "Server counters as a JSON object"},
      {std::string(kActionHealth), "Answers 'ok' while the server serves"},
  };
  return arrow::Status::OK();
}

}  // namespace sabot
