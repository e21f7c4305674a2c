#include "sabot/dataflow/plan_builder.h"

#include <gtest/gtest.h>

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using std::chrono::minutes;

GeneratorSourceParams Transactions() {
  GeneratorSourceParams p;
  p.table = GeneratorTable::kTransactions;
  p.event_time = EventTimeSpec{"event_time", std::chrono::seconds(5)};
  return p;
}

// The seeds' pipeline: transactions[10] -> map[10] -> key_by(user_id) -> window -> aggregate[5]
// -> sink.
TEST(PlanBuilderTest, SeedPipeline) {
  PlanBuilder b;
  b.Source(Transactions(), 10)
      .Map("amount_usd", "amount * 1.1")
      .Filter("amount > 0")
      .KeyBy({"user_id"})
      .Window(Tumbling(minutes(5)))
      .Aggregate({Sum("amount"), Count()}, 5)
      .Sink(ConsoleSinkParams{});
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_EQ(plan.operators().size(), 7u);
  std::vector<std::string> names;
  std::vector<int32_t> parallelism;
  for (const OperatorSpec& op : plan.operators()) {
    names.push_back(op.name);
    parallelism.push_back(op.parallelism);
    EXPECT_EQ(op.id, static_cast<OperatorId>(names.size() - 1));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"generator_source", "map", "filter", "key_by",
                                             "window", "aggregate", "console_sink"}));
  // Map and filter inherit 10; the window takes its aggregate's 5; the sink inherits 5.
  EXPECT_EQ(parallelism, (std::vector<int32_t>{10, 10, 10, 10, 5, 5, 5}));
  EXPECT_EQ(std::get<WindowParams>(plan.operators()[4].params), Tumbling(minutes(5)));
  EXPECT_EQ(std::get<AggregateParams>(plan.operators()[5].params).aggregates,
            (std::vector<AggregateSpec>{Sum("amount"), Count()}));
  ASSERT_EQ(plan.edges().size(), 6u);
  for (size_t i = 0; i < plan.edges().size(); ++i) {
    EXPECT_EQ(plan.edges()[i], (EdgeSpec{static_cast<OperatorId>(i),
                                         static_cast<OperatorId>(i + 1), 0, {}}));
  }
}

TEST(PlanBuilderTest, FanOutJoinNamesAndRequests) {
  PlanBuilder b;
  b.SetOptions({ShuffleMode::kBlocking, false});
  Stream orders = b.Source(FileSourceParams{FileFormat::kParquet, {"/data/orders"}, {}, {}}, 4,
                           "orders");
  Stream users = b.Source(FileSourceParams{FileFormat::kCsv, {"/data/users.csv"}, {}, {}}, 2,
                          "users");
  Stream joined = orders.Join(users.Broadcast(), {"user_id"}, {"id"}, JoinType::kLeft, 4);
  joined.Sink(CollectSinkParams{});
  joined.Rebalance().Project({{"id", "id"}}, 2).Sink(FileSinkParams{FileFormat::kIpc, "/out", {}});
  // Broadcast into a join is rejected (a join input is HASH on its keys).
  ASSERT_RAISES_WITH(Invalid, "edge 'users' -> 'join' (input 1): a join input is HASH",
                     b.Build().status());

  PlanBuilder ok;
  ok.SetOptions({ShuffleMode::kBlocking, false});
  Stream o = ok.Source(GeneratorSourceParams{}, 4, "orders");
  Stream u = ok.Source(GeneratorSourceParams{}, 2, "users");
  Stream j = o.Join(u, {"key"}, {"key"}, JoinType::kLeft, 4);
  j.Sink(CollectSinkParams{});
  j.Rebalance().Project({{"key", "key"}}, 2).Sink(CollectSinkParams{});
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, ok.Build());
  EXPECT_EQ(plan.options(), (PlanOptions{ShuffleMode::kBlocking, false}));
  std::vector<std::string> names;
  for (const OperatorSpec& op : plan.operators()) names.push_back(op.name);
  EXPECT_EQ(names, (std::vector<std::string>{"orders", "users", "join", "collect_sink", "project",
                                             "collect_sink_2"}));
  EXPECT_EQ(plan.edges()[1], (EdgeSpec{1, 2, 1, {}}));
  EXPECT_EQ(plan.edges()[3].partitioning, PartitioningRequest::Rebalance());
  EXPECT_EQ(plan.edges()[4].partitioning, PartitioningRequest::None());
  EXPECT_EQ(plan.operators()[3].parallelism, 4);
}

TEST(PlanBuilderTest, BuildReportsMisuse) {
  PlanBuilder a, b;
  Stream sa = a.Source(GeneratorSourceParams{});
  Stream sb = b.Source(GeneratorSourceParams{});
  sa.Join(sb, {"key"}, {"key"});
  ASSERT_RAISES_WITH(Invalid, "join: the right input is a stream of another PlanBuilder",
                     a.Build().status());

  PlanBuilder c;
  Stream none;
  EXPECT_EQ(none.Map("y", "x").id(), -1);
  c.Source(GeneratorSourceParams{}).Map("y", "x", 0).Sink(CollectSinkParams{});
  ASSERT_RAISES_WITH(Invalid, "operator 'map' (id 1): parallelism must be between 1 and 1024, got 0",
                     c.Build().status());

  PlanBuilder d;
  d.Source(GeneratorSourceParams{}, 1, "x").Map("y", "x", 1, "x").Sink(CollectSinkParams{});
  ASSERT_RAISES_WITH(Invalid, "another operator has the same name", d.Build().status());

  PlanBuilder e;
  e.Source(GeneratorSourceParams{}).Map("y", "x");
  ASSERT_RAISES_WITH(Invalid, "operator 'map' (id 1): its output goes nowhere",
                     e.Build().status());
}

TEST(PlanBuilderTest, WindowWithoutConsumerParallelismInheritsInput) {
  PlanBuilder b;
  b.Source(GeneratorSourceParams{}, 3)
      .KeyBy({"key"})
      .Window(Sliding(minutes(10), minutes(5)))
      .Aggregate({Max("p0")})
      .Sink(CollectSinkParams{}, 1);
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  EXPECT_EQ(plan.operators()[2].parallelism, 3);
  EXPECT_EQ(plan.operators()[3].parallelism, 3);
  EXPECT_EQ(plan.operators()[4].parallelism, 1);
}

}  // namespace
}  // namespace sabot
