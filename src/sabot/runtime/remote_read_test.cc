// Non-blocking reads across agents, as a task of a distributed job does them (TaskRunner): the
// reader polls with TryNextItem() and parks until its SetOnReady() callback fires, over the
// Flight transport's pipelined channels and from another agent's block store. The reader opens
// before its writer's agent registered the shuffle or started writing: it waits, it does not
// fail.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "sabot/memory/test_budget.h"
#include "sabot/runtime/engine.h"
#include "sabot/testing/assertions.h"
#include "sabot/verify/generated_shuffle_check.h"

namespace sabot {
namespace {

EngineOptions DistributedOptions(const std::string& id) {
  EngineOptions options;
  options.mode = EngineMode::kDistributed;
  options.manager.agent_id = id;
  options.manager.memory_budget = testing::TestBudgetBytes(64 << 20);
  options.manager.spill = testing::TestSpillOptions();
  options.server.port = 0;
  options.client.max_attempts = 2;
  options.client.initial_backoff = std::chrono::milliseconds(10);
  return options;
}

// A consumer parked on the reader's on_ready, as a task on the scheduler is.
struct Parking {
  std::mutex mutex;
  std::condition_variable woken;
  int64_t wakes = 0;

  void Wake() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++wakes;
    }
    woken.notify_all();
  }
  // Waits for a wake after `seen`; false after `timeout`.
  bool WaitPast(int64_t seen, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex);
    return woken.wait_for(lock, timeout, [&] { return wakes > seen; });
  }
  int64_t Count() {
    std::lock_guard<std::mutex> lock(mutex);
    return wakes;
  }
};

class RemoteReadTest : public ::testing::TestWithParam<ShuffleMode> {};

TEST_P(RemoteReadTest, NonBlockingReaderOpensBeforeItsRemoteWriterAndWaits) {
  ASSERT_OK_AND_ASSIGN(auto writer_agent, Engine::Make(DistributedOptions("writer")));
  ASSERT_OK_AND_ASSIGN(auto reader_agent, Engine::Make(DistributedOptions("reader")));
  GeneratedJob job;
  job.data.batch_rows = 500;
  job.data.key_cardinality = 100;
  job.num_writers = 2;
  job.batches_per_writer = 4;
  ShuffleDescriptor descriptor;
  descriptor.shuffle_id = "early";
  ASSERT_OK_AND_ASSIGN(descriptor.spec, job.MakeSpec(EdgeType::kHash, 1));
  descriptor.schema = GeneratedSchema(job.data);
  descriptor.num_writers = 2;
  descriptor.options.mode = GetParam();
  descriptor.options.target_block_rows = 200;
  descriptor.options.target_block_bytes = 4096;
  descriptor.options.timeout = std::chrono::seconds(60);
  // Only the reader's agent knows the shuffle yet: the writers' agent has not registered it.
  ASSERT_OK(reader_agent->shuffle_manager()->RegisterShuffle(descriptor));
  ASSERT_OK_AND_ASSIGN(auto reader,
                       reader_agent->shuffle_manager()->ReadPartition(
                           "early", 0,
                           {{0, 0, writer_agent->location()}, {1, 0, writer_agent->location()}}));
  Parking parking;
  reader->SetOnReady([&parking] { parking.Wake(); });
  ASSERT_OK_AND_ASSIGN(auto first, reader->TryNextItem());
  EXPECT_EQ(first.kind, ShuffleReaderItem::Kind::kNotReady);

  // A while later the writers' agent registers the shuffle and its two writer tasks write.
  std::thread writers([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ShuffleManager* manager = writer_agent->shuffle_manager();
    ASSERT_OK(manager->RegisterShuffle(descriptor));
    for (int32_t w = 0; w < job.num_writers; ++w) {
      ASSERT_OK(manager->OpenWriter("early", w));
      for (int64_t b = 0; b < job.batches_per_writer; ++b) {
        ASSERT_OK_AND_ASSIGN(auto batch, job.WriterBatch(w, b));
        ASSERT_OK(manager->Write("early", w, batch));
      }
      ASSERT_OK(manager->Finish("early", w));
    }
  });

  // The consumer never blocks in the reader: it polls, and parks until woken.
  int64_t rows = 0;
  int64_t inputs_ended = 0;
  int64_t not_ready = 0;
  bool ended = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ended && std::chrono::steady_clock::now() < deadline) {
    const int64_t seen = parking.Count();
    ASSERT_OK_AND_ASSIGN(auto item, reader->TryNextItem());
    switch (item.kind) {
      case ShuffleReaderItem::Kind::kBatch:
        rows += item.batch->num_rows();
        break;
      case ShuffleReaderItem::Kind::kInputEnded:
        ++inputs_ended;
        break;
      case ShuffleReaderItem::Kind::kEnd:
        ended = true;
        break;
      case ShuffleReaderItem::Kind::kEvent:
        break;
      case ShuffleReaderItem::Kind::kNotReady:
        ++not_ready;
        // Woken when something may be there; a short bound guards against a lost wake-up
        // failing the test by a hang instead of an assertion.
        parking.WaitPast(seen, std::chrono::seconds(5));
        break;
    }
  }
  writers.join();
  EXPECT_TRUE(ended);
  EXPECT_EQ(rows, job.total_rows());
  EXPECT_EQ(inputs_ended, 2);
  EXPECT_GT(not_ready, 0);
  EXPECT_GT(parking.Count(), 0);
  EXPECT_EQ(reader->stats().rows_per_input,
            (std::vector<int64_t>{job.total_rows() / 2, job.total_rows() / 2}));
  // Both writers' rows are equally wide (fixed-width columns): equal bytes, more than a byte a row.
  const auto bytes = reader->stats().bytes_per_input;
  ASSERT_EQ(bytes.size(), 2u);
  EXPECT_EQ(bytes[0], bytes[1]);
  EXPECT_GT(bytes[0], job.total_rows() / 2);
}

INSTANTIATE_TEST_SUITE_P(Modes, RemoteReadTest,
                         ::testing::Values(ShuffleMode::kPipelined, ShuffleMode::kBlocking),
                         [](const auto& info) {
                           return std::string(ShuffleModeName(info.param));
                         });

}  // namespace
}  // namespace sabot
