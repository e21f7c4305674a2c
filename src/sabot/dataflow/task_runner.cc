#include "sabot/dataflow/task_runner.h"

#include <algorithm>

#include "sabot/dataflow/local_job.h"
#include "sabot/memory/row_bytes.h"
#include "sabot/shuffle/shuffle_manager.h"
#include "sabot/shuffle/shuffle_reader.h"
#include "sabot/shuffle/shuffle_writer.h"

namespace sabot {

namespace {

using Clock = TaskRunner::Clock;

// Input items one step takes at most before it yields to other tasks.
constexpr int kItemsPerStep = 8;

int64_t NanosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

}  // namespace

arrow::Status TaskRunner::InOperator(OperatorId id, const arrow::Status& status,
                                     std::string_view doing) const {
  if (status.ok() || status.message().rfind("operator '", 0) == 0) return status;
  const OperatorSpec* spec = job_->plan().FindOperator(id);
  return status.WithMessage(OperatorLabel(*spec), " task ", subtask_, ": ", doing,
                            status.message());
}

// The output of ops_[index]: the next operator of the chain, or the task's outputs.
class TaskRunner::Link : public OperatorOutput {
 public:
  Link(TaskRunner* task, size_t index, OperatorCounters* counters)
      : task_(task), index_(index), counters_(counters) {}

  arrow::Status Emit(const std::shared_ptr<arrow::RecordBatch>& batch) override {
    counters_->rows_out.fetch_add(batch->num_rows(), std::memory_order_relaxed);
    return task_->Deliver(index_ + 1, 0, batch);
  }
  arrow::Status EmitWatermark(WatermarkMs watermark) override {
    return task_->DeliverWatermark(index_ + 1, watermark);
  }

 private:
  TaskRunner* const task_;
  const size_t index_;
  OperatorCounters* const counters_;
};

TaskRunner::TaskRunner(LocalJob* job, int32_t chain, TaskIndex subtask)
    : job_(job), chain_(chain), subtask_(subtask) {}

TaskRunner::~TaskRunner() {
  if (!finished_.load()) AbortAll(arrow::Status::Cancelled(Describe(), " was stopped"));
}

std::string TaskRunner::Describe() const {
  const ChainSpec& chain = job_->bound().graph.chains()[chain_];
  return "task " + std::to_string(subtask_) + " of '" + chain.name + "'";
}

arrow::Status TaskRunner::Open(TaskScheduler::TaskHandle handle) {
  handle_ = handle;
  const BoundJob& bound = job_->bound();
  const ExecutionGraph& graph = bound.graph;
  const ChainSpec& chain = graph.chains()[chain_];
  TaskContext context;
  context.job_id = bound.job_id;
  context.subtask = subtask_;
  context.parallelism = chain.parallelism;
  context.state_budget_bytes = job_->state_limits().budget_bytes;
  context.spill_directory = job_->state_limits().spill_directory;

  for (OperatorId id : chain.operators) {
    const OperatorSpec* spec = job_->plan().FindOperator(id);
    context.spec = spec;
    const BoundOperator& op = bound.operators.at(id);
    auto describe = [&](const arrow::Status& status) { return InOperator(id, status); };
    if (op.make_source) {
      auto source = op.make_source(context);
      if (!source.ok()) return describe(source.status());
      source_ = std::move(*source);
      source_id_ = id;
      continue;
    }
    auto instance = op.make_operator(context);
    if (!instance.ok()) return describe(instance.status());
    links_.push_back(std::make_unique<Link>(this, ops_.size(), &job_->counters(id)));
    ops_.push_back(std::move(*instance));
    op_ids_.push_back(id);
  }

  out_index_ = ops_.size();
  if (!ops_.empty() && IsSink(job_->plan().FindOperator(op_ids_.back())->kind())) {
    out_index_ = ops_.size() - 1;
  }

  // Readers: one per input shuffle; each of its upstream writers is a watermark channel.
  size_t channels = 0;
  for (size_t e : graph.InputShuffles(chain_)) {
    const GraphEdge& edge = graph.edges()[e];
    const std::string shuffle_id = bound.job_id + "." + edge.shuffle_id;
    auto read = job_->manager()->ReadPartition(shuffle_id, subtask_, job_->UpstreamOf(e));
    if (!read.ok()) return read.status().WithMessage(Describe(), ": ", read.status().message());
    std::unique_ptr<ShuffleReader> reader = std::move(*read);
    reader->SetOnReady([waker = job_->scheduler()->waker(), handle] { waker->Wake(handle); });
    Input input;
    input.edge = e;
    input.operator_input = edge.input;
    input.reader = std::move(reader);
    input.first_channel = channels;
    channels += static_cast<size_t>(edge.num_writers);
    input_edges_.push_back(e);
    inputs_.push_back(std::move(input));
  }
  watermarks_ = InputWatermarks(channels);
  idle_timeout_ = job_->plan().options().idle_timeout;
  channel_active_.assign(channels, Clock::now());
  late_counted_.assign(ops_.size(), 0);

  for (size_t e : graph.OutputShuffles(chain_)) {
    const GraphEdge& edge = graph.edges()[e];
    Output output;
    output.shuffle_id = bound.job_id + "." + edge.shuffle_id;
    output.forward = edge.type == EdgeType::kForward;
    arrow::Status opened = job_->manager()->OpenWriter(
        output.shuffle_id, subtask_, /*attempt=*/0,
        WriterMode{.non_blocking = true,
                   .on_ready = [waker = job_->scheduler()->waker(), handle] {
                     waker->Wake(handle);
                   }});
    if (!opened.ok()) return opened.WithMessage(Describe(), ": ", opened.message());
    // A writer is admitted for batches of up to num_partitions blocks (ShuffleManager); a larger
    // batch would grow its admission while the job runs, which may have to wait behind writers
    // that wait for this task. Larger batches go out in slices of that size (views, no copy).
    ARROW_ASSIGN_OR_RAISE(auto descriptor, job_->manager()->GetShuffle(output.shuffle_id));
    const int64_t admitted =
        int64_t{descriptor->num_partitions()} * descriptor->options.target_block_bytes;
    max_slice_bytes_ = max_slice_bytes_ == 0 ? admitted : std::min(max_slice_bytes_, admitted);
    outputs_.push_back(std::move(output));
  }
  checkpointing_ = job_->checkpointing();
  if (checkpointing_ != nullptr && checkpointing_->restore_from) {
    arrow::Status restored = RestoreChain();
    if (!restored.ok()) return restored;
  }
  return arrow::Status::OK();
}

arrow::Status TaskRunner::RestoreChain() {
  const CheckpointManifest& manifest = *checkpointing_->restore_from;
  const TaskSnapshot* snapshot = manifest.FindTask(chain_, subtask_);
  if (snapshot == nullptr) {
    return arrow::Status::Invalid(Describe(), ": checkpoint ", manifest.id,
                                  " has no snapshot of this task (did the plan's chains or "
                                  "parallelism change since it was taken?)");
  }
  acked_.store(manifest.id);
  injected_ = last_aligned_ = notified_ = manifest.id;
  if (snapshot->finished) {
    // The task had ended before the checkpoint: everything it produced is in its downstream
    // tasks' snapshots. It produces nothing and ends as soon as its inputs (also restored as
    // ended) do.
    restored_ended_ = true;
    if (source_ != nullptr) input_done_ = true;
    return arrow::Status::OK();
  }
  CheckpointStorage& storage = *checkpointing_->storage;
  const std::string doing = "restoring checkpoint " + std::to_string(manifest.id) + ": ";
  if (source_ != nullptr) {
    ARROW_ASSIGN_OR_RAISE(auto state, storage.OpenState(manifest, chain_, subtask_, source_id_));
    ARROW_RETURN_NOT_OK(InOperator(source_id_, source_->Restore(manifest.id, state.get()), doing));
  }
  for (size_t i = 0; i < ops_.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto state, storage.OpenState(manifest, chain_, subtask_, op_ids_[i]));
    ARROW_RETURN_NOT_OK(InOperator(op_ids_[i], ops_[i]->Restore(manifest.id, state.get()), doing));
  }
  return arrow::Status::OK();
}

arrow::Status TaskRunner::TakeSnapshot(CheckpointId id) {
  std::unique_ptr<TaskSnapshotWriter> writer =
      checkpointing_->storage->BeginTask(id, chain_, subtask_);
  const std::string doing = "checkpoint " + std::to_string(id) + ": ";
  if (source_ != nullptr) {
    ARROW_RETURN_NOT_OK(
        InOperator(source_id_, source_->Snapshot(id, writer->ForOperator(source_id_)), doing));
  }
  for (size_t i = 0; i < ops_.size(); ++i) {
    ARROW_RETURN_NOT_OK(
        InOperator(op_ids_[i], ops_[i]->Snapshot(id, writer->ForOperator(op_ids_[i])), doing));
  }
  acked_.store(id, std::memory_order_release);
  checkpointing_->BeginWrite();
  writer->Commit([checkpointing = job_->shared_checkpointing()](
                     CheckpointId done, const arrow::Result<TaskSnapshot>& snapshot) {
    checkpointing->Report(done, snapshot);
    checkpointing->EndWrite();
  });
  if (outputs_.empty()) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto barrier,
                        EncodeStreamEvent(StreamEvent{StreamEvent::Kind::kBarrier, id}));
  return EmitToOutputs(Held{nullptr, std::move(barrier), 0});
}

arrow::Status TaskRunner::InjectBarrier() {
  const CheckpointId id = checkpointing_->triggered.load(std::memory_order_acquire);
  if (id <= injected_) return arrow::Status::OK();
  injected_ = id;
  return TakeSnapshot(id);
}

arrow::Status TaskRunner::OnBarrier(Input& input, size_t reader_input, size_t channel,
                                    CheckpointId id) {
  if (checkpointing_ == nullptr) {
    return arrow::Status::Invalid(Describe(), ": a checkpoint barrier (", id,
                                  ") arrived, but checkpoints are off for this job");
  }
  if (id <= last_aligned_ || (aligning_ != kNoCheckpoint && id < aligning_)) {
    return arrow::Status::OK();  // a barrier of a checkpoint this task gave up on
  }
  if (aligning_ != kNoCheckpoint && id > aligning_) {
    // A newer checkpoint overtook one that never aligned (a source skipped it): give the older
    // one up; the driver aborts it.
    ARROW_RETURN_NOT_OK(ResumeAlignedInputs());
    aligning_ = kNoCheckpoint;
  }
  if (aligning_ == kNoCheckpoint) {
    aligning_ = id;
    barrier_seen_.assign(channel_active_.size(), false);
  }
  barrier_seen_[channel] = true;
  // Nothing after the barrier on this channel is processed until the checkpoint aligned.
  ARROW_RETURN_NOT_OK(input.reader->PauseInput(reader_input));
  return CheckAligned();
}

arrow::Status TaskRunner::CheckAligned() {
  if (aligning_ == kNoCheckpoint) return arrow::Status::OK();
  for (size_t c = 0; c < barrier_seen_.size(); ++c) {
    if (!barrier_seen_[c] && !watermarks_.ended(c)) return arrow::Status::OK();
  }
  const CheckpointId id = aligning_;
  aligning_ = kNoCheckpoint;
  last_aligned_ = id;
  ARROW_RETURN_NOT_OK(TakeSnapshot(id));
  return ResumeAlignedInputs();
}

arrow::Status TaskRunner::ResumeAlignedInputs() {
  for (Input& input : inputs_) {
    for (size_t i = 0; i < input.reader->num_inputs(); ++i) {
      if (input.reader->input_paused(i)) ARROW_RETURN_NOT_OK(input.reader->ResumeInput(i));
    }
  }
  return arrow::Status::OK();
}

arrow::Status TaskRunner::NotifyCheckpointComplete() {
  const CheckpointId id = checkpointing_->completed.load(std::memory_order_acquire);
  if (id <= notified_) return arrow::Status::OK();
  notified_ = id;
  const std::string doing = "checkpoint " + std::to_string(id) + " complete: ";
  for (size_t i = 0; i < ops_.size(); ++i) {
    ARROW_RETURN_NOT_OK(InOperator(op_ids_[i], ops_[i]->CheckpointComplete(id), doing));
  }
  return arrow::Status::OK();
}

void TaskRunner::AckEnded() {
  if (checkpointing_ == nullptr || !ended()) return;
  const CheckpointId id = checkpointing_->triggered.load(std::memory_order_acquire);
  CheckpointId acked = acked_.load(std::memory_order_acquire);
  while (acked < id) {
    if (acked_.compare_exchange_weak(acked, id)) {
      if (out_index_ < ops_.size()) {
        // A sink that finished holds output no snapshot has: restoring it as ended would lose
        // that output, so no checkpoint completes after a sink task ended (a failure then
        // restarts from an earlier one, where the sink still ran and snapshotted).
        checkpointing_->Report(
            id, arrow::Status::Cancelled(Describe(), " ended before checkpoint ", id,
                                         ": a checkpoint needs every sink task running"));
        return;
      }
      TaskSnapshot snapshot;
      snapshot.chain = chain_;
      snapshot.subtask = subtask_;
      snapshot.id = id;
      snapshot.finished = true;
      checkpointing_->Report(id, snapshot);
      return;
    }
  }
}

StepResult TaskRunner::Step() {
  if (finished_.load(std::memory_order_acquire)) return StepResult::Done();
  if (job_->failed()) {
    AbortAll(job_->failure());
    return StepResult::Done();
  }
  StepResult result = StepResult::Yield();
  arrow::Status status = RunStep(&result);
  if (!status.ok()) {
    const bool located = status.message().rfind("operator '", 0) == 0 ||
                         status.message().rfind("task ", 0) == 0;
    if (job_->Fail(located ? status : status.WithMessage(Describe(), ": ", status.message()))) {
      failed_.store(true, std::memory_order_release);
    }
    AbortAll(status);
    return StepResult::Done();
  }
  if (result.kind == StepResult::Kind::kDone) finished_.store(true, std::memory_order_release);
  return result;
}

arrow::Status TaskRunner::RunStep(StepResult* result) {
  if (checkpointing_ != nullptr) ARROW_RETURN_NOT_OK(NotifyCheckpointComplete());
  ARROW_ASSIGN_OR_RAISE(bool flushed, FlushOutputs());
  if (!flushed) {
    if (!blocked_since_) blocked_since_ = Clock::now();
    *result = StepResult::Idle();  // a writer's on_ready wakes the task
    return arrow::Status::OK();
  }
  if (blocked_since_) {
    // Time the task was held back by its outputs, not reading, says nothing of its inputs: it
    // does not count as their silence (idle inputs).
    const Clock::duration blocked = Clock::now() - *blocked_since_;
    output_blocked_ns_.fetch_add(
        std::chrono::duration_cast<std::chrono::nanoseconds>(blocked).count(),
        std::memory_order_relaxed);
    for (size_t c = 0; c < channel_active_.size(); ++c) channel_active_[c] += blocked;
    blocked_since_.reset();
  }
  if (chain_finished_) {
    // Every item went out: end the streams once the writers' outboxes drained.
    bool all_finished = true;
    for (Output& output : outputs_) {
      if (output.finished) continue;
      ARROW_ASSIGN_OR_RAISE(output.finished,
                            job_->manager()->TryFinish(output.shuffle_id, subtask_));
      all_finished = all_finished && output.finished;
    }
    *result = all_finished ? StepResult::Done() : StepResult::Idle();
    return arrow::Status::OK();
  }
  if (input_done_) {
    ARROW_RETURN_NOT_OK(FinishInput());
    *result = StepResult::Yield();
    return arrow::Status::OK();
  }
  // When the task must run again by itself, even if no input arrives: an operator's timer, a
  // channel turning idle.
  std::optional<Clock::time_point> wake_at;
  ARROW_RETURN_NOT_OK(RunTimers(&wake_at));

  if (source_ != nullptr) {
    for (int i = 0; i < kItemsPerStep && held_.empty(); ++i) {
      if (checkpointing_ != nullptr) {
        // Between two source steps: a triggered checkpoint's barrier goes in here.
        ARROW_RETURN_NOT_OK(InjectBarrier());
        if (!held_.empty()) break;
      }
      const auto start = Clock::now();
      auto next = source_->Next();
      if (!next.ok()) return InOperator(source_id_, next.status());
      SourceReader::Step step = std::move(*next);
      job_->counters(source_id_).busy_ns.fetch_add(NanosSince(start), std::memory_order_relaxed);
      switch (step.kind) {
        case SourceReader::Step::Kind::kBatch:
        {
          OperatorCounters& counters = job_->counters(source_id_);
          counters.rows_out.fetch_add(step.batch->num_rows(), std::memory_order_relaxed);
          // The source's time includes handing its batch to the task's outputs (partitioning
          // into the shuffle) when no operator follows it in the chain; the operators' own time
          // is theirs.
          const auto handed = Clock::now();
          nested_ns_ = 0;
          ARROW_RETURN_NOT_OK(Deliver(0, 0, step.batch));
          counters.busy_ns.fetch_add(NanosSince(handed) - nested_ns_, std::memory_order_relaxed);
          nested_ns_ = 0;
          break;
        }
        case SourceReader::Step::Kind::kWatermark:
          job_->counters(source_id_).watermarks[subtask_].store(step.watermark,
                                                                 std::memory_order_relaxed);
          ARROW_RETURN_NOT_OK(DeliverWatermark(0, step.watermark));
          break;
        case SourceReader::Step::Kind::kWait:
          *result = StepResult::IdleUntil(wake_at ? std::min(*wake_at, step.ready_at)
                                                  : step.ready_at);
          return arrow::Status::OK();
        case SourceReader::Step::Kind::kEnd:
          input_done_ = true;
          *result = StepResult::Yield();
          return arrow::Status::OK();
      }
    }
    *result = StepResult::Yield();
    return arrow::Status::OK();
  }

  int items = 0;
  ARROW_RETURN_NOT_OK(ReadInputs(&items));
  if (input_done_) {
    *result = StepResult::Yield();
  } else {
    ARROW_RETURN_NOT_OK(CheckIdleChannels(&wake_at));
    // Nothing to read: a reader's on_ready wakes the task (or a timer); backpressure: a
    // writer's does.
    *result = items > 0 ? StepResult::Yield() : IdleOr(StepResult::Idle(), wake_at);
  }
  return arrow::Status::OK();
}

StepResult TaskRunner::IdleOr(StepResult result, const std::optional<Clock::time_point>& next) {
  if (result.kind == StepResult::Kind::kIdle && next) return StepResult::IdleUntil(*next);
  return result;
}

arrow::Status TaskRunner::RunTimers(std::optional<Clock::time_point>* next) {
  for (size_t i = 0; i < ops_.size(); ++i) {
    std::optional<Clock::time_point> due = ops_[i]->NextTimer();
    if (!due) continue;
    if (*due <= Clock::now()) {
      const auto start = Clock::now();
      const int64_t nested_before = nested_ns_;
      nested_ns_ = 0;
      arrow::Status status = ops_[i]->OnTimer(links_[i].get());
      OperatorCounters& counters = job_->counters(op_ids_[i]);
      counters.busy_ns.fetch_add(NanosSince(start) - nested_ns_, std::memory_order_relaxed);
      nested_ns_ = nested_before;
      ARROW_RETURN_NOT_OK(InOperator(op_ids_[i], status, "timer: "));
      CountLateRows(i);
      due = ops_[i]->NextTimer();
      if (!due) continue;
    }
    if (!*next || *due < **next) *next = *due;
  }
  return arrow::Status::OK();
}

void TaskRunner::ChannelActive(size_t channel, Clock::time_point now) {
  if (channel >= channel_active_.size()) return;
  channel_active_[channel] = now;
  watermarks_.SetActive(channel);
}

arrow::Status TaskRunner::CheckIdleChannels(std::optional<Clock::time_point>* next) {
  if (idle_timeout_.count() <= 0 || channel_active_.empty()) return arrow::Status::OK();
  const Clock::time_point now = Clock::now();
  bool advanced = false;
  for (size_t c = 0; c < channel_active_.size(); ++c) {
    if (watermarks_.idle(c) || watermarks_.ended(c)) continue;
    // A channel paused at a barrier is held by the task, not silent.
    if (aligning_ != kNoCheckpoint && barrier_seen_[c]) continue;
    const Clock::time_point idle_at = channel_active_[c] + idle_timeout_;
    if (idle_at <= now) {
      advanced = watermarks_.SetIdle(c) || advanced;
    } else if (!*next || idle_at < **next) {
      *next = idle_at;
    }
  }
  if (advanced) ARROW_RETURN_NOT_OK(DeliverWatermark(0, watermarks_.current()));
  return arrow::Status::OK();
}

void TaskRunner::CountLateRows(size_t index) {
  const int64_t late = ops_[index]->late_rows();
  if (late == late_counted_[index]) return;
  job_->counters(op_ids_[index]).late_rows.fetch_add(late - late_counted_[index],
                                                      std::memory_order_relaxed);
  late_counted_[index] = late;
}

arrow::Status TaskRunner::ReadInputs(int* items) {
  size_t idle_inputs = 0;
  while (*items < kItemsPerStep && held_.empty() && idle_inputs < inputs_.size()) {
    Input& input = inputs_[next_input_];
    next_input_ = (next_input_ + 1) % inputs_.size();
    if (input.ended) {
      ++idle_inputs;
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem item, input.reader->TryNextItem());
    switch (item.kind) {
      case ShuffleReaderItem::Kind::kNotReady:
        ++idle_inputs;
        break;
      case ShuffleReaderItem::Kind::kEnd:
        // Every channel of the input ended already: each said so with kInputEnded.
        input.ended = true;
        ++idle_inputs;
        break;
      case ShuffleReaderItem::Kind::kInputEnded:
        // A writer's stream ended: its channel no longer holds the watermark back. It counts as
        // an item: the reader's kEnd may be next, and nothing will wake the task for it, so the
        // step must not end idle on the strength of the other inputs being idle or ended.
        idle_inputs = 0;
        ++*items;
        if (watermarks_.End(input.first_channel + item.input)) {
          ARROW_RETURN_NOT_OK(DeliverWatermark(0, watermarks_.current()));
        }
        // An ended channel counts as aligned.
        if (aligning_ != kNoCheckpoint) ARROW_RETURN_NOT_OK(CheckAligned());
        break;
      case ShuffleReaderItem::Kind::kBatch:
        idle_inputs = 0;
        ++*items;
        if (idle_timeout_.count() > 0) {
          ChannelActive(input.first_channel + item.input, Clock::now());
        }
        if (restored_ended_) {
          return arrow::Status::Invalid(Describe(), ": restored as finished, it received rows");
        }
        ARROW_RETURN_NOT_OK(Deliver(0, input.operator_input, item.batch));
        break;
      case ShuffleReaderItem::Kind::kEvent: {
        idle_inputs = 0;
        ++*items;
        ARROW_ASSIGN_OR_RAISE(StreamEvent event, DecodeStreamEvent(*item.event));
        const size_t channel = input.first_channel + item.input;
        if (idle_timeout_.count() > 0) ChannelActive(channel, Clock::now());
        bool advanced = false;
        if (event.kind == StreamEvent::Kind::kWatermark) {
          advanced = watermarks_.Update(channel, event.value);
        } else if (event.kind == StreamEvent::Kind::kEndOfInput) {
          advanced = watermarks_.End(channel);
        } else if (event.kind == StreamEvent::Kind::kBarrier) {
          ARROW_RETURN_NOT_OK(OnBarrier(input, item.input, channel, event.value));
        } else {
          return arrow::Status::Invalid(Describe(), ": unknown stream event");
        }
        if (advanced) ARROW_RETURN_NOT_OK(DeliverWatermark(0, watermarks_.current()));
        break;
      }
    }
  }
  input_done_ = std::all_of(inputs_.begin(), inputs_.end(),
                            [](const Input& input) { return input.ended; });
  return arrow::Status::OK();
}

arrow::Status TaskRunner::FinishInput() {
  // The end of time goes down the chain one operator at a time, each finishing before the next
  // hears it: operator i sees the end of time (firing what it holds), then Finish (emitting what
  // remains), and only then operator i + 1 sees the end of time — so nothing operator i emits
  // reaches i + 1 after its end of time. DeliverWatermark holds the end of time back otherwise.
  if (source_ != nullptr) {
    job_->counters(source_id_).watermarks[subtask_].store(kEndOfTimeWatermark,
                                                          std::memory_order_relaxed);
  }
  // A task restored as finished had finished its operators before the checkpoint.
  for (size_t i = 0; i < ops_.size() && !restored_ended_; ++i) {
    const auto start = Clock::now();
    const int64_t nested_before = nested_ns_;
    nested_ns_ = 0;
    OperatorCounters& counters = job_->counters(op_ids_[i]);
    counters.watermarks[subtask_].store(kEndOfTimeWatermark, std::memory_order_relaxed);
    ARROW_RETURN_NOT_OK(
        InOperator(op_ids_[i], ops_[i]->OnWatermark(kEndOfTimeWatermark, links_[i].get())));
    ARROW_RETURN_NOT_OK(InOperator(op_ids_[i], ops_[i]->Finish(links_[i].get())));
    counters.state_spilled_bytes.fetch_add(ops_[i]->state_spilled_bytes(),
                                           std::memory_order_relaxed);
    const int64_t elapsed = NanosSince(start);
    counters.busy_ns.fetch_add(elapsed - nested_ns_, std::memory_order_relaxed);
    nested_ns_ = nested_before;
  }
  if (!outputs_.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto end, EncodeStreamEvent(StreamEvent::EndOfInput()));
    ARROW_RETURN_NOT_OK(EmitToOutputs(Held{nullptr, std::move(end), 0}));
  }
  chain_finished_ = true;
  if (checkpointing_ != nullptr) {
    ended_.store(true, std::memory_order_release);
    AckEnded();
  }
  return arrow::Status::OK();
}

arrow::Status TaskRunner::Deliver(size_t index, int32_t input,
                                  const std::shared_ptr<arrow::RecordBatch>& batch) {
  if (index == 0) rows_in_.fetch_add(batch->num_rows(), std::memory_order_relaxed);
  if (index == out_index_) rows_out_.fetch_add(batch->num_rows(), std::memory_order_relaxed);
  if (index == ops_.size()) {
    if (outputs_.empty()) return arrow::Status::OK();
    return EmitToOutputs(Held{batch, nullptr, 0});
  }
  OperatorCounters& counters = job_->counters(op_ids_[index]);
  counters.rows_in.fetch_add(batch->num_rows(), std::memory_order_relaxed);
  // Busy time of this operator alone: the time of the call minus what operators after it in the
  // chain spent inside it (they are called from its Emit).
  const auto start = Clock::now();
  const int64_t nested_before = nested_ns_;
  nested_ns_ = 0;
  arrow::Status status = ops_[index]->Process(input, batch, links_[index].get());
  const int64_t elapsed = NanosSince(start);
  counters.busy_ns.fetch_add(elapsed - nested_ns_, std::memory_order_relaxed);
  nested_ns_ = nested_before + elapsed;
  CountLateRows(index);
  return InOperator(op_ids_[index], status);
}

arrow::Status TaskRunner::DeliverWatermark(size_t index, WatermarkMs watermark) {
  // The end of time is delivered by FinishInput only, operator by operator, after each
  // operator's Finish; an operator forwarding it (the default OnWatermark) changes nothing.
  if (watermark == kEndOfTimeWatermark) return arrow::Status::OK();
  if (index == 0) {
    // The chain's own watermark (from its source or its input channels) only moves forward:
    // the chain's head sees each value once.
    if (watermark <= chain_watermark_) return arrow::Status::OK();
    chain_watermark_ = watermark;
  }
  if (index == ops_.size()) {
    if (watermark <= last_watermark_sent_) return arrow::Status::OK();
    last_watermark_sent_ = watermark;
    // (The end of time never gets here: the end-of-input event says it, FinishInput.)
    if (outputs_.empty()) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto event, EncodeStreamEvent(StreamEvent::Watermark(watermark)));
    return EmitToOutputs(Held{nullptr, std::move(event), 0});
  }
  job_->counters(op_ids_[index]).watermarks[subtask_].store(watermark, std::memory_order_relaxed);
  return InOperator(op_ids_[index], ops_[index]->OnWatermark(watermark, links_[index].get()));
}

arrow::Status TaskRunner::EmitToOutputs(Held item) {
  const int64_t rows = item.batch != nullptr ? item.batch->num_rows() : 0;
  const int64_t bytes =
      item.batch != nullptr ? RowBytes::RangeBytes(*item.batch, 0, item.batch->num_rows()) : 0;
  if (max_slice_bytes_ > 0 && rows > 1 && bytes > max_slice_bytes_) {
    const int64_t slice_rows = std::max<int64_t>(1, rows * max_slice_bytes_ / bytes);
    for (int64_t offset = 0; offset < rows; offset += slice_rows) {
      held_.push_back(Held{item.batch->Slice(offset, slice_rows), nullptr, 0});
    }
  } else {
    held_.push_back(std::move(item));
  }
  return FlushOutputs().status();
}

arrow::Result<bool> TaskRunner::FlushOutputs() {
  ShuffleManager* manager = job_->manager();
  // TryWrite, TryWritePartition and TryWriteEvent drain the writer's outboxes first and take
  // nothing while blocks stay pending (on_ready wakes the task), so a held item waits its turn.
  while (!held_.empty()) {
    Held& item = held_.front();
    while (item.next_output < outputs_.size()) {
      const Output& output = outputs_[item.next_output];
      bool accepted = false;
      if (item.batch == nullptr) {
        ARROW_ASSIGN_OR_RAISE(accepted,
                              manager->TryWriteEvent(output.shuffle_id, subtask_, item.event));
      } else if (output.forward) {
        ARROW_ASSIGN_OR_RAISE(accepted, manager->TryWritePartition(output.shuffle_id, subtask_,
                                                                   subtask_, item.batch));
      } else {
        ARROW_ASSIGN_OR_RAISE(accepted, manager->TryWrite(output.shuffle_id, subtask_, item.batch));
      }
      if (!accepted) return false;
      ++item.next_output;
    }
    held_.pop_front();
  }
  for (const Output& output : outputs_) {
    if (output.finished) continue;
    ARROW_RETURN_NOT_OK(manager->Drain(output.shuffle_id, subtask_));
    ARROW_ASSIGN_OR_RAISE(bool pending, manager->HasPending(output.shuffle_id, subtask_));
    if (pending) return false;
  }
  return true;
}

void TaskRunner::CancelIo(const arrow::Status& cause) {
  for (Input& input : inputs_) {
    if (input.reader != nullptr) input.reader->Cancel();
  }
  for (const Output& output : outputs_) {
    job_->manager()->CancelWriter(output.shuffle_id, subtask_, cause);
  }
}

void TaskRunner::AbortAll(const arrow::Status& cause) {
  if (aborted_) return;
  aborted_ = true;
  finished_.store(true, std::memory_order_release);
  if (source_ != nullptr) source_->Abort();
  for (auto& op : ops_) op->Abort();
  for (Input& input : inputs_) {
    if (input.reader != nullptr) input.reader->Cancel();
  }
  for (Output& output : outputs_) {
    if (!output.finished) (void)job_->manager()->AbortWriter(output.shuffle_id, subtask_, cause);
  }
  held_.clear();
}

int TaskRunner::CommitPhaseOf(OperatorKind kind) {
  if (kind == OperatorKind::kVerifySink) return 0;  // checks only: may fail, changes nothing
  // (Phase 1 is every operator's PrepareCommit.)
  if (FileFormatOf(kind).has_value()) return 2;     // renames: may fail
  // A windowed aggregate renames its late output's files (windowed_aggregate.h).
  if (kind == OperatorKind::kAggregate) return 2;
  return 3;                                         // publishes in memory: cannot fail
}

arrow::Status TaskRunner::Commit(int phase) {
  if (phase == 1) {
    for (size_t i = 0; i < ops_.size(); ++i) {
      ARROW_RETURN_NOT_OK(InOperator(op_ids_[i], ops_[i]->PrepareCommit(), "commit failed: "));
    }
    return arrow::Status::OK();
  }
  for (size_t i = 0; i < ops_.size(); ++i) {
    if (CommitPhaseOf(job_->plan().FindOperator(op_ids_[i])->kind()) != phase) continue;
    ARROW_RETURN_NOT_OK(InOperator(op_ids_[i], ops_[i]->Commit(), "commit failed: "));
  }
  return arrow::Status::OK();
}

std::vector<std::vector<int64_t>> TaskRunner::InputRowsPerWriter() const {
  std::vector<std::vector<int64_t>> rows;
  for (const Input& input : inputs_) rows.push_back(input.reader->stats().rows_per_input);
  return rows;
}

std::vector<std::vector<int64_t>> TaskRunner::InputBytesPerWriter() const {
  std::vector<std::vector<int64_t>> bytes;
  for (const Input& input : inputs_) bytes.push_back(input.reader->stats().bytes_per_input);
  return bytes;
}

}  // namespace sabot
