#include "sabot/dataflow/logical_plan.h"

#include <functional>

#include <gtest/gtest.h>

#include "sabot/dataflow/plan_builder.h"

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

OperatorSpec Op(OperatorId id, std::string name, int32_t parallelism, OperatorParams params) {
  return OperatorSpec{id, std::move(name), parallelism, std::move(params)};
}
OperatorSpec Gen(OperatorId id, std::string name = "source", int32_t p = 2) {
  return Op(id, std::move(name), p, GeneratorSourceParams{});
}
OperatorSpec MapOp(OperatorId id, std::string name = "map", int32_t p = 2) {
  return Op(id, std::move(name), p, MapParams{{{"y", "x + 1"}}});
}
OperatorSpec SinkOp(OperatorId id, std::string name = "sink", int32_t p = 2) {
  return Op(id, std::move(name), p, CollectSinkParams{});
}
EdgeSpec E(OperatorId from, OperatorId to, PartitioningRequest r = {}, int32_t input = 0) {
  return EdgeSpec{from, to, input, std::move(r)};
}

// source -> map -> sink, then `change` applied to the operators and edges.
arrow::Status MakeWith(const std::function<void(std::vector<OperatorSpec>&,
                                                std::vector<EdgeSpec>&)>& change) {
  std::vector<OperatorSpec> ops{Gen(0), MapOp(1), SinkOp(2)};
  std::vector<EdgeSpec> edges{E(0, 1), E(1, 2)};
  change(ops, edges);
  return LogicalPlan::Make(std::move(ops), std::move(edges)).status();
}

TEST(LogicalPlanTest, ValidPlanKeepsOrderAndTopology) {
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan,
                       LogicalPlan::Make({SinkOp(7), Gen(3), MapOp(5)}, {E(3, 5), E(5, 7)}));
  EXPECT_EQ(plan.operators()[0].name, "sink");
  EXPECT_EQ(plan.topological_order(), (std::vector<OperatorId>{3, 5, 7}));
  EXPECT_EQ(plan.FindOperator(5)->name, "map");
  EXPECT_EQ(plan.FindOperator(4), nullptr);
  EXPECT_EQ(plan.InputEdges(5), (std::vector<size_t>{0}));
  EXPECT_EQ(plan.OutputEdges(5), (std::vector<size_t>{1}));
  ASSERT_OK(plan.Validate());
}

TEST(LogicalPlanTest, OperatorRules) {
  ASSERT_RAISES_WITH(Invalid, "the plan has no operators", LogicalPlan::Make({}, {}).status());
  ASSERT_RAISES_WITH(Invalid, "operator 'map' (id 0): id 0 is also the id of operator 'source'",
                     MakeWith([](auto& ops, auto&) { ops[1].id = 0; }));
  ASSERT_RAISES_WITH(Invalid, "id must be >= 0", MakeWith([](auto& ops, auto& edges) {
                       ops[1].id = -1;
                     }));
  ASSERT_RAISES_WITH(Invalid, "operator 'sink' (id 2): another operator has the same name",
                     MakeWith([](auto& ops, auto&) { ops[2].name = "sink"; ops[1].name = "sink"; }));
  ASSERT_RAISES_WITH(Invalid, "operator with id 1 has an empty name",
                     MakeWith([](auto& ops, auto&) { ops[1].name = ""; }));
  ASSERT_RAISES_WITH(Invalid, "name has a character not allowed at position 1",
                     MakeWith([](auto& ops, auto&) { ops[1].name = "m.x"; }));
  ASSERT_RAISES_WITH(Invalid, "name is 49 characters long",
                     MakeWith([](auto& ops, auto&) { ops[1].name = std::string(49, 'a'); }));
  ASSERT_RAISES_WITH(Invalid, "operator 'map' (id 1): parallelism must be between 1 and 1024, got 0",
                     MakeWith([](auto& ops, auto&) { ops[1].parallelism = 0; }));
  ASSERT_RAISES_WITH(Invalid, "got 1025",
                     MakeWith([](auto& ops, auto&) { ops[1].parallelism = 1025; }));
}

TEST(LogicalPlanTest, EdgeRules) {
  ASSERT_RAISES_WITH(Invalid, "edge 'map' -> id 9: no operator has id 9",
                     MakeWith([](auto&, auto& edges) { edges[1].to = 9; }));
  ASSERT_RAISES_WITH(Invalid, "an operator cannot feed itself",
                     MakeWith([](auto&, auto& edges) { edges.push_back(E(1, 1)); }));
  ASSERT_RAISES_WITH(Invalid, "input 1 does not exist",
                     MakeWith([](auto&, auto& edges) { edges[1].input = 1; }));
  ASSERT_RAISES_WITH(Invalid, "edge 'map' -> 'sink': appears twice",
                     MakeWith([](auto&, auto& edges) { edges.push_back(E(1, 2)); }));
  ASSERT_RAISES_WITH(Invalid, "forward partitioning needs equal parallelism",
                     MakeWith([](auto& ops, auto& edges) {
                       ops[1].parallelism = 3;
                       ops[2].parallelism = 3;
                       edges[0].partitioning = PartitioningRequest::Forward();
                     }));
  ASSERT_RAISES_WITH(Invalid, "hash partitioning needs at least one key column",
                     MakeWith([](auto&, auto& edges) {
                       edges[0].partitioning = PartitioningRequest::Hash({});
                     }));
  ASSERT_RAISES_WITH(Invalid, "key column 'k' appears twice", MakeWith([](auto&, auto& edges) {
                       edges[0].partitioning = PartitioningRequest::Hash({"k", "k"});
                     }));
  ASSERT_RAISES_WITH(Invalid, "rebalance partitioning takes no keys",
                     MakeWith([](auto&, auto& edges) {
                       edges[0].partitioning = {PartitioningKind::kRebalance, {"k"}, {}};
                     }));
  ASSERT_RAISES_WITH(Invalid, "range partitioning into 2 tasks needs 1 boundaries, got 2",
                     MakeWith([](auto&, auto& edges) {
                       edges[0].partitioning = PartitioningRequest::Range({"k"}, {{1}, {2}});
                     }));
  ASSERT_RAISES_WITH(Invalid, "boundaries are not sorted ascending",
                     MakeWith([](auto& ops, auto& edges) {
                       ops[1].parallelism = 3;
                       ops[2].parallelism = 3;
                       edges[0].partitioning = PartitioningRequest::Range({"k"}, {{5}, {2}});
                     }));
  ASSERT_RAISES_WITH(Invalid, "different types for key 'k'", MakeWith([](auto& ops, auto& edges) {
                       ops[1].parallelism = 3;
                       ops[2].parallelism = 3;
                       edges[0].partitioning =
                           PartitioningRequest::Range({"k"}, {{int64_t{5}}, {std::string("a")}});
                     }));
  ASSERT_RAISES_WITH(Invalid, "boundary 0 has 1 values for 2 key columns",
                     MakeWith([](auto&, auto& edges) {
                       edges[0].partitioning = PartitioningRequest::Range({"a", "b"}, {{1}});
                     }));
  ASSERT_OK(MakeWith([](auto& ops, auto& edges) {
    ops[1].parallelism = 3;
    ops[2].parallelism = 3;
    edges[0].partitioning = PartitioningRequest::Range({"k"}, {{2}, {2}});
  }));
}

TEST(LogicalPlanTest, StructureRules) {
  ASSERT_RAISES_WITH(Invalid, "operator 'source' (id 0): a source has no inputs, but 'map' feeds it",
                     MakeWith([](auto&, auto& edges) { edges.push_back(E(1, 0)); }));
  ASSERT_RAISES_WITH(Invalid, "operator 'sink' (id 2): a sink has no outputs, but it feeds 'map'",
                     MakeWith([](auto& ops, auto& edges) {
                       ops.push_back(Gen(3, "source2"));
                       edges = {E(0, 1), E(1, 2), E(2, 1), E(3, 1)};
                     }));
  ASSERT_RAISES_WITH(Invalid, "operator 'map' (id 1): has no inputs",
                     MakeWith([](auto&, auto& edges) { edges = {E(0, 2), E(1, 2)}; }));
  ASSERT_RAISES_WITH(Invalid, "operator 'map' (id 1): its output goes nowhere",
                     MakeWith([](auto&, auto& edges) { edges = {E(0, 1), E(0, 2)}; }));
  ASSERT_RAISES_WITH(Invalid, "a join needs exactly one edge into input 1 (right), got 0",
                     MakeWith([](auto& ops, auto& edges) {
                       ops.push_back(Op(3, "join", 2, JoinParams{{"k"}, {"k"}, JoinType::kInner}));
                       edges = {E(0, 1), E(1, 3), E(3, 2)};
                     }));
}

TEST(LogicalPlanTest, AVerifySinkReadsTheShuffleTableStraightFromItsGenerator) {
  // Straight from a generator of the shuffle table: valid.
  ASSERT_OK(MakeWith([](auto& ops, auto& edges) {
    ops[2] = Op(2, "verify", 2, VerifySinkParams{});
    edges = {E(0, 2, PartitioningRequest::Hash({"key"})), E(0, 1), E(1, 2)};
    edges.pop_back();
    edges.pop_back();
    ops.erase(ops.begin() + 1);
  }));
  // Through a map: refused, naming the sink.
  ASSERT_RAISES_WITH(Invalid, "operator 'verify' (id 2): a verify_sink checks a shuffle",
                     MakeWith([](auto& ops, auto&) { ops[2] = Op(2, "verify", 2, VerifySinkParams{}); }));
  // From the transactions table: refused.
  ASSERT_RAISES_WITH(Invalid, "straight from a generator_source with table: shuffle",
                     MakeWith([](auto& ops, auto& edges) {
                       GeneratorSourceParams transactions;
                       transactions.table = GeneratorTable::kTransactions;
                       ops = {Op(0, "source", 2, transactions), Op(2, "verify", 2, VerifySinkParams{})};
                       edges = {E(0, 2)};
                     }));
}

TEST(LogicalPlanTest, CycleNamesItsOperators) {
  // source -> a -> b -> c -> a, c -> sink
  std::vector<OperatorSpec> ops{Gen(0), MapOp(1, "a"), MapOp(2, "b"), MapOp(3, "c"), SinkOp(4)};
  std::vector<EdgeSpec> edges{E(0, 1), E(1, 2), E(2, 3), E(3, 1), E(3, 4)};
  auto status = LogicalPlan::Make(ops, edges).status();
  ASSERT_RAISES_WITH(Invalid, "the plan has a cycle: ", status);
  // The cycle may be printed from any of its operators; it must hold all three and close.
  std::string message = status.message();
  std::string cycle = message.substr(message.find(": ") + 2);
  for (const char* name : {"'a'", "'b'", "'c'"}) {
    EXPECT_NE(cycle.find(name), std::string::npos) << cycle;
  }
  EXPECT_EQ(cycle.find("'source'"), std::string::npos) << cycle;
  EXPECT_EQ(cycle.substr(0, 3), cycle.substr(cycle.size() - 3)) << cycle;

  // A long cycle is cut after 16 names.
  std::vector<OperatorSpec> ring{Gen(0), SinkOp(1)};
  std::vector<EdgeSpec> ring_edges{E(0, 2), E(2, 1)};
  for (OperatorId id = 2; id < 42; ++id) {
    ring.push_back(MapOp(id, "m" + std::to_string(id)));
    ring_edges.push_back(E(id, id == 41 ? 2 : id + 1));
  }
  auto long_status = LogicalPlan::Make(ring, ring_edges).status();
  ASSERT_RAISES_WITH(Invalid, "... (40 operators in all)", long_status);
  EXPECT_LT(long_status.message().size(), 400u) << long_status.message();
}

TEST(LogicalPlanTest, ParameterRulesNameOperatorAndParameter) {
  auto with_params = [](OperatorParams params) {
    return MakeWith([&](auto& ops, auto&) { ops[1].params = params; });
  };
  ASSERT_RAISES_WITH(Invalid, "operator 'map' (id 1): parameter 'columns[0].expression': must not be empty",
                     with_params(MapParams{{{"y", ""}}}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'columns': must hold at least one expression",
                     with_params(ProjectParams{}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'columns[1].name': output column 'y' appears twice",
                     with_params(MapParams{{{"y", "a"}, {"y", "b"}}}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'predicate': must not be empty",
                     with_params(FilterParams{}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'keys': must name at least one column",
                     with_params(KeyByParams{}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'size_ms': must be > 0",
                     with_params(WindowParams{WindowType::kTumbling, {}, {}, {}}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'slide_ms': must be <= size_ms",
                     with_params(WindowParams{WindowType::kSliding, std::chrono::milliseconds(5),
                                              std::chrono::milliseconds(6), {}}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'size_ms': is not used by a session window",
                     with_params(WindowParams{WindowType::kSession, std::chrono::milliseconds(5),
                                              {}, std::chrono::milliseconds(6)}));
  // A sliding window puts each row into ceil(size / slide) windows: at most kMaxWindowsPerRow.
  auto sliding = [](int64_t size, int64_t slide) {
    return LogicalPlan::Make(
        {Gen(0, "source", 1),
         Op(1, "win", 1,
            WindowParams{WindowType::kSliding, std::chrono::milliseconds(size),
                         std::chrono::milliseconds(slide), {}}),
         Op(2, "agg", 1, AggregateParams{{Count()}}), SinkOp(3, "sink", 1)},
        {E(0, 1), E(1, 2), E(2, 3)}).status();
  };
  ASSERT_OK(sliding(kMaxWindowsPerRow, 1));
  ASSERT_OK(sliding(2 * kMaxWindowsPerRow - 1, 2));  // rounded up: exactly the bound
  ASSERT_RAISES_WITH(Invalid, "operator 'win' (id 1): parameter 'slide_ms': size_ms 1025 / "
                              "slide_ms 1 puts each row into 1025 windows; at most 1024 are "
                              "allowed: use a slide of at least 2 ms",
                     sliding(kMaxWindowsPerRow + 1, 1));
  ASSERT_RAISES_WITH(Invalid, "size_ms 3600000 / slide_ms 1 puts each row into 3600000 windows",
                     sliding(3600000, 1));
  ASSERT_RAISES_WITH(Invalid, "puts each row into 1025 windows",
                     sliding(2 * kMaxWindowsPerRow + 1, 2));
  WindowParams negative = Tumbling(std::chrono::milliseconds(5));
  negative.allowed_lateness = std::chrono::milliseconds(-1);
  ASSERT_RAISES_WITH(Invalid, "parameter 'allowed_lateness_ms': must be >= 0, got -1",
                     with_params(negative));
  WindowParams processing = Tumbling(std::chrono::milliseconds(5));
  processing.time = TimeDomain::kProcessingTime;
  processing.allowed_lateness = std::chrono::milliseconds(3);
  ASSERT_RAISES_WITH(Invalid, "parameter 'allowed_lateness_ms': is for event time",
                     with_params(processing));
  processing.allowed_lateness = {};
  processing.time_column = "ts";
  ASSERT_RAISES_WITH(Invalid, "parameter 'time_column': is for event time", with_params(processing));
  processing.time_column = "";
  processing.late_output = LateOutputSpec{FileFormat::kParquet, "/late", {}};
  ASSERT_RAISES_WITH(Invalid, "parameter 'late_output': is for event time", with_params(processing));
  WindowParams late = Tumbling(std::chrono::milliseconds(5));
  late.late_output = LateOutputSpec{FileFormat::kParquet, "", {}};
  ASSERT_RAISES_WITH(Invalid, "parameter 'late_output.directory': must not be empty",
                     with_params(late));
  late.late_output = LateOutputSpec{FileFormat::kParquet, "/late", {';', true}};
  ASSERT_RAISES_WITH(Invalid, "parameter 'late_output.csv': CSV options are only allowed",
                     with_params(late));
  ASSERT_RAISES_WITH(Invalid, "plan option idle_timeout must be >= 0 ms, got -5",
                     LogicalPlan::Make({}, {}, PlanOptions{ShuffleMode::kPipelined, true,
                                                           std::chrono::milliseconds(-5)}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'aggregates[0].column': must name a column for sum",
                     with_params(AggregateParams{{{AggregateFunction::kSum, "", ""}}}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'aggregates[1].alias': output column 'sum_x' appears twice",
                     with_params(AggregateParams{{{AggregateFunction::kSum, "x", ""},
                                                  {AggregateFunction::kMax, "y", "sum_x"}}}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'aggregates': must hold at least one",
                     with_params(AggregateParams{}));
  auto with_source = [](OperatorParams params) {
    return MakeWith([&](auto& ops, auto&) { ops[0].params = params; });
  };
  GeneratorSourceParams g;
  g.rows = 0;
  ASSERT_RAISES_WITH(Invalid, "operator 'source' (id 0): parameter 'rows': 0 (unbounded) needs a rate",
                     with_source(g));
  g.rows_per_second = 1000;
  ASSERT_OK(with_source(g));
  g = {};
  g.hot_key_fraction = 1.5;
  ASSERT_RAISES_WITH(Invalid, "parameter 'hot_key_fraction'", with_source(g));
  g = {};
  g.event_time = EventTimeSpec{"", {}};
  ASSERT_RAISES_WITH(Invalid, "parameter 'event_time.column': must not be empty", with_source(g));
  g.event_time = EventTimeSpec{"ts", std::chrono::milliseconds(-1)};
  ASSERT_RAISES_WITH(Invalid, "parameter 'event_time.max_out_of_orderness_ms'", with_source(g));
  ASSERT_RAISES_WITH(Invalid, "parameter 'paths': must hold at least one path",
                     with_source(FileSourceParams{}));
  FileSourceParams parquet{FileFormat::kParquet, {"/data/*.parquet"}, {';', true}, std::nullopt};
  ASSERT_RAISES_WITH(Invalid, "parameter 'csv': CSV options are only allowed with the csv format",
                     with_source(parquet));
  FileSourceParams csv{FileFormat::kCsv, {"/data"}, {'\n', true}, std::nullopt};
  ASSERT_RAISES_WITH(Invalid, "parameter 'csv.delimiter'", with_source(csv));
  auto with_sink = [](OperatorParams params) {
    return MakeWith([&](auto& ops, auto&) { ops[2].params = params; });
  };
  ASSERT_RAISES_WITH(Invalid, "operator 'sink' (id 2): parameter 'directory': must not be empty",
                     with_sink(FileSinkParams{}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'max_rows'", with_sink(ConsoleSinkParams{-1}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'right_keys': has 2 columns but left_keys has 1",
                     MakeWith([](auto& ops, auto& edges) {
                       ops.push_back(Gen(3, "source2"));
                       ops[1].params = JoinParams{{"a"}, {"a", "b"}, JoinType::kInner};
                       edges = {E(0, 1), E(3, 1, {}, 1), E(1, 2)};
                     }));
}

// Rows never move through a filter, map or project, so the stream stays keyed as long as the
// key columns are kept unchanged.
TEST(LogicalPlanTest, StatelessOperatorsPassKeysOn) {
  // source[4] -> key_by(k)[4] -> mid[4] -> agg[2] -> sink[2]
  auto through = [](OperatorParams mid) {
    return LogicalPlan::Make({Gen(0, "source", 4), Op(1, "key_by", 4, KeyByParams{{"k"}}),
                              Op(2, "mid", 4, std::move(mid)),
                              Op(3, "agg", 2, AggregateParams{{Sum("v")}}),
                              SinkOp(4, "sink", 2)},
                             {E(0, 1), E(1, 2), E(2, 3), E(3, 4)});
  };
  const std::vector<std::string> k{"k"};
  auto passes = [&](OperatorParams mid) {
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, through(std::move(mid)));
    EXPECT_EQ(plan.OutputKeys(2), k);
  };
  auto drops = [&](OperatorParams mid) {
    ASSERT_RAISES_WITH(Invalid, "operator 'agg' (id 3): its input is not keyed",
                       through(std::move(mid)).status());
  };
  passes(FilterParams{"v > 0"});
  passes(MapParams{{{"v2", "v * 2"}, {"v", "v + 1"}}});
  drops(MapParams{{{"k", "k + 1"}}});
  passes(ProjectParams{{{"k", "k"}, {"v", "v"}}});
  passes(ProjectParams{{{"w", "v + 1"}, {"k", "k"}}});
  passes(ProjectParams{{{"v", "v"}, {"k", "`k`"}}});
  drops(ProjectParams{{{"v", "v"}}});                 // key not kept
  drops(ProjectParams{{{"k2", "k"}, {"v", "v"}}});    // renamed
  drops(ProjectParams{{{"k", "v"}, {"v", "k"}}});     // another column under the key's name
  drops(ProjectParams{{{"k", "k + 0"}, {"v", "v"}}}); // an expression, not the column
  // Through a window too, and over two stateless operators in a row.
  ASSERT_OK_AND_ASSIGN(
      LogicalPlan chain,
      LogicalPlan::Make({Gen(0, "source", 4), Op(1, "key_by", 4, KeyByParams{{"k"}}),
                         Op(2, "f", 4, FilterParams{"v > 0"}),
                         Op(3, "m", 3, MapParams{{{"v2", "v * 2"}}}),
                         Op(4, "window", 2, Tumbling(std::chrono::minutes(1))),
                         Op(5, "agg", 2, AggregateParams{{Sum("v2")}}), SinkOp(6, "sink", 2)},
                        {E(0, 1), E(1, 2), E(2, 3), E(3, 4), E(4, 5), E(5, 6)}));
  EXPECT_EQ(chain.OutputKeys(3), k);
  EXPECT_EQ(chain.OutputKeys(4), k);
  // An unkeyed input stays unkeyed.
  ASSERT_OK_AND_ASSIGN(LogicalPlan unkeyed,
                       LogicalPlan::Make({Gen(0), Op(1, "f", 2, FilterParams{"v > 0"}),
                                          SinkOp(2)},
                                         {E(0, 1), E(1, 2)}));
  EXPECT_TRUE(unkeyed.OutputKeys(1).empty());
}

TEST(LogicalPlanTest, KeyRules) {
  // source -> key_by(user_id) -> aggregate[5] -> sink
  auto keyed = [](const std::function<void(std::vector<OperatorSpec>&, std::vector<EdgeSpec>&)>&
                      change) {
    std::vector<OperatorSpec> ops{Gen(0, "source", 4), Op(1, "key_by", 4, KeyByParams{{"user_id"}}),
                                  Op(2, "agg", 5, AggregateParams{{Sum("amount")}}),
                                  SinkOp(3, "sink", 5)};
    std::vector<EdgeSpec> edges{E(0, 1), E(1, 2), E(2, 3)};
    change(ops, edges);
    return LogicalPlan::Make(std::move(ops), std::move(edges));
  };
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, keyed([](auto&, auto&) {}));
  EXPECT_EQ(plan.OutputKeys(1), (std::vector<std::string>{"user_id"}));
  EXPECT_TRUE(plan.OutputKeys(2).empty());
  ASSERT_RAISES_WITH(Invalid, "operator 'key_by' (id 1): a key_by has the parallelism of its input",
                     keyed([](auto& ops, auto&) { ops[1].parallelism = 5; }).status());
  ASSERT_RAISES_WITH(Invalid, "edge 'key_by' -> 'agg': the edge leaving a key_by is HASH on its keys; it cannot ask for rebalance",
                     keyed([](auto&, auto& edges) {
                       edges[1].partitioning = PartitioningRequest::Rebalance();
                     }).status());
  ASSERT_RAISES_WITH(Invalid, "cannot ask for hash on other keys",
                     keyed([](auto&, auto& edges) {
                       edges[1].partitioning = PartitioningRequest::Hash({"other"});
                     }).status());
  ASSERT_OK(keyed([](auto&, auto& edges) {
              edges[1].partitioning = PartitioningRequest::Hash({"user_id"});
            }).status());
  ASSERT_RAISES_WITH(Invalid, "operator 'agg' (id 2): its input is not keyed",
                     keyed([](auto& ops, auto&) {
                       ops[1] = MapOp(1, "key_by", 4);
                     }).status());
  // An unkeyed aggregate of parallelism 1 is a global aggregate.
  ASSERT_OK(keyed([](auto& ops, auto&) {
              ops[1] = MapOp(1, "key_by", 4);
              ops[2].parallelism = 1;
            }).status());
  // An explicit HASH edge makes the stream keyed too.
  ASSERT_OK(keyed([](auto& ops, auto& edges) {
              ops[1] = MapOp(1, "map", 4);
              edges[1].partitioning = PartitioningRequest::Hash({"user_id"});
            }).status());
  ASSERT_RAISES_WITH(Invalid, "parameter 'aggregates[0].alias': output column 'user_id' is also a key column",
                     keyed([](auto& ops, auto&) {
                       ops[2].params = AggregateParams{{Sum("amount", "user_id")}};
                     }).status());
  // A window passes its keys on; a rebalance between window and aggregate would break them.
  auto windowed = [&](PartitioningRequest r) {
    return keyed([&](auto& ops, auto& edges) {
      ops.push_back(Op(4, "window", 5, Tumbling(std::chrono::minutes(5))));
      edges = {E(0, 1), E(1, 4), E(4, 2, r), E(2, 3)};
    });
  };
  ASSERT_OK_AND_ASSIGN(LogicalPlan w, windowed({}));
  EXPECT_EQ(w.OutputKeys(4), (std::vector<std::string>{"user_id"}));
  ASSERT_RAISES_WITH(Invalid, "edge 'window' -> 'agg': rebalance would break the key partitioning aggregate needs",
                     windowed(PartitioningRequest::Rebalance()).status());
  // A window is read by aggregates only, each reading nothing else.
  ASSERT_RAISES_WITH(Invalid, "edge 'window' -> 'sink': a window is read by an aggregate "
                              "(window(...).aggregate(...)), not by a collect_sink",
                     keyed([&](auto& ops, auto& edges) {
                       ops.push_back(Op(4, "window", 5, Tumbling(std::chrono::minutes(5))));
                       edges = {E(0, 1), E(1, 4), E(4, 2), E(2, 3), E(4, 3)};
                     }).status());
  ASSERT_RAISES_WITH(Invalid, "edge 'window' -> 'agg': an aggregate after a window reads only "
                              "that window, and this one has 2 inputs",
                     keyed([&](auto& ops, auto& edges) {
                       ops.push_back(Op(4, "window", 5, Tumbling(std::chrono::minutes(5))));
                       edges = {E(0, 1), E(1, 4), E(4, 2), E(1, 2), E(2, 3)};
                     }).status());
}

TEST(LogicalPlanTest, JoinInputsAreHashOnTheirKeys) {
  auto join = [](PartitioningRequest right) {
    std::vector<OperatorSpec> ops{Gen(0, "left", 2), Gen(1, "right", 3),
                                  Op(2, "join", 4, JoinParams{{"a"}, {"b"}, JoinType::kLeft}),
                                  SinkOp(3, "sink", 4)};
    return LogicalPlan::Make(ops, {E(0, 2), E(1, 2, right, 1), E(2, 3)});
  };
  ASSERT_OK(join({}).status());
  ASSERT_OK(join(PartitioningRequest::Hash({"b"})).status());
  ASSERT_RAISES_WITH(Invalid, "edge 'right' -> 'join' (input 1): a join input is HASH on that side's join keys; the edge cannot ask for broadcast",
                     join(PartitioningRequest::Broadcast()).status());
  // A key_by in front of a join must key by that side's join keys.
  auto keyed_join = [](std::vector<std::string> key_by_keys) {
    std::vector<OperatorSpec> ops{Gen(0, "left", 2), Gen(1, "right", 3),
                                  Op(2, "join", 4, JoinParams{{"a"}, {"b"}, JoinType::kLeft}),
                                  SinkOp(3, "sink", 4),
                                  Op(4, "by_b", 3, KeyByParams{std::move(key_by_keys)})};
    return LogicalPlan::Make(ops, {E(0, 2), E(1, 4), E(4, 2, {}, 1), E(2, 3)});
  };
  ASSERT_OK(keyed_join({"b"}).status());
  ASSERT_RAISES_WITH(Invalid, "edge 'by_b' -> 'join' (input 1): key_by 'by_b' partitions by other columns than the join keys of input 1",
                     keyed_join({"a"}).status());
}

TEST(LogicalPlanTest, BroadcastJoinRules) {
  // left[2] and right[3] into join[4]; `by` (a key_by on `by_keys`) in front of input
  // `keyed_input` when given.
  auto join = [](JoinType how, JoinBroadcast side, PartitioningRequest left,
                 PartitioningRequest right, std::optional<int32_t> keyed_input = std::nullopt,
                 std::vector<std::string> by_keys = {"b"}) {
    std::vector<OperatorSpec> ops{Gen(0, "left", 2), Gen(1, "right", 3),
                                  Op(2, "join", 4, JoinParams{{"a"}, {"b"}, how, side}),
                                  SinkOp(3, "sink", 4)};
    std::vector<EdgeSpec> edges{E(2, 3)};
    for (int32_t input : {0, 1}) {
      const PartitioningRequest& request = input == 0 ? left : right;
      if (keyed_input == input) {
        ops.push_back(Op(4, "by", input == 0 ? 2 : 3, KeyByParams{by_keys}));
        edges.push_back(E(input, 4));
        edges.push_back(E(4, 2, request, input));
      } else {
        edges.push_back(E(input, 2, request, input));
      }
    }
    return LogicalPlan::Make(ops, edges);
  };
  using PR = PartitioningRequest;
  for (JoinType how : {JoinType::kInner, JoinType::kLeft, JoinType::kSemi, JoinType::kAnti}) {
    ASSERT_OK(join(how, JoinBroadcast::kRight, {}, {}).status());
  }
  for (JoinType how :
       {JoinType::kInner, JoinType::kRight, JoinType::kRightSemi, JoinType::kRightAnti}) {
    ASSERT_OK(join(how, JoinBroadcast::kLeft, {}, {}).status());
  }
  ASSERT_RAISES_WITH(Invalid, "operator 'join' (id 2): parameter 'broadcast': a full join cannot broadcast its right side",
                     join(JoinType::kFull, JoinBroadcast::kRight, {}, {}).status());
  ASSERT_RAISES_WITH(Invalid, "a right join cannot broadcast its right side",
                     join(JoinType::kRight, JoinBroadcast::kRight, {}, {}).status());
  ASSERT_RAISES_WITH(Invalid, "a semi join cannot broadcast its left side",
                     join(JoinType::kSemi, JoinBroadcast::kLeft, {}, {}).status());
  // The broadcast side: nothing or BROADCAST, never a key_by.
  ASSERT_OK(join(JoinType::kInner, JoinBroadcast::kRight, {}, PR::Broadcast()).status());
  ASSERT_RAISES_WITH(Invalid, "edge 'right' -> 'join' (input 1): the join broadcasts input 1; the edge cannot ask for hash",
                     join(JoinType::kInner, JoinBroadcast::kRight, {}, PR::Hash({"b"})).status());
  ASSERT_RAISES_WITH(Invalid, "the edge cannot ask for hash (it comes from a key_by)",
                     join(JoinType::kInner, JoinBroadcast::kRight, {}, {}, 1).status());
  // The other side: any partitioning, a key_by on any keys, but not BROADCAST too.
  ASSERT_OK(join(JoinType::kLeft, JoinBroadcast::kRight, PR::Rebalance(), {}).status());
  ASSERT_OK(join(JoinType::kLeft, JoinBroadcast::kRight, {}, {}, 0, {"c"}).status());
  ASSERT_RAISES_WITH(Invalid, "the join broadcasts its right input; the other input cannot be broadcast too",
                     join(JoinType::kLeft, JoinBroadcast::kRight, PR::Broadcast(), {}).status());
}

TEST(LogicalPlanTest, WindowAndIntervalJoinParameters) {
  auto join = [](JoinParams p) {
    std::vector<OperatorSpec> ops{Gen(0, "left", 2), Gen(1, "right", 3), Op(2, "join", 4, p),
                                  SinkOp(3, "sink", 4)};
    return LogicalPlan::Make(ops, {E(0, 2), E(1, 2, {}, 1), E(2, 3)}).status();
  };
  JoinParams window{{"a"}, {"b"}};
  window.time = JoinTime::kWindow;
  window.left_time = "t";
  window.right_time = "u";
  window.window = std::chrono::minutes(5);
  ASSERT_OK(join(window));
  JoinParams interval = window;
  interval.time = JoinTime::kInterval;
  interval.window = {};
  interval.before = std::chrono::seconds(10);
  ASSERT_OK(join(interval));

  JoinParams bad = window;
  bad.window = {};
  ASSERT_RAISES_WITH(Invalid, "parameter 'window': a window join needs window > 0", join(bad));
  bad = window;
  bad.right_time = "";
  ASSERT_RAISES_WITH(Invalid, "parameter 'right_time': a window join needs the event-time column",
                     join(bad));
  bad = interval;
  bad.how = JoinType::kLeft;
  ASSERT_RAISES_WITH(Invalid, "parameter 'how': a interval join is an inner join, got left",
                     join(bad));
  bad = interval;
  bad.after = std::chrono::milliseconds(-1);
  ASSERT_RAISES_WITH(Invalid, "an interval join needs before >= 0 and after >= 0", join(bad));
  bad = window;
  bad.broadcast = JoinBroadcast::kRight;
  ASSERT_RAISES_WITH(Invalid, "cannot broadcast an input", join(bad));
  bad = JoinParams{{"a"}, {"b"}};
  bad.left_time = "t";
  ASSERT_RAISES_WITH(Invalid, "parameter 'time': left_time, right_time", join(bad));
}

TEST(LogicalPlanTest, ErrorsCarryTheirLocation) {
  arrow::Status st = MakeWith([](auto& ops, auto&) { ops[1].params = FilterParams{}; });
  const PlanErrorDetail* detail = PlanErrorDetail::FromStatus(st);
  ASSERT_NE(detail, nullptr) << st.ToString();
  EXPECT_EQ(detail->operator_index(), std::optional<size_t>(1));
  EXPECT_EQ(detail->edge_index(), std::nullopt);
  EXPECT_EQ(detail->ToString(), "operators[1].params.predicate");

  st = MakeWith([](auto&, auto& edges) { edges[1].input = 3; });
  detail = PlanErrorDetail::FromStatus(st);
  ASSERT_NE(detail, nullptr) << st.ToString();
  EXPECT_EQ(detail->ToString(), "edges[1].input");

  st = MakeWith([](auto& ops, auto&) { ops[2].parallelism = 0; });
  ASSERT_NE(PlanErrorDetail::FromStatus(st), nullptr);
  EXPECT_EQ(PlanErrorDetail::FromStatus(st)->ToString(), "operators[2].parallelism");
}

TEST(LogicalPlanTest, TableSourceRules) {
  auto with_source = [](TableSourceParams params) {
    return MakeWith([&](auto& ops, auto&) { ops[0].params = params; });
  };
  EXPECT_OK(with_source(TableSourceParams{"t", 1, EventTimeSpec{"ts", {}}}));
  EXPECT_TRUE(IsSource(OperatorKind::kTableSource));
  EXPECT_FALSE(IsSink(OperatorKind::kTableSource));
  EXPECT_EQ(OperatorKindOf(TableSourceParams{"t", 1, {}}), OperatorKind::kTableSource);
  EXPECT_EQ(OperatorKindName(OperatorKind::kTableSource), "table_source");
  ASSERT_RAISES_WITH(Invalid, "operator 'source' (id 0): parameter 'table': must name a table",
                     with_source(TableSourceParams{"", 1, {}}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'batch_rows': must be between 1 and 16777216, got 0",
                     with_source(TableSourceParams{"t", 0, {}}));
  ASSERT_RAISES_WITH(Invalid, "parameter 'event_time.column'",
                     with_source(TableSourceParams{"t", 1, EventTimeSpec{"", {}}}));
  // A table source has no inputs.
  ASSERT_RAISES_WITH(Invalid, "operator 'map' (id 1)",
                     MakeWith([](auto& ops, auto&) { ops[1].params = TableSourceParams{"t"}; }));
}

TEST(LogicalPlanTest, KindNamesRoundTrip) {
  for (int k = 0; k <= static_cast<int>(OperatorKind::kVerifySink); ++k) {
    auto kind = static_cast<OperatorKind>(k);
    ASSERT_OK_AND_ASSIGN(OperatorKind parsed, ParseOperatorKind(OperatorKindName(kind)));
    EXPECT_EQ(parsed, kind);
  }
  ASSERT_RAISES_WITH(Invalid, "unknown operator kind 'flatmap' (expected one of: generator_source",
                     ParseOperatorKind("flatmap").status());
  EXPECT_EQ(OperatorKindOf(FileSinkParams{FileFormat::kCsv, "/out", {}}), OperatorKind::kCsvSink);
  EXPECT_EQ(OperatorKindOf(FileSourceParams{FileFormat::kIpc, {"/in"}, {}, {}}),
            OperatorKind::kIpcSource);
  EXPECT_EQ(FileFormatOf(OperatorKind::kParquetSink), FileFormat::kParquet);
  EXPECT_EQ(FileFormatOf(OperatorKind::kCsvSource), FileFormat::kCsv);
  EXPECT_EQ(FileFormatOf(OperatorKind::kMap), std::nullopt);
  EXPECT_EQ(AggregateOutputName(Count()), "count");
  EXPECT_EQ(AggregateOutputName(Mean("x")), "mean_x");
  EXPECT_EQ(AggregateOutputName(Max("x", "top")), "top");
}

}  // namespace
}  // namespace sabot
