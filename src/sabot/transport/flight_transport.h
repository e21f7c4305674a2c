#pragma once

#include <functional>
#include <memory>
#include <string>

#include "sabot/transport/channel.h"
#include "sabot/transport/shuffle_client.h"
#include "sabot/transport/shuffle_server.h"

namespace sabot {

// Where the writer of a stream runs: the location ("grpc+tcp://host:port") of its agent's
// ShuffleServer. Must be safe for concurrent calls.
using StreamLocator = std::function<arrow::Result<std::string>(const StreamKey&)>;

// The distributed-mode transport: pipelined channels over Arrow Flight DoExchange.
//
// A writer is local to its agent: OpenWriter registers the channel with the agent's
// ShuffleServer, where blocks wait for credit exactly as in-process (bare batches are encoded
// once, with the channel's compression). A reader opens a DoExchange on the writer agent's
// server over the ShuffleClient's pooled connection (gRPC multiplexes every channel to that
// agent over it), announces its exclusive credits, returns one credit per consumed block and
// lends floating credits when the writer reports a backlog. The server forwards a block only
// against credit, so a slow reader never makes another channel's data wait on the connection.
// See docs/wire-protocol.md for the messages. A block crosses as its DATA message's IPC record
// batch, whose body is slices of the stored bytes (zero copy), when it has no dictionaries and
// decodes into such slices (uncompressed, aligned); otherwise as the message's payload, its IPC
// bytes copied once into it (Flight's DoExchange writer offers no raw-payload call). Never
// decompressed and recompressed.
//
// A channel whose writer is served by this transport's own server (the locator names the
// server's uri(): a writer task on the same agent) is read in process, as the in-process
// transport reads (MakeLocalChannelReader over the server's hub): no DoExchange, no TCP, no
// reader thread (the reader is pollable()), blocks handed over by reference and decoded when
// they arrive encoded. `local_channels_in_process = false` sends those over loopback DoExchange
// too (the conformance tests of the network path, and benchmarks of it).
//
// Failures: a reader learns of a writer's Abort (or a server failure) as an error from Next();
// the connection is not retried (a pipelined stream cannot be replayed by this layer).
// Next() waits for a block without a timeout; Cancel() stops it.
//
// Thread safety: safe for concurrent use. Lifetime: `server` and `client` must outlive the
// transport and its channels.
class FlightTransport : public Transport {
 public:
  static arrow::Result<std::unique_ptr<FlightTransport>> Make(
      ShuffleServer* server, ShuffleClient* client, StreamLocator locator,
      bool local_channels_in_process = true);

  std::string name() const override { return "flight"; }
  arrow::Result<std::unique_ptr<ChannelWriter>> OpenWriter(
      const StreamKey& key, const std::shared_ptr<arrow::Schema>& schema,
      const ChannelOptions& options) override;
  arrow::Result<std::unique_ptr<ChannelReader>> OpenReader(const StreamKey& key,
                                                           const ChannelOptions& options) override;

 private:
  FlightTransport(ShuffleServer* server, ShuffleClient* client, StreamLocator locator,
                  bool local_channels_in_process)
      : server_(server),
        client_(client),
        locator_(std::move(locator)),
        own_location_(local_channels_in_process ? server->uri() : std::string()) {}

  ShuffleServer* server_;
  ShuffleClient* client_;
  StreamLocator locator_;
  const std::string own_location_;  // the server's uri(); empty: every channel over DoExchange
};

}  // namespace sabot
