#include "sabot/runtime/coordinator.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sabot/dataflow/job_file.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/runtime/cluster_actions.h"
#include "sabot/runtime/coordinator_client.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using std::chrono::milliseconds;

// A job's plan as JSON: a generator source with `parallelism` tasks into a Parquet sink.
std::string PlanJson(int32_t parallelism) {
  std::string yaml = "operators:\n"
                     "  - generator_source: {table: transactions, rows: 100}\n"
                     "    name: gen\n"
                     "    parallelism: " +
                     std::to_string(parallelism) +
                     "\n"
                     "  - parquet_sink: out\n"
                     "    name: sink\n";
  auto job = ParseJobFile(yaml, "test.yaml", "/tmp");
  EXPECT_TRUE(job.ok()) << job.status();
  auto json = PlanToJson(job->plan);
  EXPECT_TRUE(json.ok()) << json.status();
  return *json;
}

// The same with checkpoints every second (docs/fault-tolerance.md).
std::string CheckpointedPlanJson(int32_t parallelism) {
  std::string yaml = "options:\n"
                     "  checkpoint: {interval: 1s, directory: /tmp/sabot-coordinator-test-chk}\n"
                     "operators:\n"
                     "  - generator_source: {table: transactions, rows: 100}\n"
                     "    name: gen\n"
                     "    parallelism: " +
                     std::to_string(parallelism) +
                     "\n"
                     "  - parquet_sink: out\n"
                     "    name: sink\n";
  auto job = ParseJobFile(yaml, "test.yaml", "/tmp");
  EXPECT_TRUE(job.ok()) << job.status();
  auto json = PlanToJson(job->plan);
  EXPECT_TRUE(json.ok()) << json.status();
  return *json;
}

JobSubmission Submission(int32_t parallelism, std::string name = "test") {
  JobSubmission job;
  job.name = std::move(name);
  job.plan_json = PlanJson(parallelism);
  return job;
}

// A job runner that runs until the test ends the job (Finish) or the coordinator cancels it,
// recording where each job was placed.
class FakeRunner {
 public:
  struct Call {
    std::vector<AgentEndpoint> agents;
    DistributedJobOptions options;
    bool ended = false;
    arrow::Status outcome;
  };

  JobRunner runner() {
    return [this](const LogicalPlan& plan, const std::vector<AgentEndpoint>& agents,
                  const DistributedJobOptions& options) -> arrow::Result<JobReport> {
      {
        std::unique_lock lock(mutex_);
        calls_[options.job_id] = Call{agents, options, false, arrow::Status::OK()};
        changed_.notify_all();
      }
      // The tasks as the driver would report them: one per slot, all running.
      JobInfo live;
      for (const auto& agent : agents) {
        for (int32_t s = 0; s < agent.slots; ++s) {
          TaskInfo task;
          task.operator_name = plan.operators()[0].name;
          task.subtask = static_cast<int32_t>(live.tasks.size());
          task.agent_id = agent.id;
          task.agent_location = agent.location;
          task.state = TaskState::kRunning;
          live.tasks.push_back(task);
        }
      }
      options.on_progress(live);
      std::unique_lock lock(mutex_);
      // The real driver polls its cancellation flag; so does this one.
      while (!calls_[options.job_id].ended && !options.cancel->load()) {
        changed_.wait_for(lock, milliseconds(5));
      }
      Call& call = calls_[options.job_id];
      if (!call.ended) return arrow::Status::Cancelled("job ", options.job_id, " cancelled");
      if (!call.outcome.ok()) return call.outcome;
      JobReport report;
      report.job_id = options.job_id;
      report.wall = std::chrono::seconds(2);
      OperatorReport op;
      op.name = "gen";
      op.kind = OperatorKind::kGeneratorSource;
      op.rows_out = 100;
      report.operators.push_back(op);
      report.peak_memory_bytes = 4096;
      return report;
    };
  }

  // Waits (bounded) until job `id` started running; its placement.
  std::vector<AgentEndpoint> WaitStarted(const std::string& id) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(30), [&] { return calls_.count(id) > 0; });
    return calls_.count(id) ? calls_[id].agents : std::vector<AgentEndpoint>{};
  }
  // The options job `id` was run with (after WaitStarted).
  DistributedJobOptions OptionsOf(const std::string& id) {
    std::unique_lock lock(mutex_);
    return calls_.at(id).options;
  }
  bool Started(const std::string& id) {
    std::unique_lock lock(mutex_);
    return calls_.count(id) > 0;
  }
  void Finish(const std::string& id, arrow::Status outcome = arrow::Status::OK()) {
    std::unique_lock lock(mutex_);
    calls_[id].ended = true;
    calls_[id].outcome = std::move(outcome);
    changed_.notify_all();
  }
  // Wakes the runners so that they see a cancellation.
  void Poke() { changed_.notify_all(); }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Call> calls_;
};

// A clock the test moves.
struct FakeClock {
  std::atomic<int64_t> ms{1'000'000};
  std::function<std::chrono::steady_clock::time_point()> fn() {
    return [this] { return std::chrono::steady_clock::time_point(milliseconds(ms.load())); };
  }
};

class CoordinatorTest : public ::testing::Test {
 protected:
  void Make(CoordinatorOptions options = {}) {
    options.serve = false;
    options.monitor = false;
    options.runner = runner_.runner();
    options.clock = clock_.fn();
    options.agent_timeout = milliseconds(5000);
    ASSERT_OK_AND_ASSIGN(coordinator_, Coordinator::Make(std::move(options)));
  }
  std::string Register(const std::string& location, int32_t slots) {
    auto reply = coordinator_->RegisterAgent({location, slots, "a", 1 << 20, 0});
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? reply->agent_id : "";
  }
  JobInfo WaitFinal(const std::string& id) {
    runner_.Poke();
    auto job = coordinator_->WaitForJob(id, milliseconds(30'000));
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : JobInfo{};
  }
  JobState StateOf(const std::string& id) {
    auto job = coordinator_->Job(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->state : JobState::kCreated;
  }
  // Waits (bounded) for a job to report running.
  void WaitRunning(const std::string& id) {
    for (int i = 0; i < 3000 && StateOf(id) != JobState::kRunning; ++i) {
      ARROW_UNUSED(coordinator_->WaitForJob(id, milliseconds(10)));
    }
    ASSERT_EQ(StateOf(id), JobState::kRunning);
  }

  FakeRunner runner_;
  FakeClock clock_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CoordinatorTest, AgentsRegisterWithIdsAndBadRegistrationsAreRefused) {
  Make();
  EXPECT_EQ(Register("grpc+tcp://127.0.0.1:9001", 2), "agent-1");
  EXPECT_EQ(Register("grpc+tcp://127.0.0.1:9002", 3), "agent-2");
  auto agents = coordinator_->Agents();
  ASSERT_EQ(agents.size(), 2u);
  EXPECT_EQ(agents[1].location, "grpc+tcp://127.0.0.1:9002");
  EXPECT_EQ(agents[1].slots, 3);
  EXPECT_FALSE(agents[1].lost);
  ASSERT_RAISES_WITH(Invalid, "expected grpc+tcp://",
                     coordinator_->RegisterAgent({"http://x:1", 1, "bad", 0, 0}));
  ASSERT_RAISES_WITH(Invalid, "offers 0 slots",
                     coordinator_->RegisterAgent({"grpc+tcp://h:1", 0, "bad", 0, 0}));
  // The same location again: the agent restarted; the old entry is lost.
  EXPECT_EQ(Register("grpc+tcp://127.0.0.1:9001", 2), "agent-3");
  agents = coordinator_->Agents();
  ASSERT_EQ(agents.size(), 3u);
  EXPECT_TRUE(agents[0].lost);
  EXPECT_FALSE(coordinator_->Heartbeat("agent-1", 0, 0));
  EXPECT_TRUE(coordinator_->Heartbeat("agent-3", 100, 7));
  EXPECT_EQ(coordinator_->Agents()[2].memory_used_bytes, 7);
}

TEST_F(CoordinatorTest, SilentAgentIsLostAndFailsItsJobNamingIt) {
  Make();
  Register("grpc+tcp://127.0.0.1:9001", 2);
  Register("grpc+tcp://127.0.0.1:9002", 2);
  ASSERT_OK_AND_ASSIGN(auto id, coordinator_->Submit(Submission(4)));
  auto placed = runner_.WaitStarted(id);
  ASSERT_EQ(placed.size(), 2u);
  WaitRunning(id);
  // agent-1 keeps heartbeating; agent-2 falls silent beyond the timeout.
  clock_.ms += 3000;
  EXPECT_TRUE(coordinator_->Heartbeat("agent-1", 0, 0));
  coordinator_->CheckAgents();
  EXPECT_FALSE(coordinator_->Agents()[1].lost);
  clock_.ms += 3000;
  EXPECT_TRUE(coordinator_->Heartbeat("agent-1", 0, 0));
  coordinator_->CheckAgents();
  auto agents = coordinator_->Agents();
  EXPECT_FALSE(agents[0].lost);
  EXPECT_TRUE(agents[1].lost);
  JobInfo job = WaitFinal(id);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_NE(job.error.find("agent agent-2 at grpc+tcp://127.0.0.1:9002 was lost"),
            std::string::npos)
      << job.error;
  EXPECT_NE(job.error.find(id), std::string::npos) << job.error;
  // The lost agent's tasks failed, the others were cancelled.
  for (const auto& task : job.tasks) {
    EXPECT_EQ(task.state, task.agent_id == "agent-2" ? TaskState::kFailed : TaskState::kCancelled);
  }
  // A lost agent's heartbeat is refused: it registers again.
  EXPECT_FALSE(coordinator_->Heartbeat("agent-2", 0, 0));
  // The live agent's slots are free again.
  EXPECT_EQ(coordinator_->Agents()[0].slots_used, 0);
}

// A job with checkpoints is not failed by the loss of an agent: its runner restarts it (state
// restarting) and asks for slots on live agents, which a replacement agent provides; without one
// the request fails after replacement_wait, saying so.
TEST_F(CoordinatorTest, CheckpointedJobRestartsOnAReplacementAgent) {
  CoordinatorOptions options;
  options.replacement_wait = milliseconds(2000);
  Make(options);
  Register("grpc+tcp://127.0.0.1:9001", 2);
  Register("grpc+tcp://127.0.0.1:9002", 2);
  JobSubmission submission;
  submission.name = "chk";
  submission.plan_json = CheckpointedPlanJson(4);
  ASSERT_OK_AND_ASSIGN(auto id, coordinator_->Submit(submission));
  ASSERT_EQ(runner_.WaitStarted(id).size(), 2u);
  WaitRunning(id);
  const DistributedJobOptions job = runner_.OptionsOf(id);
  ASSERT_TRUE(job.replace_agents);

  // agent-2 is lost: the job goes on (its runner sees the loss itself).
  clock_.ms += 6000;
  EXPECT_TRUE(coordinator_->Heartbeat("agent-1", 0, 0));
  coordinator_->CheckAgents();
  ASSERT_TRUE(coordinator_->Agents()[1].lost);
  EXPECT_FALSE(job.cancel->load());
  EXPECT_EQ(StateOf(id), JobState::kRunning);
  JobInfo restarting;
  restarting.state = JobState::kRestarting;
  restarting.recovery.restarts = 1;
  job.on_progress(restarting);
  EXPECT_EQ(StateOf(id), JobState::kRestarting);
  ASSERT_OK_AND_ASSIGN(JobInfo shown, coordinator_->Job(id));
  EXPECT_EQ(shown.recovery.restarts, 1);

  // The runner asks for 4 slots without agent-2; a replacement registers meanwhile.
  arrow::Result<std::vector<AgentEndpoint>> replaced = arrow::Status::UnknownError("not yet");
  std::thread ask([&] { replaced = job.replace_agents({"agent-2"}, 4); });
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(Register("grpc+tcp://127.0.0.1:9003", 2), "agent-3");
  ask.join();
  ASSERT_OK(replaced.status());
  ASSERT_EQ(replaced->size(), 2u);
  EXPECT_EQ((*replaced)[0].id, "agent-1");
  EXPECT_EQ((*replaced)[0].slots, 2);
  EXPECT_EQ((*replaced)[1].id, "agent-3");
  EXPECT_EQ((*replaced)[1].slots, 2);
  auto agents = coordinator_->Agents();
  EXPECT_EQ(agents[1].slots_used, 0);  // the lost agent's slots were given back
  EXPECT_EQ(agents[2].slots_used, 2);
  job.on_progress(JobInfo{});
  EXPECT_EQ(StateOf(id), JobState::kRunning);

  // agent-3 goes too, and no other agent comes: the request fails after replacement_wait.
  arrow::Result<std::vector<AgentEndpoint>> none = arrow::Status::UnknownError("not yet");
  std::thread ask_again([&] { none = job.replace_agents({"agent-3"}, 4); });
  std::this_thread::sleep_for(milliseconds(100));
  clock_.ms += 2500;
  ask_again.join();
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(none.status().IsCapacityError()) << none.status();
  EXPECT_NE(none.status().message().find("no replacement agent registered"), std::string::npos)
      << none.status();
  EXPECT_NE(none.status().message().find("needs 4 slots"), std::string::npos) << none.status();

  runner_.Finish(id, arrow::Status::IOError("job ", id, " cannot restart"));
  JobInfo ended = WaitFinal(id);
  EXPECT_EQ(ended.state, JobState::kFailed);
  EXPECT_NE(ended.error.find("cannot restart"), std::string::npos) << ended.error;
  // Every slot the job held is free again.
  for (const auto& agent : coordinator_->Agents()) EXPECT_EQ(agent.slots_used, 0) << agent.id;
}

TEST_F(CoordinatorTest, SlotsAreSpreadAndJobsQueueUntilSlotsFree) {
  Make();
  Register("grpc+tcp://127.0.0.1:9001", 2);
  Register("grpc+tcp://127.0.0.1:9002", 2);
  ASSERT_OK_AND_ASSIGN(auto first, coordinator_->Submit(Submission(3)));
  auto placed = runner_.WaitStarted(first);
  ASSERT_EQ(placed.size(), 2u);
  EXPECT_EQ(placed[0].slots + placed[1].slots, 3);
  EXPECT_EQ(placed[0].location, "grpc+tcp://127.0.0.1:9001");
  EXPECT_EQ(placed[1].id, "agent-2");
  // One slot is free: a job of parallelism 2 waits, created, until the first ends.
  ASSERT_OK_AND_ASSIGN(auto second, coordinator_->Submit(Submission(2)));
  EXPECT_EQ(StateOf(second), JobState::kCreated);
  EXPECT_FALSE(runner_.Started(second));
  // A job of parallelism 1 behind it waits too (first come, first served).
  ASSERT_OK_AND_ASSIGN(auto third, coordinator_->Submit(Submission(1)));
  EXPECT_EQ(StateOf(third), JobState::kCreated);
  runner_.Finish(first);
  EXPECT_EQ(WaitFinal(first).state, JobState::kFinished);
  auto placed2 = runner_.WaitStarted(second);
  int32_t slots = 0;
  for (const auto& agent : placed2) slots += agent.slots;
  EXPECT_EQ(slots, 2);
  EXPECT_EQ(placed2.size(), 2u);  // spread: one slot on each agent
  runner_.WaitStarted(third);
  runner_.Finish(second);
  runner_.Finish(third);
  EXPECT_EQ(WaitFinal(second).state, JobState::kFinished);
  EXPECT_EQ(WaitFinal(third).state, JobState::kFinished);
  for (const auto& agent : coordinator_->Agents()) EXPECT_EQ(agent.slots_used, 0);
}

TEST_F(CoordinatorTest, AgentsMissingHeartbeatsGetNoNewJobUntilHeardFrom) {
  Make();
  Register("grpc+tcp://127.0.0.1:9001", 2);
  Register("grpc+tcp://127.0.0.1:9002", 2);
  // agent-2 misses four heartbeats (1 s apart), well within the 5 s timeout.
  clock_.ms += 4000;
  EXPECT_TRUE(coordinator_->Heartbeat("agent-1", 0, 0));
  ASSERT_OK_AND_ASSIGN(auto small, coordinator_->Submit(Submission(2)));
  auto placed = runner_.WaitStarted(small);
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].id, "agent-1");
  // A job needing agent-2's slots waits for it; its heartbeat lets it through.
  ASSERT_OK_AND_ASSIGN(auto wide, coordinator_->Submit(Submission(2)));
  coordinator_->CheckAgents();
  EXPECT_EQ(StateOf(wide), JobState::kCreated);
  EXPECT_TRUE(coordinator_->Heartbeat("agent-2", 0, 0));
  coordinator_->CheckAgents();
  placed = runner_.WaitStarted(wide);
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].id, "agent-2");
  EXPECT_FALSE(coordinator_->Agents()[1].lost);
  runner_.Finish(small);
  runner_.Finish(wide);
  EXPECT_EQ(WaitFinal(small).state, JobState::kFinished);
  EXPECT_EQ(WaitFinal(wide).state, JobState::kFinished);
}

TEST_F(CoordinatorTest, QueuedJobThatNoLongerFitsAfterAgentLossFailsAndFreesTheQueue) {
  Make();
  Register("grpc+tcp://127.0.0.1:9001", 2);
  Register("grpc+tcp://127.0.0.1:9002", 2);
  ASSERT_OK_AND_ASSIGN(auto running, coordinator_->Submit(Submission(3)));
  runner_.WaitStarted(running);
  WaitRunning(running);
  // Accepted (the cluster has 4 slots) but queued behind the running job; a small job waits
  // behind it, first come, first served.
  ASSERT_OK_AND_ASSIGN(auto wide, coordinator_->Submit(Submission(4)));
  ASSERT_OK_AND_ASSIGN(auto small, coordinator_->Submit(Submission(1)));
  EXPECT_EQ(StateOf(wide), JobState::kCreated);
  EXPECT_EQ(StateOf(small), JobState::kCreated);
  // agent-2 falls silent beyond the timeout: 2 live slots remain, the wide job can never run.
  clock_.ms += 6000;
  EXPECT_TRUE(coordinator_->Heartbeat("agent-1", 0, 0));
  coordinator_->CheckAgents();
  ASSERT_TRUE(coordinator_->Agents()[1].lost);
  EXPECT_EQ(WaitFinal(running).state, JobState::kFailed);
  JobInfo failed = WaitFinal(wide);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_NE(failed.error.find("Capacity error"), std::string::npos) << failed.error;
  EXPECT_NE(failed.error.find(wide + " (test) could not be placed: it needs 4 slots"),
            std::string::npos)
      << failed.error;
  EXPECT_NE(failed.error.find("has 2 slots on 1 live agents"), std::string::npos)
      << failed.error;
  EXPECT_FALSE(runner_.Started(wide));
  // The job behind it fits and runs.
  auto placed = runner_.WaitStarted(small);
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].id, "agent-1");
  runner_.Finish(small);
  EXPECT_EQ(WaitFinal(small).state, JobState::kFinished);
}

TEST_F(CoordinatorTest, JobThatCanNeverFitIsRefusedWithCapacityError) {
  Make();
  ASSERT_RAISES_WITH(CapacityError, "but the cluster has 0 slots on 0 live agents",
                     coordinator_->Submit(Submission(1)));
  Register("grpc+tcp://127.0.0.1:9001", 2);
  Register("grpc+tcp://127.0.0.1:9002", 2);
  ASSERT_RAISES_WITH(CapacityError, "needs 5 slots (operator 'gen' runs 5 tasks",
                     coordinator_->Submit(Submission(5)));
  EXPECT_TRUE(coordinator_->Jobs().empty());
}

TEST_F(CoordinatorTest, BadPlansAreRefusedNamingWhatIsWrong) {
  Make();
  Register("grpc+tcp://127.0.0.1:9001", 4);
  JobSubmission job = Submission(2, "bad");
  job.plan_json = "{not json";
  ASSERT_RAISES_WITH(Invalid, "job 'bad'", coordinator_->Submit(job));
  job = Submission(2, "bad");
  const size_t at = job.plan_json.find("\"rows\"");
  ASSERT_NE(at, std::string::npos);
  job.plan_json.replace(at, 6, "\"rowz\"");
  ASSERT_RAISES_WITH(Invalid, "operator 'gen'", coordinator_->Submit(job));
  job = Submission(2, "bad");
  job.memory_budget_bytes = 100;
  ASSERT_RAISES_WITH(Invalid, "at least 1 MiB", coordinator_->Submit(job));
  EXPECT_TRUE(coordinator_->Jobs().empty());
}

TEST_F(CoordinatorTest, CancelRunningQueuedUnknownAndFinalJobs) {
  Make();
  Register("grpc+tcp://127.0.0.1:9001", 2);
  ASSERT_OK_AND_ASSIGN(auto running, coordinator_->Submit(Submission(2)));
  runner_.WaitStarted(running);
  ASSERT_OK_AND_ASSIGN(auto queued, coordinator_->Submit(Submission(2)));
  EXPECT_EQ(StateOf(queued), JobState::kCreated);
  ASSERT_OK(coordinator_->Cancel(queued));
  EXPECT_EQ(StateOf(queued), JobState::kCancelled);
  EXPECT_FALSE(runner_.Started(queued));
  ASSERT_OK(coordinator_->Cancel(running));
  JobInfo job = WaitFinal(running);
  EXPECT_EQ(job.state, JobState::kCancelled);
  EXPECT_EQ(job.error, "cancelled by request");
  ASSERT_OK(coordinator_->Cancel(running));  // final: unchanged
  EXPECT_EQ(StateOf(running), JobState::kCancelled);
  ASSERT_RAISES_WITH(KeyError, "'job-99'", coordinator_->Cancel("job-99"));
  ASSERT_RAISES_WITH(KeyError, "'nonsense'", coordinator_->Job("nonsense"));
  EXPECT_EQ(coordinator_->Agents()[0].slots_used, 0);
}

TEST_F(CoordinatorTest, StatesFiguresFailuresAndNewestFirst) {
  Make();
  Register("grpc+tcp://127.0.0.1:9001", 2);
  ASSERT_OK_AND_ASSIGN(auto ok, coordinator_->Submit(Submission(1, "good")));
  runner_.WaitStarted(ok);
  WaitRunning(ok);
  ASSERT_OK_AND_ASSIGN(auto running, coordinator_->Job(ok));
  ASSERT_EQ(running.tasks.size(), 1u);
  EXPECT_EQ(running.tasks[0].agent_id, "agent-1");
  EXPECT_NE(running.explain.find("gen"), std::string::npos);
  runner_.Finish(ok);
  JobInfo done = WaitFinal(ok);
  EXPECT_EQ(done.state, JobState::kFinished);
  ASSERT_EQ(done.operators.size(), 1u);
  EXPECT_EQ(done.operators[0].rows_out, 100);
  EXPECT_EQ(done.elapsed, std::chrono::seconds(2));
  EXPECT_TRUE(done.finished_at.has_value());
  EXPECT_EQ(done.tasks[0].state, TaskState::kFinished);

  ASSERT_OK_AND_ASSIGN(auto bad, coordinator_->Submit(Submission(1, "broken")));
  runner_.WaitStarted(bad);
  runner_.Finish(bad, arrow::Status::IOError("operator 'sink' (parquet_sink) task 0 on agent "
                                             "agent-1: disk full"));
  JobInfo failed = WaitFinal(bad);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_NE(failed.error.find("job " + bad + " (broken) failed: IOError: operator 'sink'"),
            std::string::npos)
      << failed.error;
  auto jobs = coordinator_->Jobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, bad);
  EXPECT_EQ(jobs[1].id, ok);
}

TEST_F(CoordinatorTest, TemporaryFilesOfAFailedJobAreRemoved) {
  Make();
  Register("grpc+tcp://127.0.0.1:9001", 2);
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sabot_coordinator_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string yaml = "operators:\n"
                     "  - generator_source: {table: transactions, rows: 100}\n"
                     "    parallelism: 2\n"
                     "  - parquet_sink: " + dir.string() + "\n";
  ASSERT_OK_AND_ASSIGN(auto file, ParseJobFile(yaml, "t.yaml", "/tmp"));
  JobSubmission submission;
  ASSERT_OK_AND_ASSIGN(submission.plan_json, PlanToJson(file.plan));
  ASSERT_OK_AND_ASSIGN(auto id, coordinator_->Submit(submission));
  runner_.WaitStarted(id);
  // What a lost agent's sink task left, and a file that is not the job's.
  std::ofstream(dir / ".part-1.parquet.job-1.tmp") << "partial";
  std::ofstream(dir / "keep.txt") << "keep";
  runner_.Finish(id, arrow::Status::IOError("agent 'agent-1' is lost"));
  EXPECT_EQ(WaitFinal(id).state, JobState::kFailed);
  EXPECT_FALSE(std::filesystem::exists(dir / ".part-1.parquet.job-1.tmp"));
  EXPECT_TRUE(std::filesystem::exists(dir / "keep.txt"));
  std::filesystem::remove_all(dir);
}

TEST_F(CoordinatorTest, HistoryIsBounded) {
  CoordinatorOptions options;
  options.job_history = 2;
  Make(options);
  Register("grpc+tcp://127.0.0.1:9001", 1);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(auto id, coordinator_->Submit(Submission(1)));
    runner_.WaitStarted(id);
    runner_.Finish(id);
    EXPECT_EQ(WaitFinal(id).state, JobState::kFinished);
    ids.push_back(id);
  }
  auto jobs = coordinator_->Jobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, "job-4");
  EXPECT_EQ(jobs[1].id, "job-3");
  ASSERT_RAISES_WITH(KeyError, "job-1", coordinator_->Job("job-1"));
  coordinator_->CheckAgents();  // joins the ended runners
}

TEST_F(CoordinatorTest, ShutdownCancelsRunningAndQueuedJobs) {
  Make();
  Register("grpc+tcp://127.0.0.1:9001", 1);
  ASSERT_OK_AND_ASSIGN(auto running, coordinator_->Submit(Submission(1)));
  runner_.WaitStarted(running);
  ASSERT_OK_AND_ASSIGN(auto queued, coordinator_->Submit(Submission(1)));
  ASSERT_OK(coordinator_->Shutdown());
  ASSERT_OK_AND_ASSIGN(auto a, coordinator_->Job(running));
  ASSERT_OK_AND_ASSIGN(auto b, coordinator_->Job(queued));
  EXPECT_EQ(a.state, JobState::kCancelled);
  EXPECT_EQ(b.state, JobState::kCancelled);
  ASSERT_RAISES_WITH(Cancelled, "shutting down", coordinator_->Submit(Submission(1)));
  ASSERT_OK(coordinator_->Shutdown());
}

// The control actions over Flight, with the cluster's token.
TEST(CoordinatorServerTest, ActionsOverFlightWithToken) {
  FakeRunner runner;
  CoordinatorOptions options;
  options.server.port = 0;
  options.server.auth_token = "s3cret";
  options.runner = runner.runner();
  ASSERT_OK_AND_ASSIGN(auto coordinator, Coordinator::Make(std::move(options)));
  ShuffleClientOptions with_token;
  with_token.auth_token = "s3cret";
  ASSERT_OK_AND_ASSIGN(auto client, CoordinatorClient::Make(coordinator->location(), with_token));
  ASSERT_OK_AND_ASSIGN(auto reply,
                       client->RegisterAgent({"grpc+tcp://127.0.0.1:9001", 2, "a1", 1 << 20, 0}));
  EXPECT_EQ(reply.agent_id, "agent-1");
  EXPECT_EQ(reply.agent_timeout, milliseconds(10'000));
  ASSERT_OK_AND_ASSIGN(bool known, client->Heartbeat("agent-1", 5, 3));
  EXPECT_TRUE(known);
  ASSERT_OK_AND_ASSIGN(known, client->Heartbeat("agent-7", 5, 3));
  EXPECT_FALSE(known);
  ASSERT_OK_AND_ASSIGN(auto agents, client->ListAgents());
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].memory_used_bytes, 3);

  ASSERT_OK_AND_ASSIGN(auto id, client->Submit(Submission(2, "over-flight")));
  runner.WaitStarted(id);
  ASSERT_OK_AND_ASSIGN(auto jobs, client->ListJobs());
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].name, "over-flight");
  EXPECT_TRUE(jobs[0].plan_json.empty());  // lists leave the plan out
  ASSERT_OK_AND_ASSIGN(auto job, client->GetJob(id));
  EXPECT_FALSE(job.plan_json.empty());
  ASSERT_OK_AND_ASSIGN(auto state, client->Cancel(id));
  EXPECT_FALSE(state == JobState::kFinished);
  runner.Poke();
  ASSERT_OK_AND_ASSIGN(job, coordinator->WaitForJob(id, milliseconds(30'000)));
  EXPECT_EQ(job.state, JobState::kCancelled);

  // Refusals reach the client with their message.
  auto refused = client->Submit(Submission(3));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(CoordinatorErrorText(refused.status()).find("needs 3 slots"), std::string::npos)
      << refused.status();
  auto unknown = client->GetJob("job-42");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("no job 'job-42'"), std::string::npos);

  // Without the token, or with another, nothing is answered.
  for (std::string token : {"", "wrong"}) {
    ShuffleClientOptions other;
    other.auth_token = token;
    ASSERT_OK_AND_ASSIGN(auto intruder, CoordinatorClient::Make(coordinator->location(), other));
    auto registered = intruder->RegisterAgent({"grpc+tcp://127.0.0.1:9009", 2, "x", 0, 0});
    ASSERT_FALSE(registered.ok());
    EXPECT_NE(registered.status().ToString().find("nauthenticated"), std::string::npos)
        << registered.status();
  }
  ASSERT_OK_AND_ASSIGN(agents, client->ListAgents());
  EXPECT_EQ(agents.size(), 1u);
  ASSERT_OK(coordinator->Shutdown());
}

TEST(CoordinatorServerTest, MalformedActionsAreRefusedNamingWhatIsWrong) {
  FakeRunner runner;
  CoordinatorOptions options;
  options.serve = false;
  options.runner = runner.runner();
  ASSERT_OK_AND_ASSIGN(auto coordinator, Coordinator::Make(std::move(options)));
  ASSERT_RAISES_WITH(NotImplemented, "unknown action 'sabot.cluster.nope'",
                     coordinator->HandleAction("sabot.cluster.nope", ""));
  ASSERT_RAISES_WITH(Invalid, "line", coordinator->HandleAction(kActionHeartbeat, "no equals"));
  ASSERT_RAISES_WITH(KeyError, "agent_id", coordinator->HandleAction(kActionHeartbeat, ""));
  ASSERT_RAISES_WITH(Invalid, "slots must be between 1 and 4096, got 99999",
                     coordinator->HandleAction(kActionRegisterAgent,
                                               "location=grpc+tcp://h:1\nslots=99999\n"));
  ASSERT_RAISES_WITH(Invalid, "is not an integer",
                     coordinator->HandleAction(kActionRegisterAgent,
                                               "location=grpc+tcp://h:1\nslots=two\n"));
  ASSERT_RAISES_WITH(Invalid, "at most 512",
                     coordinator->RegisterAgent({"grpc+tcp://" + std::string(600, 'h') + ":1", 1,
                                                 "long", 0, 0}));
  ASSERT_RAISES_WITH(KeyError, "plan", coordinator->HandleAction(kActionSubmitJob, "name=x\n"));
  ASSERT_RAISES_WITH(KeyError, "no job 'job-x'",
                     coordinator->HandleAction(kActionGetJob, "job_id=job-x\n"));
  EXPECT_TRUE(coordinator->Agents().empty());
  EXPECT_TRUE(coordinator->Jobs().empty());
}

TEST(ClusterActionsTest, JobJsonRoundTrips) {
  JobInfo job;
  job.id = "job-3";
  job.name = "n\"ame";
  job.state = JobState::kRunning;
  job.error = "e";
  job.submitted_at = std::chrono::system_clock::time_point(milliseconds(1234));
  job.finished_at = std::chrono::system_clock::time_point(milliseconds(5678));
  job.plan_json = "{}";
  job.explain = "x\ny";
  job.tasks.push_back({1, 2, "op", "agent-1", "grpc+tcp://h:1", TaskState::kFailed, "boom", 3, 4});
  OperatorReport op;
  op.id = 4;
  op.name = "agg";
  op.kind = OperatorKind::kAggregate;
  op.rows_in = 9;
  op.busy = std::chrono::nanoseconds(77);
  job.operators.push_back(op);
  EdgeReport edge;
  edge.shuffle_id = "s";
  edge.num_writers = 2;
  edge.num_partitions = 1;
  edge.rows = {{1}, {2}};
  edge.channel_bytes = {{10}, {20}};
  edge.writer_blocked = {std::chrono::nanoseconds(5), std::chrono::nanoseconds(6)};
  job.edges.push_back(edge);
  job.elapsed = std::chrono::nanoseconds(99);
  ASSERT_OK_AND_ASSIGN(auto back, JobInfoFromJson(JobInfoToJson(job)));
  EXPECT_EQ(JobInfoToJson(back), JobInfoToJson(job));
  EXPECT_EQ(back.tasks[0].error, "boom");
  EXPECT_EQ(back.edges[0].writer_blocked[1], std::chrono::nanoseconds(6));
  EXPECT_EQ(back.operators[0].kind, OperatorKind::kAggregate);
  ASSERT_RAISES_WITH(Invalid, "malformed job", JobInfoFromJson("{\"id\": 3}"));
}

}  // namespace
}  // namespace sabot
