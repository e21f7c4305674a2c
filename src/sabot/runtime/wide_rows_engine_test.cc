// Rows of very different widths through a pipelined shuffle across two distributed-mode engines:
// blocks are encoded (IPC, dictionaries in every block) and cross Arrow Flight, so this covers
// the encoded path of cutting blocks by the rows' actual bytes.

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>

#include "sabot/memory/test_batches.h"
#include "sabot/memory/test_wide_batches.h"
#include "sabot/runtime/engine.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

constexpr int64_t kRowsPerAgent = 1500;

class WideRowsEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      EngineOptions options;
      options.mode = EngineMode::kDistributed;
      options.manager.agent_id = "agent-" + std::to_string(i);
      options.manager.memory_budget = 256 << 20;
      options.server.port = 0;
      engines_.push_back(Engine::Make(options).ValueOrDie());
      agents_.push_back(engines_.back()->location());
    }
  }

  // Agent i sends `inputs[i]`; partition p is read on agent p % 2. Returns each partition's
  // batches, or the first error of a sender or a reader.
  arrow::Result<std::vector<std::vector<std::shared_ptr<arrow::RecordBatch>>>> Run(
      const std::string& id, const std::shared_ptr<arrow::Schema>& schema,
      const std::vector<std::shared_ptr<arrow::RecordBatch>>& inputs) {
    ShuffleOptions options;
    options.mode = ShuffleMode::kPipelined;
    options.timeout = std::chrono::seconds(60);
    for (auto& engine : engines_) {
      ARROW_RETURN_NOT_OK(engine->shuffle_service()->CreateShuffle(
          id, EdgeType::kHash, 2, {"id"}, schema, agents_, options));
    }
    std::vector<arrow::Status> sent(2), read(2);
    std::vector<std::vector<std::shared_ptr<arrow::RecordBatch>>> received(2);
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        ShuffleService* service = engines_[i]->shuffle_service();
        sent[i] = service->Send(id, inputs[i]);
        if (sent[i].ok()) sent[i] = service->FinishSending(id);
      });
      threads.emplace_back([&, i] {
        auto batches = engines_[i]->shuffle_service()->ReceivePartition(id, i);
        read[i] = batches.status();
        if (batches.ok()) received[i] = std::move(*batches);
      });
    }
    for (auto& thread : threads) thread.join();
    for (auto& engine : engines_) (void)engine->shuffle_service()->CloseShuffle(id);
    for (const auto& status : sent) ARROW_RETURN_NOT_OK(status);
    for (const auto& status : read) ARROW_RETURN_NOT_OK(status);
    return received;
  }

  std::vector<std::unique_ptr<Engine>> engines_;
  std::vector<std::string> agents_;
};

// Agent i writes ids [i * kRowsPerAgent, (i + 1) * kRowsPerAgent) (the second one from a slice
// at an offset); every id arrives once, equal to its input row, in writer order per partition.
TEST_F(WideRowsEngineTest, WideRowsCrossAgentsOnceAndInOrder) {
  for (auto kind : {testing::WideKind::kString, testing::WideKind::kLargeBinary,
                    testing::WideKind::kList, testing::WideKind::kDictionary,
                    testing::WideKind::kStruct}) {
    SCOPED_TRACE(testing::ToString(kind));
    ASSERT_OK_AND_ASSIGN(auto first, testing::MakeWideBatch(kind, 0, kRowsPerAgent, 20 * 1024));
    ASSERT_OK_AND_ASSIGN(auto padded, testing::MakeWideBatch(kind, kRowsPerAgent - 7,
                                                             kRowsPerAgent + 7, 20 * 1024));
    std::vector<std::shared_ptr<arrow::RecordBatch>> inputs = {first,
                                                               padded->Slice(7, kRowsPerAgent)};
    ASSERT_OK_AND_ASSIGN(auto received,
                         Run("wide-" + testing::ToString(kind), first->schema(), inputs));
    std::vector<int> seen(2 * kRowsPerAgent, 0);
    for (const auto& batches : received) {
      if (batches.empty()) continue;
      ASSERT_OK_AND_ASSIGN(auto part, testing::ConcatenateDense(batches));
      const auto& ids = static_cast<const arrow::Int64Array&>(*part->column(0));
      std::vector<int64_t> last = {-1, -1};  // per writer
      for (int64_t i = 0; i < ids.length(); ++i) {
        const int64_t id = ids.Value(i);
        ASSERT_GE(id, 0);
        ASSERT_LT(id, 2 * kRowsPerAgent);
        const int64_t writer = id / kRowsPerAgent;
        ASSERT_LT(last[writer], id) << "writer order within a partition";
        last[writer] = id;
        ASSERT_OK_AND_ASSIGN(
            auto expected,
            testing::ConcatenateDense({inputs[writer]->Slice(id % kRowsPerAgent, 1)}));
        ASSERT_BATCHES_EQUAL(*expected, *part->Slice(i, 1));
        seen[static_cast<size_t>(id)] += 1;
      }
    }
    for (int64_t id = 0; id < 2 * kRowsPerAgent; ++id) {
      ASSERT_EQ(seen[static_cast<size_t>(id)], 1) << id;
    }
  }
}

// A row larger than a channel can ever reserve fails its writer with the row's size, the
// partition and the limit, and the shuffle ends with an error instead of hanging.
TEST_F(WideRowsEngineTest, ARowNoChannelCanHoldIsRefused) {
  auto kind = testing::WideKind::kString;
  // Rows 355..364: row 361 onwards are 1 MiB each.
  ASSERT_OK_AND_ASSIGN(auto wide, testing::MakeWideBatch(kind, 355, 10, 1 << 20));
  ASSERT_OK_AND_ASSIGN(auto narrow, testing::MakeWideBatch(kind, 0, 10, 1 << 20));
  arrow::Status status = Run("huge", wide->schema(), {wide, narrow}).status();
  ASSERT_RAISES_WITH(CapacityError, "a row of ", status);
  EXPECT_NE(status.message().find("partition"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("327680 bytes"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace sabot
