#include "sabot/runtime/task_placement.h"

#include <gtest/gtest.h>

#include "sabot/dataflow/plan_builder.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

// generator[4] -> map[4] (chained) -REBALANCE-> filter[2] -> csv sink[2] (chained): chains of
// parallelism 4 and 2.
ExecutionGraph Graph(int32_t source_parallelism, int32_t sink_parallelism) {
  PlanBuilder b;
  GeneratorSourceParams source;
  source.table = GeneratorTable::kTransactions;
  source.rows = 1000;
  b.Source(source, source_parallelism)
      .Map("x", "amount * 2")
      .Rebalance()
      .Filter("amount < 10", sink_parallelism)
      .Sink(FileSinkParams{FileFormat::kCsv, "/tmp/unused"}, sink_parallelism);
  auto plan = b.Build().ValueOrDie();
  return ExecutionGraph::Make(plan).ValueOrDie();
}

TEST(TaskPlacementTest, SlotsNeededIsTheLargestParallelism) {
  EXPECT_EQ(SlotsNeeded(Graph(4, 2)), 4);
  EXPECT_EQ(SlotsNeeded(Graph(1, 3)), 3);
}

TEST(TaskPlacementTest, SlotKHoldsSubtaskKOfEveryChainSpreadRoundRobin) {
  const ExecutionGraph graph = Graph(4, 2);
  ASSERT_OK_AND_ASSIGN(auto placement,
                       PlaceTasks(graph, {{"a", 4}, {"b", 4}, {"c", 4}}));
  // Equal free slots: a, b, c, a.
  EXPECT_EQ(placement.slot_agent, (std::vector<int32_t>{0, 1, 2, 0}));
  EXPECT_EQ(placement.slots_used, (std::vector<int32_t>{2, 1, 1}));
  ASSERT_EQ(placement.task_agent.size(), graph.chains().size());
  for (const ChainSpec& chain : graph.chains()) {
    for (int32_t s = 0; s < chain.parallelism; ++s) {
      EXPECT_EQ(placement.task_agent[chain.id][s], placement.slot_agent[s]);
    }
  }
}

TEST(TaskPlacementTest, AgentWithMostFreeSlotsFirst) {
  ASSERT_OK_AND_ASSIGN(auto placement, PlaceTasks(Graph(4, 2), {{"a", 1}, {"b", 3}, {"c", 2}}));
  // b (3 free), then b or c (2 each: b listed first), then c, then a/b/c with 1 each: a.
  EXPECT_EQ(placement.slot_agent, (std::vector<int32_t>{1, 1, 2, 0}));
}

TEST(TaskPlacementTest, TooFewSlotsIsACapacityErrorNamingTheFigures) {
  auto placement = PlaceTasks(Graph(4, 2), {{"a", 1}, {"b", 2}});
  ASSERT_TRUE(placement.status().IsCapacityError()) << placement.status();
  const std::string message = placement.status().message();
  EXPECT_NE(message.find("needs 4 slots"), std::string::npos) << message;
  EXPECT_NE(message.find("have 3 free"), std::string::npos) << message;
  EXPECT_NE(message.find("a: 1, b: 2"), std::string::npos) << message;
  EXPECT_TRUE(PlaceTasks(Graph(4, 2), {}).status().IsInvalid());
}

}  // namespace
}  // namespace sabot
