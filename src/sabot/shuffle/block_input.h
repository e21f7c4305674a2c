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
// upstream writer task and runs each on its own thread, or polls it without one (pollable()).
//
// Lifecycle: Run() once; it delivers every batch and event of the stream to `sink`, in the
// stream's order, and returns OK at its end, or the first error (the stream's, the sink's, or a timeout naming the stream). Cancel()
// may be called from any thread, before or during Run(), and makes Run() return soon.
//
// Polling. An input that can be read without a thread (an in-process channel) says so with
// pollable(); its reader may then, instead of Run(), call TryNextItem() until the end, from one
// thread at a time, with SetOnReadable() set once before the first call. Cancel() stays callable
// from any thread.
class BlockInput {
 public:
  virtual ~BlockInput() = default;
  virtual arrow::Status Run(const ItemSink& sink) = 0;
  virtual void Cancel() = 0;

  // True when TryNextItem() and SetOnReadable() work (see above).
  virtual bool pollable() const { return false; }
  // Never waits: true with the next item in `*item` (neither batch nor event: the stream ended
  // cleanly; it stays ended), false when none is there yet, which arms the SetOnReadable()
  // callback; or the stream's error. Taking an item hands back the previous one's credit.
  // NotImplemented unless pollable().
  virtual arrow::Result<bool> TryNextItem(StreamItem* item);
  // The callback an empty TryNextItem() arms: called once something arrived (an item, the end, an
  // error, or the writer's backlog changed). Rules of ChannelReader::SetOnReadable: it may run on
  // the writer's thread, concurrently with itself, and shortly after the input is destroyed, so
  // it must hold what it touches by shared ownership, stay short and never call the input.
  virtual void SetOnReadable(std::function<void()> callback);
  // How long a pollable input may find nothing, polled, before its reader fails it (the channel's
  // timeout, which bounds a waiting read of it too).
  virtual std::chrono::milliseconds poll_timeout() const { return std::chrono::milliseconds(0); }
};

// Reads `key` from a pipelined channel of `transport` (which must outlive the input). The
// channel is opened here, so the writer's credits are announced before Run(). Pollable when the
// transport is in-process (its channels hand over items without a thread).
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
