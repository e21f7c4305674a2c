#include "sabot/runtime/lineage_recovery.h"

#include <gtest/gtest.h>

#include "sabot/dataflow/plan_builder.h"
#include "sabot/runtime/agent.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

// scan[2] -REBALANCE-> mid[2] -REBALANCE-> write[2] (a csv sink): three chains of two tasks,
// two shuffle edges (scan -> mid is shuffle 0, mid -> write shuffle 1).
ExecutionGraph Graph(ShuffleMode mode, bool checkpoints = false, bool lineage = true) {
  PlanBuilder b;
  GeneratorSourceParams source;
  source.table = GeneratorTable::kTransactions;
  source.rows = 1000;
  PlanOptions options;
  options.shuffle_mode = mode;
  options.lineage_recovery = lineage;
  if (checkpoints) {
    options.checkpoint.interval = std::chrono::seconds(1);
    options.checkpoint.directory = "/tmp/unused-checkpoints";
  }
  b.SetOptions(options);
  b.Source(source, 2, "scan")
      .Rebalance()
      .Map("x", "amount * 2", 2, "mid")
      .Rebalance()
      .Sink(FileSinkParams{FileFormat::kCsv, "/tmp/unused"}, 2, "write");
  auto plan = b.Build().ValueOrDie();
  return ExecutionGraph::Make(plan).ValueOrDie();
}

// The graph task index of subtask `subtask` of the chain named `name`.
int64_t Task(const ExecutionGraph& graph, const std::string& name, int32_t subtask) {
  for (size_t t = 0; t < graph.tasks().size(); ++t) {
    const TaskSpec& task = graph.tasks()[t];
    if (graph.chains()[task.chain].name == name && task.subtask == subtask) {
      return static_cast<int64_t>(t);
    }
  }
  ADD_FAILURE() << "no task " << subtask << " of '" << name << "'";
  return -1;
}

// Every task placed by (chain name, subtask) -> agent; all attempts 0, nothing finished, every
// one of `agents` agents live.
LineageState State(const ExecutionGraph& graph, int32_t agents,
                   const std::map<std::pair<std::string, int32_t>, int32_t>& placement) {
  LineageState state;
  state.task_agent.assign(graph.tasks().size(), 0);
  state.task_attempt.assign(graph.tasks().size(), 0);
  state.task_finished.assign(graph.tasks().size(), false);
  state.agent_live.assign(agents, true);
  for (const auto& [task, agent] : placement) {
    state.task_agent[Task(graph, task.first, task.second)] = agent;
  }
  return state;
}

const std::map<std::pair<std::string, int32_t>, int32_t> kPlacement = {
    {{"scan", 0}, 0}, {{"scan", 1}, 1}, {{"mid", 0}, 0},
    {{"mid", 1}, 1},  {{"write", 0}, 2}, {{"write", 1}, 2}};

TEST(LineageRecoveryTest, AppliesToBlockingJobsWithoutCheckpoints) {
  EXPECT_OK(CheckLineageRecoverable(Graph(ShuffleMode::kBlocking)));
  const arrow::Status pipelined = CheckLineageRecoverable(Graph(ShuffleMode::kPipelined));
  EXPECT_TRUE(pipelined.IsInvalid());
  EXPECT_NE(pipelined.message().find("pipelined"), std::string::npos) << pipelined.message();
  const arrow::Status checkpointed =
      CheckLineageRecoverable(Graph(ShuffleMode::kBlocking, /*checkpoints=*/true));
  EXPECT_TRUE(checkpointed.IsInvalid());
  EXPECT_NE(checkpointed.message().find("checkpoint"), std::string::npos);
  // Off unless the plan asks for it (a reader then holds remote streams until complete).
  const arrow::Status off = CheckLineageRecoverable(
      Graph(ShuffleMode::kBlocking, /*checkpoints=*/false, /*lineage=*/false));
  EXPECT_TRUE(off.IsInvalid());
  EXPECT_NE(off.message().find("lineage_recovery: true"), std::string::npos) << off.message();
}

// The core path: agent 0's writers finished, their readers did not: the lost writers re-run as
// attempt 1 on the live agent with the fewest tasks of their chain, and their streams are
// relocated there.
TEST(LineageRecoveryTest, FinishedWritersOfALostAgentRerunForUnfinishedReaders) {
  const ExecutionGraph graph = Graph(ShuffleMode::kBlocking);
  LineageState state = State(graph, 3, kPlacement);
  state.task_finished[Task(graph, "scan", 0)] = true;
  state.task_finished[Task(graph, "scan", 1)] = true;
  state.task_finished[Task(graph, "mid", 0)] = true;
  state.agent_live[0] = false;
  ASSERT_OK_AND_ASSIGN(LineagePlan plan, PlanLineageRecovery(graph, state));
  // scan 0 and mid 0 were on agent 0. Agent 1 holds one scan and one mid task, agent 2 none:
  // both go to agent 2.
  EXPECT_EQ(plan.reruns, (std::vector<LineageRerun>{{Task(graph, "scan", 0), 1, 2},
                                                    {Task(graph, "mid", 0), 1, 2}}));
  EXPECT_EQ(plan.relocations,
            (std::vector<WriterRelocation>{{0, 0, 1, 2}, {1, 0, 1, 2}}));
  const std::vector<std::string> lines = plan.Describe(graph);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "task 0 of 'scan' (attempt 1) on agent 2");
}

// A lost writer whose readers all finished is not needed again; a lost sink task is (its agent
// would have committed its file), and a finished sink on a live agent is not touched.
TEST(LineageRecoveryTest, WritersWhoseReadersFinishedStayLostSinksRerun) {
  const ExecutionGraph graph = Graph(ShuffleMode::kBlocking);
  LineageState state =
      State(graph, 3,
            {{{"scan", 0}, 0}, {{"scan", 1}, 1}, {{"mid", 0}, 0}, {{"mid", 1}, 1},
             {{"write", 0}, 0}, {{"write", 1}, 2}});
  for (size_t t = 0; t < graph.tasks().size(); ++t) state.task_finished[t] = true;
  state.task_finished[Task(graph, "write", 1)] = false;
  state.agent_live[0] = false;
  ASSERT_OK_AND_ASSIGN(LineagePlan plan, PlanLineageRecovery(graph, state));
  // write 1 (unfinished, live) still reads mid 0 (lost): mid 0 re-runs, and with it every lost
  // writer it reads (scan 0); write 0 re-runs (a sink). Agent 1 holds scan/mid tasks, agent 2
  // one write task: scan 0 and mid 0 go to agent 2, write 0 to agent 1.
  EXPECT_EQ(plan.reruns, (std::vector<LineageRerun>{{Task(graph, "scan", 0), 1, 2},
                                                    {Task(graph, "mid", 0), 1, 2},
                                                    {Task(graph, "write", 0), 1, 1}}));
  EXPECT_EQ(plan.relocations, (std::vector<WriterRelocation>{{0, 0, 1, 2}, {1, 0, 1, 2}}));

  // A finished lost sink still re-runs, and with it everything it reads that was lost.
  state.task_finished[Task(graph, "write", 1)] = true;
  ASSERT_OK_AND_ASSIGN(plan, PlanLineageRecovery(graph, state));
  EXPECT_EQ(plan.reruns.size(), 3u);

  // Agent 1 (scan 1, mid 1) lost once every reader of theirs finished: nothing re-runs.
  state = State(graph, 3, kPlacement);
  for (size_t t = 0; t < graph.tasks().size(); ++t) state.task_finished[t] = true;
  state.agent_live[1] = false;
  ASSERT_OK_AND_ASSIGN(plan, PlanLineageRecovery(graph, state));
  EXPECT_TRUE(plan.reruns.empty());
  EXPECT_TRUE(plan.relocations.empty());
}

// A lost reader re-runs alone: the writers it reads are on live agents, their stored output is
// there.
TEST(LineageRecoveryTest, LostReaderRerunsWithoutItsWriters) {
  const ExecutionGraph graph = Graph(ShuffleMode::kBlocking);
  LineageState state = State(graph, 3, kPlacement);
  state.task_finished[Task(graph, "scan", 0)] = true;
  state.task_finished[Task(graph, "scan", 1)] = true;
  state.task_finished[Task(graph, "mid", 0)] = true;
  state.task_finished[Task(graph, "mid", 1)] = true;
  state.agent_live[2] = false;  // both write tasks
  ASSERT_OK_AND_ASSIGN(LineagePlan plan, PlanLineageRecovery(graph, state));
  EXPECT_EQ(plan.reruns, (std::vector<LineageRerun>{{Task(graph, "write", 0), 1, 0},
                                                    {Task(graph, "write", 1), 1, 1}}));
  EXPECT_TRUE(plan.relocations.empty());
}

// A second loss: tasks already on a lost agent and re-run attempts count; attempts go up from
// the current one.
TEST(LineageRecoveryTest, SecondLossCountsAttemptsAndEarlierLostAgents) {
  const ExecutionGraph graph = Graph(ShuffleMode::kBlocking);
  LineageState state = State(graph, 3, kPlacement);
  state.agent_live[0] = false;
  // After the first recovery scan 0 and mid 0 ran as attempt 1 on agent 2; now agent 2 goes.
  state.task_agent[Task(graph, "scan", 0)] = 2;
  state.task_attempt[Task(graph, "scan", 0)] = 1;
  state.task_agent[Task(graph, "mid", 0)] = 2;
  state.task_attempt[Task(graph, "mid", 0)] = 1;
  state.agent_live[2] = false;
  ASSERT_OK_AND_ASSIGN(LineagePlan plan, PlanLineageRecovery(graph, state));
  EXPECT_EQ(plan.reruns, (std::vector<LineageRerun>{{Task(graph, "scan", 0), 2, 1},
                                                    {Task(graph, "mid", 0), 2, 1},
                                                    {Task(graph, "write", 0), 1, 1},
                                                    {Task(graph, "write", 1), 1, 1}}));
  EXPECT_EQ(plan.relocations, (std::vector<WriterRelocation>{{0, 0, 2, 1}, {1, 0, 2, 1}}));
}

TEST(LineageRecoveryTest, RefusesBadStateAndNoLiveAgent) {
  const ExecutionGraph graph = Graph(ShuffleMode::kBlocking);
  LineageState state = State(graph, 3, kPlacement);
  state.task_attempt.pop_back();
  EXPECT_TRUE(PlanLineageRecovery(graph, state).status().IsInvalid());
  state = State(graph, 3, kPlacement);
  state.task_agent[0] = 7;
  EXPECT_TRUE(PlanLineageRecovery(graph, state).status().IsInvalid());
  state = State(graph, 3, kPlacement);
  state.agent_live.assign(3, false);
  auto plan = PlanLineageRecovery(graph, state);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("no agent of the job is live"), std::string::npos)
      << plan.status().message();
}

// The messages that carry a plan out: one deployment per target agent with its re-runs, every
// task's new agent and attempt; the same placement for the relocation sent to live agents.
TEST(LineageRecoveryTest, AppliesAPlanToTheStateAndTheMessages) {
  const ExecutionGraph graph = Graph(ShuffleMode::kBlocking);
  LineageState state = State(graph, 3, kPlacement);
  state.task_finished[Task(graph, "scan", 0)] = true;
  state.agent_live[0] = false;
  ASSERT_OK_AND_ASSIGN(LineagePlan plan, PlanLineageRecovery(graph, state));
  TaskDeployment base;
  base.job_id = "job-1";
  base.plan_json = "{}";
  base.agents = {"grpc+tcp://a:1", "grpc+tcp://b:2", "grpc+tcp://c:3"};
  base.tasks = {0, 1};
  LineageMessages messages = ApplyLineagePlan(plan, base, &state);
  EXPECT_EQ(state.task_agent[Task(graph, "scan", 0)], 2);
  EXPECT_EQ(state.task_attempt[Task(graph, "scan", 0)], 1);
  EXPECT_FALSE(state.task_finished[Task(graph, "scan", 0)]);
  ASSERT_EQ(messages.deployments.size(), 1u);
  const TaskDeployment& deployment = messages.deployments[0].second;
  EXPECT_EQ(messages.deployments[0].first, 2);
  EXPECT_EQ(deployment.job_id, "job-1");
  EXPECT_TRUE(deployment.lineage);
  EXPECT_EQ(deployment.tasks,
            (std::vector<int64_t>{Task(graph, "scan", 0), Task(graph, "mid", 0)}));
  ASSERT_EQ(deployment.task_attempts.size(), graph.tasks().size());
  EXPECT_EQ(deployment.task_attempts[Task(graph, "mid", 0)], 1);
  EXPECT_EQ(deployment.task_attempts[Task(graph, "scan", 1)], 0);
  EXPECT_EQ(deployment.task_agents[Task(graph, "mid", 0)], 2);
  EXPECT_TRUE(messages.relocation.tasks.empty());
  EXPECT_EQ(messages.relocation.task_attempts, deployment.task_attempts);

  // Through the control message and back: the relocation's fields survive, and are checked.
  ControlMessage message;
  PutWriterRelocations(messages.relocation, &message);
  ASSERT_OK_AND_ASSIGN(TaskDeployment decoded, GetWriterRelocations(message));
  EXPECT_EQ(decoded.task_attempts, messages.relocation.task_attempts);
  EXPECT_EQ(decoded.task_agents, messages.relocation.task_agents);
  EXPECT_EQ(decoded.agents, base.agents);
  message.SetInts("task_attempts", {1, 2});
  EXPECT_TRUE(GetWriterRelocations(message).status().IsInvalid());
  ControlMessage deploy;
  PutTaskDeployment(deployment, &deploy);
  ASSERT_OK_AND_ASSIGN(TaskDeployment redeployed, GetTaskDeployment(deploy));
  EXPECT_TRUE(redeployed.lineage);
  EXPECT_EQ(redeployed.task_attempts, deployment.task_attempts);
}

TEST(LineageRecoveryTest, RestartDelayGrowsByTheBackoffUpToItsMaximum) {
  CheckpointOptions options;
  options.restart_delay = std::chrono::milliseconds(100);
  options.restart_backoff = 2.0;
  options.max_restart_delay = std::chrono::milliseconds(350);
  EXPECT_EQ(LineageRestartDelay(options, 0).count(), 100);
  EXPECT_EQ(LineageRestartDelay(options, 1).count(), 200);
  EXPECT_EQ(LineageRestartDelay(options, 2).count(), 350);
}

// Finished flags come from each task's current agent only: a lost attempt's "finished" never
// stands for its re-run elsewhere.
TEST(LineageRecoveryTest, StateTakesFinishedFlagsFromEachTasksCurrentAgent) {
  JobStatusReport lost;  // agent 0: ran tasks 0 and 1 (both finished)
  lost.task_index = {0, 1};
  lost.task_finished = {1, 1};
  JobStatusReport live;  // agent 1: task 2 finished, task 1's re-run not yet, task 9 unknown
  live.task_index = {2, 1, 9};
  live.task_finished = {1, 0, 1};
  const LineageState state = MakeLineageState({0, 1, 1}, {0, 1, 0}, {&lost, &live, nullptr},
                                              {false, true, true});
  EXPECT_EQ(state.task_finished, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(state.task_attempt, (std::vector<int32_t>{0, 1, 0}));
  EXPECT_EQ(state.agent_live, (std::vector<bool>{false, true, true}));
}

// sabot.relocate_writers on an agent: a job not deployed there has nothing to relocate (OK);
// a body without its attempts, or with attempts that do not match its tasks, is refused.
TEST(LineageRecoveryTest, AnAgentChecksRelocations) {
  EngineOptions options;
  options.server.port = 0;
  ASSERT_OK_AND_ASSIGN(auto agent, Agent::Make(options));
  TaskDeployment relocation;
  relocation.job_id = "job-9";
  relocation.agents = {agent->location()};
  relocation.task_agents = {0, 0};
  relocation.task_attempts = {0, 1};
  ControlMessage message;
  PutWriterRelocations(relocation, &message);
  EXPECT_OK(agent->HandleAction(kActionRelocateWriters, message.Encode()).status());
  message.SetInts("task_attempts", {0, -1});
  EXPECT_TRUE(agent->HandleAction(kActionRelocateWriters, message.Encode()).status().IsInvalid());
  ControlMessage missing;
  missing.Set("job_id", "job-9");
  EXPECT_FALSE(agent->HandleAction(kActionRelocateWriters, missing.Encode()).ok());
}

}  // namespace
}  // namespace sabot
