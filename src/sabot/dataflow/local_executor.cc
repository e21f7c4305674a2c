#include "sabot/dataflow/local_executor.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "sabot/dataflow/local_job.h"
#include "sabot/dataflow/task_group.h"
#include "sabot/dataflow/task_runner.h"
#include "sabot/memory/budget_pool.h"
#include "sabot/shuffle/shuffle_manager.h"
#include "sabot/transport/in_process_transport.h"

namespace sabot {

namespace {

using Clock = std::chrono::steady_clock;

JobProgress ProgressOf(const TaskGroup& group) {
  TaskGroupFigures figures = group.Figures();
  JobProgress progress;
  progress.elapsed = group.elapsed();
  progress.operators = std::move(figures.operators);
  progress.edges = std::move(figures.edges);
  for (EdgeReport& edge : progress.edges) edge.rows.clear();
  progress.tasks_total = static_cast<int32_t>(figures.tasks.size());
  for (const GroupTaskStatus& task : figures.tasks) progress.tasks_finished += task.finished;
  progress.tasks_running = progress.tasks_total - progress.tasks_finished;
  return progress;
}

}  // namespace

BindOptions BindOptionsOf(const LocalExecutorOptions& options) {
  BindOptions bind;
  bind.job_id = options.job_id;
  bind.console = options.console;
  bind.collected = options.collected;
  bind.tables = options.tables;
  bind.memory_budget = options.memory_budget;
  return bind;
}

arrow::Result<JobReport> RunLocalJob(const LogicalPlan& plan, const LocalExecutorOptions& options) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<const BoundJob> bound,
                        BindJob(plan, BindOptionsOf(options), options.shuffle));
  return RunBoundJob(std::move(bound), options);
}

arrow::Result<JobReport> RunBoundJob(std::shared_ptr<const BoundJob> bound,
                                     const LocalExecutorOptions& options) {
  const auto start = Clock::now();

  ARROW_ASSIGN_OR_RAISE(auto transport, InProcessTransport::Make());
  ShuffleManagerOptions manager_options;
  manager_options.memory_budget = options.memory_budget;
  manager_options.spill.directory = options.spill_directory;
  // BindJob fitted the shuffles' blocks and the network pool to this budget.
  if (bound->memory_budget != options.memory_budget) {
    return arrow::Status::Invalid("job '", bound->job_id, "' was bound for a memory budget of ",
                                  bound->memory_budget, " bytes, not ", options.memory_budget);
  }
  if (bound->network_fraction > 0) manager_options.network_fraction = bound->network_fraction;
  if (bound->network_segment_size > 0) {
    manager_options.network.segment_size = bound->network_segment_size;
  }
  ARROW_ASSIGN_OR_RAISE(auto manager, ShuffleManager::Make(manager_options, transport.get()));
  for (const ShuffleDescriptor& descriptor : bound->shuffles) {
    ARROW_RETURN_NOT_OK(manager->RegisterShuffle(descriptor, bound->job_id));
  }

  // The one-process case of a task group: every task of the job, every writer here.
  TaskGroupOptions group_options;
  group_options.threads = options.threads;
  group_options.state = TaskStateLimits{options.state_budget_per_task, options.spill_directory};
  group_options.stall_timeout = options.stall_timeout;
  group_options.cancel = options.cancel;
  group_options.progress_interval = options.progress_interval;
  TaskGroup* running = nullptr;
  if (options.on_progress) {
    group_options.on_progress = [&options, &running] { options.on_progress(ProgressOf(*running)); };
  }
  auto opened = TaskGroup::Open(bound, manager.get(), TaskGroup::AllTasks(*bound),
                                std::move(group_options));
  if (!opened.ok()) {
    (void)manager->ReleaseJob(bound->job_id);
    return opened.status();
  }
  std::unique_ptr<TaskGroup> group = std::move(*opened);
  running = group.get();
  group->Start();
  group->Wait();

  arrow::Status outcome = group->failure();
  for (int phase = 0; outcome.ok() && phase < TaskRunner::kCommitPhases; ++phase) {
    outcome = group->Commit(phase);
  }
  if (!outcome.ok()) {
    group->Abort(outcome);
    group.reset();
    (void)manager->ReleaseJob(bound->job_id);
    return outcome;
  }

  TaskGroupFigures figures = group->Figures();
  JobReport report;
  report.job_id = bound->job_id;
  report.operators = std::move(figures.operators);
  // Every edge in graph order: the shuffle edges with their figures, chained edges bare.
  const ExecutionGraph& graph = bound->graph;
  size_t next_shuffle = 0;
  for (const GraphEdge& edge : graph.edges()) {
    if (!edge.chained) {
      report.edges.push_back(std::move(figures.edges[next_shuffle++]));
      continue;
    }
    EdgeReport chained;
    chained.from = graph.plan().FindOperator(edge.from_operator)->name;
    chained.to = graph.plan().FindOperator(edge.to_operator)->name;
    chained.type = std::string(EdgeTypeName(edge.type));
    for (char& c : chained.type) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    chained.chained = true;
    chained.num_writers = edge.num_writers;
    chained.num_partitions = edge.num_partitions;
    report.edges.push_back(std::move(chained));
  }
  report.peak_memory_bytes = figures.peak_memory_bytes;
  report.memory_budget_bytes = figures.memory_budget_bytes;
  group.reset();
  (void)manager->ReleaseJob(bound->job_id);
  report.wall = Clock::now() - start;
  return report;
}

}  // namespace sabot
