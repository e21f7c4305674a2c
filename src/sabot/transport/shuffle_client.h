#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <arrow/flight/client.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/util/cancel.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/memory/sealed_block.h"
#include "sabot/transport/protocol.h"

namespace sabot {

struct ShuffleClientOptions {
  // Bearer token sent with every call; empty: none.
  std::string auth_token;
  // TLS: PEM roots that sign the servers' certificates (empty: the system's); a client
  // certificate and key for servers that verify clients.
  std::string tls_root_certs;
  std::string tls_cert_chain;
  std::string tls_private_key;
  // Attempts per fetch (>= 1). Transient failures (Flight Unavailable or TimedOut) are retried
  // after an exponential backoff with full jitter: a random wait in [0, min(max, initial*2^k)].
  int max_attempts = 4;
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{2'000};
  // Deadline of each call (one DoGet, DoPut, action); <= 0: none.
  std::chrono::milliseconds call_timeout{120'000};
  // FetchMany: partitions fetched at once, and the bound on bytes received but not yet taken
  // by the consumer (one batch may exceed it when nothing else is held).
  int parallelism = 4;
  int64_t max_bytes_in_flight = 64LL << 20;
  // The HTTP/2 flow-control window of each stream this client receives (bytes gRPC may buffer
  // for it ahead of the reader), fixed instead of grown by gRPC's bandwidth probing; <= 0
  // leaves gRPC's default. At most 2^31 - 1.
  int64_t receive_window_bytes = 1 << 20;
  // The same window for the connection that carries pipelined channels (ConnectForChannels).
  // A channel's writer sends a block only against a credit its reader granted, so what gRPC
  // buffers for a channel is bounded by its credits times the block size whatever this window
  // is; a window smaller than that only makes the sender wait for window updates (a round trip
  // and wake-ups per window). <= 0 leaves gRPC's default. At most 2^31 - 1.
  int64_t channel_receive_window_bytes = 8 << 20;
};

// One partition (or one writer's stream of it) to fetch from one agent.
struct FetchRequest {
  std::string location;  // "grpc+tcp://host:port" or "grpc+tls://host:port"
  PartitionPath path;
};

// Batches of a FetchMany, in order per request, interleaved across requests. Not thread-safe.
// Destroying it cancels the fetches still running and waits for them.
class FetchStream {
 public:
  virtual ~FetchStream() = default;
  struct Item {
    size_t request_index = 0;
    std::shared_ptr<arrow::RecordBatch> batch;  // null: every request is done
  };
  // The next batch, or the first error of any request (after which the stream is done).
  virtual arrow::Result<Item> Next() = 0;
  // The most bytes (batch buffer bytes) ever held received but not yet taken by Next().
  virtual int64_t peak_bytes_held() const = 0;
};

// The client side of the shuffle protocol: one pooled connection per remote agent, fetches with
// retries, pushes, info and actions. docs/wire-protocol.md specifies what it speaks.
//
// Thread safety: safe for concurrent use; connections are shared by all callers. Lifetime: must
// outlive the channels and FetchStreams made through it.
class ShuffleClient {
 public:
  static arrow::Result<std::unique_ptr<ShuffleClient>> Make(ShuffleClientOptions options);
  ~ShuffleClient();

  const ShuffleClientOptions& options() const { return options_; }

  // The pooled connection to `location`, made on first use.
  arrow::Result<std::shared_ptr<arrow::flight::FlightClient>> Connect(const std::string& location);
  // The pooled connection to `location` for pipelined channels (DoExchange), made on first use:
  // a connection of its own, with channel_receive_window_bytes as its window, so bulk fetches
  // and channels to one agent do not share a window.
  arrow::Result<std::shared_ptr<arrow::flight::FlightClient>> ConnectForChannels(
      const std::string& location);
  // Drops the pooled connections to `location` (after a failure, so the next call reconnects).
  void Evict(const std::string& location);
  // Pooled connections now, both kinds.
  int64_t num_connections() const;

  // Call options carrying the token, the deadline and `stop`.
  arrow::flight::FlightCallOptions CallOptions(
      const arrow::StopToken& stop = arrow::StopToken::Unstoppable()) const;

  // Streams `path` from `location` to `on_batch`, in order. A transient failure is retried, on a
  // fresh connection, resuming after the batches already delivered (a partition's blocks are
  // immutable once served, so the retry sees the same sequence). The final error carries a
  // ShuffleErrorDetail naming agent, shuffle, partition and whether it was transient (its
  // `retryable`; the message says "gave up after N attempts"). An error
  // from `on_batch` stops the fetch and is returned as is. `stop` cancels it.
  arrow::Status FetchPartition(
      const std::string& location, const PartitionPath& path,
      const std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>)>& on_batch,
      const arrow::StopToken& stop = arrow::StopToken::Unstoppable());
  // As FetchPartition, delivering the stream's events too, in their place between the batches
  // (a DoGet stream carries each event as a zero-row batch tagged with an EVENT app_metadata;
  // docs/wire-protocol.md). FetchPartition skips them. A chunk with app_metadata that is not a
  // valid event, or an event batch with rows, fails the fetch (IOError, not retried).
  arrow::Status FetchItems(const std::string& location, const PartitionPath& path,
                           const std::function<arrow::Status(StreamItem)>& on_item,
                           const arrow::StopToken& stop = arrow::StopToken::Unstoppable());
  // All batches of `path`.
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> FetchAll(
      const std::string& location, const PartitionPath& path);

  // Fetches every request, `parallelism` at a time, holding at most `max_bytes_in_flight`.
  // Batches only: events are skipped (use FetchItems for them).
  arrow::Result<std::unique_ptr<FetchStream>> FetchMany(std::vector<FetchRequest> requests);

  // Pushes `batches` to the stream `path` names (writer task and attempt required) on
  // `location`'s store, compressed with `compression`. Not retried: the server appends a push
  // whole or not at all, so the caller may push again.
  arrow::Status Push(const std::string& location, const PartitionPath& path,
                     const std::shared_ptr<arrow::Schema>& schema,
                     const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                     Compression compression = Compression::kNone);

  // DoAction; the first result's body.
  arrow::Result<std::string> Action(const std::string& location, std::string_view type,
                                    const std::string& body = "");
  arrow::Result<std::unique_ptr<arrow::flight::FlightInfo>> GetInfo(
      const std::string& location, const std::vector<std::string>& path);

 private:
  explicit ShuffleClient(ShuffleClientOptions options) : options_(std::move(options)) {}

  // The pooled connection of one kind (true: for channels), made with `window_bytes`.
  arrow::Result<std::shared_ptr<arrow::flight::FlightClient>> ConnectPooled(
      const std::string& location, bool for_channels, int64_t window_bytes);

  const ShuffleClientOptions options_;
  mutable std::mutex mutex_;
  // By (location, for channels).
  std::map<std::pair<std::string, bool>, std::shared_ptr<arrow::flight::FlightClient>>
      connections_ SABOT_GUARDED_BY(mutex_);
};

// True for the failures a retry may cure: Flight Unavailable and TimedOut.
bool IsTransient(const arrow::Status& status);

}  // namespace sabot
