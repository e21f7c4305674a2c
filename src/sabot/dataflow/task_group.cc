#include "sabot/dataflow/task_group.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "sabot/dataflow/stall_detector.h"
#include "sabot/dataflow/task_runner.h"
#include "sabot/shuffle/shuffle_manager.h"

namespace sabot {

namespace {

using Clock = std::chrono::steady_clock;

// How often the watcher looks at the cancel flag and for a stall while the group runs.
constexpr std::chrono::milliseconds kWatchPoll{50};

}  // namespace

std::vector<GroupTask> TaskGroup::AllTasks(const BoundJob& bound) {
  std::vector<GroupTask> tasks;
  for (const TaskSpec& spec : bound.graph.tasks()) tasks.push_back({spec.chain, spec.subtask});
  return tasks;
}

TaskGroup::TaskGroup(std::shared_ptr<const BoundJob> bound, ShuffleManager* manager,
                     TaskGroupOptions options)
    : bound_(std::move(bound)), manager_(manager), options_(std::move(options)),
      start_(Clock::now()) {}

arrow::Result<std::unique_ptr<TaskGroup>> TaskGroup::Open(std::shared_ptr<const BoundJob> bound,
                                                          ShuffleManager* manager,
                                                          std::vector<GroupTask> tasks,
                                                          TaskGroupOptions options) {
  const ExecutionGraph& graph = bound->graph;
  // The sizes of the request are checked before anything is made for it.
  std::set<std::pair<int32_t, int32_t>> seen;
  for (const GroupTask& task : tasks) {
    if (task.chain < 0 || task.chain >= static_cast<int32_t>(graph.chains().size())) {
      return arrow::Status::IndexError("chain ", task.chain, " is out of range: job '",
                                       bound->job_id, "' has ", graph.chains().size(), " chains");
    }
    const ChainSpec& chain = graph.chains()[task.chain];
    if (task.subtask < 0 || task.subtask >= chain.parallelism) {
      return arrow::Status::IndexError("task ", task.subtask, " of '", chain.name,
                                       "' is out of range: its parallelism is ", chain.parallelism);
    }
    if (!seen.insert({task.chain, task.subtask}).second) {
      return arrow::Status::Invalid("task ", task.subtask, " of '", chain.name,
                                    "' is named twice");
    }
  }
  const auto& shuffle_edges = graph.shuffle_edges();
  if (!options.writer_locations.empty()) {
    if (options.writer_locations.size() != shuffle_edges.size()) {
      return arrow::Status::Invalid("writer locations are given for ",
                                    options.writer_locations.size(), " shuffle edges; job '",
                                    bound->job_id, "' has ", shuffle_edges.size());
    }
    for (size_t k = 0; k < shuffle_edges.size(); ++k) {
      const GraphEdge& edge = graph.edges()[shuffle_edges[k]];
      if (static_cast<int32_t>(options.writer_locations[k].size()) != edge.num_writers) {
        return arrow::Status::Invalid("shuffle '", edge.shuffle_id, "' has ", edge.num_writers,
                                      " writer tasks; ", options.writer_locations[k].size(),
                                      " locations were given");
      }
    }
  }

  if (options.checkpoint_storage != nullptr) {
    // Checkpoints need every edge pipelined: a blocking shuffle delivers nothing (barriers
    // included) before its writers finished, so no checkpoint could complete while they run,
    // and its stored blocks are not part of any snapshot.
    for (const GraphEdge& edge : graph.edges()) {
      if (edge.chained || edge.mode != ShuffleMode::kBlocking) continue;
      const LogicalPlan& plan = graph.plan();
      return arrow::Status::Invalid(
          "job '", bound->job_id, "': checkpoints need pipelined shuffles, but the edge '",
          plan.FindOperator(edge.from_operator)->name, "' -> '",
          plan.FindOperator(edge.to_operator)->name,
          "' is blocking (shuffle_mode: blocking); use shuffle_mode: pipelined or turn "
          "checkpoints off (batch jobs recover by lineage, docs/fault-tolerance.md)");
    }
  } else if (options.restore_from) {
    return arrow::Status::Invalid("job '", bound->job_id,
                                  "': a restore point is given without checkpoint storage");
  }

  std::unique_ptr<TaskGroup> group(new TaskGroup(bound, manager, options));
  const int32_t threads =
      options.threads > 0
          ? options.threads
          : std::max<int32_t>(1, static_cast<int32_t>(std::thread::hardware_concurrency()));
  std::vector<std::vector<std::string>> locations(graph.edges().size());
  for (size_t k = 0; k < options.writer_locations.size(); ++k) {
    locations[shuffle_edges[k]] = options.writer_locations[k];
  }
  group->scheduler_ = std::make_unique<TaskScheduler>(threads);
  group->job_ = std::make_unique<LocalJob>(bound, manager, group->scheduler_.get(), options.state,
                                           std::move(locations));
  if (options.checkpoint_storage != nullptr) {
    auto checkpointing = std::make_shared<JobCheckpointing>();
    checkpointing->storage = options.checkpoint_storage;
    checkpointing->restore_from = options.restore_from;
    checkpointing->on_task_snapshot = options.on_task_snapshot;
    if (options.restore_from) {
      // Ids go on from the restore point: a task restored at checkpoint k acked k already.
      checkpointing->triggered.store(options.restore_from->id);
      checkpointing->completed.store(options.restore_from->id);
    }
    group->job_->SetCheckpointing(std::move(checkpointing));
  }
  for (const GroupTask& id : tasks) {
    auto task = std::make_unique<TaskRunner>(group->job_.get(), id.chain, id.subtask);
    TaskRunner* runner = task.get();
    const auto handle = group->scheduler_->Add([runner] { return runner->Step(); });
    group->tasks_.push_back(std::move(task));
    group->task_ids_.push_back(id);
    arrow::Status opened = runner->Open(handle);
    if (!opened.ok()) {
      for (auto& made : group->tasks_) made->Abort(opened);
      group->tasks_.clear();
      group->scheduler_.reset();  // no step ever ran; stops the (unstarted) workers
      return opened;
    }
    group->job_->AddTask(runner, handle);
  }
  return group;
}

TaskGroup::~TaskGroup() {
  bool started;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    started = started_;
    stopping_ = true;
  }
  changed_.notify_all();
  if (started) {
    // A group destroyed while it runs (its agent goes away) fails first, so its tasks end.
    if (!done()) Fail(arrow::Status::Cancelled("job '", bound_->job_id, "' was stopped"));
    if (runner_.joinable()) runner_.join();
  }
  if (watcher_.joinable()) watcher_.join();
  // Snapshot writes still on IO threads report to callbacks that must not outlive the group.
  if (job_ != nullptr && job_->checkpointing() != nullptr) job_->checkpointing()->WaitWrites();
  if (!aborted_ && !committed_) {
    // Whatever was not committed goes (a file sink's temporary file).
    for (auto& task : tasks_) task->Abort(arrow::Status::Cancelled("job '", bound_->job_id,
                                                                   "' ended"));
  }
  tasks_.clear();
  scheduler_.reset();
}

void TaskGroup::Start() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_) return;
    started_ = true;
  }
  runner_ = std::thread([this] {
    scheduler_->Start();
    scheduler_->Wait();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    changed_.notify_all();
  });
  watcher_ = std::thread([this] { Watch(); });
}

bool TaskGroup::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

bool TaskGroup::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return done_; });
}

void TaskGroup::Wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return done_; });
}

void TaskGroup::TriggerCheckpoint(CheckpointId id) {
  JobCheckpointing* checkpointing = job_->checkpointing();
  if (checkpointing == nullptr) return;
  CheckpointId previous = checkpointing->triggered.load();
  while (previous < id && !checkpointing->triggered.compare_exchange_weak(previous, id)) {
  }
  if (previous >= id) return;
  // Tasks that ended ack at once (they send nothing more); the others at their next step.
  for (const auto& task : tasks_) task->AckEnded();
  job_->WakeAll();
}

void TaskGroup::CheckpointComplete(CheckpointId id) {
  JobCheckpointing* checkpointing = job_->checkpointing();
  if (checkpointing == nullptr) return;
  CheckpointId previous = checkpointing->completed.load();
  while (previous < id && !checkpointing->completed.compare_exchange_weak(previous, id)) {
  }
  if (previous < id) job_->WakeAll();
}

int32_t TaskGroup::running_tasks() const {
  int32_t running = 0;
  for (const auto& task : tasks_) running += task->ended() || task->finished() ? 0 : 1;
  return running;
}

int64_t TaskGroup::Signature() const {
  int64_t sum = 0;
  for (const auto& task : tasks_) sum += task->finished() ? 1 : 0;
  for (const OperatorSpec& spec : job_->plan().operators()) {
    const OperatorCounters& counters = job_->counters(spec.id);
    sum += counters.rows_in.load(std::memory_order_relaxed) +
           counters.rows_out.load(std::memory_order_relaxed);
  }
  return sum;
}

bool TaskGroup::busy() const {
  return scheduler_->running() > 0 || scheduler_->timed_waits() > 0;
}

void TaskGroup::Watch() {
  StallDetector stall(options_.stall_timeout, Clock::now());
  auto next_progress = Clock::now() + options_.progress_interval;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!done_ && !stopping_) {
    changed_.wait_for(lock, kWatchPoll);
    if (done_ || stopping_) break;
    lock.unlock();
    if (options_.cancel != nullptr && options_.cancel->load()) {
      job_->Fail(arrow::Status::Cancelled("job '", bound_->job_id, "' was cancelled"));
    }
    if (stall.Observe(Signature(), busy(), Clock::now())) {
      job_->Fail(arrow::Status::IOError(
          "job '", bound_->job_id, "' made no progress for ", options_.stall_timeout.count(),
          " ms (no rows moved, no task finished); ", manager_->writers_waiting_for_admission(),
          " shuffle writers wait for memory admission: raise the memory budget or lower the "
          "parallelism"));
    }
    if (options_.on_progress && Clock::now() >= next_progress) {
      next_progress += options_.progress_interval;
      options_.on_progress();
    }
    lock.lock();
  }
}

arrow::Status TaskGroup::Commit(int phase) {
  if (!done()) {
    return arrow::Status::Invalid("job '", bound_->job_id, "' commits before its tasks ended");
  }
  ARROW_RETURN_NOT_OK(failure());
  if (aborted_) return arrow::Status::Invalid("job '", bound_->job_id, "' was aborted");
  for (const auto& task : tasks_) ARROW_RETURN_NOT_OK(task->Commit(phase));
  if (phase == TaskRunner::kCommitPhases - 1) committed_ = true;
  return arrow::Status::OK();
}

void TaskGroup::Abort(const arrow::Status& cause) {
  if (aborted_) return;
  aborted_ = true;
  for (auto& task : tasks_) task->Abort(cause);
}

TaskGroupFigures TaskGroup::Figures() const {
  TaskGroupFigures figures;
  const ExecutionGraph& graph = bound_->graph;
  const LogicalPlan& plan = job_->plan();
  // Which subtasks of each operator run here.
  std::unordered_map<OperatorId, std::vector<int32_t>> subtasks;
  for (const GroupTask& id : task_ids_) {
    for (OperatorId op : graph.chains()[id.chain].operators) subtasks[op].push_back(id.subtask);
  }
  for (const OperatorSpec& spec : plan.operators()) {
    if (spec.kind() == OperatorKind::kKeyBy) continue;
    auto here = subtasks.find(spec.id);
    if (here == subtasks.end()) continue;
    OperatorCounters& counters = job_->counters(spec.id);
    OperatorReport report;
    report.id = spec.id;
    report.name = spec.name;
    report.kind = spec.kind();
    report.parallelism = spec.parallelism;
    report.rows_in = counters.rows_in.load(std::memory_order_relaxed);
    report.rows_out = counters.rows_out.load(std::memory_order_relaxed);
    report.busy = std::chrono::nanoseconds(counters.busy_ns.load(std::memory_order_relaxed));
    report.late_rows = counters.late_rows.load(std::memory_order_relaxed);
    report.state_spilled_bytes = counters.state_spilled_bytes.load(std::memory_order_relaxed);
    report.watermark = kEndOfTimeWatermark;
    for (int32_t t : here->second) {
      if (t >= counters.tasks) continue;
      report.watermark = std::min<int64_t>(report.watermark,
                                           counters.watermarks[t].load(std::memory_order_relaxed));
    }
    // A sink's output is what it wrote: the rows it took in.
    if (IsSink(spec.kind())) report.rows_out = report.rows_in;
    figures.operators.push_back(std::move(report));
    figures.operator_tasks.push_back(static_cast<int32_t>(here->second.size()));
  }

  for (size_t e : graph.shuffle_edges()) {
    const GraphEdge& edge = graph.edges()[e];
    EdgeReport report;
    report.shuffle_id = edge.shuffle_id;
    report.from = plan.FindOperator(edge.from_operator)->name;
    report.to = plan.FindOperator(edge.to_operator)->name;
    report.type = std::string(EdgeTypeName(edge.type));
    for (char& c : report.type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    report.chained = edge.chained;
    report.num_writers = edge.num_writers;
    report.num_partitions = edge.num_partitions;
    auto stats = manager_->Stats(bound_->job_id + "." + edge.shuffle_id);
    if (stats.ok()) {
      report.bytes = stats->bytes_written;
      report.bytes_spilled = stats->bytes_spilled;
      report.blocks_spilled = stats->blocks_spilled;
      report.blocked = stats->time_blocked;
    }
    // writer_blocked[i]: the time writer task i here was held back by its outputs.
    report.writer_blocked.assign(edge.num_writers, std::chrono::nanoseconds(0));
    for (size_t t = 0; t < tasks_.size(); ++t) {
      if (task_ids_[t].chain != edge.from_chain || task_ids_[t].subtask >= edge.num_writers) {
        continue;
      }
      report.writer_blocked[task_ids_[t].subtask] = tasks_[t]->output_blocked();
    }
    // rows[i][j] and channel_bytes[i][j]: what reader j received from writer i, for the readers
    // here.
    report.rows.assign(edge.num_writers, std::vector<int64_t>(edge.num_partitions, 0));
    report.channel_bytes.assign(edge.num_writers, std::vector<int64_t>(edge.num_partitions, 0));
    for (size_t t = 0; t < tasks_.size(); ++t) {
      if (task_ids_[t].chain != edge.to_chain) continue;
      const int32_t j = task_ids_[t].subtask;
      const auto& inputs = tasks_[t]->input_edges();
      const auto position = std::find(inputs.begin(), inputs.end(), e) - inputs.begin();
      const auto rows_per_writer = tasks_[t]->InputRowsPerWriter();
      const auto bytes_per_writer = tasks_[t]->InputBytesPerWriter();
      if (static_cast<size_t>(position) >= rows_per_writer.size() || j >= edge.num_partitions) {
        continue;
      }
      const auto& rows = rows_per_writer[position];
      const auto& bytes = bytes_per_writer[position];
      for (int32_t i = 0; i < edge.num_writers && i < static_cast<int32_t>(rows.size()); ++i) {
        report.rows[i][j] = rows[i];
        if (static_cast<size_t>(i) < bytes.size()) report.channel_bytes[i][j] = bytes[i];
      }
    }
    figures.edges.push_back(std::move(report));
  }

  for (size_t t = 0; t < tasks_.size(); ++t) {
    GroupTaskStatus status;
    status.task = task_ids_[t];
    status.name = tasks_[t]->Describe();
    status.finished = tasks_[t]->finished();
    status.failed = tasks_[t]->failed();
    status.rows_in = tasks_[t]->rows_in();
    status.rows_out = tasks_[t]->rows_out();
    figures.tasks.push_back(std::move(status));
  }
  figures.peak_memory_bytes = manager_->pool()->peak_bytes();
  figures.memory_budget_bytes = manager_->pool()->budget();
  return figures;
}

}  // namespace sabot
