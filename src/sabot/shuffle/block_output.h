#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "sabot/memory/sealed_block.h"

namespace sabot {

class BlockStore;
class ChannelWriter;
class NetworkBufferPool;
class Transport;
struct ChannelOptions;

// Where the blocks of one stream (one writer task, one partition) go: a pipelined channel to the
// reader, or the agent's block store for a blocking shuffle. A ShuffleWriter owns one per
// partition.
//
// Lifecycle: Write()* then exactly one of Finish() or Abort(). Destroying an output that was
// neither finished nor aborted aborts it, so its reader never waits for a stream whose writer is
// gone. Not thread-safe: one writer task at a time, except Cancel(), which any thread may call.
class BlockOutput {
 public:
  virtual ~BlockOutput() = default;

  // Sends or stores `block`, in stream order. May block (waiting for credit or segments).
  virtual arrow::Status Write(SealedBlock block) = 0;
  // Never waits for the reader: sends or stores `*block` and returns true (the block is then
  // taken: `*block` is left empty), or returns false when it cannot be sent now and leaves it
  // for a later TryWrite (a channel may have attached the block's network segments to it,
  // which it keeps until then), after arming the on-writable callback. A channel needs network
  // segments and the reader's credit; a store always takes the block (budget and spill waits
  // inside the store are the budget pool's, as for Write).
  virtual arrow::Result<bool> TryWrite(SealedBlock* block) = 0;
  // Called after a TryWrite() returned false, once it may succeed (network segments returned,
  // a credit arrived) or the stream was cancelled; see ChannelWriter::SetOnWritable for the
  // threads it runs on and its lifetime (capture by shared ownership). A store never calls it.
  virtual void SetOnWritable(std::function<void()> callback) = 0;
  // Ends the stream after the blocks written.
  virtual arrow::Status Finish() = 0;
  // Ends the stream with `cause`, which the stream's reader receives as its error.
  virtual arrow::Status Abort(const arrow::Status& cause) = 0;
  // From any thread: a Write() waiting for the reader's credit or for network segments, and
  // every later Write(), fails at once with a Cancelled status that carries `cause`'s message
  // and names the stream (shuffle, partition, writer). A store never waits for a reader; there
  // it does nothing.
  virtual void Cancel(const arrow::Status& cause) = 0;
  // Time Write() spent waiting for the reader (credit) or for network segments: backpressure.
  virtual std::chrono::nanoseconds blocked() const = 0;
  // The largest block Write() can ever accept, in SealedBlock::size_bytes(): for a pipelined
  // channel, what it can ever reserve in network segments; 0 when there is no such limit (a
  // store spills instead). The writer's partition buffer cuts blocks to fit it.
  virtual int64_t max_block_bytes() const { return 0; }
};

// Opens the output of one stream whose batches have `schema`.
using BlockOutputFactory = std::function<arrow::Result<std::unique_ptr<BlockOutput>>(
    const StreamKey& key, const std::shared_ptr<arrow::Schema>& schema)>;

// Outputs into pipelined channels of `transport`. Each output registers a channel with
// `network` and reserves the segments of every block before sending it, waiting while the pool
// is exhausted (up to `options.timeout`); the reservation travels with the block. `transport`
// and `network` must outlive the outputs.
BlockOutputFactory ChannelOutputFactory(Transport* transport, NetworkBufferPool* network,
                                        ChannelOptions options);

// Outputs into `store` (which must outlive them): each stream is declared, appended to and
// finished there; an aborted stream is marked failed there, so its readers get the cause instead
// of partial data presented as complete.
BlockOutputFactory StoreOutputFactory(BlockStore* store);

}  // namespace sabot
