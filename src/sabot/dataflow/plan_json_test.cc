#include "sabot/dataflow/plan_json.h"

#include <fstream>
#include <functional>
#include <iterator>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sabot/dataflow/plan_builder.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using Json = nlohmann::ordered_json;

// The seeds' pipeline, small.
LogicalPlan SeedPlan() {
  PlanBuilder b;
  GeneratorSourceParams g;
  g.table = GeneratorTable::kTransactions;
  g.rows = 1000;
  g.batch_rows = 100;
  g.key_cardinality = 50;
  g.event_time = EventTimeSpec{"event_time", std::chrono::seconds(5)};
  b.Source(g, 4, "source")
      .Map("amount_usd", "amount * 1.1", {}, "map")
      .KeyBy({"user_id"}, "by_user")
      .Window(Tumbling(std::chrono::minutes(5)), {}, "window")
      .Aggregate({Sum("amount"), Count()}, 2, "agg")
      .Sink(CollectSinkParams{}, {}, "sink");
  return b.Build().ValueOrDie();
}

// Every operator kind, every partitioning request, non-default options and parameters.
LogicalPlan EveryKindPlan() {
  PlanBuilder b;
  b.SetOptions({ShuffleMode::kBlocking, false});
  GeneratorSourceParams g;
  g.rows = 0;
  g.rows_per_second = 2500.5;
  g.distribution = KeyDistributionKind::kSkewed;
  g.hot_key_fraction = 0.25;
  g.string_key = true;
  g.payload_columns = 5;
  g.seed = 18446744073709551615ull;
  Stream gen = b.Source(g, 3, "gen");
  Stream parquet = b.Source(
      FileSourceParams{FileFormat::kParquet, {"/data/a.parquet", "/data/dir", "/data/*.pq"}, {},
                       EventTimeSpec{"ts", std::chrono::milliseconds(250)}},
      2, "parquet");
  Stream ipc = b.Source(FileSourceParams{FileFormat::kIpc, {"/data/x.arrow"}, {}, {}}, 2, "ipc");
  Stream csv = b.Source(FileSourceParams{FileFormat::kCsv, {"/data/u.csv"}, {'\t', false}, {}}, 1,
                        "csv");
  Stream joined = parquet.Join(csv.KeyBy({"id"}), {"user_id"}, {"id"}, JoinType::kFull, 2, "join");
  joined.Project({{"user_id", "user_id"}, {"total", "a + b"}}, {}, "project")
      .Sink(FileSinkParams{FileFormat::kCsv, "/out/csv", {';', true}}, {}, "csv_out");
  gen.Rebalance().Filter("p0 > 3", 6, "filter").Sink(ConsoleSinkParams{5}, {}, "console");
  gen.Broadcast().Map("q", "p1", 3, "bcast").Sink(FileSinkParams{FileFormat::kIpc, "/out/ipc", {}});
  gen.PartitionByRange({"key", "key_string"}, {{int64_t{-5}, std::string("m")}, {int64_t{7}, std::string("a")}})
      .Map("r", "p2", 3, "ranged")
      .Sink(FileSinkParams{FileFormat::kParquet, "/out/pq", {}});
  gen.PartitionByRange({"key"}).Map("s", "p2", 2, "sampled").Sink(CollectSinkParams{});
  gen.PartitionByHash({"key"})
      .Window(Sliding(std::chrono::seconds(10), std::chrono::seconds(5)), 4, "sliding")
      .Aggregate({Min("p0", "lo"), Max("p0"), Mean("p1"), CountDistinct("p2"), Count("p3")}, 4,
                 "agg")
      .Sink(CollectSinkParams{}, {}, "agg_out");
  ipc.KeyBy({"k"}).Window(Session(std::chrono::seconds(30)), {}, "session")
      .Aggregate({CountRows("n")}, {}, "agg2")
      .Forward()
      .Sink(CollectSinkParams{}, {}, "agg2_out");
  return b.Build().ValueOrDie();
}

TEST(PlanJsonTest, GoldenText) {
  ASSERT_OK_AND_ASSIGN(std::string text, PlanToJson(SeedPlan()));
  EXPECT_EQ(text, R"json({
  "sabot_plan_version": 1,
  "options": {
    "shuffle_mode": "pipelined",
    "chaining": true
  },
  "operators": [
    {
      "id": 0,
      "name": "source",
      "kind": "generator_source",
      "parallelism": 4,
      "params": {
        "table": "transactions",
        "rows": 1000,
        "batch_rows": 100,
        "key_cardinality": 50,
        "distribution": "uniform",
        "hot_key_fraction": 0.5,
        "string_key": false,
        "payload_columns": 3,
        "seed": 42,
        "rows_per_second": 0.0,
        "event_time": {
          "column": "event_time",
          "max_out_of_orderness_ms": 5000
        }
      }
    },
    {
      "id": 1,
      "name": "map",
      "kind": "map",
      "parallelism": 4,
      "params": {
        "columns": [
          {
            "name": "amount_usd",
            "expression": "amount * 1.1"
          }
        ]
      }
    },
    {
      "id": 2,
      "name": "by_user",
      "kind": "key_by",
      "parallelism": 4,
      "params": {
        "keys": [
          "user_id"
        ]
      }
    },
    {
      "id": 3,
      "name": "window",
      "kind": "window",
      "parallelism": 2,
      "params": {
        "type": "tumbling",
        "size_ms": 300000
      }
    },
    {
      "id": 4,
      "name": "agg",
      "kind": "aggregate",
      "parallelism": 2,
      "params": {
        "aggregates": [
          {
            "function": "sum",
            "column": "amount",
            "alias": ""
          },
          {
            "function": "count",
            "column": "",
            "alias": ""
          }
        ]
      }
    },
    {
      "id": 5,
      "name": "sink",
      "kind": "collect_sink",
      "parallelism": 2,
      "params": {}
    }
  ],
  "edges": [
    {
      "from": 0,
      "to": 1,
      "input": 0,
      "partitioning": {
        "type": "none"
      }
    },
    {
      "from": 1,
      "to": 2,
      "input": 0,
      "partitioning": {
        "type": "none"
      }
    },
    {
      "from": 2,
      "to": 3,
      "input": 0,
      "partitioning": {
        "type": "none"
      }
    },
    {
      "from": 3,
      "to": 4,
      "input": 0,
      "partitioning": {
        "type": "none"
      }
    },
    {
      "from": 4,
      "to": 5,
      "input": 0,
      "partitioning": {
        "type": "none"
      }
    }
  ]
}
)json");
}

TEST(PlanJsonTest, RoundTrip) {
  for (const LogicalPlan& plan : {SeedPlan(), EveryKindPlan()}) {
    ASSERT_OK_AND_ASSIGN(std::string text, PlanToJson(plan));
    ASSERT_OK_AND_ASSIGN(LogicalPlan back, PlanFromJson(text));
    EXPECT_TRUE(back.Equals(plan)) << text;
    ASSERT_OK_AND_ASSIGN(std::string again, PlanToJson(back));
    EXPECT_EQ(again, text);
  }
}

TEST(PlanJsonTest, FirstLastAndApproxMedianRoundTrip) {
  PlanBuilder b;
  b.Source(GeneratorSourceParams{}, 2)
      .KeyBy({"key"})
      .Aggregate({First("p0"), Last("p1", "latest"), ApproxMedian("p2")}, 2, "agg")
      .Sink(CollectSinkParams{});
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(std::string text, PlanToJson(plan));
  for (const char* name : {"\"first\"", "\"last\"", "\"approx_median\""}) {
    EXPECT_NE(text.find(name), std::string::npos) << name << " missing from " << text;
  }
  ASSERT_OK_AND_ASSIGN(LogicalPlan back, PlanFromJson(text));
  EXPECT_TRUE(back.Equals(plan)) << text;
}

// A table source: its parameters round-trip, defaults may be left out, bad ones are named.
TEST(PlanJsonTest, TableSource) {
  PlanBuilder b;
  b.Source(TableSourceParams{"transactions", 4096, EventTimeSpec{"ts", std::chrono::seconds(2)}},
           2, "src")
      .Sink(CollectSinkParams{}, {}, "out");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(std::string text, PlanToJson(plan));
  EXPECT_NE(text.find(R"("kind": "table_source")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("table": "transactions")"), std::string::npos) << text;
  ASSERT_OK_AND_ASSIGN(LogicalPlan back, PlanFromJson(text));
  EXPECT_TRUE(back.Equals(plan)) << text;

  const char* minimal = R"({"sabot_plan_version": 1,
    "operators": [
      {"id": 0, "name": "src", "kind": "table_source", "parallelism": 2, "params": {"table": "t"}},
      {"id": 1, "name": "out", "kind": "collect_sink", "parallelism": 2}],
    "edges": [{"from": 0, "to": 1}]})";
  ASSERT_OK_AND_ASSIGN(LogicalPlan read, PlanFromJson(minimal));
  EXPECT_EQ(std::get<TableSourceParams>(read.operators()[0].params), (TableSourceParams{"t"}));

  auto rejected = [&](const std::function<void(Json&)>& change, const std::string& message) {
    SCOPED_TRACE(message);
    Json j = Json::parse(text);
    change(j);
    ASSERT_RAISES_WITH(Invalid, message, PlanFromJson(j.dump()).status());
  };
  rejected([](Json& j) { j["operators"][0]["params"].erase("table"); },
           "operator 'src' (id 0): at $.operators[0].params.table: missing");
  rejected([](Json& j) { j["operators"][0]["params"]["table"] = 3; },
           "at $.operators[0].params.table: expected a string, got an integer");
  rejected([](Json& j) { j["operators"][0]["params"]["table"] = ""; },
           "parameter 'table': must name a table (at $.operators[0].params.table)");
  rejected([](Json& j) { j["operators"][0]["params"]["batch_rows"] = 0; },
           "at $.operators[0].params.batch_rows: must be between 1 and");
  rejected([](Json& j) { j["operators"][0]["params"]["paths"] = Json::array(); },
           "at $.operators[0].params: unknown key 'paths'");
}

TEST(PlanJsonTest, BroadcastJoinRoundTrips) {
  PlanBuilder b;
  Stream orders = b.Source(GeneratorSourceParams{}, 3, "orders");
  Stream users = b.Source(GeneratorSourceParams{}, 1, "users");
  orders.Join(users, JoinParams{{"key"}, {"key"}, JoinType::kSemi, JoinBroadcast::kRight}, 2, "j")
      .Sink(CollectSinkParams{}, 2, "out");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(std::string text, PlanToJson(plan));
  EXPECT_NE(text.find("\"broadcast\": \"right\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"how\": \"semi\""), std::string::npos) << text;
  ASSERT_OK_AND_ASSIGN(LogicalPlan back, PlanFromJson(text));
  EXPECT_TRUE(back.Equals(plan)) << text;
  std::string bad = text;
  bad.replace(bad.find("\"right\""), 7, "\"sideways\"");
  ASSERT_RAISES_WITH(Invalid, "join broadcast side", PlanFromJson(bad).status());
}

TEST(PlanJsonTest, WindowAndIntervalJoinsRoundTrip) {
  for (JoinTime time : {JoinTime::kWindow, JoinTime::kInterval}) {
    JoinParams p{{"key"}, {"key"}};
    p.time = time;
    p.left_time = "t";
    p.right_time = "event_time";
    if (time == JoinTime::kWindow) p.window = std::chrono::seconds(30);
    if (time == JoinTime::kInterval) p.after = std::chrono::milliseconds(250);
    PlanBuilder b;
    Stream orders = b.Source(GeneratorSourceParams{}, 3, "orders");
    Stream users = b.Source(GeneratorSourceParams{}, 1, "users");
    orders.Join(users, p, 2, "j").Sink(CollectSinkParams{}, 2, "out");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    ASSERT_OK_AND_ASSIGN(std::string text, PlanToJson(plan));
    EXPECT_NE(text.find(time == JoinTime::kWindow ? "\"window_ms\": 30000"
                                                  : "\"after_ms\": 250"),
              std::string::npos)
        << text;
    ASSERT_OK_AND_ASSIGN(LogicalPlan back, PlanFromJson(text));
    EXPECT_TRUE(back.Equals(plan)) << text;
  }
}

// A window's time fields (time domain, column, allowed lateness, late output) and the idle
// timeout: written when they differ from their defaults, read back equal.
TEST(PlanJsonTest, WindowTimeFieldsRoundTrip) {
  PlanBuilder b;
  b.SetOptions(PlanOptions{ShuffleMode::kPipelined, true, std::chrono::milliseconds(2500)});
  WindowParams late = Tumbling(std::chrono::minutes(5));
  late.time_column = "ts";
  late.allowed_lateness = std::chrono::seconds(30);
  late.late_output = LateOutputSpec{FileFormat::kCsv, "/out/late", {';', false}};
  Stream keyed = b.Source(FileSourceParams{FileFormat::kParquet, {"/d"}, {}, EventTimeSpec{"ts", {}}},
                          2, "source")
                     .KeyBy({"k"});
  keyed.Window(late, 2, "late").Aggregate({Sum("v")}, 2, "agg").Sink(CollectSinkParams{}, {}, "out");
  WindowParams processing = Session(std::chrono::seconds(3));
  processing.time = TimeDomain::kProcessingTime;
  keyed.Window(processing, 2, "wall").Aggregate({Count()}, 2, "agg2").Sink(CollectSinkParams{}, {}, "out2");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(std::string text, PlanToJson(plan));
  EXPECT_NE(text.find("\"idle_timeout_ms\": 2500"), std::string::npos) << text;
  EXPECT_NE(text.find("\"time_column\": \"ts\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"allowed_lateness_ms\": 30000"), std::string::npos) << text;
  EXPECT_NE(text.find("\"late_output\": {\n          \"format\": \"csv\",\n          \"directory\": \"/out/late\""),
            std::string::npos) << text;
  EXPECT_NE(text.find("\"time\": \"processing_time\""), std::string::npos) << text;
  ASSERT_OK_AND_ASSIGN(LogicalPlan back, PlanFromJson(text));
  EXPECT_TRUE(back.Equals(plan)) << text;
  // Errors name the operator and the field.
  std::string bad = text;
  bad.replace(bad.find("\"allowed_lateness_ms\": 30000"), 28, "\"allowed_lateness_ms\": \"x\"");
  ASSERT_RAISES_WITH(Invalid, "params.allowed_lateness_ms: expected an integer", PlanFromJson(bad));
  bad = text;
  bad.replace(bad.find("\"format\": \"csv\""), 15, "\"format\": \"xml\"");
  ASSERT_RAISES_WITH(Invalid, "operator 'late' (id 2): at $.operators[2].params.late_output.format",
                     PlanFromJson(bad));
}

// Checkpoint options (docs/fault-tolerance.md): written when set, read back equal; errors name
// the field.
TEST(PlanJsonTest, CheckpointOptionsRoundTripAndAreValidated) {
  PlanBuilder b;
  PlanOptions options;
  options.checkpoint.interval = std::chrono::milliseconds(1500);
  options.checkpoint.directory = "s3://bucket/chk";
  options.checkpoint.retained = 4;
  options.checkpoint.max_restarts = 7;
  options.checkpoint.restart_delay = std::chrono::milliseconds(250);
  options.checkpoint.restart_backoff = 1.5;
  options.checkpoint.max_restart_delay = std::chrono::milliseconds(9000);
  b.SetOptions(options);
  b.Source(GeneratorSourceParams{}, 1, "source").Sink(CollectSinkParams{}, 1, "out");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_OK_AND_ASSIGN(std::string text, PlanToJson(plan));
  EXPECT_NE(text.find("\"interval_ms\": 1500"), std::string::npos) << text;
  EXPECT_NE(text.find("\"directory\": \"s3://bucket/chk\""), std::string::npos) << text;
  ASSERT_OK_AND_ASSIGN(LogicalPlan back, PlanFromJson(text));
  EXPECT_EQ(back.options().checkpoint, options.checkpoint);
  EXPECT_TRUE(back.Equals(plan)) << text;
  // Defaults: a plan without checkpoints writes none.
  PlanBuilder plain;
  plain.Source(GeneratorSourceParams{}, 1, "source").Sink(CollectSinkParams{}, 1, "out");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plain_plan, plain.Build());
  ASSERT_OK_AND_ASSIGN(std::string plain_text, PlanToJson(plain_plan));
  EXPECT_EQ(plain_text.find("checkpoint"), std::string::npos) << plain_text;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string bad = text;
    bad.replace(bad.find(from), from.size(), to);
    return PlanFromJson(bad);
  };
  ASSERT_RAISES_WITH(Invalid, "$.options.checkpoint.directory: required",
                     with("\"directory\": \"s3://bucket/chk\"", "\"directory\": \"\""));
  ASSERT_RAISES_WITH(Invalid, "$.options.checkpoint.retained: must be between 1",
                     with("\"retained\": 4", "\"retained\": 0"));
  ASSERT_RAISES_WITH(Invalid, "$.options.checkpoint.restart_backoff: must be between 1",
                     with("\"restart_backoff\": 1.5", "\"restart_backoff\": 0.5"));
  ASSERT_RAISES_WITH(Invalid, "$.options.checkpoint.interval_ms: expected an integer",
                     with("\"interval_ms\": 1500", "\"interval_ms\": \"1s\""));
  ASSERT_RAISES_WITH(Invalid, "$.options.checkpoint: unknown key 'intervall'",
                     with("\"interval_ms\": 1500", "\"interval_ms\": 1500, \"intervall\": 1"));
}

// The example of docs/plan-format.md, as written there: the same plan as SeedPlan.
TEST(PlanJsonTest, DocumentedExampleReads) {
  const char* text = R"json({
  "sabot_plan_version": 1,
  "options": {"shuffle_mode": "pipelined", "chaining": true},
  "operators": [
    {"id": 0, "name": "source", "kind": "generator_source", "parallelism": 4,
     "params": {"table": "transactions", "rows": 1000, "batch_rows": 100,
                "key_cardinality": 50,
                "event_time": {"column": "event_time", "max_out_of_orderness_ms": 5000}}},
    {"id": 1, "name": "map", "kind": "map", "parallelism": 4,
     "params": {"columns": [{"name": "amount_usd", "expression": "amount * 1.1"}]}},
    {"id": 2, "name": "by_user", "kind": "key_by", "parallelism": 4,
     "params": {"keys": ["user_id"]}},
    {"id": 3, "name": "window", "kind": "window", "parallelism": 2,
     "params": {"type": "tumbling", "size_ms": 300000}},
    {"id": 4, "name": "agg", "kind": "aggregate", "parallelism": 2,
     "params": {"aggregates": [{"function": "sum", "column": "amount"},
                               {"function": "count"}]}},
    {"id": 5, "name": "sink", "kind": "collect_sink", "parallelism": 2}
  ],
  "edges": [
    {"from": 0, "to": 1}, {"from": 1, "to": 2}, {"from": 2, "to": 3},
    {"from": 3, "to": 4}, {"from": 4, "to": 5}
  ]
}
)json";
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, PlanFromJson(text));
  EXPECT_TRUE(plan.Equals(SeedPlan()));
}

TEST(PlanJsonTest, DefaultsMayBeLeftOut) {
  const char* text = R"({
    "sabot_plan_version": 1,
    "operators": [
      {"id": 0, "name": "src", "kind": "generator_source", "parallelism": 2},
      {"id": 1, "name": "out", "kind": "collect_sink", "parallelism": 2}
    ],
    "edges": [{"from": 0, "to": 1}]
  })";
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, PlanFromJson(text));
  EXPECT_EQ(plan.options(), PlanOptions{});
  EXPECT_EQ(std::get<GeneratorSourceParams>(plan.operators()[0].params), GeneratorSourceParams{});
  EXPECT_EQ(plan.edges()[0], (EdgeSpec{0, 1, 0, {}}));
}

// Applies `change` to the JSON of SeedPlan and expects Invalid with `message` in it.
void ExpectRejected(const std::function<void(Json&)>& change, const std::string& message) {
  SCOPED_TRACE(message);
  Json j = Json::parse(PlanToJson(SeedPlan()).ValueOrDie());
  change(j);
  ASSERT_RAISES_WITH(Invalid, message, PlanFromJson(j.dump()).status());
}

TEST(PlanJsonTest, RejectsBadDocuments) {
  ASSERT_RAISES_WITH(Invalid, "plan JSON is not valid JSON", PlanFromJson("{\"a\": ").status());
  ASSERT_RAISES_WITH(Invalid, "plan JSON at $: expected an object, got an array",
                     PlanFromJson("[]").status());
  std::string deep(100, '[');
  ASSERT_RAISES_WITH(Invalid, "deeper than 16 levels", PlanFromJson(deep).status());
  std::string huge(kMaxPlanJsonBytes + 1, ' ');
  ASSERT_RAISES_WITH(Invalid, "bytes; at most", PlanFromJson(huge).status());
  ASSERT_RAISES_WITH(Invalid, "plan JSON has the key 'kind' twice in one object",
                     PlanFromJson(R"({"sabot_plan_version": 1, "operators": [{"id": 0,
                                     "kind": "map", "kind": "filter"}], "edges": []})")
                         .status());
  ExpectRejected([](Json& j) { j.erase("sabot_plan_version"); },
                 "plan JSON at $.sabot_plan_version: missing");
  ExpectRejected([](Json& j) { j["sabot_plan_version"] = 2; },
                 "at $.sabot_plan_version: unsupported version 2 (this Sabot reads version 1)");
  ExpectRejected([](Json& j) { j["sabot_plan_version"] = "1"; },
                 "at $.sabot_plan_version: expected an integer, got a string");
  ExpectRejected([](Json& j) { j["extra"] = 1; }, "plan JSON at $: unknown key 'extra'");
  ExpectRejected([](Json& j) { j["options"]["shuffle_mode"] = "batch"; },
                 "at $.options.shuffle_mode:");
  ExpectRejected([](Json& j) { j["options"]["chaining"] = 1; },
                 "at $.options.chaining: expected a boolean, got an integer");
  ExpectRejected([](Json& j) { j["options"]["speed"] = 1; },
                 "at $.options: unknown key 'speed'");
  ExpectRejected([](Json& j) { j["operators"] = Json::object(); },
                 "at $.operators: expected an array, got an object");
  ExpectRejected([](Json& j) { j["edges"] = 3; }, "at $.edges: expected an array, got an integer");
  ExpectRejected([](Json& j) { j.erase("edges"); }, "at $.edges: missing");
}

TEST(PlanJsonTest, RejectsBadOperatorsNamingOperatorAndPath) {
  ExpectRejected([](Json& j) { j["operators"][1]["colour"] = "red"; },
                 "plan JSON: operator 'map' (id 1): at $.operators[1]: unknown key 'colour'");
  ExpectRejected([](Json& j) { j["operators"][1]["kind"] = "flat_map"; },
                 "operator 'map' (id 1): at $.operators[1].kind: unknown operator kind 'flat_map'");
  ExpectRejected([](Json& j) { j["operators"][1]["parallelism"] = 0; },
                 "operator 'map' (id 1): at $.operators[1].parallelism: must be between 1 and 1024, got 0");
  ExpectRejected([](Json& j) { j["operators"][1]["parallelism"] = 2.5; },
                 "at $.operators[1].parallelism: expected an integer, got a number with a fraction");
  ExpectRejected([](Json& j) { j["operators"][1].erase("parallelism"); },
                 "at $.operators[1].parallelism: missing");
  ExpectRejected([](Json& j) { j["operators"][1]["id"] = -1; },
                 "at $.operators[1].id: must be between 0 and");
  ExpectRejected([](Json& j) { j["operators"][1]["name"] = 7; },
                 "at $.operators[1].name: expected a string, got an integer");
  ExpectRejected([](Json& j) { j["operators"][1]["params"]["columns"][0]["expr"] = "x"; },
                 "operator 'map' (id 1): at $.operators[1].params.columns[0]: unknown key 'expr'");
  ExpectRejected([](Json& j) { j["operators"][1]["params"]["columns"] = "x"; },
                 "at $.operators[1].params.columns: expected an array, got a string");
  ExpectRejected([](Json& j) { j["operators"][2]["params"]["keys"][0] = 1; },
                 "operator 'by_user' (id 2): at $.operators[2].params.keys[0]: expected a string, got an integer");
  ExpectRejected([](Json& j) { j["operators"][3]["params"]["type"] = "hopping"; },
                 "operator 'window' (id 3): at $.operators[3].params.type: unknown window type 'hopping'");
  ExpectRejected([](Json& j) { j["operators"][3]["params"]["size_ms"] = -5; },
                 "at $.operators[3].params.size_ms: must be between 0 and");
  ExpectRejected([](Json& j) { j["operators"][4]["params"]["aggregates"][0]["function"] = "median"; },
                 "operator 'agg' (id 4): at $.operators[4].params.aggregates[0].function: unknown aggregate function 'median'");
  ExpectRejected([](Json& j) { j["operators"][0]["params"]["seed"] = -1; },
                 "at $.operators[0].params.seed: expected an integer >= 0, got an integer");
  ExpectRejected([](Json& j) { j["operators"][0]["params"]["event_time"]["late"] = 1; },
                 "at $.operators[0].params.event_time: unknown key 'late'");
  ExpectRejected([](Json& j) { j["operators"][0]["params"]["csv"] = Json::object(); },
                 "operator 'source' (id 0): at $.operators[0].params: unknown key 'csv'");
  ExpectRejected([](Json& j) { j["operators"][5]["params"]["directory"] = "/x"; },
                 "operator 'sink' (id 5): at $.operators[5].params: unknown key 'directory'");
  // Rules of LogicalPlan::Validate come through, naming the operator and parameter.
  ExpectRejected([](Json& j) { j["operators"][1]["params"]["columns"][0]["expression"] = ""; },
                 "plan JSON: operator 'map' (id 1): parameter 'columns[0].expression': must not "
                 "be empty (at $.operators[1].params.columns[0].expression)");
  ExpectRejected([](Json& j) { j["operators"][3]["params"]["size_ms"] = 0; },
                 "operator 'window' (id 3): parameter 'size_ms': must be > 0, got 0 (at "
                 "$.operators[3].params.size_ms)");
  ExpectRejected([](Json& j) { j["operators"][5]["name"] = "map"; },
                 "operator 'map' (id 5): another operator has the same name (at "
                 "$.operators[5].name)");
  ExpectRejected([](Json& j) { j["operators"][4]["params"]["aggregates"][0]["alias"] = "user_id"; },
                 "is also a key column; choose another alias (at "
                 "$.operators[4].params.aggregates[0].alias)");
  ExpectRejected([](Json& j) { j["operators"][1]["parallelism"] = 3; },
                 "operator 'by_user' (id 2): a key_by has the parallelism of its input ('map': "
                 "3), got 4 (at $.operators[2].parallelism)");
  ExpectRejected([](Json& j) { j["edges"].erase(4); },
                 "operator 'agg' (id 4): its output goes nowhere (feed it into another operator "
                 "or a sink) (at $.operators[4])");
}

TEST(PlanJsonTest, RejectsBadEdges) {
  ExpectRejected([](Json& j) { j["edges"][0]["to"] = 42; },
                 "edge 'source' -> id 42: no operator has id 42 (at $.edges[0].to)");
  ExpectRejected([](Json& j) { j["edges"][0]["input"] = 2; },
                 "at $.edges[0].input: must be between 0 and 1, got 2");
  ExpectRejected([](Json& j) { j["edges"][0]["weight"] = 2; },
                 "at $.edges[0]: unknown key 'weight'");
  ExpectRejected([](Json& j) { j["edges"][0]["partitioning"]["type"] = "shuffle"; },
                 "at $.edges[0].partitioning.type: unknown partitioning 'shuffle'");
  ExpectRejected([](Json& j) { j["edges"][0]["partitioning"]["keys"] = {"a"}; },
                 "at $.edges[0].partitioning: unknown key 'keys'");
  ExpectRejected([](Json& j) { j["edges"][0]["partitioning"] = {{"type", "hash"}}; },
                 "at $.edges[0].partitioning.keys: missing");
  ExpectRejected(
      [](Json& j) {
        j["edges"][0]["partitioning"] = {{"type", "range"}, {"keys", {"k"}}, {"boundaries", {{true}}}};
      },
      "at $.edges[0].partitioning.boundaries[0][0]: expected an integer, a number or a string, got a boolean");
  ExpectRejected(
      [](Json& j) {
        j["edges"][0]["partitioning"] = {{"type", "range"}, {"keys", {"k"}}, {"boundaries", {1}}};
      },
      "at $.edges[0].partitioning.boundaries[0]: expected an array, got an integer");
  ExpectRejected([](Json& j) { j["edges"][2]["partitioning"] = {{"type", "forward"}}; },
                 "plan JSON: edge 'by_user' -> 'window': forward partitioning needs equal "
                 "parallelism, but 'by_user' has 4 and 'window' has 2 (at "
                 "$.edges[2].partitioning)");
  ExpectRejected([](Json& j) { j["edges"][2]["partitioning"] = {{"type", "broadcast"}}; },
                 "edge 'by_user' -> 'window': the edge leaving a key_by is HASH on its keys");
  ExpectRejected([](Json& j) { j["edges"].push_back({{"from", 4}, {"to", 1}}); },
                 "the plan has a cycle: ");
}

// The seeds of the fuzz target are valid plans, and stay so as the format evolves.
TEST(PlanJsonTest, FuzzSeedCorpusReads) {
  const std::string dir = std::string(SABOT_FUZZ_CORPUS_DIR) + "/fuzz_plan_json/";
  for (const char* name :
       {"seed_pipeline.json", "fan_out_join.json", "table_source_window.json"}) {
    std::ifstream file(dir + name);
    ASSERT_TRUE(file.good()) << dir << name;
    const std::string text((std::istreambuf_iterator<char>(file)),
                           std::istreambuf_iterator<char>());
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, PlanFromJson(text));
    ASSERT_OK_AND_ASSIGN(std::string written, PlanToJson(plan));
    ASSERT_OK_AND_ASSIGN(LogicalPlan back, PlanFromJson(written));
    EXPECT_TRUE(back.Equals(plan)) << name;
  }
}

// Found by fuzz_plan_json: the shuffle layer's ParseShuffleMode quotes its input as it is, so a
// DEL byte in "shuffle_mode" reached the message unescaped.
TEST(PlanJsonTest, EnumErrorsAreEscaped) {
  ExpectRejected([](Json& j) { j["options"]["shuffle_mode"] = "blo\x7fking"; },
                 "at $.options.shuffle_mode: unknown shuffle mode 'blo\\x7fking'");
  std::ifstream file(std::string(SABOT_FUZZ_CORPUS_DIR) +
                     "/fuzz_plan_json/regression_unprintable_enum");
  ASSERT_TRUE(file.good());
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  arrow::Status status = PlanFromJson(text).status();
  ASSERT_TRUE(status.IsInvalid()) << status.ToString();
  for (char c : status.message()) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << status.message();
}

TEST(PlanJsonTest, RejectsStringsJsonCannotHold) {
  PlanBuilder b;
  b.Source(GeneratorSourceParams{}).Filter("x = '\xff'").Sink(CollectSinkParams{});
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_RAISES_WITH(Invalid, "plan cannot be written as JSON", PlanToJson(plan).status());
}

}  // namespace
}  // namespace sabot
