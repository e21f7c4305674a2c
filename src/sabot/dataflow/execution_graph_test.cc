#include "sabot/dataflow/execution_graph.h"

#include <gtest/gtest.h>

#include "sabot/dataflow/plan_builder.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using std::chrono::minutes;

const GraphEdge& EdgeInto(const ExecutionGraph& g, const std::string& from, const std::string& to,
                          int32_t input = 0) {
  for (const GraphEdge& e : g.edges()) {
    if (g.plan().FindOperator(e.from_operator)->name == from &&
        g.plan().FindOperator(e.to_operator)->name == to && e.input == input) {
      return e;
    }
  }
  ADD_FAILURE() << "no edge " << from << " -> " << to;
  static const GraphEdge kNone;
  return kNone;
}

std::vector<std::string> ChainNames(const ExecutionGraph& g, int32_t chain) {
  std::vector<std::string> names;
  for (OperatorId id : g.chains()[chain].operators) names.push_back(g.plan().FindOperator(id)->name);
  return names;
}

// Regression of the origin's bug: key_by at equal parallelism gave FORWARD and broke key
// locality. It must be HASH on the keys, and the key_by must not be a task of its own.
TEST(ExecutionGraphTest, KeyByAtEqualParallelismIsHash) {
  PlanBuilder b;
  b.Source(GeneratorSourceParams{}, 4, "source")
      .KeyBy({"key"})
      .Aggregate({Sum("p0")}, 4, "agg")
      .Sink(CollectSinkParams{}, 4, "sink");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(ExecutionGraph g, ExecutionGraph::Make(plan));
  ASSERT_EQ(g.edges().size(), 2u);
  const GraphEdge& hash = EdgeInto(g, "source", "agg");
  EXPECT_EQ(hash.type, EdgeType::kHash);
  EXPECT_EQ(hash.keys, (std::vector<std::string>{"key"}));
  EXPECT_FALSE(hash.chained);
  EXPECT_EQ(hash.num_writers, 4);
  EXPECT_EQ(hash.num_partitions, 4);
  EXPECT_EQ(hash.key_by, std::optional<OperatorId>(1));
  EXPECT_EQ(hash.shuffle_id, "s0.source.agg");
  EXPECT_EQ(hash.mode, ShuffleMode::kPipelined);
  EXPECT_EQ(g.ChainOf(1), std::nullopt);  // the key_by is folded
  ASSERT_EQ(g.chains().size(), 2u);
  EXPECT_EQ(ChainNames(g, 0), (std::vector<std::string>{"source"}));
  EXPECT_EQ(ChainNames(g, 1), (std::vector<std::string>{"agg", "sink"}));
  EXPECT_EQ(g.tasks().size(), 8u);
  EXPECT_EQ(g.shuffle_edges(), (std::vector<size_t>{0}));
  EXPECT_EQ(g.InputShuffles(1), (std::vector<size_t>{0}));
  EXPECT_EQ(g.OutputShuffles(0), (std::vector<size_t>{0}));
  EXPECT_TRUE(g.InputShuffles(0).empty());
}

TEST(ExecutionGraphTest, EqualParallelismWithoutKeyIsForwardAndChains) {
  PlanBuilder b;
  b.Source(GeneratorSourceParams{}, 10, "source")
      .Map("y", "p0 * 2", {}, "map")
      .Filter("y > 0", {}, "filter")
      .Sink(CollectSinkParams{}, {}, "sink");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(ExecutionGraph g, ExecutionGraph::Make(plan));
  ASSERT_EQ(g.chains().size(), 1u);
  EXPECT_EQ(ChainNames(g, 0), (std::vector<std::string>{"source", "map", "filter", "sink"}));
  EXPECT_EQ(g.chains()[0].name, "source");
  EXPECT_EQ(g.chains()[0].parallelism, 10);
  ASSERT_EQ(g.tasks().size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(g.tasks()[i].chain, 0);
    EXPECT_EQ(g.tasks()[i].subtask, i);
  }
  for (const GraphEdge& e : g.edges()) {
    EXPECT_EQ(e.type, EdgeType::kForward);
    EXPECT_TRUE(e.chained);
    EXPECT_TRUE(e.shuffle_id.empty());
  }
  EXPECT_TRUE(g.shuffle_edges().empty());

  // Without chaining: the same FORWARD edges, each a 10x10 shuffle of its own.
  PlanBuilder nb;
  nb.SetOptions({ShuffleMode::kBlocking, false});
  nb.Source(GeneratorSourceParams{}, 10, "source").Sink(CollectSinkParams{}, {}, "sink");
  ASSERT_OK_AND_ASSIGN(LogicalPlan unchained_plan, nb.Build());
  ASSERT_OK_AND_ASSIGN(ExecutionGraph u, ExecutionGraph::Make(unchained_plan));
  ASSERT_EQ(u.chains().size(), 2u);
  const GraphEdge& e = EdgeInto(u, "source", "sink");
  EXPECT_EQ(e.type, EdgeType::kForward);
  EXPECT_FALSE(e.chained);
  EXPECT_EQ(e.mode, ShuffleMode::kBlocking);
  EXPECT_EQ(e.shuffle_id, "s0.source.sink");
}

TEST(ExecutionGraphTest, ChangedParallelismWithoutKeyIsRebalance) {
  PlanBuilder b;
  b.Source(GeneratorSourceParams{}, 10, "source")
      .Map("y", "p0", 3, "map")
      .Sink(CollectSinkParams{}, {}, "sink");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(ExecutionGraph g, ExecutionGraph::Make(plan));
  const GraphEdge& e = EdgeInto(g, "source", "map");
  EXPECT_EQ(e.type, EdgeType::kRebalance);
  EXPECT_TRUE(e.keys.empty());
  EXPECT_EQ(e.num_writers, 10);
  EXPECT_EQ(e.num_partitions, 3);
  EXPECT_TRUE(EdgeInto(g, "map", "sink").chained);
  EXPECT_EQ(g.tasks().size(), 13u);
}

TEST(ExecutionGraphTest, BroadcastAndRangeWhenAsked) {
  PlanBuilder b;
  Stream s = b.Source(GeneratorSourceParams{}, 2, "source");
  s.Broadcast().Map("y", "p0", 2, "bcast").Sink(CollectSinkParams{}, {}, "sink1");
  s.PartitionByRange({"key"}, {{int64_t{100}}, {int64_t{200}}})
      .Map("z", "p0", 3, "ranged")
      .Sink(CollectSinkParams{}, {}, "sink2");
  s.PartitionByRange({"key"}).Map("w", "p0", 2, "sampled").Sink(CollectSinkParams{}, {}, "sink3");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(ExecutionGraph g, ExecutionGraph::Make(plan));
  const GraphEdge& bcast = EdgeInto(g, "source", "bcast");
  EXPECT_EQ(bcast.type, EdgeType::kBroadcast);  // asked for, though the parallelism is equal
  EXPECT_FALSE(bcast.chained);
  const GraphEdge& range = EdgeInto(g, "source", "ranged");
  EXPECT_EQ(range.type, EdgeType::kRange);
  EXPECT_EQ(range.keys, (std::vector<std::string>{"key"}));
  EXPECT_EQ(range.boundaries.size(), 2u);
  EXPECT_EQ(range.num_partitions, 3);
  const GraphEdge& sampled = EdgeInto(g, "source", "sampled");
  EXPECT_EQ(sampled.type, EdgeType::kRange);
  EXPECT_TRUE(sampled.boundaries.empty());
  // The source fans out to three consumers: it is a chain of its own.
  EXPECT_EQ(ChainNames(g, 0), (std::vector<std::string>{"source"}));
  EXPECT_EQ(g.OutputShuffles(0).size(), 3u);
}

TEST(ExecutionGraphTest, FanOutAtEqualParallelismIsAnUnchainedForward) {
  PlanBuilder b;
  Stream s = b.Source(GeneratorSourceParams{}, 3, "source");
  s.Map("a", "p0", {}, "left").Sink(CollectSinkParams{}, {}, "sink1");
  s.Filter("p0 > 1", {}, "right").Sink(CollectSinkParams{}, {}, "sink2");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(ExecutionGraph g, ExecutionGraph::Make(plan));
  for (const char* to : {"left", "right"}) {
    const GraphEdge& e = EdgeInto(g, "source", to);
    EXPECT_EQ(e.type, EdgeType::kForward);
    EXPECT_FALSE(e.chained);
    EXPECT_EQ(e.num_writers, 3);
    EXPECT_EQ(e.num_partitions, 3);
  }
  EXPECT_EQ(EdgeInto(g, "source", "left").shuffle_id, "s0.source.left");
  EXPECT_EQ(EdgeInto(g, "source", "right").shuffle_id, "s1.source.right");
  ASSERT_EQ(g.chains().size(), 3u);
  EXPECT_EQ(ChainNames(g, 1), (std::vector<std::string>{"left", "sink1"}));
  EXPECT_EQ(ChainNames(g, 2), (std::vector<std::string>{"right", "sink2"}));
  EXPECT_EQ(g.tasks().size(), 9u);
}

TEST(ExecutionGraphTest, JoinInputsAreHashedOnTheirKeys) {
  PlanBuilder b;
  Stream left = b.Source(GeneratorSourceParams{}, 4, "orders");
  Stream right = b.Source(GeneratorSourceParams{}, 4, "users");
  left.Join(right.KeyBy({"id"}, "users_by_id"), {"user_id"}, {"id"}, JoinType::kInner, 4, "join")
      .Sink(CollectSinkParams{}, {}, "sink");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(ExecutionGraph g, ExecutionGraph::Make(plan));
  const GraphEdge& l = EdgeInto(g, "orders", "join", 0);
  const GraphEdge& r = EdgeInto(g, "users", "join", 1);
  EXPECT_EQ(l.type, EdgeType::kHash);
  EXPECT_EQ(l.keys, (std::vector<std::string>{"user_id"}));
  EXPECT_EQ(r.type, EdgeType::kHash);
  EXPECT_EQ(r.keys, (std::vector<std::string>{"id"}));
  EXPECT_EQ(r.key_by, std::optional<OperatorId>(2));
  EXPECT_EQ(g.InputShuffles(*g.ChainOf(3)).size(), 2u);
  EXPECT_EQ(ChainNames(g, *g.ChainOf(3)), (std::vector<std::string>{"join", "sink"}));
}

TEST(ExecutionGraphTest, BroadcastJoinKeepsTheOtherSidesPartitioning) {
  for (int32_t orders_parallelism : {4, 3}) {
    PlanBuilder b;
    Stream left = b.Source(GeneratorSourceParams{}, orders_parallelism, "orders");
    Stream right = b.Source(GeneratorSourceParams{}, 2, "users");
    left.Join(right, JoinParams{{"user_id"}, {"id"}, JoinType::kLeft, JoinBroadcast::kRight}, 4,
              "join")
        .Sink(CollectSinkParams{}, {}, "sink");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    ASSERT_OK_AND_ASSIGN(ExecutionGraph g, ExecutionGraph::Make(plan));
    const GraphEdge& l = EdgeInto(g, "orders", "join", 0);
    const GraphEdge& r = EdgeInto(g, "users", "join", 1);
    // No hash shuffle of the big side: FORWARD (a shuffle writer i -> partition i: the join has
    // two inputs, so it is not chained) at equal parallelism, REBALANCE otherwise.
    EXPECT_EQ(l.type, orders_parallelism == 4 ? EdgeType::kForward : EdgeType::kRebalance);
    EXPECT_FALSE(l.chained);
    EXPECT_TRUE(l.keys.empty());
    EXPECT_EQ(r.type, EdgeType::kBroadcast);
    EXPECT_EQ(r.num_writers, 2);
    EXPECT_EQ(r.num_partitions, 4);
  }
}

TEST(ExecutionGraphTest, KeyedStreamStaysKeyedThroughFilter) {
  // key_by -> filter[5] -> aggregate[5]: FORWARD, chained; -> aggregate[2]: HASH on the keys.
  for (int32_t agg_parallelism : {5, 2}) {
    PlanBuilder b;
    b.Source(GeneratorSourceParams{}, 10, "source")
        .KeyBy({"key"})
        .Filter("p0 > 0", 5, "filter")
        .Aggregate({Count()}, agg_parallelism, "agg")
        .Sink(CollectSinkParams{}, {}, "sink");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    ASSERT_OK_AND_ASSIGN(ExecutionGraph g, ExecutionGraph::Make(plan));
    EXPECT_EQ(EdgeInto(g, "source", "filter").type, EdgeType::kHash);
    const GraphEdge& into_agg = EdgeInto(g, "filter", "agg");
    if (agg_parallelism == 5) {
      EXPECT_EQ(into_agg.type, EdgeType::kForward);
      EXPECT_TRUE(into_agg.chained);
    } else {
      EXPECT_EQ(into_agg.type, EdgeType::kHash);
      EXPECT_EQ(into_agg.keys, (std::vector<std::string>{"key"}));
    }
  }
}

TEST(ExecutionGraphTest, KeyedStreamStaysKeyedThroughWindow) {
  // window[5] -> aggregate[5]: FORWARD, chained (the rows already sit with their keys);
  // window[5] -> aggregate[2]: HASH again on the same keys, never REBALANCE.
  for (int32_t agg_parallelism : {5, 2}) {
    PlanBuilder b;
    b.Source(GeneratorSourceParams{}, 10, "source")
        .KeyBy({"key"})
        .Window(Tumbling(minutes(5)), 5, "window")
        .Aggregate({Count()}, agg_parallelism, "agg")
        .Sink(CollectSinkParams{}, {}, "sink");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    ASSERT_OK_AND_ASSIGN(ExecutionGraph g, ExecutionGraph::Make(plan));
    const GraphEdge& into_window = EdgeInto(g, "source", "window");
    EXPECT_EQ(into_window.type, EdgeType::kHash);
    EXPECT_EQ(into_window.num_writers, 10);
    EXPECT_EQ(into_window.num_partitions, 5);
    const GraphEdge& into_agg = EdgeInto(g, "window", "agg");
    if (agg_parallelism == 5) {
      EXPECT_EQ(into_agg.type, EdgeType::kForward);
      EXPECT_TRUE(into_agg.chained);
    } else {
      EXPECT_EQ(into_agg.type, EdgeType::kHash);
      EXPECT_EQ(into_agg.keys, (std::vector<std::string>{"key"}));
      EXPECT_EQ(into_agg.key_by, std::nullopt);
    }
  }
}

TEST(ExecutionGraphTest, UnionThroughKeyByAndIdsAreDeterministic) {
  // Two sources into one key_by: each gets its own HASH edge to the consumer.
  std::vector<OperatorSpec> ops{
      {0, "a", 2, GeneratorSourceParams{}},
      {1, "b", 2, GeneratorSourceParams{}},
      {2, "k", 2, KeyByParams{{"key"}}},
      {3, "agg", 3, AggregateParams{{Count()}}},
      {4, "sink", 3, CollectSinkParams{}},
  };
  std::vector<EdgeSpec> edges{{0, 2, 0, {}}, {1, 2, 0, {}}, {2, 3, 0, {}}, {3, 4, 0, {}}};
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, LogicalPlan::Make(ops, edges));
  ASSERT_OK_AND_ASSIGN(ExecutionGraph g1, ExecutionGraph::Make(plan));
  ASSERT_OK_AND_ASSIGN(ExecutionGraph g2, ExecutionGraph::Make(plan));
  ASSERT_EQ(g1.shuffle_edges().size(), 2u);
  EXPECT_EQ(g1.edges()[0].shuffle_id, "s0.a.agg");
  EXPECT_EQ(g1.edges()[1].shuffle_id, "s1.b.agg");
  for (size_t i = 0; i < g1.edges().size(); ++i) {
    EXPECT_EQ(g1.edges()[i].shuffle_id, g2.edges()[i].shuffle_id);
    EXPECT_EQ(g1.edges()[i].type, g2.edges()[i].type);
    EXPECT_EQ(g1.edges()[i].chained, g2.edges()[i].chained);
  }
  EXPECT_EQ(g1.edges()[0].type, EdgeType::kHash);
  EXPECT_EQ(g1.edges()[1].type, EdgeType::kHash);
  // The longest names still give a valid shuffle id.
  std::string long_a(kMaxOperatorNameLength, 'a'), long_b(kMaxOperatorNameLength, 'b');
  ASSERT_OK_AND_ASSIGN(LogicalPlan long_plan,
                       LogicalPlan::Make({{0, long_a, 1, GeneratorSourceParams{}},
                                          {1, long_b, 2, CollectSinkParams{}}},
                                         {{0, 1, 0, {}}}));
  ASSERT_OK_AND_ASSIGN(ExecutionGraph lg, ExecutionGraph::Make(long_plan));
  ASSERT_OK(ValidateId(lg.edges()[0].shuffle_id, "shuffle id"));
  EXPECT_LE(lg.edges()[0].shuffle_id.size(), 103u);
}

// Folding multiplies edges (each input of a key_by times each output): a lattice of key_bys,
// two per layer, each layer feeding both of the next, has 2^layers paths. The graph refuses it
// once it passes kMaxGraphEdges instead of enumerating them all.
TEST(ExecutionGraphTest, KeyByLatticeIsRefusedNotEnumerated) {
  constexpr int kLayers = 40;  // 2^40 paths
  std::vector<OperatorSpec> ops{{0, "source", 1, GeneratorSourceParams{}}};
  std::vector<EdgeSpec> edges;
  OperatorId next = 1;
  std::vector<OperatorId> previous{0};
  for (int layer = 0; layer < kLayers; ++layer) {
    std::vector<OperatorId> current;
    for (int k = 0; k < 2; ++k) {
      OperatorId id = next++;
      ops.push_back({id, "k" + std::to_string(layer) + "_" + std::to_string(k), 1,
                     KeyByParams{{"key"}}});
      for (OperatorId p : previous) edges.push_back({p, id, 0, {}});
      current.push_back(id);
    }
    previous = current;
  }
  OperatorId sink = next++;
  ops.push_back({sink, "sink", 1, CollectSinkParams{}});
  for (OperatorId p : previous) edges.push_back({p, sink, 0, {}});
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, LogicalPlan::Make(ops, edges));
  ASSERT_RAISES_WITH(Invalid, "the plan expands into more than 4000 edges",
                     ExecutionGraph::Make(plan).status());
}

}  // namespace
}  // namespace sabot
