#include "sabot/shuffle/shuffle_reader.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include <arrow/table.h>

#include "sabot/memory/test_budget.h"
#include "sabot/verify/generated_shuffle_check.h"
#include "sabot/shuffle/shuffle_manager.h"
#include "sabot/testing/assertions.h"
#include "sabot/transport/in_process_transport.h"
#include "sabot/transport/shuffle_client.h"
#include "sabot/transport/shuffle_server.h"

namespace sabot {
namespace {

using Kind = ShuffleReaderItem::Kind;

std::shared_ptr<arrow::Buffer> Event(const std::string& text) {
  return arrow::Buffer::FromString(text);
}

// The reader API over a local shuffle: writers call WritePartition/WriteEvent directly, so the
// test knows exactly which rows and events each input must deliver, and in which order.
class ShuffleReaderTest : public ::testing::TestWithParam<ShuffleMode> {
 protected:
  void SetUp() override {
    transport_ = InProcessTransport::Make().ValueOrDie();
    ShuffleManagerOptions options;
    options.memory_budget = testing::TestBudgetBytes(64 << 20);
    options.spill = testing::TestSpillOptions();
    manager_ = ShuffleManager::Make(options, transport_.get()).ValueOrDie();
    job_.data.batch_rows = 100;
    job_.data.key_cardinality = 1000;
    job_.num_writers = 3;
  }

  // Pipelined writers block without a reader on each partition (no credit): tests read every
  // partition.
  ShuffleId Register(ShuffleMode mode, int32_t writers, int32_t partitions,
                     int32_t exclusive_credits = 2,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    spec_ = job_.MakeSpec(EdgeType::kHash, partitions).ValueOrDie();
    ShuffleOptions options;
    options.mode = mode;
    options.exclusive_credits = exclusive_credits;
    options.floating_credits = 0;
    options.timeout = timeout;
    return manager_->RegisterShuffle("op", spec_, GeneratedSchema(job_.data), writers, options)
        .ValueOrDie();
  }

  // Writes batch `index` of `writer` to partition 0 as a block of its own.
  arrow::Status WriteBlock(const ShuffleId& id, int32_t writer, int64_t index) {
    ARROW_ASSIGN_OR_RAISE(auto batch, job_.WriterBatch(writer, index));
    ARROW_RETURN_NOT_OK(manager_->WritePartition(id, writer, 0, batch));
    return manager_->FlushPartition(id, writer, 0);
  }

  std::unique_ptr<InProcessTransport> transport_;
  std::unique_ptr<ShuffleManager> manager_;
  GeneratedJob job_;
  std::shared_ptr<const PartitionSpec> spec_;
};

// Each input delivers its batches and events exactly in the order its writer wrote them,
// tagged with its index (= writer task), then kInputEnded; kEnd comes once all ended. Next()
// sees only the batches.
TEST_P(ShuffleReaderTest, ItemsComeInWriterOrderTaggedWithTheirInput) {
  const ShuffleId id = Register(GetParam(), 3, 2);
  // Partition 1 gets the events too, and no rows: WritePartition puts them all in partition 0.
  ASSERT_OK_AND_ASSIGN(auto other, manager_->ReadPartition(id, 1));
  auto other_events = std::async(std::launch::async, [&]() -> arrow::Result<int64_t> {
    int64_t events = 0;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem item, other->NextItem());
      if (item.kind == Kind::kEnd) return events;
      if (item.kind == Kind::kBatch) return arrow::Status::Invalid("a batch in partition 1");
      if (item.kind == Kind::kEvent) ++events;
    }
  });
  // Writer w: batch, "a<w>", batch, batch, "b<w>"; writer 2 also sends an event first.
  std::vector<std::vector<std::string>> expected(3);
  std::vector<std::thread> writers;
  for (int32_t w = 0; w < 3; ++w) {
    expected[w] = {"batch:0", "event:a" + std::to_string(w), "batch:1", "batch:2",
                   "event:b" + std::to_string(w)};
    if (w == 2) expected[w].insert(expected[w].begin(), "event:first");
    writers.emplace_back([&, w] {
      if (w == 2) ASSERT_OK(manager_->WriteEvent(id, w, Event("first")));
      ASSERT_OK(WriteBlock(id, w, 0));
      ASSERT_OK(manager_->WriteEvent(id, w, Event("a" + std::to_string(w))));
      ASSERT_OK(WriteBlock(id, w, 1));
      ASSERT_OK(WriteBlock(id, w, 2));
      ASSERT_OK(manager_->WriteEvent(id, w, Event("b" + std::to_string(w))));
      ASSERT_OK(manager_->Finish(id, w));
    });
  }
  ASSERT_OK_AND_ASSIGN(auto reader, manager_->ReadPartition(id, 0));
  EXPECT_EQ(reader->num_inputs(), 3u);
  std::vector<std::vector<std::string>> got(3);
  std::vector<bool> ended(3, false);
  while (true) {
    ASSERT_OK_AND_ASSIGN(ShuffleReaderItem item, reader->NextItem());
    if (item.kind == Kind::kEnd) break;
    ASSERT_LT(item.input, 3u);
    ASSERT_FALSE(ended[item.input]) << "an item of input " << item.input << " after its end";
    switch (item.kind) {
      case Kind::kBatch: {
        // Which of the writer's batches it is: compare with each.
        int64_t which = -1;
        for (int64_t i = 0; i < 3; ++i) {
          ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(static_cast<int32_t>(item.input), i));
          if (batch->Equals(*item.batch)) which = i;
        }
        got[item.input].push_back("batch:" + std::to_string(which));
        break;
      }
      case Kind::kEvent:
        got[item.input].push_back("event:" + item.event->ToString());
        break;
      case Kind::kInputEnded:
        ended[item.input] = true;
        break;
      default:
        FAIL() << "NextItem returned kind " << static_cast<int>(item.kind);
    }
  }
  for (auto& t : writers) t.join();
  for (int32_t w = 0; w < 3; ++w) {
    EXPECT_EQ(got[w], expected[w]) << "input " << w;
    EXPECT_TRUE(ended[w]);
  }
  EXPECT_EQ(reader->stats().events, 3 * 2 + 1);
  EXPECT_EQ(reader->stats().batches, 9);
  // Once ended, it stays ended.
  ASSERT_OK_AND_ASSIGN(ShuffleReaderItem after, reader->TryNextItem());
  EXPECT_EQ(after.kind, Kind::kEnd);
  ASSERT_OK_AND_ASSIGN(int64_t events, other_events.get());
  EXPECT_EQ(events, 7);
  // Next() skips events: a blocking shuffle can be read again, rows only.
  if (GetParam() == ShuffleMode::kBlocking) {
    ASSERT_OK_AND_ASSIGN(auto again, manager_->ReadPartition(id, 0));
    ASSERT_OK_AND_ASSIGN(auto batches, again->ReadAll());
    EXPECT_EQ(batches.size(), 9u);
  }
}

TEST_P(ShuffleReaderTest, EventsOnEmptyStreamsAndOversizedEventsRefused) {
  const ShuffleId id = Register(GetParam(), 1, 2);
  auto writer = std::async(std::launch::async, [&] {
    // An empty event, and one of exactly the limit: both fine. One byte more: refused, and
    // the writer stays usable.
    ARROW_RETURN_NOT_OK(manager_->WriteEvent(id, 0, Event("")));
    ARROW_ASSIGN_OR_RAISE(auto largest, arrow::AllocateBuffer(kMaxEventBytes));
    std::memset(largest->mutable_data(), 'x', kMaxEventBytes);
    ARROW_RETURN_NOT_OK(manager_->WriteEvent(id, 0, std::move(largest)));
    ARROW_ASSIGN_OR_RAISE(auto too_large, arrow::AllocateBuffer(kMaxEventBytes + 1));
    arrow::Status refused = manager_->WriteEvent(id, 0, std::move(too_large));
    if (!refused.IsInvalid() || refused.message().find("exceeds the limit") == std::string::npos) {
      return arrow::Status::UnknownError("oversized event not refused: ", refused.ToString());
    }
    return manager_->Finish(id, 0);
  });
  // Both partitions' streams hold only the two events.
  auto read = [&](PartitionId p) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto reader, manager_->ReadPartition(id, p));
    ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem first, reader->NextItem());
    if (first.kind != Kind::kEvent || first.event->size() != 0) {
      return arrow::Status::Invalid("partition ", p, ": the first item is not the empty event");
    }
    ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem second, reader->NextItem());
    if (second.kind != Kind::kEvent ||
        second.event->ToString() != std::string(kMaxEventBytes, 'x')) {
      return arrow::Status::Invalid("partition ", p, ": the second item is not the 64 KiB event");
    }
    ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem ended, reader->NextItem());
    ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem end, reader->NextItem());
    if (ended.kind != Kind::kInputEnded || end.kind != Kind::kEnd) {
      return arrow::Status::Invalid("partition ", p, ": no end after the events");
    }
    return arrow::Status::OK();
  };
  auto partition1 = std::async(std::launch::async, read, 1);
  ASSERT_OK(read(0));
  ASSERT_OK(partition1.get());
  ASSERT_OK(writer.get());
}

INSTANTIATE_TEST_SUITE_P(Modes, ShuffleReaderTest,
                         ::testing::Values(ShuffleMode::kPipelined, ShuffleMode::kBlocking),
                         [](const auto& info) {
                           return std::string(ShuffleModeName(info.param));
                         });

// --- Lineage recovery: a failed input replaced by a newer attempt ------------------------------

// An input that delivers `batches` then ends with `end` (OK: the stream's end).
class ScriptedInput final : public BlockInput {
 public:
  ScriptedInput(std::vector<std::shared_ptr<arrow::RecordBatch>> batches, arrow::Status end)
      : batches_(std::move(batches)), end_(std::move(end)) {}
  arrow::Status Run(const ItemSink& sink) override {
    for (const auto& batch : batches_) ARROW_RETURN_NOT_OK(sink(StreamItem{batch, nullptr}));
    return end_;
  }
  void Cancel() override {}

 private:
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches_;
  arrow::Status end_;
};

class RecoverableReadTest : public ShuffleReaderTest {};

// Attempt 0 of writer 0 delivers two batches, then its agent goes: none of them reaches the
// consumer; attempt 1's whole stream (three other batches) does, once; input 1 is untouched.
TEST_F(RecoverableReadTest, APartialAttemptIsNeverDeliveredItsReplacementIsWhole) {
  const ShuffleId id = Register(ShuffleMode::kBlocking, 2, 1);
  ASSERT_OK_AND_ASSIGN(auto descriptor, manager_->GetShuffle(id));
  auto batch = [&](int32_t writer, int64_t index) {
    return job_.WriterBatch(writer, index).ValueOrDie();
  };
  std::vector<std::unique_ptr<BlockInput>> inputs;
  inputs.push_back(std::make_unique<ScriptedInput>(
      std::vector{batch(0, 0), batch(0, 1)}, arrow::Status::IOError("agent a is gone")));
  inputs.push_back(std::make_unique<ScriptedInput>(std::vector{batch(1, 0)}, arrow::Status::OK()));
  std::atomic<int> replaced{0};
  InputRecovery recovery;
  recovery.replace = [&](size_t input, const arrow::Status& failure,
                         const std::function<bool()>&) -> arrow::Result<std::unique_ptr<BlockInput>> {
    EXPECT_EQ(input, 0u);
    EXPECT_NE(failure.message().find("agent a is gone"), std::string::npos);
    replaced += 1;
    return std::make_unique<ScriptedInput>(std::vector{batch(0, 2), batch(0, 3), batch(0, 4)},
                                           arrow::Status::OK());
  };
  ASSERT_OK_AND_ASSIGN(auto reader,
                       ShuffleReader::Make(descriptor, 0, std::move(inputs), 0, nullptr,
                                           /*max_running_inputs=*/2, std::move(recovery)));
  std::vector<std::vector<std::shared_ptr<arrow::RecordBatch>>> got(2);
  while (true) {
    ASSERT_OK_AND_ASSIGN(ShuffleReaderItem item, reader->NextItem());
    if (item.kind == Kind::kEnd) break;
    if (item.kind == Kind::kBatch) got[item.input].push_back(item.batch);
  }
  EXPECT_EQ(replaced.load(), 1);
  ASSERT_EQ(got[0].size(), 3u);
  for (int64_t i = 0; i < 3; ++i) EXPECT_TRUE(got[0][i]->Equals(*batch(0, 2 + i))) << i;
  ASSERT_EQ(got[1].size(), 1u);
  EXPECT_EQ(reader->stats().rows, 4 * job_.data.batch_rows);
}

// A recovery that gives up ends the read with its error; nothing of the failed attempt came out.
TEST_F(RecoverableReadTest, ARecoveryThatGivesUpEndsTheRead) {
  const ShuffleId id = Register(ShuffleMode::kBlocking, 1, 1);
  ASSERT_OK_AND_ASSIGN(auto descriptor, manager_->GetShuffle(id));
  std::vector<std::unique_ptr<BlockInput>> inputs;
  inputs.push_back(std::make_unique<ScriptedInput>(
      std::vector{job_.WriterBatch(0, 0).ValueOrDie()}, arrow::Status::IOError("gone")));
  InputRecovery recovery;
  recovery.replace = [](size_t, const arrow::Status& failure, const std::function<bool()>&)
      -> arrow::Result<std::unique_ptr<BlockInput>> {
    return failure.WithMessage(failure.message(), ": no new attempt");
  };
  ASSERT_OK_AND_ASSIGN(auto reader, ShuffleReader::Make(descriptor, 0, std::move(inputs), 0,
                                                        nullptr, 1, std::move(recovery)));
  auto item = reader->NextItem();
  ASSERT_FALSE(item.ok());
  EXPECT_NE(item.status().message().find("gone: no new attempt"), std::string::npos)
      << item.status().ToString();
}

// The served store lists one stream per writer task of a partition, its newest attempt: a
// whole-partition fetch never gets two attempts of one writer.
TEST_F(RecoverableReadTest, TheServedStoreListsEachWritersNewestAttempt) {
  const ShuffleId id = Register(ShuffleMode::kBlocking, 2, 1);
  ASSERT_OK(WriteBlock(id, 0, 0));
  ASSERT_OK(manager_->Finish(id, 0));
  ASSERT_OK(manager_->OpenWriter(id, 0, /*attempt=*/1));
  ASSERT_OK(WriteBlock(id, 0, 1));
  ASSERT_OK(manager_->Finish(id, 0));
  ASSERT_OK(WriteBlock(id, 1, 0));
  ASSERT_OK(manager_->Finish(id, 1));
  ASSERT_OK_AND_ASSIGN(auto streams, manager_->partition_store()->ListStreams(id, 0));
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(streams[0].writer_task, 0);
  EXPECT_EQ(streams[0].writer_attempt, 1);
  EXPECT_EQ(streams[1].writer_task, 1);
  EXPECT_EQ(streams[1].writer_attempt, 0);
}

// Across agents: agent B reads writer 0 from an agent that is gone (nothing listens there) and
// writer 1 from agent A. Writer 0 ran again on A as attempt 1: once B's manager hears of it
// (RelocateWriter), the failed input reads attempt 1 from A, whole. A reader opened afterwards
// reads attempt 1 at once. Without a relocation the read fails, saying no new attempt came.
TEST(RecoverableRemoteReadTest, AFailedRemoteInputSwitchesToTheRelocatedAttempt) {
  ShuffleManagerOptions options;
  options.memory_budget = 64 << 20;
  options.spill = testing::TestSpillOptions();
  ASSERT_OK_AND_ASSIGN(auto transport_a, InProcessTransport::Make());
  ASSERT_OK_AND_ASSIGN(auto agent_a, ShuffleManager::Make(options, transport_a.get()));
  ShuffleServerOptions server_options;
  server_options.host = "127.0.0.1";
  server_options.port = 0;
  ASSERT_OK_AND_ASSIGN(auto server, ShuffleServer::Make(server_options, agent_a->partition_store()));
  ShuffleClientOptions client_options;
  client_options.max_attempts = 1;
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(client_options));
  ASSERT_OK_AND_ASSIGN(auto transport_b, InProcessTransport::Make());
  ASSERT_OK_AND_ASSIGN(auto agent_b, ShuffleManager::Make(options, transport_b.get(), client.get(),
                                                          "grpc+tcp://127.0.0.1:2"));
  GeneratedJob job;
  job.data.batch_rows = 100;
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(EdgeType::kHash, 1));
  ShuffleOptions shuffle;
  shuffle.mode = ShuffleMode::kBlocking;
  shuffle.timeout = std::chrono::seconds(20);
  ASSERT_OK_AND_ASSIGN(ShuffleId id,
                       agent_a->RegisterShuffle("op", spec, GeneratedSchema(job.data), 2, shuffle));
  ASSERT_OK_AND_ASSIGN(auto descriptor, agent_a->GetShuffle(id));
  ASSERT_OK(agent_b->RegisterShuffle(*descriptor));
  ASSERT_OK(agent_b->EnableRecovery(id));
  const std::string gone = "grpc+tcp://127.0.0.1:1";
  ASSERT_OK_AND_ASSIGN(auto reader, agent_b->ReadPartition(id, 0, {{0, 0, gone},
                                                                   {1, 0, server->uri()}}));
  ASSERT_OK(agent_a->OpenWriter(id, 0, /*attempt=*/1));
  for (int32_t w = 0; w < 2; ++w) {
    for (int64_t b = 0; b < 2; ++b) {
      ASSERT_OK_AND_ASSIGN(auto batch, job.WriterBatch(w, b));
      ASSERT_OK(agent_a->Write(id, w, batch));
    }
    ASSERT_OK(agent_a->Finish(id, w));
  }
  ASSERT_OK(agent_b->RelocateWriter(id, WriterLocation{0, 1, server->uri()}));
  // An older or equal relocation changes nothing; attempt 0 is not one.
  ASSERT_OK(agent_b->RelocateWriter(id, WriterLocation{0, 1, gone}));
  EXPECT_TRUE(agent_b->RelocateWriter(id, WriterLocation{0, 0, gone}).IsInvalid());
  auto read_rows = [&](ShuffleReader* from) -> arrow::Result<std::vector<int64_t>> {
    // Blocks may coalesce the writers' batches: rows per input, each writer's in order.
    std::vector<int64_t> rows(2, 0);
    std::vector<std::vector<std::shared_ptr<arrow::RecordBatch>>> got(2);
    while (true) {
      ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem item, from->NextItem());
      if (item.kind == Kind::kEnd) break;
      if (item.kind != Kind::kBatch) continue;
      got[item.input].push_back(item.batch);
      rows[item.input] += item.batch->num_rows();
    }
    for (int32_t w = 0; w < 2; ++w) {
      ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(got[w]));
      ARROW_ASSIGN_OR_RAISE(auto first, job.WriterBatch(w, 0));
      ARROW_ASSIGN_OR_RAISE(auto second, job.WriterBatch(w, 1));
      ARROW_ASSIGN_OR_RAISE(auto expected, arrow::Table::FromRecordBatches({first, second}));
      if (!table->Equals(*expected)) {
        return arrow::Status::Invalid("input ", w, " delivered other rows than its writer's");
      }
    }
    return rows;
  };
  ASSERT_OK_AND_ASSIGN(auto rows, read_rows(reader.get()));
  EXPECT_EQ(rows, (std::vector<int64_t>{200, 200}));
  ASSERT_OK_AND_ASSIGN(auto later, agent_b->ReadPartition(id, 0, {{0, 0, gone},
                                                                  {1, 0, server->uri()}}));
  ASSERT_OK_AND_ASSIGN(rows, read_rows(later.get()));
  EXPECT_EQ(rows, (std::vector<int64_t>{200, 200}));
  reader.reset();
  later.reset();

  // No relocation: the input's error, and the wait it did.
  shuffle.timeout = std::chrono::milliseconds(200);
  ASSERT_OK_AND_ASSIGN(ShuffleId other,
                       agent_a->RegisterShuffle("op", spec, GeneratedSchema(job.data), 1, shuffle));
  ASSERT_OK_AND_ASSIGN(auto other_descriptor, agent_a->GetShuffle(other));
  ASSERT_OK(agent_b->RegisterShuffle(*other_descriptor));
  ASSERT_OK(agent_b->EnableRecovery(other));
  ASSERT_OK_AND_ASSIGN(auto orphan, agent_b->ReadPartition(other, 0, {{0, 0, gone}}));
  auto failed = orphan->NextItem();
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("no new attempt of writer task 0"), std::string::npos)
      << failed.status().ToString();
  orphan.reset();
  // Recovery is for stored streams only.
  ShuffleOptions pipelined;
  ASSERT_OK_AND_ASSIGN(ShuffleId streamed, agent_a->RegisterShuffle(
                                               "op", spec, GeneratedSchema(job.data), 1, pipelined));
  EXPECT_TRUE(agent_a->EnableRecovery(streamed).IsInvalid());
  ASSERT_OK(agent_b->Release(id));
  ASSERT_OK(agent_a->Release(id));
}

// A blocking shuffle written on agent A (its stored streams spilled, events included) and read
// on agent B over Flight DoGet: B's reader gets every writer's batches and events in order.
TEST(ShuffleReaderRemoteTest, ARemoteBlockingReadGetsEventsInOrderFromSpilledStreams) {
  ShuffleManagerOptions options;
  options.memory_budget = testing::TestBudgetBytes(64 << 20);
  options.spill = testing::TestSpillOptions();
  ASSERT_OK_AND_ASSIGN(auto transport_a, InProcessTransport::Make());
  ASSERT_OK_AND_ASSIGN(auto agent_a, ShuffleManager::Make(options, transport_a.get()));
  ShuffleServerOptions server_options;
  server_options.port = 0;
  ASSERT_OK_AND_ASSIGN(auto server, ShuffleServer::Make(server_options, agent_a->partition_store()));
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make({}));
  ASSERT_OK_AND_ASSIGN(auto transport_b, InProcessTransport::Make());
  ASSERT_OK_AND_ASSIGN(auto agent_b, ShuffleManager::Make(options, transport_b.get(), client.get(),
                                                          "grpc+tcp://127.0.0.1:1"));
  GeneratedJob job;
  job.data.batch_rows = 100;
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(EdgeType::kHash, 1));
  ShuffleOptions shuffle;
  shuffle.mode = ShuffleMode::kBlocking;
  ASSERT_OK_AND_ASSIGN(ShuffleId id,
                       agent_a->RegisterShuffle("op", spec, GeneratedSchema(job.data), 2, shuffle));
  ASSERT_OK_AND_ASSIGN(auto descriptor, agent_a->GetShuffle(id));
  ASSERT_OK(agent_b->RegisterShuffle(*descriptor));
  for (int32_t w = 0; w < 2; ++w) {
    ASSERT_OK(agent_a->WriteEvent(id, w, Event("start" + std::to_string(w))));
    for (int64_t b = 0; b < 2; ++b) {
      ASSERT_OK_AND_ASSIGN(auto batch, job.WriterBatch(w, b));
      ASSERT_OK(agent_a->Write(id, w, batch));
      ASSERT_OK(agent_a->WriteEvent(id, w, Event("after" + std::to_string(b))));
    }
    ASSERT_OK(agent_a->Finish(id, w));
  }
  ASSERT_OK(agent_a->block_store()->SpillAll());
  ASSERT_EQ(agent_a->block_store()->stats().blocks_in_memory, 0);
  ASSERT_OK_AND_ASSIGN(auto reader,
                       agent_b->ReadPartition(id, 0, {{0, 0, server->uri()}, {1, 0, server->uri()}}));
  std::vector<std::vector<std::string>> got(2);
  std::vector<int64_t> batches(2, 0);
  while (true) {
    ASSERT_OK_AND_ASSIGN(ShuffleReaderItem item, reader->NextItem());
    if (item.kind == Kind::kEnd) break;
    if (item.kind == Kind::kEvent) got[item.input].push_back(item.event->ToString());
    if (item.kind == Kind::kBatch) {
      ASSERT_OK_AND_ASSIGN(auto expected, job.WriterBatch(static_cast<int32_t>(item.input),
                                                          batches[item.input]++));
      ASSERT_BATCHES_EQUAL(*expected, *item.batch);
      got[item.input].push_back("rows");
    }
  }
  for (int w = 0; w < 2; ++w) {
    EXPECT_EQ(got[w], (std::vector<std::string>{"start" + std::to_string(w), "rows", "after0",
                                                "rows", "after1"}))
        << "input " << w;
  }
  reader.reset();
  ASSERT_OK(agent_b->Release(id));
  ASSERT_OK(agent_a->Release(id));
}

// Waits for SetOnReady's signal between TryNextItem calls.
class ReadySignal {
 public:
  void Signal() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_ = true;
    }
    changed_.notify_all();
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_ = false;
  }
  // False when no signal came within a minute (the test then fails instead of hanging).
  bool Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::minutes(1), [&] { return ready_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool ready_ = false;
};

class ShuffleReaderAlignmentTest : public ShuffleReaderTest {};

// Barrier alignment on the reader API: 3 writers send batches, then the event "E", then more
// batches. The consumer pauses each input when it delivers E and resumes all once all three
// did. No batch written after E is delivered before every E arrived; while input 0 is paused
// (writers 1 and 2 held back), writer 0 blocks for credit instead of finishing; the consumer
// is driven by TryNextItem and SetOnReady alone.
TEST_F(ShuffleReaderAlignmentTest, PausedInputsHoldTheirWriterUntilEveryBarrierArrived) {
  constexpr int64_t kBefore = 2;
  constexpr int64_t kAfter = 20;
  const ShuffleId id = Register(ShuffleMode::kPipelined, 3, 1, /*exclusive_credits=*/1);
  ASSERT_OK_AND_ASSIGN(auto reader, manager_->ReadPartition(id, 0));
  ReadySignal signal;
  reader->SetOnReady([&] { signal.Signal(); });

  std::promise<void> release_others;
  std::shared_future<void> others_released = release_others.get_future().share();
  std::atomic<int64_t> written_after_e0{0};
  std::atomic<bool> writer0_done{false};
  std::vector<std::future<arrow::Status>> writers;
  for (int32_t w = 0; w < 3; ++w) {
    writers.push_back(std::async(std::launch::async, [&, w]() -> arrow::Status {
      if (w != 0) others_released.wait();
      for (int64_t i = 0; i < kBefore; ++i) ARROW_RETURN_NOT_OK(WriteBlock(id, w, i));
      ARROW_RETURN_NOT_OK(manager_->WriteEvent(id, w, Event("E")));
      for (int64_t i = kBefore; i < kBefore + kAfter; ++i) {
        ARROW_RETURN_NOT_OK(WriteBlock(id, w, i));
        if (w == 0) written_after_e0.fetch_add(1);
      }
      ARROW_RETURN_NOT_OK(manager_->Finish(id, w));
      if (w == 0) writer0_done.store(true);
      return arrow::Status::OK();
    }));
  }

  // On a failed assertion, nothing may wait for ever: the held-back writers are released and
  // the reader cancelled (so writer 0 stops waiting for credit) before the writers are joined.
  bool released = false;
  struct Unblock {
    std::function<void()> run;
    ~Unblock() { run(); }
  } unblock{[&] {
    if (!released) release_others.set_value();
    reader->Cancel();
  }};

  std::vector<bool> seen_e(3, false);
  std::vector<int64_t> batches(3, 0);
  int seen = 0;
  bool checked_blocking = false;
  bool done = false;
  while (!done) {
    signal.Clear();
    ASSERT_OK_AND_ASSIGN(ShuffleReaderItem item, reader->TryNextItem());
    switch (item.kind) {
      case Kind::kNotReady:
        if (seen_e[0] && !checked_blocking) {
          // Input 0 is paused at its barrier and the other writers have not started: writer 0
          // can only fill what its channel and the reader's small queue hold, then it waits for
          // credit. Give it ample time to run ahead if it could.
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          EXPECT_FALSE(writer0_done.load()) << "writer 0 finished while its input was paused";
          EXPECT_LT(written_after_e0.load(), kAfter);
          EXPECT_EQ(batches[0], kBefore);
          checked_blocking = true;
          released = true;
          release_others.set_value();
          continue;
        }
        ASSERT_TRUE(signal.Wait()) << "SetOnReady never signalled";
        break;
      case Kind::kBatch:
        ASSERT_FALSE(reader->input_paused(item.input));
        if (seen_e[item.input]) {
          ASSERT_EQ(seen, 3) << "a batch after E from input " << item.input
                             << " before every input delivered E";
        }
        batches[item.input] += 1;
        break;
      case Kind::kEvent:
        ASSERT_EQ(item.event->ToString(), "E");
        ASSERT_FALSE(seen_e[item.input]);
        ASSERT_EQ(batches[item.input], kBefore) << "E overtook rows written before it";
        seen_e[item.input] = true;
        ++seen;
        ASSERT_OK(reader->PauseInput(item.input));
        if (seen == 3) {
          for (size_t i = 0; i < 3; ++i) ASSERT_OK(reader->ResumeInput(i));
        }
        break;
      case Kind::kInputEnded:
        EXPECT_EQ(batches[item.input], kBefore + kAfter);
        break;
      case Kind::kEnd:
        done = true;
        break;
    }
  }
  EXPECT_TRUE(checked_blocking);
  for (auto& w : writers) EXPECT_OK(w.get());
  ASSERT_OK_AND_ASSIGN(ShuffleStats stats, manager_->Stats(id));
  EXPECT_GT(stats.time_blocked.count(), 0) << "writer 0 never waited for the reader";
}

TEST_F(ShuffleReaderAlignmentTest, PausingHoldsBackItemsAndEndsTryNextItemWithNotReady) {
  const ShuffleId id = Register(ShuffleMode::kBlocking, 2, 1);
  for (int32_t w = 0; w < 2; ++w) {
    ASSERT_OK(WriteBlock(id, w, 0));
    ASSERT_OK(manager_->WriteEvent(id, w, Event("e" + std::to_string(w))));
    ASSERT_OK(manager_->Finish(id, w));
  }
  ASSERT_OK_AND_ASSIGN(auto reader, manager_->ReadPartition(id, 0));
  ASSERT_RAISES_WITH(Invalid, "input 2 is out of range", reader->PauseInput(2));
  ASSERT_RAISES_WITH(Invalid, "input 7 is out of range", reader->ResumeInput(7));
  ASSERT_OK(reader->PauseInput(0));
  ASSERT_OK(reader->PauseInput(1));
  // Paused inputs deliver nothing, not even their ends.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_OK_AND_ASSIGN(ShuffleReaderItem none, reader->TryNextItem());
  EXPECT_EQ(none.kind, Kind::kNotReady);
  ASSERT_OK(reader->ResumeInput(1));
  std::vector<std::string> got;
  while (true) {
    ASSERT_OK_AND_ASSIGN(ShuffleReaderItem item, reader->NextItem());
    if (item.kind == Kind::kInputEnded) {
      got.push_back("end" + std::to_string(item.input));
      if (item.input == 1) break;
      continue;
    }
    ASSERT_EQ(item.input, 1u) << "paused input 0 delivered an item";
    got.push_back(item.kind == Kind::kEvent ? item.event->ToString() : "batch");
  }
  EXPECT_EQ(got, (std::vector<std::string>{"batch", "e1", "end1"}));
  ASSERT_OK_AND_ASSIGN(none, reader->TryNextItem());
  EXPECT_EQ(none.kind, Kind::kNotReady);
  ASSERT_OK(reader->ResumeInput(0));
  ASSERT_OK_AND_ASSIGN(auto rest, reader->ReadAll());
  EXPECT_EQ(rest.size(), 1u);
  ASSERT_OK_AND_ASSIGN(ShuffleReaderItem end, reader->TryNextItem());
  EXPECT_EQ(end.kind, Kind::kEnd);
}

// A failing input ends the read even while it is paused, and SetOnReady hears of it.
TEST_F(ShuffleReaderAlignmentTest, AFailedInputEndsTheReadEvenWhenPaused) {
  const ShuffleId id = Register(ShuffleMode::kPipelined, 1, 1);
  ASSERT_OK_AND_ASSIGN(auto reader, manager_->ReadPartition(id, 0));
  ReadySignal signal;
  reader->SetOnReady([&] { signal.Signal(); });
  ASSERT_OK(reader->PauseInput(0));
  ASSERT_OK(manager_->WriteEvent(id, 0, Event("x")));
  ASSERT_OK(manager_->AbortWriter(id, 0, arrow::Status::IOError("the source broke")));
  ASSERT_TRUE(signal.Wait());
  ASSERT_RAISES_WITH(IOError, "the source broke", reader->TryNextItem().status());
}

// Threads of this process (Linux: the entries of /proc/self/task).
int64_t ProcessThreads() {
  int64_t threads = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)entry;
    ++threads;
  }
  return threads;
}

// A pipelined read of in-process channels polls them from its consuming calls: it starts no
// thread per upstream writer, and still delivers every writer's rows and end.
TEST_F(ShuffleReaderAlignmentTest, InProcessInputsArePolledWithoutAThreadEach) {
  const int32_t writers = 8;
  job_.num_writers = writers;
  const ShuffleId id = Register(ShuffleMode::kPipelined, writers, 1);
  const int64_t before = ProcessThreads();
  ASSERT_OK_AND_ASSIGN(auto reader, manager_->ReadPartition(id, 0));
  EXPECT_LT(ProcessThreads() - before, writers) << "a thread per input was started";
  std::vector<std::thread> writing;
  for (int32_t w = 0; w < writers; ++w) {
    writing.emplace_back([&, w] {
      ASSERT_OK(WriteBlock(id, w, 0));
      ASSERT_OK(manager_->Finish(id, w));
    });
  }
  int64_t rows = 0;
  int32_t ended = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(ShuffleReaderItem item, reader->NextItem());
    if (item.kind == Kind::kEnd) break;
    if (item.kind == Kind::kInputEnded) ++ended;
    if (item.kind == Kind::kBatch) rows += item.batch->num_rows();
  }
  for (auto& thread : writing) thread.join();
  EXPECT_EQ(ended, writers);
  EXPECT_EQ(rows, writers * job_.data.batch_rows);
}

// A polled input whose writer never writes fails the read after the channel's timeout, as a
// waiting input thread did, naming the timeout.
TEST_F(ShuffleReaderAlignmentTest, APolledInputThatStaysEmptyTimesOut) {
  const ShuffleId id = Register(ShuffleMode::kPipelined, 1, 1, 2, std::chrono::milliseconds(200));
  ASSERT_OK_AND_ASSIGN(auto reader, manager_->ReadPartition(id, 0));
  ASSERT_RAISES_WITH(IOError, "timed out after 200 ms", reader->NextItem().status());
}

}  // namespace
}  // namespace sabot
