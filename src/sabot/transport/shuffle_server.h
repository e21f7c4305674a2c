#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <arrow/flight/server.h>
#include <arrow/result.h>

#include "sabot/transport/channel_state.h"
#include "sabot/transport/partition_store.h"
#include "sabot/transport/protocol.h"

namespace sabot {

struct ShuffleServerOptions {
  // Address to listen on; "127.0.0.1" keeps the server on loopback.
  std::string host = "127.0.0.1";
  // kDefaultShufflePort unless told otherwise; 0 picks a free port (see ShuffleServer::port()).
  int port = kDefaultShufflePort;
  // TLS: PEM server certificate chain and private key; both empty means plain TCP.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // Mutual TLS: require client certificates signed by `client_root_pem`.
  bool verify_client = false;
  std::string client_root_pem;
  // Bearer token every call must carry ("authorization: Bearer <token>"); empty: no auth.
  std::string auth_token;
  // Largest block (batch buffer bytes) accepted on DoPut; larger ones are rejected whole.
  int64_t max_block_bytes = 64LL << 20;
  // Handles DoAction types the server does not know itself (the runtime's control actions):
  // given the action type and body, the result body. Unset: such actions are NotImplemented.
  // Called on Flight's threads, concurrently.
  std::function<arrow::Result<std::string>(std::string_view type, const std::string& body)>
      actions;
};

// Figures of a running server, for the stats action and tests. Consistent per field only.
struct ShuffleServerStats {
  int64_t active_calls = 0;   // DoGet/DoPut/DoExchange calls in progress
  int64_t open_channels = 0;  // pipelined channels with a side still open
  int64_t blocks_sent = 0;
  int64_t bytes_sent = 0;
  int64_t blocks_received = 0;
  int64_t calls_failed = 0;

  std::string ToJson() const;
};

// The Flight server of one agent: serves the partitions of its PartitionStore (DoGet), accepts
// blocks pushed to it (DoPut), forwards its local writers' pipelined channels to remote readers
// with credit-based flow control (DoExchange), describes shuffles (GetFlightInfo, ListFlights)
// and answers control actions (DoAction). docs/wire-protocol.md specifies what it speaks.
//
// Lifecycle: Make() starts listening; Shutdown() stops accepting calls, ends pipelined channels
// (their readers get Flight Unavailable), waits up to 5 s for calls in progress and cancels the
// rest; the destructor shuts down. Thread safety: Flight calls run concurrently on gRPC's
// threads; all public methods are safe for concurrent use. `store` is shared and kept alive by
// the server.
class ShuffleServer : public arrow::flight::FlightServerBase {
 public:
  static arrow::Result<std::unique_ptr<ShuffleServer>> Make(
      const ShuffleServerOptions& options, std::shared_ptr<PartitionStore> store);
  ~ShuffleServer() override;

  // The port actually bound (the chosen one when options.port was 0).
  int port() const { return FlightServerBase::port(); }
  // "grpc+tcp://host:port" or "grpc+tls://host:port".
  std::string uri() const;
  // Pipelined channels whose writers are local to this agent.
  ChannelHub* hub() { return &hub_; }
  const std::shared_ptr<PartitionStore>& store() const { return store_; }
  ShuffleServerStats stats() const;

  arrow::Status Shutdown();

  // The Flight handlers. Each answers with ToFlightStatus() of its outcome (flight_status.h):
  // every failure reaches clients with the gRPC code docs/wire-protocol.md documents and a
  // bounded, printable message.
  arrow::Status ListFlights(const arrow::flight::ServerCallContext& context,
                            const arrow::flight::Criteria* criteria,
                            std::unique_ptr<arrow::flight::FlightListing>* listings) override;
  arrow::Status GetFlightInfo(const arrow::flight::ServerCallContext& context,
                              const arrow::flight::FlightDescriptor& request,
                              std::unique_ptr<arrow::flight::FlightInfo>* info) override;
  // The shuffle's schema, for the same descriptors as GetFlightInfo.
  arrow::Status GetSchema(const arrow::flight::ServerCallContext& context,
                          const arrow::flight::FlightDescriptor& request,
                          std::unique_ptr<arrow::flight::SchemaResult>* schema) override;
  arrow::Status DoGet(const arrow::flight::ServerCallContext& context,
                      const arrow::flight::Ticket& request,
                      std::unique_ptr<arrow::flight::FlightDataStream>* stream) override;
  arrow::Status DoPut(const arrow::flight::ServerCallContext& context,
                      std::unique_ptr<arrow::flight::FlightMessageReader> reader,
                      std::unique_ptr<arrow::flight::FlightMetadataWriter> writer) override;
  arrow::Status DoExchange(const arrow::flight::ServerCallContext& context,
                           std::unique_ptr<arrow::flight::FlightMessageReader> reader,
                           std::unique_ptr<arrow::flight::FlightMessageWriter> writer) override;
  arrow::Status DoAction(const arrow::flight::ServerCallContext& context,
                         const arrow::flight::Action& action,
                         std::unique_ptr<arrow::flight::ResultStream>* result) override;
  arrow::Status ListActions(const arrow::flight::ServerCallContext& context,
                            std::vector<arrow::flight::ActionType>* actions) override;

  // Counters shared with the streams the server hands to Flight (which may outlive a call).
  struct Counters {
    std::atomic<int64_t> active_calls{0};
    std::atomic<int64_t> blocks_sent{0};
    std::atomic<int64_t> bytes_sent{0};
    std::atomic<int64_t> blocks_received{0};
    std::atomic<int64_t> calls_failed{0};
  };

 private:
  ShuffleServer(ShuffleServerOptions options, std::shared_ptr<PartitionStore> store);
  // The handlers' bodies; the public overrides map their outcome (ToFlightStatus).
  arrow::Status ServeListFlights(const arrow::flight::ServerCallContext& context,
                                 const arrow::flight::Criteria* criteria,
                                 std::unique_ptr<arrow::flight::FlightListing>* listings);
  arrow::Status ServeGetFlightInfo(const arrow::flight::ServerCallContext& context,
                                   const arrow::flight::FlightDescriptor& request,
                                   std::unique_ptr<arrow::flight::FlightInfo>* info);
  arrow::Status ServeGetSchema(const arrow::flight::FlightDescriptor& request,
                               std::unique_ptr<arrow::flight::SchemaResult>* schema);
  // The shuffle and, for a partition path, the partition a GetFlightInfo or GetSchema
  // descriptor names: ["shuffle", id] or a partition path.
  arrow::Result<std::pair<std::string, std::optional<int32_t>>> DescribedBy(
      const arrow::flight::FlightDescriptor& request);
  // What GetFlightInfo and GetSchema answer from: the description of the shuffle `request`
  // names and its partition, checked to be in range.
  arrow::Result<std::pair<ShuffleDescription, std::optional<int32_t>>> DescribeRequest(
      const arrow::flight::FlightDescriptor& request);
  arrow::Status ServeDoGet(const arrow::flight::ServerCallContext& context,
                           const arrow::flight::Ticket& request,
                           std::unique_ptr<arrow::flight::FlightDataStream>* stream);
  arrow::Status ServeDoPut(const arrow::flight::ServerCallContext& context,
                           std::unique_ptr<arrow::flight::FlightMessageReader> reader,
                           std::unique_ptr<arrow::flight::FlightMetadataWriter> writer);
  arrow::Status ServeDoExchange(const arrow::flight::ServerCallContext& context,
                                std::unique_ptr<arrow::flight::FlightMessageReader> reader,
                                std::unique_ptr<arrow::flight::FlightMessageWriter> writer);
  arrow::Status ServeDoAction(const arrow::flight::ServerCallContext& context,
                              const arrow::flight::Action& action,
                              std::unique_ptr<arrow::flight::ResultStream>* result);
  arrow::Result<std::unique_ptr<arrow::flight::FlightInfo>> MakeInfo(
      const ShuffleDescription& description, std::optional<int32_t> partition);
  arrow::Status Failed(const arrow::Status& status);

  const ShuffleServerOptions options_;
  const std::shared_ptr<PartitionStore> store_;
  ChannelHub hub_;
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
  std::atomic<bool> shut_down_{false};
};

}  // namespace sabot
