#include "sabot/runtime/engine.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "sabot/memory/test_budget.h"
#include "sabot/verify/generated_shuffle_check.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

EngineOptions Options(EngineMode mode) {
  EngineOptions options;
  options.mode = mode;
  options.manager.memory_budget = testing::TestBudgetBytes(64 << 20);
  options.manager.spill = testing::TestSpillOptions();
  options.server.port = 0;
  options.client.max_attempts = 2;
  options.client.initial_backoff = std::chrono::milliseconds(10);
  return options;
}

ShuffleOptions SmallBlocks(ShuffleMode mode) {
  ShuffleOptions options;
  options.mode = mode;
  options.target_block_rows = 200;
  options.target_block_bytes = 4096;
  options.timeout = std::chrono::seconds(30);
  return options;
}

// Runs the seeds' ShuffleService API on `engines` (agent i is writer i; partition p is read on
// agent p % K) and checks every row with an independent computation.
void RunThroughService(const std::vector<Engine*>& engines, ShuffleMode mode, EdgeType edge) {
  const int32_t k = static_cast<int32_t>(engines.size());
  const int32_t partitions = 5;
  GeneratedJob job;
  job.data.batch_rows = 700;
  job.data.key_cardinality = 300;
  job.num_writers = k;
  job.batches_per_writer = 3;
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(edge, partitions));
  ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job, spec));
  std::vector<std::string> agents;
  for (Engine* engine : engines) agents.push_back(engine->location());
  if (k == 1) agents.clear();  // local mode: this process alone
  for (Engine* engine : engines) {
    ASSERT_OK(engine->shuffle_service()->CreateShuffle(
        "svc", edge, partitions, spec->key_columns(), GeneratedSchema(job.data), agents,
        SmallBlocks(mode), spec->boundaries()));
  }
  std::vector<arrow::Status> send_status(k), receive_status(partitions);
  auto send = [&](int32_t i) {
    send_status[i] = [&]() -> arrow::Status {
      for (int64_t b = 0; b < job.batches_per_writer; ++b) {
        ARROW_ASSIGN_OR_RAISE(auto batch, job.WriterBatch(i, b));
        ARROW_RETURN_NOT_OK(engines[i]->shuffle_service()->Send("svc", batch));
      }
      return engines[i]->shuffle_service()->FinishSending("svc");
    }();
  };
  // One reader task per partition, all at once (a pipelined shuffle needs every reader
  // consuming while the writers produce); partition p is read on agent p % K.
  auto receive = [&](PartitionId p) {
    receive_status[p] = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto batches,
                            engines[p % k]->shuffle_service()->ReceivePartition("svc", p));
      for (const auto& batch : batches) ARROW_RETURN_NOT_OK(check->Check(p, *batch));
      return arrow::Status::OK();
    }();
  };
  std::vector<std::thread> threads;
  for (int32_t i = 0; i < k; ++i) threads.emplace_back(send, i);
  if (mode == ShuffleMode::kBlocking) {
    for (auto& t : threads) t.join();
    threads.clear();
  }
  for (PartitionId p = 0; p < partitions; ++p) threads.emplace_back(receive, p);
  for (auto& t : threads) t.join();
  for (const auto& status : send_status) ASSERT_OK(status);
  for (const auto& status : receive_status) ASSERT_OK(status);
  ASSERT_OK(check->Finish());
  for (Engine* engine : engines) {
    ASSERT_OK_AND_ASSIGN(ShuffleStats stats, engine->shuffle_service()->GetShuffleStats("svc"));
    EXPECT_EQ(stats.writers_finished, 1);
    ASSERT_OK(engine->shuffle_service()->CloseShuffle("svc"));
  }
}

class EngineModes : public ::testing::TestWithParam<std::tuple<ShuffleMode, EdgeType>> {};

TEST_P(EngineModes, LocalModeShufflesThroughTheService) {
  ASSERT_OK_AND_ASSIGN(auto engine, Engine::Make(Options(EngineMode::kLocal)));
  EXPECT_EQ(engine->server(), nullptr) << "local mode starts no server";
  EXPECT_TRUE(engine->location().empty());
  RunThroughService({engine.get()}, std::get<0>(GetParam()), std::get<1>(GetParam()));
}

// Three distributed-mode engines in one process: each has its own Flight server on loopback,
// and every shuffle crosses them over Flight.
TEST_P(EngineModes, DistributedModeGivesTheSameResultAcrossAgents) {
  std::vector<std::unique_ptr<Engine>> owned;
  std::vector<Engine*> engines;
  for (int i = 0; i < 3; ++i) {
    EngineOptions options = Options(EngineMode::kDistributed);
    options.manager.agent_id = "agent-" + std::to_string(i);
    ASSERT_OK_AND_ASSIGN(auto engine, Engine::Make(options));
    ASSERT_NE(engine->server(), nullptr);
    EXPECT_EQ(engine->location().rfind("grpc+tcp://127.0.0.1:", 0), 0u) << engine->location();
    engines.push_back(engine.get());
    owned.push_back(std::move(engine));
  }
  RunThroughService(engines, std::get<0>(GetParam()), std::get<1>(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(
    All, EngineModes,
    ::testing::Combine(::testing::Values(ShuffleMode::kPipelined, ShuffleMode::kBlocking),
                       ::testing::Values(EdgeType::kHash, EdgeType::kRange, EdgeType::kBroadcast,
                                         EdgeType::kRebalance)));

// A pipelined reader that opens before its writer (here, on the same agent, over Flight) must
// find the writer once it starts.
TEST(Engine, PipelinedReaderMayOpenBeforeItsWriter) {
  ASSERT_OK_AND_ASSIGN(auto engine, Engine::Make(Options(EngineMode::kDistributed)));
  GeneratedJob job;
  job.data.batch_rows = 300;
  ASSERT_OK(engine->shuffle_service()->CreateShuffle("early", EdgeType::kRebalance, 1, {},
                                                     GeneratedSchema(job.data),
                                                     {engine->location()},
                                                     SmallBlocks(ShuffleMode::kPipelined)));
  ASSERT_OK_AND_ASSIGN(auto reader, engine->shuffle_service()->OpenPartition("early", 0));
  std::thread writer([&] {
    ASSERT_OK_AND_ASSIGN(auto batch, job.WriterBatch(0, 0));
    ASSERT_OK(engine->shuffle_service()->Send("early", batch));
    ASSERT_OK(engine->shuffle_service()->FinishSending("early"));
  });
  ASSERT_OK_AND_ASSIGN(auto batches, reader->ReadAll());
  writer.join();
  int64_t rows = 0;
  for (const auto& batch : batches) rows += batch->num_rows();
  EXPECT_EQ(rows, 300);
}

// A reader fetching a remote stream its writer has not finished (the fetch waits on the
// writer's agent for the next block) stops at once when cancelled, and its Next() says which
// shuffle and partition. Before, the fetch noticed the cancellation only when the next message
// came: the reader's teardown waited for the writer, or for the store's 5-minute read timeout.
TEST(Engine, CancellingAReaderEndsItsWaitForARemoteStream) {
  ASSERT_OK_AND_ASSIGN(auto writer_agent, Engine::Make(Options(EngineMode::kDistributed)));
  ASSERT_OK_AND_ASSIGN(auto reader_agent, Engine::Make(Options(EngineMode::kDistributed)));
  GeneratedJob job;
  job.data.batch_rows = 300;
  ShuffleDescriptor descriptor;
  descriptor.shuffle_id = "remote";
  ASSERT_OK_AND_ASSIGN(descriptor.spec, job.MakeSpec(EdgeType::kRebalance, 1));
  descriptor.schema = GeneratedSchema(job.data);
  descriptor.num_writers = 1;
  descriptor.options = SmallBlocks(ShuffleMode::kBlocking);
  ASSERT_OK(writer_agent->shuffle_manager()->RegisterShuffle(descriptor));
  ASSERT_OK(reader_agent->shuffle_manager()->RegisterShuffle(descriptor));
  // The writer declares its stream and stores every row of a batch, but never finishes.
  ASSERT_OK(writer_agent->shuffle_manager()->OpenWriter("remote", 0));
  ASSERT_OK_AND_ASSIGN(auto batch, job.WriterBatch(0, 0));
  ASSERT_OK(writer_agent->shuffle_manager()->Write("remote", 0, batch));
  ASSERT_OK(writer_agent->shuffle_manager()->FlushPartition("remote", 0, 0));
  ASSERT_OK_AND_ASSIGN(auto reader, reader_agent->shuffle_manager()->ReadPartition(
                                        "remote", 0, {{0, 0, writer_agent->location()}}));
  // Once every stored row arrived, the fetch waits for the next block.
  for (int64_t rows = 0; rows < batch->num_rows();) {
    ASSERT_OK_AND_ASSIGN(auto received, reader->Next());
    ASSERT_NE(received, nullptr);
    rows += received->num_rows();
  }
  reader->Cancel();
  auto next = reader->Next();
  ASSERT_RAISES_WITH(Cancelled, "cancelled", next.status());
  EXPECT_NE(next.status().message().find("shuffle 'remote' partition 0"), std::string::npos)
      << next.status().ToString();
  // Destroying the reader joins its input threads: the fetch must have ended.
  auto torn_down = std::async(std::launch::async, [&] { reader.reset(); });
  const bool ended = torn_down.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  if (!ended) ASSERT_OK(writer_agent->shuffle_manager()->Finish("remote", 0));  // to join it
  torn_down.get();
  EXPECT_TRUE(ended) << "the cancelled fetch kept waiting for the remote writer";
}

TEST(Engine, AnAgentThatDoesNotAnswerIsAClearError) {
  EngineOptions options = Options(EngineMode::kDistributed);
  ASSERT_OK_AND_ASSIGN(auto engine, Engine::Make(options));
  const std::string dead = "grpc+tcp://127.0.0.1:1";
  GeneratedJob job;
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(EdgeType::kHash, 2));
  ShuffleOptions shuffle = SmallBlocks(ShuffleMode::kBlocking);
  shuffle.timeout = std::chrono::seconds(5);
  ASSERT_OK(engine->shuffle_service()->CreateShuffle("s", EdgeType::kHash, 2, {"key"},
                                                     GeneratedSchema(job.data),
                                                     {engine->location(), dead}, shuffle));
  ASSERT_OK(engine->shuffle_service()->FinishSending("s"));
  auto received = engine->shuffle_service()->ReceivePartition("s", 0);
  ASSERT_FALSE(received.ok());
  const std::string message = received.status().message();
  EXPECT_NE(message.find("agent '" + dead + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("shuffle 's'"), std::string::npos) << message;
  EXPECT_NE(message.find("partition 0"), std::string::npos) << message;
}

TEST(Engine, ServiceRejectsBadCalls) {
  ASSERT_OK_AND_ASSIGN(auto engine, Engine::Make(Options(EngineMode::kLocal)));
  ShuffleService* service = engine->shuffle_service();
  GeneratedJob job;
  auto schema = GeneratedSchema(job.data);
  ASSERT_RAISES_WITH(Invalid, "not one of", service->CreateShuffle("s", EdgeType::kHash, 2, {"key"},
                                                                   schema, {"grpc+tcp://x:1"}));
  ASSERT_OK(service->CreateShuffle("s", EdgeType::kHash, 2, {"key"}, schema));
  ASSERT_OK_AND_ASSIGN(auto batch, job.WriterBatch(0, 0));
  ASSERT_RAISES_WITH(KeyError, "shuffle 'nope'", service->Send("nope", batch));
  ASSERT_RAISES_WITH(IndexError, "partition 9", service->ReceivePartition("s", 9).status());
  ASSERT_OK(service->Shutdown());
  ASSERT_RAISES_WITH(Invalid, "shut down", service->Send("s", batch));
}

}  // namespace
}  // namespace sabot
