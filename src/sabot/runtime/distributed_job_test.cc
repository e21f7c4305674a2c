#include "sabot/runtime/distributed_job.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <arrow/compute/api.h>
#include <arrow/flight/server.h>
#include <arrow/table.h>
#include <gtest/gtest.h>

#include "sabot/dataflow/job_file.h"
#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/runtime/agent.h"
#include "sabot/runtime/control_actions.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

namespace cp = arrow::compute;
namespace fs = std::filesystem;

// Every row of `table`, sorted by all its columns: equal multisets give equal tables. (GCC 12
// reports arrow::FieldRef's move in SortKey as maybe-uninitialized here, a false positive.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
std::shared_ptr<arrow::Table> Sorted(const std::shared_ptr<arrow::Table>& table) {
  std::vector<cp::SortKey> keys;
  for (const auto& field : table->schema()->fields()) keys.emplace_back(field->name());
  auto indices = cp::SortIndices(arrow::Datum(table), cp::SortOptions(keys)).ValueOrDie();
  auto sorted = cp::Take(arrow::Datum(table), arrow::Datum(indices)).ValueOrDie().table();
  return sorted->CombineChunks().ValueOrDie();
}
#pragma GCC diagnostic pop

// What a file sink wrote to `directory`, read back with a file source, sorted.
std::shared_ptr<arrow::Table> ReadOutput(const FileSinkParams& sink) {
  auto collected = std::make_shared<CollectedOutput>();
  PlanBuilder b;
  b.Source(FileSourceParams{sink.format, {sink.directory}, sink.csv, std::nullopt}, 1)
      .Sink(CollectSinkParams{}, 1, "out");
  auto plan = b.Build().ValueOrDie();
  LocalExecutorOptions options;
  options.job_id = "readback";
  options.collected = collected;
  auto run = RunLocalJob(plan, options);
  EXPECT_TRUE(run.ok()) << run.status();
  return Sorted(collected->Table("out").ValueOrDie());
}

std::vector<FileSinkParams> FileSinks(const LogicalPlan& plan) {
  std::vector<FileSinkParams> sinks;
  for (const OperatorSpec& spec : plan.operators()) {
    if (const auto* sink = std::get_if<FileSinkParams>(&spec.params)) sinks.push_back(*sink);
  }
  return sinks;
}

// Files under `directory` (recursively) whose name contains `part`.
std::vector<std::string> FilesNamed(const fs::path& directory, std::string_view part) {
  std::vector<std::string> found;
  std::error_code ignored;
  if (!fs::exists(directory, ignored)) return found;
  for (const auto& entry : fs::recursive_directory_iterator(directory, ignored)) {
    if (entry.is_regular_file() &&
        entry.path().filename().string().find(part) != std::string::npos) {
      found.push_back(entry.path().string());
    }
  }
  return found;
}

// Spill files left under `directory`: every regular file but a live spill root's lock.
std::vector<std::string> SpillFiles(const fs::path& directory) {
  std::vector<std::string> found;
  for (const std::string& file : FilesNamed(directory, "")) {
    if (fs::path(file).filename() != "lock") found.push_back(file);
  }
  return found;
}

// Three agents on loopback (4 slots each), a scratch directory with the examples' inputs.
class DistributedJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() /
                         ("sabot-distributed-job-test-" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    // The orders and customers of the join example, as its script writes them.
    const std::string command = std::string(SABOT_PYTHON) + " " + SABOT_EXAMPLES_DIR +
                                "/make-orders-customers.py --out " + (*root_ / "data").string() +
                                " > /dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    // The transactions of the filter/project example, written by its job.
    ASSERT_OK_AND_ASSIGN(JobFile make, Load("make-transactions-parquet.yaml"));
    LocalExecutorOptions options;
    options.job_id = "make";
    auto made = RunLocalJob(make.plan, options);
    ASSERT_TRUE(made.ok()) << made.status();
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    fs::remove_all(*root_, ignored);
    delete root_;
  }

  // The example `name`, its relative paths resolved under the scratch directory.
  static arrow::Result<JobFile> Load(const std::string& name) {
    std::ifstream in(std::string(SABOT_EXAMPLES_DIR) + "/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return ParseJobFile(text.str(), name, root_->string());
  }

  void SetUp() override {
    for (int a = 0; a < 3; ++a) {
      EngineOptions options;
      options.mode = EngineMode::kDistributed;
      options.manager.agent_id = "agent-" + std::to_string(a);
      options.manager.memory_budget = 256LL << 20;
      options.manager.spill.directory = (*root_ / ("spill-" + std::to_string(a))).string();
      fs::create_directories(options.manager.spill.directory);
      options.server.port = 0;
      options.client.max_attempts = 2;
      options.client.initial_backoff = std::chrono::milliseconds(10);
      ASSERT_OK_AND_ASSIGN(auto agent, Agent::Make(options));
      endpoints_.push_back({options.manager.agent_id, agent->location(), 4});
      agents_.push_back(std::move(agent));
    }
  }

  DistributedJobOptions Options(const std::string& job_id) {
    DistributedJobOptions options;
    options.job_id = job_id;
    options.memory_budget = 128LL << 20;
    options.agent_timeout = std::chrono::milliseconds(2000);
    options.threads = 2;
    return options;
  }

  // Runs example `name` locally and on the three agents in `mode`; their outputs must be equal.
  void ExpectSameAsLocal(const std::string& name, ShuffleMode mode) {
    SCOPED_TRACE(name + " " + std::string(ShuffleModeName(mode)));
    ASSERT_OK_AND_ASSIGN(JobFile job, Load(name));
    PlanOptions plan_options = job.plan.options();
    plan_options.shuffle_mode = mode;
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan,
                         LogicalPlan::Make(job.plan.operators(), job.plan.edges(), plan_options));
    const auto sinks = FileSinks(plan);
    ASSERT_FALSE(sinks.empty());

    LocalExecutorOptions local;
    local.job_id = job.name;
    local.memory_budget = 128LL << 20;
    ASSERT_OK_AND_ASSIGN(JobReport local_report, RunLocalJob(plan, local));
    std::vector<std::shared_ptr<arrow::Table>> expected;
    for (const auto& sink : sinks) {
      expected.push_back(ReadOutput(sink));
      EXPECT_GT(expected.back()->num_rows(), 0) << sink.directory;
    }

    std::vector<JobInfo> progress;
    DistributedJobOptions options = Options(job.name);
    options.progress_interval = std::chrono::milliseconds(100);
    options.on_progress = [&](const JobInfo& info) { progress.push_back(info); };
    ASSERT_OK_AND_ASSIGN(JobReport report, RunDistributedJob(plan, endpoints_, options));
    for (size_t s = 0; s < sinks.size(); ++s) {
      auto got = ReadOutput(sinks[s]);
      EXPECT_EQ(got->num_rows(), expected[s]->num_rows()) << sinks[s].directory;
      // Sums of doubles depend on the order rows arrive in: equal up to rounding.
      ASSERT_TRUE(got->schema()->Equals(*expected[s]->schema())) << sinks[s].directory;
      for (int c = 0; c < got->num_columns(); ++c) {
        EXPECT_TRUE(got->column(c)->ApproxEquals(
            *expected[s]->column(c), arrow::EqualOptions::Defaults().atol(1e-6)))
            << sinks[s].directory << " column " << got->schema()->field(c)->name();
      }
      EXPECT_TRUE(FilesNamed(sinks[s].directory, ".tmp").empty());
    }
    // The figures add up as in the local run: rows per operator, and per edge N x M totals.
    ASSERT_EQ(report.operators.size(), local_report.operators.size());
    for (size_t i = 0; i < report.operators.size(); ++i) {
      EXPECT_EQ(report.operators[i].rows_in, local_report.operators[i].rows_in)
          << report.operators[i].name;
      EXPECT_EQ(report.operators[i].rows_out, local_report.operators[i].rows_out)
          << report.operators[i].name;
    }
    ASSERT_EQ(report.edges.size(), local_report.edges.size());
    for (size_t e = 0; e < report.edges.size(); ++e) {
      EXPECT_EQ(report.edges[e].total_rows(), local_report.edges[e].total_rows())
          << report.edges[e].from << " -> " << report.edges[e].to;
    }
    // The last progress: finished, every task placed on an agent and finished.
    ASSERT_FALSE(progress.empty());
    EXPECT_EQ(progress.back().state, JobState::kFinished);
    for (const TaskInfo& task : progress.back().tasks) {
      EXPECT_EQ(task.state, TaskState::kFinished) << task.operator_name << " " << task.subtask;
      EXPECT_FALSE(task.agent_id.empty());
    }
    // Released everywhere: no spill file stays.
    for (int a = 0; a < 3; ++a) {
      EXPECT_TRUE(SpillFiles(*root_ / ("spill-" + std::to_string(a))).empty());
    }
  }

  static fs::path* root_;
  std::vector<std::unique_ptr<Agent>> agents_;
  std::vector<AgentEndpoint> endpoints_;
};

fs::path* DistributedJobTest::root_ = nullptr;

TEST_F(DistributedJobTest, FilterProjectPipelined) {
  ExpectSameAsLocal("filter-project-parquet.yaml", ShuffleMode::kPipelined);
}
TEST_F(DistributedJobTest, FilterProjectBlocking) {
  ExpectSameAsLocal("filter-project-parquet.yaml", ShuffleMode::kBlocking);
}
TEST_F(DistributedJobTest, FanOutPipelined) {
  ExpectSameAsLocal("fan-out.yaml", ShuffleMode::kPipelined);
}
TEST_F(DistributedJobTest, FanOutBlocking) {
  ExpectSameAsLocal("fan-out.yaml", ShuffleMode::kBlocking);
}
TEST_F(DistributedJobTest, OrdersCustomersJoinPipelined) {
  ExpectSameAsLocal("orders-customers-join.yaml", ShuffleMode::kPipelined);
}
TEST_F(DistributedJobTest, OrdersCustomersJoinBlocking) {
  ExpectSameAsLocal("orders-customers-join.yaml", ShuffleMode::kBlocking);
}
TEST_F(DistributedJobTest, SessionizationPipelined) {
  ExpectSameAsLocal("sessionization.yaml", ShuffleMode::kPipelined);
}
TEST_F(DistributedJobTest, SessionizationBlocking) {
  ExpectSameAsLocal("sessionization.yaml", ShuffleMode::kBlocking);
}
TEST_F(DistributedJobTest, SeedPipelinePipelined) {
  ExpectSameAsLocal("seed-pipeline.yaml", ShuffleMode::kPipelined);
}
TEST_F(DistributedJobTest, SeedPipelineBlocking) {
  ExpectSameAsLocal("seed-pipeline.yaml", ShuffleMode::kBlocking);
}

// A CSV source over two files, the second of which has a row that does not parse as the files'
// schema: the task reading it fails; the job fails naming job, operator, task and agent, and leaves no output.
TEST_F(DistributedJobTest, FailingTaskFailsTheJobNamingItsAgent) {
  const fs::path input = *root_ / "bad-csv";
  fs::create_directories(input);
  {
    std::ofstream good(input / "a.csv");
    good << "x,y\n";
    for (int i = 0; i < 1000; ++i) good << i << "," << i * 2 << "\n";
  }
  {
    // Numbers for longer than the block binding infers the schema from (1 MiB), then a row that
    // is not: the task reading this file fails at run time.
    std::ofstream bad(input / "b.csv");
    bad << "x,y\n";
    for (int i = 0; i < 150000; ++i) bad << 1000000 + i << "," << i << "\n";
    bad << "not-a-number,3\n";
  }
  const fs::path output = *root_ / "bad-out";
  PlanBuilder b;
  b.Source(FileSourceParams{FileFormat::kCsv, {input.string()}, {}, std::nullopt}, 2, "src")
      .Map("z", "x + y")
      .Rebalance()
      .Sink(FileSinkParams{FileFormat::kParquet, output.string(), {}}, 3, "write");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  auto report = RunDistributedJob(plan, endpoints_, Options("badjob"));
  ASSERT_FALSE(report.ok());
  const std::string message = report.status().message();
  EXPECT_NE(message.find("job 'badjob'"), std::string::npos) << message;
  EXPECT_NE(message.find("operator 'src'"), std::string::npos) << message;
  EXPECT_NE(message.find("task "), std::string::npos) << message;
  EXPECT_NE(message.find("on agent 'agent-"), std::string::npos) << message;
  EXPECT_TRUE(FilesNamed(output, "part-").empty());
}

// An agent destroyed while the job runs: the job fails within seconds naming that agent; the
// other agents' tasks are aborted and nothing partial stays.
TEST_F(DistributedJobTest, LostAgentFailsTheJobPromptly) {
  const fs::path output = *root_ / "lost-out";
  GeneratorSourceParams source;
  source.table = GeneratorTable::kTransactions;
  source.rows = 0;  // unbounded, rate-limited: the job runs until the agent goes
  source.rows_per_second = 20000;
  source.batch_rows = 500;
  PlanBuilder b;
  b.Source(source, 3, "gen")
      .KeyBy({"user_id"})
      .Map("y", "amount * 2", 3)
      .Sink(FileSinkParams{FileFormat::kParquet, output.string(), {}}, 3, "write");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  std::atomic<bool> running{false};
  DistributedJobOptions options = Options("lostjob");
  options.progress_interval = std::chrono::milliseconds(100);
  options.on_progress = [&](const JobInfo& info) {
    if (info.state == JobState::kRunning && !info.operators.empty() &&
        info.operators.back().rows_in > 0) {
      running.store(true);
    }
  };
  arrow::Result<JobReport> result = arrow::Status::UnknownError("not run");
  std::thread driver([&] { result = RunDistributedJob(plan, endpoints_, options); });
  while (!running.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto lost_at = std::chrono::steady_clock::now();
  agents_[2].reset();
  driver.join();
  const auto took = std::chrono::steady_clock::now() - lost_at;
  ASSERT_FALSE(result.ok());
  const std::string message = result.status().message();
  EXPECT_NE(message.find("agent 'agent-2'"), std::string::npos) << message;
  EXPECT_NE(message.find("job 'lostjob'"), std::string::npos) << message;
  // Within seconds (the agent timeout is 2 s), not the shuffle timeout (120 s).
  EXPECT_LT(took, std::chrono::seconds(30));
  EXPECT_TRUE(FilesNamed(output, "part-").empty());
  for (int a = 0; a < 3; ++a) {
    EXPECT_TRUE(SpillFiles(*root_ / ("spill-" + std::to_string(a))).empty());
  }
}

// Lineage recovery (lineage_recovery.h): a blocking job — a fast source joined with the per-user
// counts of a throttled one, then counted per user — on three agents. Agent 2 is lost once the
// fast source's tasks all finished (their output stored on their agents) while the throttled
// source still runs: the job finishes, the lost agent's tasks ran again on the others (the
// report lists them, the finished fast writer among them), and the output equals the local run's.
TEST_F(DistributedJobTest, LostAgentOfABlockingJobRerunsItsWork) {
  const fs::path output = *root_ / "lineage-out";
  GeneratorSourceParams fast;
  fast.table = GeneratorTable::kTransactions;
  fast.rows = 30000;
  fast.batch_rows = 1000;
  fast.key_cardinality = 500;
  GeneratorSourceParams slow = fast;
  slow.rows = 9000;
  slow.rows_per_second = 3000;  // about 3 s
  PlanOptions plan_options;
  plan_options.shuffle_mode = ShuffleMode::kBlocking;
  plan_options.lineage_recovery = true;
  PlanBuilder b;
  b.SetOptions(plan_options);
  auto counts = b.Source(slow, 3, "slow").KeyBy({"user_id"}).Aggregate(
      {CountRows("slow_rows")}, 3, "slow_counts");
  b.Source(fast, 3, "fast")
      .Join(counts, {"user_id"}, {"user_id"}, JoinType::kInner, 3, "joined")
      .KeyBy({"user_id"})
      .Aggregate({CountRows("rows"), Sum("slow_rows", "slow_rows")}, 3, "per_user")
      .Sink(FileSinkParams{FileFormat::kParquet, output.string(), {}}, 3, "write");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());

  const fs::path local_output = *root_ / "lineage-local";
  PlanBuilder local_builder;
  local_builder.SetOptions(plan_options);
  auto local_counts = local_builder.Source(slow, 3, "slow").KeyBy({"user_id"}).Aggregate(
      {CountRows("slow_rows")}, 3, "slow_counts");
  local_builder.Source(fast, 3, "fast")
      .Join(local_counts, {"user_id"}, {"user_id"}, JoinType::kInner, 3, "joined")
      .KeyBy({"user_id"})
      .Aggregate({CountRows("rows"), Sum("slow_rows", "slow_rows")}, 3, "per_user")
      .Sink(FileSinkParams{FileFormat::kParquet, local_output.string(), {}}, 3, "write");
  ASSERT_OK_AND_ASSIGN(auto local_plan, local_builder.Build());
  LocalExecutorOptions local;
  local.job_id = "lineage-local";
  ASSERT_OK(RunLocalJob(local_plan, local).status());
  auto expected = ReadOutput(FileSinkParams{FileFormat::kParquet, local_output.string(), {}});
  ASSERT_GT(expected->num_rows(), 0);

  // Lost once every fast task finished and while a slow one runs.
  std::atomic<bool> lose{false};
  std::atomic<bool> fast_task_on_lost_agent_finished{false};
  DistributedJobOptions options = Options("lineagejob");
  options.progress_interval = std::chrono::milliseconds(50);
  options.on_progress = [&](const JobInfo& info) {
    if (info.state != JobState::kRunning || lose.load()) return;
    bool fast_done = true, slow_running = false, on_lost = false;
    for (const TaskInfo& task : info.tasks) {
      const bool finished = task.state == TaskState::kFinished;
      if (task.operator_name == "fast") {
        fast_done = fast_done && finished;
        on_lost = on_lost || task.agent_id == "agent-2";
      }
      if (task.operator_name == "slow" && !finished) slow_running = true;
    }
    if (fast_done && slow_running && on_lost) {
      fast_task_on_lost_agent_finished.store(true);
      lose.store(true);
    }
  };
  arrow::Result<JobReport> result = arrow::Status::UnknownError("not run");
  std::thread driver([&] { result = RunDistributedJob(plan, endpoints_, options); });
  for (int i = 0; i < 600 && !lose.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(lose.load()) << "the fast source's tasks did not finish while the slow one ran";
  agents_[2].reset();
  driver.join();
  ASSERT_OK(result.status());
  EXPECT_TRUE(fast_task_on_lost_agent_finished.load());
  // Every task agent 2 ran, attempt 1 on another agent; the finished fast writer among them.
  const std::vector<std::string>& reruns = result->reruns;
  EXPECT_EQ(reruns.size(), 5u) << ::testing::PrintToString(reruns);
  bool fast_rerun = false;
  for (const std::string& line : reruns) {
    EXPECT_NE(line.find("(attempt 1)"), std::string::npos) << line;
    EXPECT_EQ(line.find("agent-2"), std::string::npos) << line;
    fast_rerun = fast_rerun || line.find("of 'fast'") != std::string::npos;
  }
  EXPECT_TRUE(fast_rerun) << ::testing::PrintToString(reruns);
  auto got = ReadOutput(FileSinkParams{FileFormat::kParquet, output.string(), {}});
  ASSERT_TRUE(got->schema()->Equals(*expected->schema()))
      << got->schema()->ToString() << " vs " << expected->schema()->ToString();
  EXPECT_TRUE(got->Equals(*expected)) << "distributed:\n"
                                      << got->ToString().substr(0, 2000) << "\nlocal:\n"
                                      << expected->ToString().substr(0, 2000);
  EXPECT_TRUE(FilesNamed(output, ".tmp").empty());
  EXPECT_EQ(FilesNamed(output, "part-").size(), 3u);
}

// The restart strategy bounds lineage recovery: with max_restarts 0 the first lost agent fails
// the blocking job, naming the agent and the bound, and leaves no output.
TEST_F(DistributedJobTest, LineageRecoveryIsBoundedByTheRestartStrategy) {
  const fs::path output = *root_ / "lineage-bounded-out";
  GeneratorSourceParams slow;
  slow.table = GeneratorTable::kTransactions;
  slow.rows = 0;  // unbounded, rate-limited: the job runs until the agent goes
  slow.rows_per_second = 20000;
  slow.batch_rows = 500;
  PlanOptions plan_options;
  plan_options.shuffle_mode = ShuffleMode::kBlocking;
  plan_options.lineage_recovery = true;
  plan_options.checkpoint.max_restarts = 0;
  PlanBuilder b;
  b.SetOptions(plan_options);
  b.Source(slow, 3, "gen")
      .KeyBy({"user_id"})
      .Aggregate({CountRows("rows")}, 3, "counts")
      .Sink(FileSinkParams{FileFormat::kParquet, output.string(), {}}, 3, "write");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  std::atomic<bool> running{false};
  DistributedJobOptions options = Options("boundedjob");
  options.progress_interval = std::chrono::milliseconds(50);
  options.on_progress = [&](const JobInfo& info) {
    if (info.state == JobState::kRunning) running.store(true);
  };
  arrow::Result<JobReport> result = arrow::Status::UnknownError("not run");
  std::thread driver([&] { result = RunDistributedJob(plan, endpoints_, options); });
  while (!running.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  agents_[2].reset();
  driver.join();
  ASSERT_FALSE(result.ok());
  const std::string message = result.status().message();
  EXPECT_NE(message.find("agent 'agent-2'"), std::string::npos) << message;
  EXPECT_NE(message.find("the restart strategy allows 0"), std::string::npos) << message;
  EXPECT_TRUE(FilesNamed(output, "part-").empty());
}

// Recovery of a job with checkpoints (docs/fault-tolerance.md, "Distributed recovery"): a
// rate-limited job whose agent 2 is destroyed while it runs. The checkpoint interval is long
// (no checkpoint completes), so a restart starts over from the beginning: what is tested here
// is the driver's restart (abort, release, delay, placement on the agents left, new attempt)
// and that the committed output is exactly the failure-free run's.
class RecoveryTest : public DistributedJobTest {
 protected:
  LogicalPlan Plan(const fs::path& output, const CheckpointOptions& checkpoint) {
    GeneratorSourceParams source;
    source.table = GeneratorTable::kTransactions;
    source.rows = 60000;
    source.rows_per_second = 30000;  // two seconds: the agent goes while it runs
    source.batch_rows = 500;
    source.key_cardinality = 100;
    PlanBuilder b;
    b.Source(source, 3, "gen")
        .KeyBy({"user_id"})
        .Map("y", "amount * 2", 3)
        .Sink(FileSinkParams{FileFormat::kParquet, output.string(), {}}, 3, "write");
    auto built = b.Build();
    EXPECT_TRUE(built.ok()) << built.status();
    PlanOptions options = built->options();
    options.checkpoint = checkpoint;
    auto plan = LogicalPlan::Make(built->operators(), built->edges(), options);
    EXPECT_TRUE(plan.ok()) << plan.status();
    return *plan;
  }
  CheckpointOptions Checkpoints(const std::string& name, int32_t max_restarts) {
    CheckpointOptions checkpoint;
    checkpoint.interval = std::chrono::hours(1);
    checkpoint.directory = (*root_ / ("chk-" + name)).string();
    checkpoint.max_restarts = max_restarts;
    checkpoint.restart_delay = std::chrono::milliseconds(50);
    return checkpoint;
  }
  // Runs `plan` on the three agents and destroys agent 2 once rows reach the sink.
  arrow::Result<JobReport> RunLosingAgent(const LogicalPlan& plan, DistributedJobOptions options,
                                          std::vector<JobInfo>* progress) {
    std::atomic<bool> running{false};
    std::mutex mutex;
    options.progress_interval = std::chrono::milliseconds(50);
    options.on_progress = [&](const JobInfo& info) {
      if (info.state == JobState::kRunning && !info.operators.empty() &&
          info.operators.back().rows_in > 0) {
        running.store(true);
      }
      std::lock_guard<std::mutex> lock(mutex);
      progress->push_back(info);
    };
    arrow::Result<JobReport> result = arrow::Status::UnknownError("not run");
    std::thread driver([&] { result = RunDistributedJob(plan, endpoints_, options); });
    while (!running.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    agents_[2].reset();
    driver.join();
    return result;
  }
};

TEST_F(RecoveryTest, LostAgentRestartsTheJobWithTheSameOutput) {
  const fs::path expected_dir = *root_ / "recovery-expected";
  const fs::path output = *root_ / "recovery-out";
  LocalExecutorOptions local;
  local.job_id = "expected";
  ASSERT_OK(RunLocalJob(Plan(expected_dir, CheckpointOptions{}), local).status());
  auto expected = ReadOutput(FileSinkParams{FileFormat::kParquet, expected_dir.string(), {}});
  ASSERT_EQ(expected->num_rows(), 60000);

  std::vector<JobInfo> progress;
  JobRecovery recovery;
  DistributedJobOptions options = Options("recovered");
  options.recovery = &recovery;
  ASSERT_OK_AND_ASSIGN(JobReport report,
                       RunLosingAgent(Plan(output, Checkpoints("restart", 2)), options, &progress));
  EXPECT_EQ(recovery.restarts, 1);
  EXPECT_EQ(recovery.attempts, 2);
  ASSERT_EQ(recovery.recovery_times.size(), 1u);
  EXPECT_GT(recovery.recovery_times[0].count(), 0);
  EXPECT_EQ(recovery.restored_checkpoint, kNoCheckpoint);
  EXPECT_NE(recovery.last_failure.find("agent-2"), std::string::npos) << recovery.last_failure;
  // The job was seen restarting, then ran on the two agents left.
  bool restarting = false;
  for (const JobInfo& info : progress) restarting = restarting || info.state == JobState::kRestarting;
  EXPECT_TRUE(restarting);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().state, JobState::kFinished);
  EXPECT_EQ(progress.back().recovery.restarts, 1);
  for (const TaskInfo& task : progress.back().tasks) EXPECT_NE(task.agent_id, "agent-2");

  // Exactly the failure-free rows: nothing lost, nothing twice, no temporary file left over.
  auto got = ReadOutput(FileSinkParams{FileFormat::kParquet, output.string(), {}});
  ASSERT_EQ(got->num_rows(), expected->num_rows());
  ASSERT_TRUE(got->schema()->Equals(*expected->schema()));
  EXPECT_TRUE(got->Equals(*expected)) << "the restarted job's rows differ";
  EXPECT_TRUE(FilesNamed(output, ".tmp").empty());
  EXPECT_EQ(report.operators.back().rows_in, 60000);
  EXPECT_EQ(report.checkpoints.restarts, 1);
  EXPECT_EQ(report.checkpoints.completed, 0);
}

// Checkpoints across agents: they complete while the job runs (every task's acks from three
// agents, the manifest committed), agent 2 is destroyed after one completed, and the job
// restarts from the latest one on the two agents left: the exactly-once sink's committed rows
// are exactly the failure-free run's (none lost, none twice).
TEST_F(RecoveryTest, RestartRestoresTheLatestCheckpointWithExactlyOnceOutput) {
  const fs::path expected_dir = *root_ / "restore-expected";
  const fs::path output = *root_ / "restore-out";
  LocalExecutorOptions local;
  local.job_id = "expected";
  ASSERT_OK(RunLocalJob(Plan(expected_dir, CheckpointOptions{}), local).status());
  auto expected = ReadOutput(FileSinkParams{FileFormat::kParquet, expected_dir.string(), {}});

  CheckpointOptions checkpoint = Checkpoints("restore", 2);
  checkpoint.interval = std::chrono::milliseconds(200);
  std::atomic<bool> checkpointed{false};
  std::vector<JobInfo> progress;
  std::mutex mutex;
  JobRecovery recovery;
  DistributedJobOptions options = Options("restored");
  options.recovery = &recovery;
  options.progress_interval = std::chrono::milliseconds(20);
  options.on_progress = [&](const JobInfo& info) {
    if (info.recovery.checkpoints_completed > 0) checkpointed.store(true);
    std::lock_guard<std::mutex> lock(mutex);
    progress.push_back(info);
  };
  const LogicalPlan plan = Plan(output, checkpoint);
  arrow::Result<JobReport> result = arrow::Status::UnknownError("not run");
  std::thread driver([&] { result = RunDistributedJob(plan, endpoints_, options); });
  while (!checkpointed.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  agents_[2].reset();
  driver.join();
  ASSERT_OK(result.status());
  EXPECT_EQ(recovery.restarts, 1);
  EXPECT_GE(recovery.checkpoints_completed, 1);
  // The report's checkpoint figures are the recovery's.
  EXPECT_EQ(result->checkpoints.completed, recovery.checkpoints_completed);
  EXPECT_EQ(result->checkpoints.last_id, recovery.last_checkpoint);
  EXPECT_EQ(result->checkpoints.restored_from, recovery.restored_checkpoint);
  EXPECT_GT(result->checkpoints.last_bytes, 0);
  EXPECT_GE(recovery.restored_checkpoint, 1);
  EXPECT_LE(recovery.restored_checkpoint, recovery.last_checkpoint);
  // The newest checkpoint is complete on disk (older ones beyond `retained` are pruned).
  char name[16];
  std::snprintf(name, sizeof(name), "chk-%06lld",
                static_cast<long long>(recovery.last_checkpoint));
  EXPECT_TRUE(fs::exists(fs::path(checkpoint.directory) / "restored" / name / "MANIFEST.json"))
      << name;
  // No checkpoint given up (failed, pending at the restart or at the end) leaves a directory
  // behind: every one on disk is complete.
  for (const auto& entry : fs::directory_iterator(fs::path(checkpoint.directory) / "restored")) {
    if (entry.path().filename().string().rfind("chk-", 0) != 0) continue;
    EXPECT_TRUE(fs::exists(entry.path() / "MANIFEST.json")) << entry.path();
  }
  auto got = ReadOutput(FileSinkParams{FileFormat::kParquet, output.string(), {}});
  ASSERT_EQ(got->num_rows(), expected->num_rows());
  EXPECT_TRUE(got->Equals(*expected)) << "the restored job's rows differ";
  EXPECT_TRUE(FilesNamed(output, ".tmp").empty());
}

TEST_F(RecoveryTest, RestartsAreBoundedByTheStrategy) {
  std::vector<JobInfo> progress;
  JobRecovery recovery;
  DistributedJobOptions options = Options("norestart");
  options.recovery = &recovery;
  auto result = RunLosingAgent(Plan(*root_ / "norestart-out", Checkpoints("norestart", 0)),
                               options, &progress);
  ASSERT_FALSE(result.ok());
  const std::string message = result.status().message();
  EXPECT_NE(message.find("agent 'agent-2'"), std::string::npos) << message;
  EXPECT_NE(message.find("no restart left: 0 of 0"), std::string::npos) << message;
  EXPECT_EQ(recovery.restarts, 0);
  EXPECT_TRUE(FilesNamed(*root_ / "norestart-out", "part-").empty());
}

TEST_F(RecoveryTest, NoAgentsToRestartOnFailsWithTheCause) {
  std::vector<JobInfo> progress;
  std::vector<std::string> lost_seen;
  DistributedJobOptions options = Options("noslots");
  options.replace_agents = [&](const std::vector<std::string>& lost, int32_t slots_needed)
      -> arrow::Result<std::vector<AgentEndpoint>> {
    lost_seen = lost;
    return arrow::Status::CapacityError("it needs ", slots_needed, " slots; none came");
  };
  auto result = RunLosingAgent(Plan(*root_ / "noslots-out", Checkpoints("noslots", 3)), options,
                               &progress);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsCapacityError()) << result.status();
  const std::string message = result.status().message();
  EXPECT_NE(message.find("cannot restart"), std::string::npos) << message;
  EXPECT_NE(message.find("it needs 3 slots; none came"), std::string::npos) << message;
  EXPECT_EQ(lost_seen, std::vector<std::string>{"agent-2"});
  EXPECT_TRUE(FilesNamed(*root_ / "noslots-out", "part-").empty());
}

// Cancelling a running job: Cancelled, every task ends (on every agent), nothing partial stays,
// and the agents keep serving (the next job runs).
TEST_F(DistributedJobTest, CancelEndsTheJobEverywhere) {
  const fs::path output = *root_ / "cancel-out";
  GeneratorSourceParams source;
  source.table = GeneratorTable::kTransactions;
  source.rows = 0;
  source.rows_per_second = 20000;
  source.batch_rows = 500;
  PlanBuilder b;
  b.Source(source, 3, "gen")
      .Rebalance()
      .Sink(FileSinkParams{FileFormat::kCsv, output.string(), {}}, 2, "write");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  std::atomic<bool> cancel{false};
  DistributedJobOptions options = Options("cancelled");
  options.cancel = &cancel;
  options.progress_interval = std::chrono::milliseconds(100);
  std::vector<JobInfo> seen;
  options.on_progress = [&](const JobInfo& info) {
    seen.push_back(info);
    if (!info.operators.empty() && info.operators.back().rows_in > 1000) cancel.store(true);
  };
  auto report = RunDistributedJob(plan, endpoints_, options);
  ASSERT_TRUE(report.status().IsCancelled()) << report.status();
  EXPECT_NE(report.status().message().find("job 'cancelled' was cancelled"), std::string::npos)
      << report.status();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state, JobState::kCancelled);
  for (const TaskInfo& task : seen.back().tasks) EXPECT_EQ(task.state, TaskState::kCancelled);
  // Live N x M rows while it ran: the 3 x 2 rebalance edge moved rows.
  ASSERT_EQ(seen.back().edges.size(), 1u);
  EXPECT_EQ(seen.back().edges[0].rows.size(), 3u);
  EXPECT_GT(seen.back().edges[0].total_rows(), 0);
  EXPECT_EQ(seen.back().edges[0].writer_blocked.size(), 3u);
  int64_t channel_bytes = 0;
  for (const auto& row : seen.back().edges[0].channel_bytes) {
    for (int64_t bytes : row) channel_bytes += bytes;
  }
  EXPECT_GT(channel_bytes, 0);
  EXPECT_TRUE(FilesNamed(output, "part-").empty());
  EXPECT_TRUE(FilesNamed(output, ".tmp").empty());
  ExpectSameAsLocal("fan-out.yaml", ShuffleMode::kPipelined);
}

TEST_F(DistributedJobTest, CollectSinksAndTableSourcesAreRefused) {
  PlanBuilder b;
  GeneratorSourceParams source;
  source.table = GeneratorTable::kTransactions;
  source.rows = 100;
  b.Source(source, 1, "gen").Sink(CollectSinkParams{}, 1, "rows");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  auto report = RunDistributedJob(plan, endpoints_, Options("collect"));
  ASSERT_TRUE(report.status().IsInvalid()) << report.status();
  EXPECT_NE(report.status().message().find("operator 'rows' (collect_sink)"), std::string::npos)
      << report.status();
}

TEST_F(DistributedJobTest, TooFewSlotsIsACapacityError) {
  ASSERT_OK_AND_ASSIGN(JobFile job, Load("seed-pipeline.yaml"));
  std::vector<AgentEndpoint> small = {endpoints_[0]};
  small[0].slots = 2;
  auto report = RunDistributedJob(job.plan, small, Options("small"));
  EXPECT_TRUE(report.status().IsCapacityError()) << report.status();
}

// Hostile deployments are refused before anything is made for them, with the input quoted.
TEST_F(DistributedJobTest, HostileDeploymentsAreRefused) {
  ASSERT_OK_AND_ASSIGN(JobFile job, Load("fan-out.yaml"));
  ASSERT_OK_AND_ASSIGN(std::string plan_json, PlanToJson(job.plan));
  ASSERT_OK_AND_ASSIGN(auto graph, ExecutionGraph::Make(job.plan));
  TaskDeployment deployment;
  deployment.job_id = "hostile";
  deployment.plan_json = plan_json;
  deployment.agents = {agents_[0]->location()};
  deployment.task_agents.assign(graph.tasks().size(), 0);
  deployment.tasks = {0};
  auto send = [&](const TaskDeployment& d) {
    ControlMessage request;
    PutTaskDeployment(d, &request);
    return agents_[0]->HandleAction(kActionDeployTasks, request.Encode()).status();
  };
  TaskDeployment bad = deployment;
  bad.tasks = {static_cast<int64_t>(graph.tasks().size())};
  EXPECT_TRUE(send(bad).IsIndexError()) << send(bad);
  bad = deployment;
  bad.tasks = {0, 0};
  EXPECT_TRUE(send(bad).IsInvalid());
  bad = deployment;
  bad.task_agents[0] = 5;
  EXPECT_TRUE(send(bad).IsIndexError());
  bad = deployment;
  bad.task_agents.pop_back();
  EXPECT_TRUE(send(bad).IsInvalid());
  bad = deployment;
  bad.job_id = "no/slashes";
  EXPECT_FALSE(send(bad).ok());
  bad = deployment;
  bad.plan_json = "{not json";
  EXPECT_FALSE(send(bad).ok());
  bad = deployment;
  bad.memory_budget = int64_t{1} << 50;
  EXPECT_TRUE(send(bad).IsInvalid()) << send(bad);
  ControlMessage request;
  request.Set("job_id", "hostile");
  request.Set("tasks", std::string(200000, '1') + ",2");
  EXPECT_FALSE(agents_[0]->HandleAction(kActionDeployTasks, request.Encode()).ok());
  // Unknown jobs: status is a KeyError naming it; abort and release are no-ops.
  ControlMessage status;
  status.Set("job_id", "nosuchjob");
  auto reply = agents_[0]->HandleAction(kActionJobStatus, status.Encode());
  EXPECT_TRUE(reply.status().IsKeyError()) << reply.status();
  EXPECT_OK(agents_[0]->HandleAction(kActionAbortJob, status.Encode()).status());
  EXPECT_OK(agents_[0]->HandleAction(kActionReleaseJob, status.Encode()).status());
}


// An agent that answers every action at once but sabot.deploy_tasks, which it holds until the
// test lets it go (as an agent stopped with SIGSTOP, or stuck binding the plan, would).
class StuckDeployAgent : public arrow::flight::FlightServerBase {
 public:
  arrow::Status DoAction(const arrow::flight::ServerCallContext&,
                         const arrow::flight::Action& action,
                         std::unique_ptr<arrow::flight::ResultStream>* result) override {
    if (action.type == kActionDeployTasks) {
      std::unique_lock lock(mutex_);
      deploying_ = true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return released_; });
    }
    *result = std::make_unique<arrow::flight::SimpleResultStream>(
        std::vector<arrow::flight::Result>{});
    return arrow::Status::OK();
  }
  void WaitDeploying() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return deploying_; });
  }
  void Release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool deploying_ = false;
  bool released_ = false;
};

class StuckDeployTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(auto location, arrow::flight::Location::ForGrpcTcp("127.0.0.1", 0));
    ASSERT_OK(server_.Init(arrow::flight::FlightServerOptions(location)));
    ASSERT_OK_AND_ASSIGN(auto target,
                         arrow::flight::Location::ForGrpcTcp("127.0.0.1", server_.port()));
    endpoints_.push_back({"agent-stuck", target.ToString(), 2});
    GeneratorSourceParams source;
    source.table = GeneratorTable::kTransactions;
    source.rows = 100;
    PlanBuilder b;
    b.Source(source, 1, "gen")
        .Sink(FileSinkParams{FileFormat::kParquet,
                             (fs::temp_directory_path() / "sabot-stuck-deploy").string(),
                             {}},
              1, "write");
    ASSERT_OK_AND_ASSIGN(plan_, b.Build());
  }
  void TearDown() override {
    server_.Release();
    ASSERT_OK(server_.Shutdown());
  }

  StuckDeployAgent server_;
  std::vector<AgentEndpoint> endpoints_;
  std::optional<LogicalPlan> plan_;
};

// A cancel ends a job whose deploy call hangs: the driver does not wait for the agent's answer.
TEST_F(StuckDeployTest, CancelInterruptsAHangingDeploy) {
  std::atomic<bool> cancel{false};
  DistributedJobOptions options;
  options.job_id = "stuckcancel";
  options.agent_timeout = std::chrono::milliseconds(500);
  // The deploy's own deadline is far away: only the cancel can end the job early.
  options.long_call_timeout = std::chrono::seconds(600);
  options.cancel = &cancel;
  arrow::Result<JobReport> result = arrow::Status::UnknownError("not run");
  std::thread driver([&] { result = RunDistributedJob(*plan_, endpoints_, options); });
  server_.WaitDeploying();
  cancel.store(true);
  driver.join();
  ASSERT_TRUE(result.status().IsCancelled()) << result.status();
  EXPECT_NE(result.status().message().find("job 'stuckcancel' was cancelled"), std::string::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("agent 'agent-stuck'"), std::string::npos)
      << result.status();
}

// An agent that does not answer its deploy within the long-call deadline is lost: the job fails
// naming job and agent, instead of waiting for the client's call timeout (120 s).
TEST_F(StuckDeployTest, HangingDeployLosesTheAgentAtItsDeadline) {
  DistributedJobOptions options;
  options.job_id = "stuckdeploy";
  options.agent_timeout = std::chrono::milliseconds(200);
  options.long_call_timeout = std::chrono::milliseconds(500);
  auto result = RunDistributedJob(*plan_, endpoints_, options);
  ASSERT_FALSE(result.ok());
  const std::string message = result.status().message();
  EXPECT_NE(message.find("job 'stuckdeploy': deploying 1 tasks on agent 'agent-stuck'"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("is lost: it did not answer sabot.deploy_tasks within 500 ms"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace sabot
