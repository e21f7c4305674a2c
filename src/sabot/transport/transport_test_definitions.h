#pragma once

// The transport conformance suite: what every Transport must do, written once against the
// interface and instantiated once per transport (as Arrow Flight's test_definitions.h does).
//
//   class InProcessConformance : public TransportConformanceTest { ...MakeTransport()... };
//   SABOT_TRANSPORT_CONFORMANCE_TESTS(InProcessConformance)

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <string>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array/builder_primitive.h>
#include <arrow/record_batch.h>

#include "sabot/common/data_generator.h"
#include "sabot/common/error_detail.h"
#include "sabot/testing/assertions.h"
#include "sabot/transport/ipc_block.h"
#include "sabot/transport/channel.h"

namespace sabot::testing {

class TransportConformanceTest : public ::testing::Test {
 protected:
  // A fresh transport for one test; the fixture owns it.
  virtual arrow::Result<std::unique_ptr<Transport>> MakeTransport() = 0;
  // Channels the transport still tracks (0 once every end is closed).
  virtual int64_t OpenChannels() = 0;

  void SetUp() override { ASSERT_OK_AND_ASSIGN(transport_, MakeTransport()); }
  void TearDown() override { transport_.reset(); }

  static StreamKey Key(int32_t partition, int32_t writer = 0) {
    return StreamKey{"conformance", partition, writer, 0};
  }
  static DataGeneratorOptions Data() {
    DataGeneratorOptions options;
    options.batch_rows = 100;
    options.key_cardinality = 1000;
    return options;
  }
  static std::shared_ptr<arrow::RecordBatch> Batch(int64_t index) {
    auto result = GenerateBatch(Data(), index);
    return result.ok() ? *result : nullptr;
  }
  // Block `index`: encoded with `compression` on odd indexes, a bare batch on even ones, so
  // both kinds cross every transport.
  static SealedBlock Block(int64_t index, Compression compression = Compression::kNone) {
    auto batch = Batch(index);
    if (index % 2 == 1) {
      auto encoded = EncodeIpcBlock(*batch, compression);
      if (encoded.ok()) return *encoded;
    }
    SealedBlock block;
    block.batch = batch;
    block.num_rows = batch->num_rows();
    return block;
  }
  static ChannelOptions Options(int32_t credits = 2) {
    ChannelOptions options;
    options.exclusive_credits = credits;
    options.timeout = std::chrono::milliseconds(20'000);
    return options;
  }

  // Waits, bounded, until `condition` holds.
  template <typename Condition>
  static bool Eventually(Condition condition, int timeout_ms = 10'000) {
    for (int waited = 0; waited < timeout_ms; waited += 5) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return condition();
  }

  void ReadAll(ChannelReader* reader, int64_t first, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      ASSERT_OK_AND_ASSIGN(auto batch, reader->Next());
      ASSERT_NE(batch, nullptr) << "stream ended after " << i << " of " << count << " batches";
      ASSERT_BATCHES_EQUAL(*Batch(first + i), *batch);
    }
    ASSERT_OK_AND_ASSIGN(auto end, reader->Next());
    ASSERT_EQ(end, nullptr);
  }

  void TestRoundTripInOrder(Compression compression) {
    auto schema = GeneratedSchema(Data());
    ASSERT_OK_AND_ASSIGN(auto writer, transport_->OpenWriter(Key(0), schema, Options()));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(0), Options()));
    constexpr int kBlocks = 40;
    arrow::Status written;
    std::thread producer([&] {
      for (int i = 0; i < kBlocks && written.ok(); ++i) written = writer->Write(Block(i, compression));
      if (written.ok()) written = writer->Finish();
    });
    ASSERT_OK_AND_ASSIGN(auto read_schema, reader->schema());
    EXPECT_TRUE(read_schema->Equals(*schema));
    ReadAll(reader.get(), 0, kBlocks);
    producer.join();
    ASSERT_OK(written);
  }

  void TestRoundTrip() { TestRoundTripInOrder(Compression::kNone); }
  void TestRoundTripLz4() { TestRoundTripInOrder(Compression::kLz4Frame); }
  void TestRoundTripZstd() { TestRoundTripInOrder(Compression::kZstd); }

  void TestReaderOpensFirst() {
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(1), Options()));
    std::thread producer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      auto writer = transport_->OpenWriter(Key(1), GeneratedSchema(Data()), Options());
      ASSERT_TRUE(writer.ok()) << writer.status().ToString();
      for (int i = 0; i < 5; ++i) ASSERT_OK((*writer)->Write(Block(i)));
      ASSERT_OK((*writer)->Finish());
    });
    ReadAll(reader.get(), 0, 5);
    producer.join();
  }

  void TestEmptyStream() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(2), GeneratedSchema(Data()), Options()));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(2), Options()));
    ASSERT_OK(writer->Finish());
    ReadAll(reader.get(), 0, 0);
  }

  // The writer sends only against credit: with 2 credits and a reader that does not read, the
  // third Write waits, reporting a backlog of 1; reading releases it.
  void TestBackpressure() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(3), GeneratedSchema(Data()), Options(2)));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(3), Options(2)));
    std::atomic<int> written{0};
    arrow::Status status;
    std::thread producer([&] {
      for (int i = 0; i < 6 && status.ok(); ++i) {
        status = writer->Write(Block(i));
        if (status.ok()) ++written;
      }
      if (status.ok()) status = writer->Finish();
    });
    ASSERT_TRUE(Eventually([&] { return writer->backlog() == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(written.load(), 2);
    EXPECT_EQ(writer->credits(), 0);
    ReadAll(reader.get(), 0, 6);
    producer.join();
    ASSERT_OK(status);
  }

  void TestWriteTimesOutWithoutCredit() {
    ChannelOptions options = Options(1);
    options.timeout = std::chrono::milliseconds(200);
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(4), GeneratedSchema(Data()), options));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(4), options));
    // The first write may wait for the reader's credit to arrive; then it has credit.
    ASSERT_OK(writer->Write(Block(0)));
    arrow::Status late = writer->Write(Block(1));
    ASSERT_TRUE(late.IsIOError()) << late.ToString();
    const auto* detail = ShuffleErrorDetail::FromStatus(late);
    ASSERT_NE(detail, nullptr);
    EXPECT_TRUE(detail->context().retryable);
  }

  // A reader waits for the next block no longer than the channel's timeout: a writer that opens
  // and then goes silent ends in a clear, retryable error, never a hang.
  void TestReadTimesOutWithoutData() {
    ChannelOptions options = Options(1);
    options.timeout = std::chrono::milliseconds(200);
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(14), GeneratedSchema(Data()), options));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(14), options));
    auto next = reader->Next();
    ASSERT_TRUE(next.status().IsIOError()) << next.status().ToString();
    EXPECT_NE(next.status().message().find("timed out"), std::string::npos)
        << next.status().ToString();
    ASSERT_OK(writer->Abort(arrow::Status::Cancelled("test over")));
  }

  // A writer waiting for credit reports its backlog; the reader lends it a floating credit,
  // which returns to the pool once that block is consumed.
  void TestFloatingCredits() {
    auto pool = std::make_shared<FloatingCreditPool>(1);
    ChannelOptions options = Options(1);
    options.floating_credits = pool;
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(5), GeneratedSchema(Data()), options));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(5), options));
    std::atomic<int> written{0};
    arrow::Status status;
    std::thread producer([&] {
      for (int i = 0; i < 3 && status.ok(); ++i) {
        status = writer->Write(Block(i));
        if (status.ok()) ++written;
      }
      if (status.ok()) status = writer->Finish();
    });
    ASSERT_TRUE(Eventually([&] { return written.load() == 1 && writer->backlog() == 1; }));
    // With one exclusive credit and no floating ones, after the k-th Next() the writer can
    // have written at most k blocks (the exclusive credit plus the k - 1 returned). Getting
    // k + 1 out proves the reader lent it the pool's floating credit. (When exactly the reader
    // notices the backlog differs by transport: in-process at once, over Flight when it reads
    // the BACKLOG message.)
    bool got_ahead = false;
    for (int k = 1; k <= 3; ++k) {
      ASSERT_OK_AND_ASSIGN(auto batch, reader->Next());
      ASSERT_NE(batch, nullptr);
      ASSERT_BATCHES_EQUAL(*Batch(k - 1), *batch);
      if (!got_ahead && k < 3) {
        got_ahead = Eventually([&] { return written.load() >= k + 1; }, 500);
      }
    }
    EXPECT_TRUE(got_ahead) << "no floating credit reached the backlogged writer";
    ASSERT_OK_AND_ASSIGN(auto end, reader->Next());
    ASSERT_EQ(end, nullptr);
    producer.join();
    ASSERT_OK(status);
    reader.reset();
    EXPECT_EQ(pool->free(), 1);
  }

  void TestReaderCancelFailsWriter() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(6), GeneratedSchema(Data()), Options(1)));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(6), Options(1)));
    arrow::Status status;
    std::thread producer([&] {
      for (int i = 0; i < 100 && status.ok(); ++i) status = writer->Write(Block(i));
    });
    ASSERT_OK_AND_ASSIGN(auto first, reader->Next());
    ASSERT_NE(first, nullptr);
    reader->Cancel();
    producer.join();
    ASSERT_TRUE(status.IsCancelled()) << status.ToString();
  }

  // Cancel() from another thread ends a Write() waiting for credit at once, with its cause
  // (long before the 60 s timeout); later writes fail the same way.
  void TestWriterCancelEndsAWaitForCredit() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(11), GeneratedSchema(Data()), Options(1)));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(11), Options(1)));
    arrow::Status status;
    const auto start = std::chrono::steady_clock::now();
    std::thread producer([&] {
      for (int i = 0; i < 100 && status.ok(); ++i) status = writer->Write(Block(i));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // out of credit by now
    writer->Cancel(arrow::Status::Cancelled("the job gave up"));
    producer.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    ASSERT_TRUE(status.IsCancelled()) << status.ToString();
    EXPECT_NE(status.message().find("the job gave up"), std::string::npos) << status.ToString();
    ASSERT_TRUE(writer->Write(Block(100)).IsCancelled());
  }

  void TestAbortReachesReader() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(7), GeneratedSchema(Data()), Options(4)));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(7), Options(4)));
    ASSERT_OK(writer->Write(Block(0)));
    ASSERT_OK(writer->Write(Block(1)));
    ASSERT_OK(writer->Abort(arrow::Status::IOError("disk on fire")));
    for (int i = 0; i < 2; ++i) {
      ASSERT_OK_AND_ASSIGN(auto batch, reader->Next());
      ASSERT_NE(batch, nullptr);
      ASSERT_BATCHES_EQUAL(*Batch(i), *batch);
    }
    auto failed = reader->Next();
    ASSERT_FALSE(failed.ok());
    EXPECT_NE(failed.status().message().find("disk on fire"), std::string::npos)
        << failed.status().ToString();
  }

  // The slow-reader test: partition 0's reader never reads, so its writer stalls on credit;
  // partition 1, on the same transport (and, over Flight, the same connection), streams 200
  // blocks to the end meanwhile. Then partition 0 drains completely.
  void TestSlowReaderDoesNotStallOthers() {
    auto schema = GeneratedSchema(Data());
    ASSERT_OK_AND_ASSIGN(auto slow_writer, transport_->OpenWriter(Key(8), schema, Options(2)));
    ASSERT_OK_AND_ASSIGN(auto slow_reader, transport_->OpenReader(Key(8), Options(2)));
    ASSERT_OK_AND_ASSIGN(auto fast_writer, transport_->OpenWriter(Key(9), schema, Options(2)));
    ASSERT_OK_AND_ASSIGN(auto fast_reader, transport_->OpenReader(Key(9), Options(2)));
    arrow::Status slow_status, fast_status;
    std::atomic<int> slow_written{0};
    std::thread slow([&] {
      for (int i = 0; i < 20 && slow_status.ok(); ++i) {
        slow_status = slow_writer->Write(Block(i));
        if (slow_status.ok()) ++slow_written;
      }
      if (slow_status.ok()) slow_status = slow_writer->Finish();
    });
    std::thread fast([&] {
      for (int i = 0; i < 200 && fast_status.ok(); ++i) fast_status = fast_writer->Write(Block(i));
      if (fast_status.ok()) fast_status = fast_writer->Finish();
    });
    ASSERT_TRUE(Eventually([&] { return slow_writer->backlog() == 1; }));
    ReadAll(fast_reader.get(), 0, 200);
    fast.join();
    ASSERT_OK(fast_status);
    EXPECT_EQ(slow_written.load(), 2) << "the slow partition moved without credit";
    ReadAll(slow_reader.get(), 0, 20);
    slow.join();
    ASSERT_OK(slow_status);
  }

  void TestDuplicateEndsRejected() {
    auto schema = GeneratedSchema(Data());
    ASSERT_OK_AND_ASSIGN(auto writer, transport_->OpenWriter(Key(10), schema, Options()));
    auto second = transport_->OpenWriter(Key(10), schema, Options());
    ASSERT_TRUE(second.status().IsInvalid()) << second.status().ToString();
    ASSERT_OK(writer->Finish());
  }

  void TestNothingLeaks() {
    {
      ASSERT_OK_AND_ASSIGN(auto writer,
                           transport_->OpenWriter(Key(11), GeneratedSchema(Data()), Options()));
      ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(11), Options()));
      ASSERT_OK(writer->Write(Block(0)));
      // Both ends dropped mid-stream.
    }
    {
      ASSERT_OK_AND_ASSIGN(auto writer,
                           transport_->OpenWriter(Key(12), GeneratedSchema(Data()), Options()));
      ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(12), Options()));
      ASSERT_OK(writer->Write(Block(0)));
      ASSERT_OK(writer->Finish());
      ReadAll(reader.get(), 0, 1);
    }
    {
      // A reader whose writer never comes.
      ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(13), Options()));
    }
    EXPECT_TRUE(Eventually([&] { return OpenChannels() == 0; })) << OpenChannels();
  }

  // --- Events -----------------------------------------------------------------------------

  // An event block carrying `text` (any bytes).
  static SealedBlock EventBlock(const std::string& text) {
    auto block = MakeEventBlock(arrow::Buffer::FromString(text));
    return block.ok() ? *block : SealedBlock{};
  }
  // The items of a stream as text: "b<i>" for Batch(i), "e:<bytes>" for an event. Items must
  // be Batch(i) for some i below 100.
  static std::string Describe(const StreamItem& item) {
    if (item.is_event()) return "e:" + item.event->ToString();
    for (int64_t i = 0; i < 100; ++i) {
      if (Batch(i)->Equals(*item.batch)) return "b" + std::to_string(i);
    }
    return "unknown batch";
  }
  // Writes `items` ("b<i>" or "e:<text>") on `key` and finishes, while the reader reads every
  // item with NextItem(); the reader must see exactly `items`, then the end.
  void CheckItemsRoundTrip(const StreamKey& key, const std::vector<std::string>& items,
                           Compression compression = Compression::kNone) {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(key, GeneratedSchema(Data()), Options()));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(key, Options()));
    arrow::Status written;
    std::thread producer([&] {
      for (size_t i = 0; i < items.size() && written.ok(); ++i) {
        const std::string& item = items[i];
        written = item[0] == 'e' ? writer->Write(EventBlock(item.substr(2)))
                                 : writer->Write(Block(std::stoll(item.substr(1)), compression));
      }
      if (written.ok()) written = writer->Finish();
    });
    std::vector<std::string> got;
    for (size_t i = 0; i <= items.size(); ++i) {
      auto item = reader->NextItem();
      ASSERT_TRUE(item.ok()) << item.status().ToString();
      if (item->is_end()) break;
      got.push_back(Describe(*item));
    }
    producer.join();
    ASSERT_OK(written);
    EXPECT_EQ(got, items);
    ASSERT_OK_AND_ASSIGN(auto after, reader->NextItem());
    EXPECT_TRUE(after.is_end());
  }

  // Events interleaved with batches (of both block kinds, compressed too) keep their places:
  // first, between, several in a row, last; their bytes arrive unchanged, NUL bytes included.
  void TestEventsKeepTheirPlace() {
    const std::string binary("\0\x01\xff barrier \0", 13);
    CheckItemsRoundTrip(Key(20), {"e:start", "b0", "b1", "e:w1", "b2", "e:", "e:" + binary, "b3",
                                  "e:end"});
    CheckItemsRoundTrip(Key(21), {"b0", "e:a", "b1", "b2", "b3", "e:z"}, Compression::kZstd);
  }

  // Streams of events only, a single event, and an event of the largest size.
  void TestEventOnlyStreams() {
    CheckItemsRoundTrip(Key(22), {"e:only"});
    CheckItemsRoundTrip(Key(23), {"e:1", "e:2", "e:3", "e:4", "e:5"});
    CheckItemsRoundTrip(Key(24), {"e:" + std::string(kMaxEventBytes, 'w'), "b0"});
    // And the empty stream read item by item.
    CheckItemsRoundTrip(Key(25), {});
  }

  // Next() skips events: a reader that wants rows only still gets every batch, in order.
  void TestNextSkipsEvents() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(26), GeneratedSchema(Data()), Options(8)));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(26), Options(8)));
    ASSERT_OK(writer->Write(EventBlock("x")));
    ASSERT_OK(writer->Write(Block(0)));
    ASSERT_OK(writer->Write(EventBlock("y")));
    ASSERT_OK(writer->Write(EventBlock("z")));
    ASSERT_OK(writer->Write(Block(1)));
    ASSERT_OK(writer->Write(EventBlock("w")));
    ASSERT_OK(writer->Finish());
    ReadAll(reader.get(), 0, 2);
  }

  // An event takes a credit like a block: with one credit and a reader that does not read, the
  // second write (an event) waits; reading the first item releases it. This is what lets a
  // reader that holds back an input (barrier alignment) stop that input's writer.
  void TestEventsTakeCredit() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(27), GeneratedSchema(Data()), Options(1)));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(27), Options(1)));
    std::atomic<int> written{0};
    arrow::Status status;
    std::thread producer([&] {
      for (int i = 0; i < 3 && status.ok(); ++i) {
        status = writer->Write(EventBlock("e" + std::to_string(i)));
        if (status.ok()) ++written;
      }
      if (status.ok()) status = writer->Finish();
    });
    // (Over Flight the first write may wait for the reader's first credit too.)
    ASSERT_TRUE(Eventually([&] { return written.load() == 1 && writer->backlog() == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(written.load(), 1) << "an event went out without credit";
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK_AND_ASSIGN(auto item, reader->NextItem());
      ASSERT_TRUE(item.is_event());
      EXPECT_EQ(item.event->ToString(), "e" + std::to_string(i));
    }
    ASSERT_OK_AND_ASSIGN(auto end, reader->NextItem());
    EXPECT_TRUE(end.is_end());
    producer.join();
    ASSERT_OK(status);
  }

  // A stream aborted after an event delivers the event, then the error.
  void TestAbortAfterEvent() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(28), GeneratedSchema(Data()), Options(4)));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(28), Options(4)));
    ASSERT_OK(writer->Write(Block(0)));
    ASSERT_OK(writer->Write(EventBlock("checkpoint 7")));
    ASSERT_OK(writer->Abort(arrow::Status::IOError("source lost")));
    ASSERT_OK_AND_ASSIGN(auto first, reader->NextItem());
    ASSERT_TRUE(first.is_batch());
    ASSERT_OK_AND_ASSIGN(auto second, reader->NextItem());
    ASSERT_TRUE(second.is_event());
    EXPECT_EQ(second.event->ToString(), "checkpoint 7");
    auto failed = reader->NextItem();
    ASSERT_FALSE(failed.ok());
    EXPECT_NE(failed.status().message().find("source lost"), std::string::npos)
        << failed.status().ToString();
  }

  // Counts the calls of a channel callback; shared with it, so it may outlive the channel.
  struct WakeCounter {
    std::mutex mutex;
    std::condition_variable called;
    int calls = 0;
    std::function<void()> Callback(const std::shared_ptr<WakeCounter>& self) {
      return [self] {
        {
          std::lock_guard<std::mutex> lock(self->mutex);
          ++self->calls;
        }
        self->called.notify_all();
      };
    }
    // Waits (bounded) for the call after `seen` calls; false when none came.
    bool AwaitCallAfter(int seen, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
      std::unique_lock<std::mutex> lock(mutex);
      return called.wait_for(lock, timeout, [&] { return calls > seen; });
    }
    int count() {
      std::lock_guard<std::mutex> lock(mutex);
      return calls;
    }
  };

  // Sends `block` with TryWrite, waiting for the on-writable callback between attempts (the
  // test thread stands for a task that parks until it is woken).
  static arrow::Status TryWriteUntilSent(ChannelWriter* writer, const SealedBlock& block,
                                         WakeCounter* wakes) {
    while (true) {
      const int seen = wakes->count();
      ARROW_ASSIGN_OR_RAISE(bool sent, writer->TryWrite(block));
      if (sent) return arrow::Status::OK();
      if (!wakes->AwaitCallAfter(seen)) {
        return arrow::Status::IOError("TryWrite returned false and no on-writable call came");
      }
    }
  }

  // TryWrite never waits: with the reader's single credit used, it returns false at once and
  // reports a backlog of one (a waiting Write would hang here); when the reader consumes, the
  // credit comes back, the callback runs, and every block arrives in order.
  void TestTryWriteNeverWaitsForCredit() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(15), GeneratedSchema(Data()), Options(1)));
    auto wakes = std::make_shared<WakeCounter>();
    writer->SetOnWritable(wakes->Callback(wakes));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(15), Options(1)));
    // The credit may still be on its way (Flight): the callback announces it.
    ASSERT_OK(TryWriteUntilSent(writer.get(), Block(0), wakes.get()));
    const int before = wakes->count();
    ASSERT_OK_AND_ASSIGN(bool sent, writer->TryWrite(Block(1)));
    EXPECT_FALSE(sent) << "the reader granted one credit and read nothing";
    EXPECT_EQ(writer->backlog(), 1);
    ASSERT_OK_AND_ASSIGN(sent, writer->TryWrite(Block(1)));  // asking again changes nothing
    EXPECT_FALSE(sent);
    EXPECT_EQ(writer->backlog(), 1);
    constexpr int kBlocks = 8;
    std::thread consumer([&] { ReadAll(reader.get(), 0, kBlocks); });
    ASSERT_TRUE(wakes->AwaitCallAfter(before)) << "no callback after the reader consumed";
    for (int i = 1; i < kBlocks; ++i) {
      ASSERT_OK(TryWriteUntilSent(writer.get(), Block(i), wakes.get()));
    }
    EXPECT_EQ(writer->backlog(), 0);
    ASSERT_OK(writer->Finish());
    consumer.join();
  }

  // A reader's cancel wakes a writer whose TryWrite found no credit; its next TryWrite fails.
  void TestReaderCancelWakesATryWrite() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(16), GeneratedSchema(Data()), Options(1)));
    auto wakes = std::make_shared<WakeCounter>();
    writer->SetOnWritable(wakes->Callback(wakes));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(16), Options(1)));
    ASSERT_OK(TryWriteUntilSent(writer.get(), Block(0), wakes.get()));
    const int before = wakes->count();
    ASSERT_OK_AND_ASSIGN(bool sent, writer->TryWrite(Block(1)));
    ASSERT_FALSE(sent);
    reader->Cancel();
    ASSERT_TRUE(wakes->AwaitCallAfter(before)) << "the cancel did not wake the writer";
    // Over Flight the cancel reaches the writer's side when the server sees the call end.
    arrow::Status status;
    ASSERT_TRUE(Eventually([&] {
      auto attempt = writer->TryWrite(Block(1));
      status = attempt.status();
      return !attempt.ok();
    }));
    ASSERT_TRUE(status.IsCancelled()) << status.ToString();
  }

  // Events go through TryWrite like blocks, between bare batches (which a Flight writer encodes
  // and keeps while they wait for credit) and encoded ones, and arrive in their places.
  void TestTryWriteCarriesEvents() {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport_->OpenWriter(Key(29), GeneratedSchema(Data()), Options(1)));
    auto wakes = std::make_shared<WakeCounter>();
    writer->SetOnWritable(wakes->Callback(wakes));
    ASSERT_OK_AND_ASSIGN(auto reader, transport_->OpenReader(Key(29), Options(1)));
    const std::vector<std::string> items = {"e:first", "b0", "e:wm", "b1", "b2", "e:", "e:last"};
    std::vector<std::string> got;
    arrow::Status read;
    std::thread consumer([&] {
      while (read.ok()) {
        auto item = reader->NextItem();
        if (!item.ok()) {
          read = item.status();
          return;
        }
        if (item->is_end()) return;
        got.push_back(Describe(*item));
      }
    });
    for (const auto& item : items) {
      SealedBlock block = item[0] == 'e' ? EventBlock(item.substr(2))
                                         : Block(std::stoll(item.substr(1)));
      arrow::Status sent = TryWriteUntilSent(writer.get(), block, wakes.get());
      ASSERT_TRUE(sent.ok()) << item << ": " << sent.ToString();
    }
    ASSERT_OK(writer->Finish());
    consumer.join();
    ASSERT_OK(read);
    EXPECT_EQ(got, items);
  }

  std::unique_ptr<Transport> transport_;
};

}  // namespace sabot::testing

#define SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, NAME) \
  TEST_F(FIXTURE, NAME) { Test##NAME(); }

#define SABOT_TRANSPORT_CONFORMANCE_TESTS(FIXTURE)                    \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, RoundTrip)                \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, RoundTripLz4)             \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, RoundTripZstd)            \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, ReaderOpensFirst)         \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, EmptyStream)              \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, Backpressure)             \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, WriteTimesOutWithoutCredit) \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, ReadTimesOutWithoutData)  \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, FloatingCredits)          \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, ReaderCancelFailsWriter)  \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, WriterCancelEndsAWaitForCredit) \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, AbortReachesReader)       \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, SlowReaderDoesNotStallOthers) \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, DuplicateEndsRejected)    \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, TryWriteNeverWaitsForCredit) \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, ReaderCancelWakesATryWrite) \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, NothingLeaks)             \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, EventsKeepTheirPlace)     \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, EventOnlyStreams)         \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, NextSkipsEvents)          \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, EventsTakeCredit)         \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, AbortAfterEvent)          \
  SABOT_TRANSPORT_CONFORMANCE_TEST(FIXTURE, TryWriteCarriesEvents)
