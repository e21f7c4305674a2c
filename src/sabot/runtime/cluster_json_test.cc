#include "sabot/runtime/cluster_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sabot/runtime/http_api_testing.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using TimePoint = std::chrono::system_clock::time_point;

constexpr int64_t kEpochMs = 1700000000000;  // 2023-11-14T22:13:20Z

TEST(ClusterJsonTest, TimestampsAreRfc3339UtcWithMilliseconds) {
  EXPECT_EQ(FormatTimestamp(TimePoint(milliseconds(kEpochMs + 7))), "2023-11-14T22:13:20.007Z");
  EXPECT_EQ(FormatTimestamp(TimePoint(milliseconds(0))), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimestamp(TimePoint(milliseconds(-1))), "1969-12-31T23:59:59.999Z");
}

TEST(ClusterJsonTest, AgentsWithStateHeartbeatAndMemory) {
  std::vector<AgentInfo> agents = SampleAgents();
  agents.push_back(AgentInfo{});  // never heard from
  agents.back().id = "agent-3";
  const Json body = Json::parse(AgentsJson(agents, TimePoint(milliseconds(kEpochMs + 3500))));
  ASSERT_EQ(body["agents"].size(), 3u);
  const Json& first = body["agents"][0];
  EXPECT_EQ(first["id"], "agent-1");
  EXPECT_EQ(first["location"], "grpc+tcp://127.0.0.1:47000");
  EXPECT_EQ(first["state"], "up");
  EXPECT_EQ(first["slots"], 4);
  EXPECT_EQ(first["slots_used"], 2);
  EXPECT_EQ(first["registered_at"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(first["last_heartbeat"], "2023-11-14T22:13:21.000Z");
  EXPECT_DOUBLE_EQ(first["heartbeat_age_seconds"].get<double>(), 2.5);
  EXPECT_EQ(first["memory_budget_bytes"], 256 << 20);
  EXPECT_EQ(first["memory_used_bytes"], 1 << 20);
  EXPECT_EQ(body["agents"][1]["state"], "lost");
  EXPECT_TRUE(body["agents"][2]["last_heartbeat"].is_null());
  EXPECT_TRUE(body["agents"][2]["heartbeat_age_seconds"].is_null());
  EXPECT_EQ(Json::parse(AgentsJson({}, TimePoint{}))["agents"], Json::array());
}

TEST(ClusterJsonTest, JobSummariesCountTasksByStateAndSinkRows) {
  ASSERT_OK_AND_ASSIGN(JobInfo live, MakeLiveSampleJob("live-1", 2));
  live.tasks[0].state = JobState::kFinished;
  JobInfo failed;
  failed.id = "job-7";
  failed.name = "broken";
  failed.state = JobState::kFailed;
  failed.error = "operator 'map' failed: \"x\"";
  failed.finished_at = TimePoint(milliseconds(kEpochMs));
  const Json body = Json::parse(JobsJson({live, failed}));
  ASSERT_EQ(body["jobs"].size(), 2u);
  const Json& first = body["jobs"][0];
  EXPECT_EQ(first["id"], "live-1");
  EXPECT_EQ(first["name"], "live-view");
  EXPECT_EQ(first["state"], "running");
  EXPECT_EQ(first["submitted_at"], "2023-11-14T22:13:20.000Z");
  EXPECT_TRUE(first["finished_at"].is_null());
  EXPECT_DOUBLE_EQ(first["elapsed_seconds"].get<double>(), 1.0);
  // 3 source tasks + 4 sums tasks + 2 narrow(+write) tasks.
  EXPECT_EQ(first["task_states"]["total"], 9);
  EXPECT_EQ(first["task_states"]["running"], 8);
  EXPECT_EQ(first["task_states"]["finished"], 1);
  EXPECT_EQ(first["task_states"]["failed"], 0);
  // The sink's rows: s1's total rows, 50 * 2 * (1 + 2 + 3 + 4) * 2 + 7 * 4.
  EXPECT_EQ(first["rows_out"], 50 * 2 * 10 * 2 + 7 * 4);
  const Json& second = body["jobs"][1];
  EXPECT_EQ(second["state"], "failed");
  EXPECT_EQ(second["error"], "operator 'map' failed: \"x\"");
  EXPECT_EQ(second["finished_at"], "2023-11-14T22:13:20.000Z");
  EXPECT_TRUE(second["submitted_at"].is_null());
  // A job without checkpoints: one attempt, nothing recovered.
  EXPECT_EQ(second["recovery"]["attempts"], 1);
  EXPECT_EQ(second["recovery"]["restarts"], 0);
  EXPECT_TRUE(second["recovery"]["recovery_seconds"].empty());
}

TEST(ClusterJsonTest, RestartingJobShowsItsRecovery) {
  JobInfo job;
  job.id = "job-3";
  job.name = "chaos";
  job.state = JobState::kRestarting;
  job.recovery.attempts = 3;
  job.recovery.restarts = 2;
  job.recovery.checkpoints_completed = 7;
  job.recovery.checkpoints_failed = 1;
  job.recovery.last_checkpoint = 9;
  job.recovery.restored_checkpoint = 9;
  job.recovery.recovery_times = {milliseconds(1500), milliseconds(250)};
  job.recovery.last_failure = "agent 'run-agent-2' is lost";
  const Json body = Json::parse(JobsJson({job}));
  const Json& first = body["jobs"][0];
  EXPECT_EQ(first["state"], "restarting");
  const Json& recovery = first["recovery"];
  EXPECT_EQ(recovery["attempts"], 3);
  EXPECT_EQ(recovery["restarts"], 2);
  EXPECT_EQ(recovery["checkpoints_completed"], 7);
  EXPECT_EQ(recovery["checkpoints_failed"], 1);
  EXPECT_EQ(recovery["last_checkpoint"], 9);
  EXPECT_EQ(recovery["restored_checkpoint"], 9);
  ASSERT_EQ(recovery["recovery_seconds"].size(), 2u);
  EXPECT_DOUBLE_EQ(recovery["recovery_seconds"][0].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(recovery["recovery_seconds"][1].get<double>(), 0.25);
  EXPECT_EQ(recovery["last_failure"], "agent 'run-agent-2' is lost");
}

TEST(ClusterJsonTest, JobGraphFromThePlanWithKeyByFoldedAndChains) {
  ASSERT_OK_AND_ASSIGN(JobInfo live, MakeLiveSampleJob("live-1", 3));
  const Json body = Json::parse(JobJson(live, TimePoint(milliseconds(kEpochMs + 10000))));
  const Json& graph = body["graph"];
  ASSERT_EQ(graph["operators"].size(), 4u);  // key_by folded
  std::vector<std::pair<std::string, int>> ops;
  for (const Json& op : graph["operators"]) ops.emplace_back(op["name"], op["parallelism"]);
  EXPECT_EQ(ops, (std::vector<std::pair<std::string, int>>{
                     {"source", 3}, {"sums", 4}, {"narrow", 2}, {"write", 2}}));
  EXPECT_EQ(graph["operators"][2]["chain"], graph["operators"][3]["chain"]);
  ASSERT_EQ(graph["edges"].size(), 3u);
  const Json& hash = graph["edges"][0];
  EXPECT_EQ(hash["shuffle_id"], "s0.source.sums");
  EXPECT_EQ(hash["type"], "hash");
  EXPECT_EQ(hash["keys"], Json::array({"user_id"}));
  EXPECT_EQ(hash["key_by"], "key_by");
  EXPECT_EQ(hash["mode"], "pipelined");
  EXPECT_EQ(hash["num_writers"], 3);
  EXPECT_EQ(hash["num_partitions"], 4);
  EXPECT_FALSE(hash["chained"].get<bool>());
  EXPECT_EQ(graph["edges"][1]["type"], "rebalance");
  EXPECT_EQ(graph["edges"][2]["chained"], true);
  EXPECT_EQ(graph["edges"][2]["shuffle_id"], "");
  ASSERT_EQ(graph["chains"].size(), 3u);
  EXPECT_EQ(graph["chains"][2]["operators"], Json::array({"narrow", "write"}));
}

TEST(ClusterJsonTest, JobFiguresPerChannelWriterAndOperator) {
  const int64_t g = 3;
  ASSERT_OK_AND_ASSIGN(JobInfo live, MakeLiveSampleJob("live-1", g));
  const Json body = Json::parse(JobJson(live, TimePoint(milliseconds(kEpochMs + 10000))));
  ASSERT_EQ(body["edges"].size(), 2u);  // shuffle edges only
  const Json& edge = body["edges"][0];
  EXPECT_EQ(edge["shuffle_id"], "s0.source.sums");
  ASSERT_EQ(edge["rows"].size(), 3u);
  int64_t total = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(edge["rows"][i].size(), 4u);
    for (int j = 0; j < 4; ++j) {
      int64_t expected = 1000 * (i + 1) + 100 * j + g * (10 * (i + 1) + j + 1) +
                         (j == 3 ? 500 * g : 0);
      if (i == 1 && j == 2) expected = 777;
      EXPECT_EQ(edge["rows"][i][j], expected) << i << "," << j;
      EXPECT_EQ(edge["bytes"][i][j], 24 * expected) << i << "," << j;
      total += expected;
    }
    EXPECT_DOUBLE_EQ(edge["writer_blocked_seconds"][i].get<double>(), 0.1 * g * (i + 1));
  }
  EXPECT_EQ(edge["total_rows"], total);
  EXPECT_EQ(edge["total_bytes"], 24 * total);
  EXPECT_DOUBLE_EQ(edge["blocked_seconds"].get<double>(), 0.1 * g * 6);
  EXPECT_EQ(edge["bytes_spilled"], 0);
  EXPECT_GT(edge["skew"].get<double>(), 1.0);
  EXPECT_EQ(edge["type"], "hash");

  ASSERT_EQ(body["operators"].size(), 4u);
  const Json& source = body["operators"][0];
  EXPECT_EQ(source["rows_out"], total);
  EXPECT_TRUE(source["watermark_ms"].is_null());
  EXPECT_TRUE(source["watermark_lag_seconds"].is_null());
  const Json& sums = body["operators"][1];
  EXPECT_EQ(sums["watermark_ms"], kEpochMs + 1000 * g);
  EXPECT_DOUBLE_EQ(sums["watermark_lag_seconds"].get<double>(), 10.0 - g);
  EXPECT_FALSE(sums["input_ended"].get<bool>());

  ASSERT_EQ(body["tasks"].size(), 9u);
  EXPECT_EQ(body["tasks"][0]["operator"], "source");
  EXPECT_EQ(body["tasks"][0]["agent_id"], "agent-1");
  EXPECT_EQ(body["tasks"][1]["agent_id"], "agent-2");
  EXPECT_EQ(body["tasks"][0]["state"], "running");
  EXPECT_EQ(body["memory"]["budget_bytes"], 64 << 20);
}

TEST(ClusterJsonTest, FiguresUnderJobPrefixedShuffleIdsAreFound) {
  ASSERT_OK_AND_ASSIGN(JobInfo live, MakeLiveSampleJob("live-1", 2));
  for (EdgeReport& edge : live.edges) edge.shuffle_id = "live-1." + edge.shuffle_id;
  std::swap(live.edges[0], live.edges[1]);
  const Json body = Json::parse(JobJson(live, TimePoint{}));
  ASSERT_EQ(body["edges"].size(), 2u);
  EXPECT_EQ(body["edges"][0]["shuffle_id"], "s0.source.sums");
  EXPECT_EQ(body["edges"][0]["rows"][1][2], 777);
  EXPECT_EQ(body["edges"][1]["rows"][3][1], 50 * 2 * 4 + 7);
  // Figures not reported yet: zeros, not a missing edge.
  live.edges.clear();
  const Json bare = Json::parse(JobJson(live, TimePoint{}));
  ASSERT_EQ(bare["edges"].size(), 2u);
  EXPECT_EQ(bare["edges"][0]["rows"], Json::array());
  EXPECT_EQ(bare["edges"][0]["total_rows"], 0);
}

TEST(ClusterJsonTest, JobWithoutAPlanIsDrawnFromItsFigures) {
  JobInfo job;
  job.id = "j";
  job.name = "noplan";
  OperatorReport op;
  op.id = 0;
  op.name = "gen";
  op.kind = OperatorKind::kGeneratorSource;
  op.parallelism = 2;
  op.watermark = std::numeric_limits<int64_t>::max();  // every input ended
  job.operators.push_back(op);
  EdgeReport edge;
  edge.shuffle_id = "s0.gen.out";
  edge.from = "gen";
  edge.to = "out";
  edge.type = "hash";
  edge.num_writers = 2;
  edge.num_partitions = 1;
  edge.rows = {{5}, {6}};
  job.edges.push_back(edge);
  job.plan_json = "not json";
  const Json body = Json::parse(JobJson(job, TimePoint{}));
  EXPECT_EQ(body["graph"]["operators"][0]["name"], "gen");
  EXPECT_EQ(body["graph"]["edges"][0]["num_writers"], 2);
  EXPECT_EQ(body["edges"][0]["rows"], Json::parse("[[5],[6]]"));
  EXPECT_EQ(body["edges"][0]["bytes"], Json::array());
  EXPECT_EQ(body["edges"][0]["writer_blocked_seconds"], Json::array());
  EXPECT_EQ(body["operators"][0]["input_ended"], true);
  EXPECT_TRUE(body["operators"][0]["watermark_ms"].is_null());
}

// While a job runs, the shuffle's bytes and blocked time count only the writers that finished,
// but its channels and writers are live: the edge's totals are never below what they show.
TEST(ClusterJsonTest, EdgeTotalsOfARunningJobAreAtLeastItsChannelsAndWriters) {
  JobInfo job;
  job.id = "j";
  job.name = "running";
  job.state = JobState::kRunning;
  EdgeReport edge;
  edge.shuffle_id = "s0.gen.out";
  edge.from = "gen";
  edge.to = "out";
  edge.type = "hash";
  edge.num_writers = 2;
  edge.num_partitions = 2;
  edge.rows = {{1, 2}, {3, 4}};
  edge.channel_bytes = {{100, 200}, {300, 400}};
  edge.writer_blocked = {milliseconds(250), milliseconds(500)};
  job.edges.push_back(edge);
  Json body = Json::parse(JobJson(job, TimePoint{}));
  EXPECT_EQ(body["edges"][0]["total_bytes"], 1000);
  EXPECT_DOUBLE_EQ(body["edges"][0]["blocked_seconds"].get<double>(), 0.75);

  // Once every writer finished, the shuffle's own figures (blocks with their framing) count.
  job.edges[0].bytes = 1040;
  job.edges[0].blocked = milliseconds(900);
  body = Json::parse(JobJson(job, TimePoint{}));
  EXPECT_EQ(body["edges"][0]["total_bytes"], 1040);
  EXPECT_DOUBLE_EQ(body["edges"][0]["blocked_seconds"].get<double>(), 0.9);
}

TEST(ClusterJsonTest, InvalidUtf8IsReplacedNotThrown) {
  JobInfo job;
  job.id = "j";
  job.error = std::string("bad byte \xff here");
  std::string text;
  ASSERT_NO_THROW(text = JobsJson({job}));
  EXPECT_EQ(Json::parse(text)["jobs"][0]["error"], "bad byte \xEF\xBF\xBD here");
  EXPECT_EQ(Json::parse(ErrorJson("say \"no\"\n"))["error"], "say \"no\"\n");
  EXPECT_EQ(Json::parse(SubmittedJobJson("job-3")),
            Json::parse(R"({"id": "job-3", "url": "/api/v1/jobs/job-3"})"));
}

}  // namespace
}  // namespace sabot
