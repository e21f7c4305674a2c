#include "sabot/dataflow/local_executor.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "sabot/common/logging.h"
#include "sabot/dataflow/checkpoint_storage.h"
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

// A checkpoint in flight: the acks of the tasks so far.
struct PendingCheckpoint {
  CheckpointId id = kNoCheckpoint;
  Clock::time_point triggered;
  size_t expected = 0;
  std::vector<TaskSnapshot> acks;
  // Tasks heard from (an ack or an error): a failed checkpoint is removed only when every task
  // reported, so no snapshot write of it is still in flight (it would recreate its directory).
  size_t reported = 0;
  arrow::Status failure;
};

// The checkpoints of one job run (every attempt): triggers them at the interval, collects the
// tasks' acks (on_task_snapshot, from any thread), commits complete ones and tells the group.
// Driven from the executor's thread by Poll() while an attempt runs.
class LocalCheckpointer {
 public:
  LocalCheckpointer(std::shared_ptr<CheckpointStorage> storage, CheckpointOptions options,
                    CheckpointId first_id)
      : storage_(std::move(storage)), options_(std::move(options)), next_id_(first_id),
        first_id_(first_id) {}

  CheckpointStorage* storage() const { return storage_.get(); }
  CheckpointId first_id() const { return first_id_; }
  CheckpointReport& report() { return report_; }

  // A new attempt starts with `group` (nothing pending; the first trigger one interval on).
  void Begin(TaskGroup* group) {
    std::lock_guard<std::mutex> lock(mutex_);
    group_ = group;
    pending_.reset();
    next_trigger_ = Clock::now() + options_.interval;
  }
  // The tasks' acks (TaskGroupOptions::on_task_snapshot).
  void OnTaskSnapshot(CheckpointId id, const arrow::Result<TaskSnapshot>& snapshot) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pending_ || pending_->id != id) return;  // a checkpoint given up already
    ++pending_->reported;
    if (!snapshot.ok()) {
      if (pending_->failure.ok()) pending_->failure = snapshot.status();
      return;
    }
    pending_->acks.push_back(*snapshot);
  }
  // Completes or gives up the pending checkpoint when it can, triggers the next when due; returns
  // when the next Poll is due.
  void Poll() {
    std::optional<PendingCheckpoint> done;
    bool trigger = false;
    CheckpointId id = kNoCheckpoint;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const Clock::time_point now = Clock::now();
      if (pending_ && (pending_->reported >= pending_->expected ||
                       now - pending_->triggered > kCheckpointTimeout)) {
        if (pending_->failure.ok() && pending_->acks.size() < pending_->expected) {
          pending_->failure = arrow::Status::IOError(
              "checkpoint ", pending_->id, " timed out after ",
              std::chrono::duration_cast<std::chrono::seconds>(kCheckpointTimeout).count(),
              " s with ", pending_->acks.size(), " of ", pending_->expected, " tasks acked");
        }
        done = std::move(*pending_);
        pending_.reset();
      }
      if (!pending_ && !done && now >= next_trigger_) {
        id = next_id_++;
        pending_ = PendingCheckpoint{id, now, group_->bound().graph.tasks().size(), {}, {}};
        next_trigger_ = now + options_.interval;
        trigger = true;
      }
    }
    // Outside the lock: storage writes, and the group's tasks ack from their threads.
    if (done) Finish(std::move(*done));
    if (trigger) group_->TriggerCheckpoint(id);
  }
  // The attempt ended and its group is gone (no snapshot write in flight): a checkpoint still
  // pending is given up.
  void End() {
    std::optional<PendingCheckpoint> pending;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending = std::move(pending_);
      pending_.reset();
      group_ = nullptr;
    }
    if (pending) {
      // Given up, not failed: the attempt ended (done, or failed: counted as a restart).
      arrow::Status aborted = storage_->Abort(pending->id);
      if (!aborted.ok()) SABOT_LOG(kWarning) << aborted.ToString();
    }
  }

 private:
  static constexpr std::chrono::minutes kCheckpointTimeout{10};

  void Finish(PendingCheckpoint done) {
    if (done.failure.ok()) {
      auto manifest = storage_->Complete(done.id, std::move(done.acks));
      if (manifest.ok()) {
        ++report_.completed;
        report_.last_id = done.id;
        report_.last_duration = Clock::now() - done.triggered;
        report_.last_bytes = manifest->bytes();
        group_->CheckpointComplete(done.id);
        return;
      }
      done.failure = manifest.status();
    }
    // A failed checkpoint fails only itself: the job runs on, the next one is triggered.
    ++report_.failed;
    // (Cancelled: a sink task ended, the usual end of a bounded job: not worth a warning.)
    if (done.failure.IsCancelled()) {
      SABOT_LOG(kInfo) << "checkpoint " << done.id << " given up: " << done.failure.ToString();
    } else {
      SABOT_LOG(kWarning) << "checkpoint " << done.id << " failed: " << done.failure.ToString();
    }
    arrow::Status aborted = storage_->Abort(done.id);
    if (!aborted.ok()) SABOT_LOG(kWarning) << aborted.ToString();
  }

  std::shared_ptr<CheckpointStorage> storage_;
  const CheckpointOptions options_;
  CheckpointReport report_;  // the executor's thread only
  std::mutex mutex_;
  TaskGroup* group_ = nullptr;
  std::optional<PendingCheckpoint> pending_;
  Clock::time_point next_trigger_;
  CheckpointId next_id_;
  const CheckpointId first_id_;
};

// How often the executor looks at checkpoints while an attempt runs.
constexpr std::chrono::milliseconds kCheckpointPoll{5};

// One attempt of a job: every task on a fresh shuffle manager (fresh channels: in-flight data of
// an earlier attempt is gone), restored from `restore_from` when set. `*retryable` (when given)
// says whether a failure may go away on a restart: not when the group could not even open (a
// blocking edge under checkpoints, a snapshot that does not match the plan) nor when an
// operator cannot checkpoint (NotImplemented).
arrow::Result<JobReport> RunAttempt(std::shared_ptr<const BoundJob> bound,
                                    const LocalExecutorOptions& options,
                                    LocalCheckpointer* checkpointer,
                                    std::optional<CheckpointManifest> restore_from,
                                    bool* retryable = nullptr);

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
  const CheckpointOptions& checkpoint = bound->graph.plan().options().checkpoint;
  if (!checkpoint.enabled()) {
    ARROW_ASSIGN_OR_RAISE(JobReport report, RunAttempt(bound, options, nullptr, std::nullopt));
    report.wall = Clock::now() - start;
    return report;
  }

  // Checkpoints on: the job restarts from its latest valid checkpoint after a task failure, up
  // to max_restarts times, waiting min(restart_delay * backoff^k, max_restart_delay) before the
  // k-th restart. Checkpoints of an earlier run of the job in the same directory are never
  // restored (ids go on after them).
  auto storage = CheckpointStorage::Open(checkpoint.directory, bound->job_id, checkpoint.retained);
  if (!storage.ok()) {
    return storage.status().WithMessage("job '", bound->job_id, "': ", storage.status().message());
  }
  ARROW_ASSIGN_OR_RAISE(CheckpointId first_id, (*storage)->NextId());
  LocalCheckpointer checkpointer(*storage, checkpoint, first_id);
  std::optional<CheckpointManifest> restore_from;
  std::vector<std::string> causes;
  for (int32_t attempt = 0;; ++attempt) {
    bool retryable = true;
    auto report = RunAttempt(bound, options, &checkpointer, restore_from, &retryable);
    if (report.ok()) {
      report->checkpoints = checkpointer.report();
      report->wall = Clock::now() - start;
      return report;
    }
    const arrow::Status cause = report.status();
    const bool cancelled = options.cancel != nullptr && options.cancel->load();
    if (cancelled || !retryable || attempt >= checkpoint.max_restarts) {
      if (attempt == 0 || cancelled || !retryable) return cause;
      std::string earlier;
      for (size_t k = 0; k < causes.size(); ++k) {
        earlier += "; attempt " + std::to_string(k + 1) + ": " + causes[k];
      }
      return cause.WithMessage(cause.message(), " (job '", bound->job_id, "' gave up after ",
                               attempt, attempt == 1 ? " restart" : " restarts",
                               ", max_restarts ", checkpoint.max_restarts, earlier, ")");
    }
    causes.push_back(cause.ToString());
    double delay_ms = static_cast<double>(checkpoint.restart_delay.count());
    for (int32_t k = 0; k < attempt; ++k) delay_ms *= checkpoint.restart_backoff;
    delay_ms = std::min(delay_ms, static_cast<double>(checkpoint.max_restart_delay.count()));
    SABOT_LOG(kWarning) << "job '" << bound->job_id << "' attempt " << attempt + 1
                        << " failed: " << cause.ToString() << "; restarting in "
                        << static_cast<int64_t>(delay_ms) << " ms";
    const auto resume_at = Clock::now() + std::chrono::microseconds(
                                              static_cast<int64_t>(delay_ms * 1000.0));
    while (Clock::now() < resume_at) {
      if (options.cancel != nullptr && options.cancel->load()) {
        return arrow::Status::Cancelled("job '", bound->job_id,
                                        "' was cancelled while waiting to restart after: ",
                                        cause.ToString());
      }
      std::this_thread::sleep_for(
          std::min<Clock::duration>(resume_at - Clock::now(), std::chrono::milliseconds(20)));
    }
    ARROW_ASSIGN_OR_RAISE(restore_from, checkpointer.storage()->LatestValid(first_id));
    ++checkpointer.report().restarts;
    checkpointer.report().restored_from = restore_from ? restore_from->id : kNoCheckpoint;
  }
}

namespace {

arrow::Result<JobReport> RunAttempt(std::shared_ptr<const BoundJob> bound,
                                    const LocalExecutorOptions& options,
                                    LocalCheckpointer* checkpointer,
                                    std::optional<CheckpointManifest> restore_from,
                                    bool* retryable) {
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
  if (checkpointer != nullptr) {
    group_options.checkpoint_storage =
        std::shared_ptr<CheckpointStorage>(checkpointer->storage(), [](CheckpointStorage*) {});
    group_options.restore_from = std::move(restore_from);
    group_options.on_task_snapshot = [checkpointer](CheckpointId id,
                                                    const arrow::Result<TaskSnapshot>& snapshot) {
      checkpointer->OnTaskSnapshot(id, snapshot);
    };
  }
  TaskGroup* running = nullptr;
  if (options.on_progress) {
    group_options.on_progress = [&options, &running] { options.on_progress(ProgressOf(*running)); };
  }
  auto opened = TaskGroup::Open(bound, manager.get(), TaskGroup::AllTasks(*bound),
                                std::move(group_options));
  if (!opened.ok()) {
    (void)manager->ReleaseJob(bound->job_id);
    if (retryable != nullptr) *retryable = false;
    return opened.status();
  }
  std::unique_ptr<TaskGroup> group = std::move(*opened);
  running = group.get();
  group->Start();
  if (checkpointer == nullptr) {
    group->Wait();
  } else {
    checkpointer->Begin(group.get());
    while (!group->WaitFor(kCheckpointPoll)) checkpointer->Poll();
  }

  arrow::Status outcome = group->failure();
  for (int phase = 0; outcome.ok() && phase < TaskRunner::kCommitPhases; ++phase) {
    outcome = group->Commit(phase);
  }
  if (!outcome.ok()) {
    if (retryable != nullptr && outcome.IsNotImplemented()) *retryable = false;
    group->Abort(outcome);
    group.reset();  // waits for the snapshot writes in flight
    if (checkpointer != nullptr) checkpointer->End();
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
  group.reset();  // waits for the snapshot writes in flight
  if (checkpointer != nullptr) checkpointer->End();
  (void)manager->ReleaseJob(bound->job_id);
  return report;
}

}  // namespace

}  // namespace sabot
