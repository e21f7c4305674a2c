#include "sabot/dataflow/verify_sink.h"

#include <algorithm>
#include <mutex>
#include <string>

#include <arrow/builder.h>
#include <arrow/table.h>

#include "sabot/dataflow/generator_source.h"
#include "sabot/dataflow/state_row.h"
#include "sabot/verify/generated_shuffle_check.h"

namespace sabot {

namespace {

// What the tasks of one verify sink share: the check, the tasks made in this process, and the
// once-only final count.
struct VerifyState {
  std::unique_ptr<GeneratedShuffleCheck> check;
  std::mutex mutex;
  std::vector<int32_t> subtasks;  // guarded by mutex
  std::once_flag finish_once;
  arrow::Status finished;
};

class VerifySink : public Operator {
 public:
  VerifySink(std::shared_ptr<VerifyState> state, int32_t subtask)
      : state_(std::move(state)), subtask_(subtask) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    ARROW_RETURN_NOT_OK(Start());
    ARROW_RETURN_NOT_OK(state_->check->Check(subtask_, *batch));
    rows_ += batch->num_rows();
    return arrow::Status::OK();
  }
  arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) override {
    return arrow::Status::OK();
  }
  // Every task finished: the rows that should have arrived at the sink's tasks in this process
  // (all of them, in one process; an agent's share, in a distributed job) all did. Checked once.
  arrow::Status Commit() override {
    ARROW_RETURN_NOT_OK(Start());
    std::call_once(state_->finish_once, [&] {
      std::vector<int32_t> subtasks;
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        subtasks = state_->subtasks;
      }
      state_->finished = state_->check->FinishPartitions(subtasks);
    });
    return state_->finished;
  }
  // Checkpoints: the check's progress of this task's partition (per writer: the last row and
  // the rows received) and the rows seen, so a restarted task checks the replayed rows as the
  // first arrivals they are and the final count stays exact.
  arrow::Status Snapshot(CheckpointId id, StateWriter* state) override {
    ARROW_RETURN_NOT_OK(Start());
    ARROW_ASSIGN_OR_RAISE(auto progress, state_->check->Progress(subtask_));
    arrow::Int64Builder last_rows;
    arrow::Int64Builder received;
    ARROW_RETURN_NOT_OK(last_rows.AppendValues(progress.last_row));
    ARROW_RETURN_NOT_OK(received.AppendValues(progress.received));
    ARROW_ASSIGN_OR_RAISE(auto last_array, last_rows.Finish());
    ARROW_ASSIGN_OR_RAISE(auto received_array, received.Finish());
    ARROW_RETURN_NOT_OK(state->Put(
        "progress", arrow::Table::Make(ProgressSchema(), {last_array, received_array})));
    ARROW_ASSIGN_OR_RAISE(auto position,
                          MakeStateRow({{"subtask", subtask_}, {"rows", rows_}}));
    return state->Put("position", std::move(position));
  }

  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    const std::string what = "verify sink task " + std::to_string(subtask_) +
                             " restoring checkpoint " + std::to_string(id);
    ARROW_ASSIGN_OR_RAISE(auto position_part, state->Get("position"));
    ARROW_ASSIGN_OR_RAISE(auto position,
                          ReadStateRow(position_part, "position", {"subtask", "rows"}, what));
    ARROW_ASSIGN_OR_RAISE(auto progress_part, state->Get("progress"));
    if (position["subtask"] != subtask_ || progress_part == nullptr ||
        !progress_part->schema()->Equals(*ProgressSchema())) {
      return arrow::Status::Invalid(what, ": the snapshot is of task ", position["subtask"],
                                    " or has no part 'progress' of schema ",
                                    ProgressSchema()->ToString());
    }
    ARROW_ASSIGN_OR_RAISE(progress_part, progress_part->CombineChunks());
    GeneratedShuffleCheck::PartitionProgress progress;
    if (progress_part->num_rows() > 0) {
      const auto& last = static_cast<const arrow::Int64Array&>(*progress_part->column(0)->chunk(0));
      const auto& received =
          static_cast<const arrow::Int64Array&>(*progress_part->column(1)->chunk(0));
      for (int64_t i = 0; i < last.length(); ++i) {
        progress.last_row.push_back(last.Value(i));
        progress.received.push_back(received.Value(i));
      }
    }
    arrow::Status restored = state_->check->RestorePartition(subtask_, progress);
    if (!restored.ok()) return restored.WithMessage(what, ": ", restored.message());
    started_ = true;
    rows_ = position["rows"];
    return arrow::Status::OK();
  }

  int64_t rows_in() const override { return rows_; }
  int64_t rows_out() const override { return rows_; }

 private:
  // The first step of a task that was not restored: a restart that restored no checkpoint (a
  // failure before the first one completed) replays from the first row, so the progress a
  // failed attempt left in the shared check for this partition goes.
  arrow::Status Start() {
    if (started_) return arrow::Status::OK();
    started_ = true;
    ARROW_ASSIGN_OR_RAISE(auto progress, state_->check->Progress(subtask_));
    std::fill(progress.last_row.begin(), progress.last_row.end(), -1);
    std::fill(progress.received.begin(), progress.received.end(), 0);
    return state_->check->RestorePartition(subtask_, progress);
  }

  static std::shared_ptr<arrow::Schema> ProgressSchema() {
    return arrow::schema({arrow::field("last_row", arrow::int64(), /*nullable=*/false),
                          arrow::field("received", arrow::int64(), /*nullable=*/false)});
  }

  std::shared_ptr<VerifyState> state_;
  int32_t subtask_;
  int64_t rows_ = 0;
  bool started_ = false;  // Start() ran, or Restore
};

}  // namespace

arrow::Result<BoundOperator> BindVerifySink(const OperatorSpec& spec,
                                            const GeneratorSourceParams& generator,
                                            int32_t source_parallelism,
                                            std::shared_ptr<const PartitionSpec> edge_spec) {
  if (generator.rows <= 0 || generator.rows % generator.batch_rows != 0 ||
      (generator.rows / generator.batch_rows) % source_parallelism != 0) {
    return arrow::Status::Invalid(
        "a verify_sink needs the generated table in whole batches split evenly over the "
        "source's ", source_parallelism, " tasks: rows (", generator.rows,
        ") must be a multiple of batch_rows (", generator.batch_rows, ") times ",
        source_parallelism);
  }
  GeneratedJob job;
  job.data = ShuffleTableOptions(generator);
  job.num_writers = source_parallelism;
  job.batches_per_writer = generator.rows / generator.batch_rows / source_parallelism;
  auto state = std::make_shared<VerifyState>();
  ARROW_ASSIGN_OR_RAISE(state->check, GeneratedShuffleCheck::Make(job, std::move(edge_spec)));
  BoundOperator bound;
  bound.make_operator = [state](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->subtasks.push_back(ctx.subtask);
    }
    return std::make_unique<VerifySink>(state, ctx.subtask);
  };
  return bound;
}

}  // namespace sabot
