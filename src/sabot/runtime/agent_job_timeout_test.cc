#include "sabot/runtime/agent.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/runtime/control_actions.h"
#include "sabot/runtime/distributed_job.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;

// Files under `directory` whose name contains `part`.
int CountFilesNamed(const fs::path& directory, std::string_view part) {
  int found = 0;
  std::error_code ignored;
  if (!fs::exists(directory, ignored)) return 0;
  for (const auto& entry : fs::recursive_directory_iterator(directory, ignored)) {
    if (entry.is_regular_file() &&
        entry.path().filename().string().find(part) != std::string::npos) {
      ++found;
    }
  }
  return found;
}

// An in-process agent with a short job timeout and a job deployed on it as RunDistributedJob
// deploys it: an endless generator (2 tasks), a rebalance shuffle, a CSV file sink (2 tasks).
class AgentJobTimeoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("sabot-agent-job-timeout-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "spill");
  }
  void TearDown() override {
    agent_.reset();
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  void StartAgent(std::chrono::milliseconds job_timeout) {
    EngineOptions options;
    options.manager.agent_id = "agent-t";
    options.manager.memory_budget = 64LL << 20;
    options.manager.spill.directory = (root_ / "spill").string();
    options.server.port = 0;
    AgentJobOptions jobs;
    jobs.job_timeout = job_timeout;
    ASSERT_OK_AND_ASSIGN(agent_, Agent::Make(options, jobs));
    baseline_bytes_ = agent_->engine()->shuffle_manager()->pool()->bytes_allocated();
  }

  void Deploy(const std::string& job_id) {
    GeneratorSourceParams source;
    source.table = GeneratorTable::kTransactions;
    source.rows = 0;  // endless
    source.rows_per_second = 20000;
    source.batch_rows = 500;
    PlanBuilder b;
    b.Source(source, 2, "gen")
        .Rebalance()
        .Sink(FileSinkParams{FileFormat::kCsv, output().string(), {}}, 2, "write");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    ASSERT_OK_AND_ASSIGN(ExecutionGraph graph, ExecutionGraph::Make(plan));
    TaskDeployment deployment;
    deployment.job_id = job_id;
    ASSERT_OK_AND_ASSIGN(deployment.plan_json, PlanToJson(plan));
    deployment.agents = {agent_->location()};
    deployment.task_agents.assign(graph.tasks().size(), 0);
    for (size_t t = 0; t < graph.tasks().size(); ++t) {
      deployment.tasks.push_back(static_cast<int64_t>(t));
    }
    deployment.threads = 2;
    ControlMessage request;
    PutTaskDeployment(deployment, &request);
    ASSERT_OK(agent_->HandleAction(kActionDeployTasks, request.Encode()).status());
  }

  arrow::Status PollStatus(const std::string& job_id) {
    ControlMessage request;
    request.Set("job_id", job_id);
    return agent_->HandleAction(kActionJobStatus, request.Encode()).status();
  }

  // Polls job_status as the driver does (every 50 ms) until the sink has temporary files.
  void PollUntilWriting(const std::string& job_id) {
    for (int i = 0; i < 400 && CountFilesNamed(output(), ".tmp") == 0; ++i) {
      ASSERT_OK(PollStatus(job_id));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_GT(CountFilesNamed(output(), ".tmp"), 0) << "the job never wrote";
  }

  bool Released() {
    ShuffleManager* manager = agent_->engine()->shuffle_manager();
    return manager->ListShuffles().empty() && CountFilesNamed(output(), ".tmp") == 0 &&
           manager->pool()->bytes_allocated() == baseline_bytes_;
  }

  fs::path output() const { return root_ / "out"; }

  fs::path root_;
  std::unique_ptr<Agent> agent_;
  int64_t baseline_bytes_ = 0;
};

TEST_F(AgentJobTimeoutTest, ANonPositiveJobTimeoutIsRefused) {
  AgentJobOptions jobs;
  jobs.job_timeout = std::chrono::milliseconds(0);
  EngineOptions options;
  options.server.port = 0;
  ASSERT_RAISES_WITH(Invalid, "job timeout must be positive", Agent::Make(options, jobs).status());
}

// Review item: a driver killed with kill -9 mid-job left its tasks, shuffle memory and
// temporary sink files on every agent forever. Once the driver stops calling, the agent aborts
// the job (its temporary files go) and releases it (its shuffles and their memory go).
TEST_F(AgentJobTimeoutTest, AJobWhoseDriverWentSilentIsAbortedAndReleased) {
  ASSERT_NO_FATAL_FAILURE(StartAgent(std::chrono::milliseconds(500)));
  ASSERT_NO_FATAL_FAILURE(Deploy("silent"));
  ASSERT_NO_FATAL_FAILURE(PollUntilWriting("silent"));
  EXPECT_FALSE(agent_->engine()->shuffle_manager()->ListShuffles().empty());
  // The driver is gone: no more calls. Observed without control calls, up to 60 s.
  for (int i = 0; i < 600 && !Released(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(agent_->engine()->shuffle_manager()->ListShuffles().empty());
  EXPECT_EQ(CountFilesNamed(output(), ".tmp"), 0);
  EXPECT_EQ(CountFilesNamed(output(), "part-"), 0);
  EXPECT_EQ(agent_->engine()->shuffle_manager()->pool()->bytes_allocated(), baseline_bytes_);
  // A driver that comes back finds the job gone; the agent keeps taking jobs.
  ASSERT_RAISES_WITH(KeyError, "job 'silent' is not deployed", PollStatus("silent"));
  ASSERT_NO_FATAL_FAILURE(Deploy("next"));
  ASSERT_NO_FATAL_FAILURE(PollUntilWriting("next"));
}

// A job whose driver keeps polling is kept, however long it runs past the job timeout.
TEST_F(AgentJobTimeoutTest, AJobPolledByItsDriverIsKept) {
  ASSERT_NO_FATAL_FAILURE(StartAgent(std::chrono::milliseconds(1000)));
  ASSERT_NO_FATAL_FAILURE(Deploy("polled"));
  ASSERT_NO_FATAL_FAILURE(PollUntilWriting("polled"));
  for (int i = 0; i < 60; ++i) {
    ASSERT_OK(PollStatus("polled"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_OK(PollStatus("polled"));
  EXPECT_FALSE(agent_->engine()->shuffle_manager()->ListShuffles().empty());
  // The driver's abort and release end it as before.
  ControlMessage request;
  request.Set("job_id", "polled");
  ASSERT_OK(agent_->HandleAction(kActionAbortJob, request.Encode()).status());
  ASSERT_OK(agent_->HandleAction(kActionReleaseJob, request.Encode()).status());
  EXPECT_TRUE(Released());
}

}  // namespace
}  // namespace sabot
