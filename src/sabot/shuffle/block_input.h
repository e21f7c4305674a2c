#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/memory/sealed_block.h"

namespace sabot {

class BlockStore;
class ShuffleClient;
class Transport;
struct ChannelOptions;

// Receives the items of one stream, in order: each is a batch or an event (never the end: Run()
// returning OK is the end). An error it returns stops the stream. It may block (a reader
// pausing the input); Cancel() must then make it return.
using ItemSink = std::function<arrow::Status(StreamItem)>;

// Where one upstream stream of a reader's partition comes from: a pipelined channel, the local
// block store, or a remote agent's block store over Flight. A ShuffleReader owns one per
// upstream writer task and runs each on its own thread.
//
// Lifecycle: Run() once; it delivers every batch and event of the stream to `sink`, in the
// stream's order, and returns OK at its end, or the first error (the stream's, the sink's, or a timeout naming the stream). Cancel()
// may be called from any thread, before or during Run(), and makes Run() return soon.
class BlockInput {
 public:
  virtual ~BlockInput() = default;
  virtual arrow::Status Run(const ItemSink& sink) = 0;
  virtual void Cancel() = 0;
};

// Reads `key` from a pipelined channel of `transport` (which must outlive the input). The
// channel is opened here, so the writer's credits are announced before Run().
arrow::Result<std::unique_ptr<BlockInput>> MakeChannelInput(Transport* transport,
                                                            const StreamKey& key,
                                                            const ChannelOptions& options);

// Reads `key` from `store` (which must outlive the input), decoding blocks into `pool`. Waits
// up to `timeout` for a stream its writer has not declared yet.
std::unique_ptr<BlockInput> MakeStoreInput(BlockStore* store, StreamKey key,
                                           std::chrono::milliseconds timeout,
                                           arrow::MemoryPool* pool);

// Fetches `key` from the agent at `location` with `client` (which must outlive the input).
// Waits up to `timeout` for a stream the remote writer has not declared yet; transient network
// failures are retried by the client.
std::unique_ptr<BlockInput> MakeRemoteInput(ShuffleClient* client, std::string location,
                                            StreamKey key, std::chrono::milliseconds timeout);

}  // namespace sabot
