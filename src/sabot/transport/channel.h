#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/memory/sealed_block.h"
#include "sabot/transport/protocol.h"

namespace sabot {

// The transport interface: a channel carries the blocks of one stream (StreamKey) from its
// writer to its reader, in order, with credit-based flow control as in Flink.
//
// Flow control. The reader grants the writer credits: one credit is room for one block at the
// reader. It grants `exclusive_credits` when it opens the channel and one more each time it has
// consumed a block. The writer sends only against credit: Write() waits while it has none. While
// it waits it reports a backlog (blocks waiting for credit); a reader with a FloatingCreditPool
// then lends the channel a floating credit if one is free, and takes it back once that block is
// consumed. A reader that does not read therefore stalls only its own writer: every block on the
// way was paid for by a credit, so no shared queue, thread or connection fills up.
//
// Events. A block may be an event (SealedBlock::is_event): opaque bytes the writer's Write()
// sends like any block, against one credit, in the stream's order. The reader's NextItem()
// returns it in its place between the batches; Next(), for callers that want rows only, skips
// events (consuming them, so their credits return).
//
// End of stream and errors. Finish() ends the stream: the reader's Next() returns the blocks
// written and then nullptr. Abort(cause) ends it with an error that the reader's Next() returns
// after the blocks already delivered. A reader's Cancel() makes the writer's pending and later
// Write() calls fail with Cancelled. Waits are bounded by the channel's timeout: a wait that
// expires fails with IOError (retryable). Exception: a Flight reader's wait for the next block
// is unbounded (a pipelined stream may idle as long as its job); stop it with Cancel().
//
// Rendezvous. Writer and reader of a stream may open in either order.
//
// Non-blocking writing. A writer driven as cooperative steps on a bounded pool of threads must
// never hold its thread waiting for a reader that may need that very thread to run. It calls
// TryWrite() instead of Write(): the block is sent when a credit is there; otherwise nothing is
// sent, the writer's backlog is reported exactly as during a waiting Write() (so the reader may
// lend a floating credit), and the callback given to SetOnWritable() is called once a credit
// arrives (or the reader cancels); the writer then calls TryWrite() again with the same block.

// Free credits shared by the channels of one reader (an input gate): they go to the channels
// whose writers report a backlog. Safe for concurrent use; shared by the readers that use it.
class FloatingCreditPool {
 public:
  explicit FloatingCreditPool(int32_t credits) : free_(credits), capacity_(credits) {}

  // Takes one credit if one is free.
  bool TryAcquire();
  void Release();
  int32_t free() const { return free_.load(); }
  int32_t capacity() const { return capacity_; }

 private:
  std::atomic<int32_t> free_;
  const int32_t capacity_;
};

struct ChannelOptions {
  // Credits the reader grants when it opens the channel (Flink's exclusive buffers). >= 1.
  int32_t exclusive_credits = 2;
  // Floating credits lent to this channel when its writer reports a backlog; may be null.
  std::shared_ptr<FloatingCreditPool> floating_credits;
  // Bound on every wait: for credit (writer), for a block or the schema (reader), for the
  // connection (Flight).
  std::chrono::milliseconds timeout{60'000};
  // Codec for blocks the transport itself must encode (a Flight writer given a bare batch).
  Compression compression = Compression::kNone;
};

// The writing end of a channel. Lifetime: until Finish() or Abort() returned, or destruction
// (which aborts an unfinished stream). Not thread-safe: one writer thread at a time, except
// Cancel(), which any thread may call.
class ChannelWriter {
 public:
  virtual ~ChannelWriter() = default;

  // Sends `block` (encoded or not: the transport converts as it must), waiting for credit.
  // Cancelled when the reader cancelled; IOError on timeout or a broken connection.
  virtual arrow::Status Write(const SealedBlock& block) = 0;
  // Never waits: sends `block` and returns true when a credit is available now; otherwise sends
  // nothing, returns false, reports the backlog (one block) until the next send, and arms the
  // on-writable callback. Errors as Write. Both transports implement it over the writer's
  // ChannelState (a Flight writer lives in its agent's server; the reader's credit messages
  // reach that state on the server's DoExchange thread).
  virtual arrow::Result<bool> TryWrite(const SealedBlock& block) = 0;
  // The callback TryWrite() arms: called after a TryWrite() returned false, once a credit has
  // arrived since, and whenever the reader cancels. It runs on the thread that granted the
  // credit or cancelled (a reader, or a Flight server thread), under no lock, possibly
  // concurrently with itself, and may still run shortly after being replaced or after the
  // writer was destroyed: capture what it touches by shared ownership. Keep it short (wake the
  // writer's task) and never call this writer from it. Empty: no callback.
  virtual void SetOnWritable(std::function<void()> callback) = 0;
  // Ends the stream after the blocks written. Does not wait for the reader to consume them.
  virtual arrow::Status Finish() = 0;
  // Ends the stream with `cause` (not OK), which the reader receives after earlier blocks.
  virtual arrow::Status Abort(const arrow::Status& cause) = 0;
  // From any thread: a pending Write() (waiting for credit) and every later one fail with
  // `cause` at once, as when the reader cancels; the reader's Next() returns it too.
  virtual void Cancel(const arrow::Status& cause) = 0;

  // Blocks waiting for credit right now (0 or 1 for this synchronous writer).
  virtual int32_t backlog() const = 0;
  // Credits currently available to the writer.
  virtual int32_t credits() const = 0;
};

// The reading end of a channel. Lifetime: until Next() returned nullptr or an error, or Cancel(),
// or destruction (which cancels). Not thread-safe, except Cancel(), which any thread may call.
class ChannelReader {
 public:
  virtual ~ChannelReader() = default;

  // The stream's schema, waiting for the writer to open if needed.
  virtual arrow::Result<std::shared_ptr<arrow::Schema>> schema() = 0;
  // The next item of the stream, a batch or an event, in the order written; an item with
  // neither (StreamItem::is_end()) at end of stream. Consuming an item (calling NextItem() again)
  // returns its credit.
  virtual arrow::Result<StreamItem> NextItem() = 0;
  // The next batch, skipping events; nullptr at end of stream.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Next();
  // Never waits: true when it took the next item into `*item` (an item with neither batch nor
  // event at end of stream), false when none is there yet. The item handed out before is
  // consumed then, as by NextItem(). In-process only: a Flight reader's next message arrives
  // through a blocking gRPC read, so it returns NotImplemented (use NextItem() on a thread).
  virtual arrow::Result<bool> TryNextItem(StreamItem* item) = 0;
  // TryNextItem skipping events: true with the next batch (nullptr at end of stream), false when
  // no batch is there yet.
  arrow::Result<bool> TryNext(std::shared_ptr<arrow::RecordBatch>* batch);
  // The callback a TryNextItem() that found nothing arms: called once a block, an event or the
  // end arrived, or the writer's backlog changed (the next TryNextItem() then lends a floating
  // credit). Same calling rules as ChannelWriter::SetOnWritable. In-process only, as
  // TryNextItem (a Flight reader ignores it).
  virtual void SetOnReadable(std::function<void()> callback) = 0;
  // Stops reading: the writer's Write() fails with Cancelled from now on.
  virtual void Cancel() = 0;
  // True when TryNextItem() and SetOnReadable() work: the reader of a channel whose writer is in
  // this process (the in-process transport's, and the Flight transport's for a writer served by
  // its own server). False for a reader over the network (read it with NextItem() on a thread).
  virtual bool pollable() const { return false; }
};

// A transport: opens channels. Implementations are safe for concurrent use and must outlive
// the channels they opened.
class Transport {
 public:
  virtual ~Transport() = default;

  // "in-process" or "flight".
  virtual std::string name() const = 0;

  // Opens the writing end of `key`'s stream, whose batches have `schema`. Invalid for a stream
  // that already has a writer.
  virtual arrow::Result<std::unique_ptr<ChannelWriter>> OpenWriter(
      const StreamKey& key, const std::shared_ptr<arrow::Schema>& schema,
      const ChannelOptions& options) = 0;

  // Opens the reading end of `key`'s stream. Invalid for a stream that already has a reader.
  virtual arrow::Result<std::unique_ptr<ChannelReader>> OpenReader(
      const StreamKey& key, const ChannelOptions& options) = 0;
};

// "shuffle 's' partition p writer t attempt a", for messages.
std::string DescribeStream(const StreamKey& key);

}  // namespace sabot
