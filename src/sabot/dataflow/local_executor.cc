#include "sabot/dataflow/local_executor.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "sabot/dataflow/local_job.h"
#include "sabot/dataflow/stall_detector.h"
#include "sabot/dataflow/task_runner.h"
#include "sabot/memory/budget_pool.h"
#include "sabot/shuffle/shuffle_manager.h"
#include "sabot/transport/in_process_transport.h"

namespace sabot {

namespace {

using Clock = std::chrono::steady_clock;

// How often the executor looks at the cancel flag and for a stall while the job runs.
constexpr std::chrono::milliseconds kCancelPoll{50};
std::vector<OperatorReport> OperatorFigures(LocalJob* job) {
  std::vector<OperatorReport> operators;
  for (const OperatorSpec& spec : job->plan().operators()) {
    if (spec.kind() == OperatorKind::kKeyBy) continue;
    OperatorCounters& counters = job->counters(spec.id);
    OperatorReport report;
    report.id = spec.id;
    report.name = spec.name;
    report.kind = spec.kind();
    report.parallelism = spec.parallelism;
    report.rows_in = counters.rows_in.load(std::memory_order_relaxed);
    report.rows_out = counters.rows_out.load(std::memory_order_relaxed);
    report.busy = std::chrono::nanoseconds(counters.busy_ns.load(std::memory_order_relaxed));
    report.late_rows = counters.late_rows.load(std::memory_order_relaxed);
    report.watermark = kEndOfTimeWatermark;
    for (int32_t t = 0; t < counters.tasks; ++t) {
      report.watermark =
          std::min<int64_t>(report.watermark, counters.watermarks[t].load(std::memory_order_relaxed));
    }
    // A sink's output is what it wrote: the rows it took in.
    if (IsSink(spec.kind())) report.rows_out = report.rows_in;
    operators.push_back(std::move(report));
  }
  return operators;
}

EdgeReport EdgeFigures(const LocalJob& job, const GraphEdge& edge) {
  const LogicalPlan& plan = job.plan();
  EdgeReport report;
  report.shuffle_id = edge.shuffle_id;
  report.from = plan.FindOperator(edge.from_operator)->name;
  report.to = plan.FindOperator(edge.to_operator)->name;
  report.type = std::string(EdgeTypeName(edge.type));
  for (char& c : report.type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  report.chained = edge.chained;
  report.num_writers = edge.num_writers;
  report.num_partitions = edge.num_partitions;
  if (edge.chained) return report;
  auto stats = job.manager()->Stats(job.bound().job_id + "." + edge.shuffle_id);
  if (stats.ok()) {
    report.bytes = stats->bytes_written;
    report.bytes_spilled = stats->bytes_spilled;
    report.blocks_spilled = stats->blocks_spilled;
    report.blocked = stats->time_blocked;
  }
  return report;
}

// Runs the progress callback and watches the cancel flag until Stop().
class JobWatcher {
 public:
  // `snapshot` makes the progress callback's argument; `signature` changes whenever rows move or a
  // task finishes (cheap: the stall check calls it every kCancelPoll).
  JobWatcher(const LocalExecutorOptions& options, LocalJob* job,
             std::function<JobProgress()> snapshot, std::function<int64_t()> signature)
      : options_(options),
        job_(job),
        snapshot_(std::move(snapshot)),
        signature_(std::move(signature)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~JobWatcher() { Stop(); }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
    }
    stop_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    auto next_progress = Clock::now() + options_.progress_interval;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopped_) {
      stop_.wait_for(lock, kCancelPoll);
      if (stopped_) break;
      if (options_.cancel != nullptr && options_.cancel->load()) {
        lock.unlock();
        job_->Fail(arrow::Status::Cancelled("job '", job_->bound().job_id, "' was cancelled"));
        lock.lock();
      }
      if (Stalled()) {
        lock.unlock();
        job_->Fail(arrow::Status::IOError(
            "job '", job_->bound().job_id, "' made no progress for ",
            options_.stall_timeout.count(), " ms (no rows moved, no task finished); ",
            job_->manager()->writers_waiting_for_admission(),
            " shuffle writers wait for memory admission: raise the memory budget or lower the "
            "parallelism"));
        lock.lock();
      }
      if (options_.on_progress && Clock::now() >= next_progress) {
        next_progress += options_.progress_interval;
        lock.unlock();
        options_.on_progress(snapshot_());
        lock.lock();
      }
    }
  }

  // True once the job's rows and finished tasks did not change for options_.stall_timeout while
  // nothing was busy.
  bool Stalled() {
    const int64_t signature = signature_();
    const bool busy =
        job_->scheduler()->running() > 0 || job_->scheduler()->timed_waits() > 0;
    return stall_.Observe(signature, busy, Clock::now());
  }

  const LocalExecutorOptions& options_;
  LocalJob* const job_;
  StallDetector stall_{options_.stall_timeout, Clock::now()};
  std::function<JobProgress()> snapshot_;
  std::function<int64_t()> signature_;
  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopped_ = false;
  std::thread thread_;
};

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

  const int32_t threads =
      options.threads > 0 ? options.threads
                          : std::max<int32_t>(1, static_cast<int32_t>(std::thread::hardware_concurrency()));
  // Declared after the manager and before the tasks: tasks (their readers and writers) go first,
  // then the scheduler their callbacks wake, then the manager.
  auto scheduler = std::make_unique<TaskScheduler>(threads);
  LocalJob job(bound, manager.get(), scheduler.get(),
               TaskStateLimits{options.state_budget_per_task, options.spill_directory});
  std::vector<std::unique_ptr<TaskRunner>> tasks;
  const ExecutionGraph& graph = bound->graph;
  // Tasks of a chain, by chain, in subtask order (the N x M matrices read them).
  std::vector<std::vector<TaskRunner*>> chain_tasks(graph.chains().size());

  auto abort_all = [&](const arrow::Status& cause) {
    for (auto& task : tasks) task->Abort(cause);
  };
  for (const TaskSpec& spec : graph.tasks()) {
    auto task = std::make_unique<TaskRunner>(&job, spec.chain, spec.subtask);
    TaskRunner* runner = task.get();
    const auto handle = scheduler->Add([runner] { return runner->Step(); });
    tasks.push_back(std::move(task));
    chain_tasks[spec.chain].push_back(runner);
    arrow::Status opened = runner->Open(handle);
    if (!opened.ok()) {
      abort_all(opened);
      scheduler.reset();  // no step ever ran; stops the (unstarted) workers
      tasks.clear();
      (void)manager->ReleaseJob(bound->job_id);
      return opened;
    }
    job.AddTask(runner, handle);
  }

  const std::vector<OperatorSpec>& plan_operators = job.plan().operators();
  auto snapshot = [&]() {
    JobProgress progress;
    progress.elapsed = Clock::now() - start;
    progress.operators = OperatorFigures(&job);
    for (size_t e : graph.shuffle_edges()) progress.edges.push_back(EdgeFigures(job, graph.edges()[e]));
    progress.tasks_total = static_cast<int32_t>(tasks.size());
    for (const auto& task : tasks) progress.tasks_finished += task->finished() ? 1 : 0;
    progress.tasks_running = progress.tasks_total - progress.tasks_finished;
    return progress;
  };
  auto signature = [&]() {
    int64_t sum = 0;
    for (const auto& task : tasks) sum += task->finished() ? 1 : 0;
    for (const OperatorSpec& spec : plan_operators) {
      const OperatorCounters& counters = job.counters(spec.id);
      sum += counters.rows_in.load(std::memory_order_relaxed) +
             counters.rows_out.load(std::memory_order_relaxed);
    }
    return sum;
  };
  {
    JobWatcher watcher(options, &job, snapshot, signature);
    scheduler->Start();
    scheduler->Wait();
    watcher.Stop();
  }

  arrow::Status outcome = job.failure();
  for (int phase = 0; outcome.ok() && phase < TaskRunner::kCommitPhases; ++phase) {
    for (const auto& task : tasks) {
      outcome = task->Commit(phase);
      if (!outcome.ok()) break;
    }
  }
  if (!outcome.ok()) {
    abort_all(outcome);
    tasks.clear();
    scheduler.reset();
    (void)manager->ReleaseJob(bound->job_id);
    return outcome;
  }

  JobReport report;
  report.job_id = bound->job_id;
  report.operators = OperatorFigures(&job);
  for (const GraphEdge& edge : graph.edges()) {
    EdgeReport figures = EdgeFigures(job, edge);
    if (!edge.chained) {
      // rows[i][j]: what reader j received from writer i.
      figures.rows.assign(edge.num_writers, std::vector<int64_t>(edge.num_partitions, 0));
      for (int32_t j = 0; j < edge.num_partitions; ++j) {
        const TaskRunner* reader = chain_tasks[edge.to_chain][j];
        const auto& edges = reader->input_edges();
        const auto position = std::find(edges.begin(), edges.end(),
                                        static_cast<size_t>(&edge - graph.edges().data())) -
                              edges.begin();
        const auto per_writer = reader->InputRowsPerWriter();
        if (static_cast<size_t>(position) >= per_writer.size()) continue;
        const auto& rows = per_writer[position];
        for (int32_t i = 0; i < edge.num_writers && i < static_cast<int32_t>(rows.size()); ++i) {
          figures.rows[i][j] = rows[i];
        }
      }
    }
    report.edges.push_back(std::move(figures));
  }
  report.peak_memory_bytes = manager->pool()->peak_bytes();
  report.memory_budget_bytes = manager->pool()->budget();
  tasks.clear();
  scheduler.reset();
  (void)manager->ReleaseJob(bound->job_id);
  report.wall = Clock::now() - start;
  return report;
}

}  // namespace sabot
