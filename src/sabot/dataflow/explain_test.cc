#include "sabot/dataflow/explain.h"

#include <gtest/gtest.h>

#include "sabot/dataflow/plan_builder.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using std::chrono::minutes;

std::string ExplainOf(const PlanBuilder& b) {
  auto plan = b.Build();
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  if (!plan.ok()) return "";
  auto graph = ExecutionGraph::Make(*plan);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return graph.ok() ? Explain(*graph) : "";
}

// The seeds' pipeline: 10 sources and maps chained, HASH 10x5 into the windowed aggregate.
TEST(ExplainTest, SeedPipelineGolden) {
  PlanBuilder b;
  GeneratorSourceParams g;
  g.table = GeneratorTable::kTransactions;
  g.event_time = EventTimeSpec{"event_time", std::chrono::seconds(5)};
  b.Source(g, 10, "source")
      .Map("amount_usd", "amount * 1.1", {}, "map")
      .KeyBy({"user_id"}, "key_by")
      .Window(Tumbling(minutes(5)), {}, "window")
      .Aggregate({Sum("amount"), Count()}, 5, "aggregate")
      .Sink(ConsoleSinkParams{}, {}, "console");
  EXPECT_EQ(ExplainOf(b),
      "plan: 6 operators, 5 edges; shuffle mode pipelined, chaining on\n"
      "operators:\n"
      "  source[10]  generator_source transactions table, 4194304 rows, event time event_time (out of order <= 5000 ms)\n"
      "  map[10]  map amount_usd = 'amount * 1.1'\n"
      "  key_by  key_by(user_id)  folded into the next edge\n"
      "  window[5]  window tumbling size 300000 ms\n"
      "  aggregate[5]  aggregate sum(amount) AS sum_amount, count(*) AS count\n"
      "  console[5]  console_sink first 20 rows\n"
      "chains: 2, tasks: 15\n"
      "  chain 0  10 tasks  source -> map\n"
      "  chain 1  5 tasks  window -> aggregate -> console\n"
      "edges: 4, shuffles: 1\n"
      "  source[10] -> map[10]  FORWARD (chained)\n"
      "  map[10] -> window[5]  HASH(user_id) 10x5  shuffle s0.map.window (key_by key_by)\n"
      "  window[5] -> aggregate[5]  FORWARD (chained)\n"
      "  aggregate[5] -> console[5]  FORWARD (chained)\n");
}

// Fan-out mixing REBALANCE and BROADCAST, a RANGE edge, a join, blocking shuffles.
TEST(ExplainTest, FanOutJoinGolden) {
  PlanBuilder b;
  b.SetOptions({ShuffleMode::kBlocking, true});
  Stream events = b.Source(FileSourceParams{FileFormat::kParquet, {"/data/events"}, {}, {}}, 4,
                           "events");
  Stream users = b.Source(FileSourceParams{FileFormat::kCsv, {"/data/users.csv"}, {}, {}}, 1,
                          "users");
  events.Filter("amount > 10", {}, "big").Rebalance().Project({{"id", "user_id"}}, 2, "ids")
      .Sink(FileSinkParams{FileFormat::kParquet, "/out/ids", {}}, {}, "ids_out");
  events.Broadcast().Map("tag", "'x'", 3, "tagged").Sink(CollectSinkParams{}, {}, "tagged_out");
  events.PartitionByRange({"amount"}, {{1.5}, {100.0}}).Sink(CollectSinkParams{}, 3, "ranged");
  events.Join(users, {"user_id"}, {"id"}, JoinType::kLeft, 2, "join")
      .Sink(CollectSinkParams{}, {}, "joined");
  EXPECT_EQ(ExplainOf(b),
      "plan: 10 operators, 9 edges; shuffle mode blocking, chaining on\n"
      "operators:\n"
      "  events[4]  parquet_source '/data/events'\n"
      "  users[1]  csv_source '/data/users.csv'\n"
      "  big[4]  filter 'amount > 10'\n"
      "  ids[2]  project id = 'user_id'\n"
      "  ids_out[2]  parquet_sink '/out/ids'\n"
      "  tagged[3]  map tag = '\\'x\\''\n"
      "  tagged_out[3]  collect_sink\n"
      "  ranged[3]  collect_sink\n"
      "  join[2]  join left on (user_id) = (id)\n"
      "  joined[2]  collect_sink\n"
      "chains: 7, tasks: 19\n"
      "  chain 0  4 tasks  events\n"
      "  chain 1  1 task   users\n"
      "  chain 2  4 tasks  big\n"
      "  chain 3  2 tasks  ids -> ids_out\n"
      "  chain 4  3 tasks  tagged -> tagged_out\n"
      "  chain 5  3 tasks  ranged\n"
      "  chain 6  2 tasks  join -> joined\n"
      "edges: 9, shuffles: 6\n"
      "  events[4] -> big[4]  FORWARD 4x4  shuffle s0.events.big\n"
      "  big[4] -> ids[2]  REBALANCE 4x2  shuffle s1.big.ids\n"
      "  ids[2] -> ids_out[2]  FORWARD (chained)\n"
      "  events[4] -> tagged[3]  BROADCAST 4x3  shuffle s2.events.tagged\n"
      "  tagged[3] -> tagged_out[3]  FORWARD (chained)\n"
      "  events[4] -> ranged[3]  RANGE(amount) 2 boundaries 4x3  shuffle s3.events.ranged\n"
      "  events[4] -> join[2] (left)  HASH(user_id) 4x2  shuffle s4.events.join\n"
      "  users[1] -> join[2] (right)  HASH(id) 1x2  shuffle s5.users.join\n"
      "  join[2] -> joined[2]  FORWARD (chained)\n");
}

TEST(ExplainTest, TableSource) {
  PlanBuilder b;
  b.Source(TableSourceParams{"orders", 1000, EventTimeSpec{"ts", std::chrono::seconds(2)}}, 2,
           "src")
      .Sink(CollectSinkParams{}, {}, "sink");
  std::string text = ExplainOf(b);
  EXPECT_NE(text.find("  src[2]  table_source 'orders' (in memory, batches of <= 1000 rows), "
                      "event time ts (out of order <= 2000 ms)\n"),
            std::string::npos)
      << text;
}

TEST(ExplainTest, WindowTimeFieldsAndIdleTimeout) {
  PlanBuilder b;
  b.SetOptions(PlanOptions{ShuffleMode::kPipelined, true, std::chrono::milliseconds(1500)});
  WindowParams window = Tumbling(minutes(1));
  window.time_column = "ts";
  window.allowed_lateness = std::chrono::seconds(10);
  window.late_output = LateOutputSpec{FileFormat::kParquet, "/late", {}};
  Stream keyed = b.Source(GeneratorSourceParams{}, 1, "source").KeyBy({"key"});
  keyed.Window(window, 1, "window").Aggregate({Count()}, 1, "agg").Sink(CollectSinkParams{}, {}, "sink");
  WindowParams processing = Session(minutes(2));
  processing.time = TimeDomain::kProcessingTime;
  keyed.Window(processing, 1, "wall").Aggregate({Count()}, 1, "agg2").Sink(CollectSinkParams{}, {}, "sink2");
  std::string text = ExplainOf(b);
  EXPECT_NE(text.find("shuffle mode pipelined, chaining on, idle timeout 1500 ms\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("window tumbling size 60000 ms on 'ts' allowed lateness 10000 ms late rows "
                      "to parquet '/late'"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("window session gap 120000 ms on processing time"), std::string::npos) << text;
}

TEST(ExplainTest, UserTextIsEscaped) {
  PlanBuilder b;
  b.Source(GeneratorSourceParams{}, 1, "source")
      .Filter("a\nb\x01", {}, "filter")
      .KeyBy({"k\ney"})
      .Aggregate({Count()}, 1, "agg")
      .Sink(CollectSinkParams{}, {}, "sink");
  std::string text = ExplainOf(b);
  EXPECT_NE(text.find("filter[1]  filter 'a\\x0ab\\x01'"), std::string::npos) << text;
  EXPECT_NE(text.find("HASH(k\\x0aey)"), std::string::npos) << text;
  for (char c : text) {
    EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f)) << static_cast<int>(c);
  }
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

TEST(ExplainTest, BroadcastAndTimeJoins) {
  PlanBuilder b;
  Stream orders = b.Source(GeneratorSourceParams{}, 4, "orders");
  Stream users = b.Source(GeneratorSourceParams{}, 1, "users");
  orders.Join(users, JoinParams{{"key"}, {"key"}, JoinType::kAnti, JoinBroadcast::kRight}, 2, "bj")
      .Sink(CollectSinkParams{}, {}, "out1");
  JoinParams interval{{"key"}, {"key"}};
  interval.time = JoinTime::kInterval;
  interval.left_time = "t";
  interval.right_time = "u";
  interval.before = std::chrono::seconds(2);
  interval.after = std::chrono::seconds(1);
  orders.Join(users, interval, 2, "ij").Sink(CollectSinkParams{}, {}, "out2");
  const std::string text = ExplainOf(b);
  EXPECT_NE(text.find("bj[2]  join anti on (key) = (key) broadcast right\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("orders[4] -> bj[2] (left)  REBALANCE 4x2"), std::string::npos) << text;
  EXPECT_NE(text.find("users[1] -> bj[2] (right)  BROADCAST 1x2"), std::string::npos) << text;
  EXPECT_NE(text.find("ij[2]  join inner on (key) = (key) interval u in [t - 2000 ms, t + 1000 ms]"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace sabot
