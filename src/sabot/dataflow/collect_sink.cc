#include "sabot/dataflow/collect_sink.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <arrow/builder.h>
#include <arrow/device.h>
#include <arrow/table.h>

#include "sabot/dataflow/state_row.h"

namespace sabot {

namespace {

// What the tasks of one bound collect sink published in this run (every attempt), per subtask:
// the first checkpoint. A restart that restores no checkpoint starts the tasks fresh, and each
// then takes back what it published in the failed attempt (the replay brings it again).
struct CollectRun {
  std::mutex mutex;
  std::map<int32_t, CheckpointId> first_published;
};

class CollectSink : public Operator {
 public:
  CollectSink(std::shared_ptr<CollectedOutput> collected, std::string name, int32_t subtask,
              bool copy_out, std::shared_ptr<arrow::Schema> schema,
              std::shared_ptr<CollectRun> run)
      : collected_(std::move(collected)),
        name_(std::move(name)),
        subtask_(subtask),
        copy_out_(copy_out),
        schema_(std::move(schema)),
        run_(std::move(run)) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    Start();
    rows_ += batch->num_rows();
    // The caller owns what it collects, beyond the job: a copy in the default pool, never a
    // view of the job's shuffle memory (which the job's budget frees when it ends) — unless no
    // batch here can hold such memory (copy_out_ false): then the batch itself.
    if (!copy_out_) {
      pending_.push_back(batch);
      return arrow::Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(auto copy, batch->CopyTo(arrow::default_cpu_memory_manager()));
    pending_.push_back(std::move(copy));
    return arrow::Status::OK();
  }
  // The rows become visible when the job succeeded, as a file sink's files do.
  arrow::Status Commit() override {
    Start();
    for (auto& staged : staged_) Publish(staged.checkpoint, std::move(staged.batches));
    staged_.clear();
    for (auto& batch : pending_) collected_->Add(name_, subtask_, std::move(batch));
    pending_.clear();
    return arrow::Status::OK();
  }
  void Abort() override {
    pending_.clear();
    staged_.clear();
  }

  // The rows since the last snapshot are staged for checkpoint `id`; the snapshot holds every
  // staged group not yet published (rows of a checkpoint that has not completed may be published
  // by the restore of a later one).
  arrow::Status Snapshot(CheckpointId id, StateWriter* state) override {
    Start();
    staged_.push_back({id, std::move(pending_)});
    pending_.clear();
    std::vector<std::shared_ptr<arrow::RecordBatch>> rows;
    arrow::Int64Builder checkpoints;
    arrow::Int64Builder counts;
    for (const Staged& staged : staged_) {
      int64_t count = 0;
      for (const auto& batch : staged.batches) {
        rows.push_back(batch);
        count += batch->num_rows();
      }
      ARROW_RETURN_NOT_OK(checkpoints.Append(staged.checkpoint));
      ARROW_RETURN_NOT_OK(counts.Append(count));
    }
    ARROW_ASSIGN_OR_RAISE(auto rows_table, arrow::Table::FromRecordBatches(schema_, rows));
    ARROW_RETURN_NOT_OK(state->Put("rows", std::move(rows_table)));
    ARROW_ASSIGN_OR_RAISE(auto checkpoint_array, checkpoints.Finish());
    ARROW_ASSIGN_OR_RAISE(auto count_array, counts.Finish());
    ARROW_RETURN_NOT_OK(state->Put(
        "staged", arrow::Table::Make(StagedSchema(), {checkpoint_array, count_array})));
    ARROW_ASSIGN_OR_RAISE(auto position,
                          MakeStateRow({{"subtask", subtask_}, {"rows", rows_}}));
    return state->Put("position", std::move(position));
  }

  arrow::Status CheckpointComplete(CheckpointId id) override {
    while (!staged_.empty() && staged_.front().checkpoint <= id) {
      Publish(staged_.front().checkpoint, std::move(staged_.front().batches));
      staged_.erase(staged_.begin());
    }
    return arrow::Status::OK();
  }

  // A restart from checkpoint `id`: the collected output is what was published up to it (the
  // snapshot's staged rows are published now, once), nothing after it.
  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    const std::string what = "collect sink '" + name_ + "' task " + std::to_string(subtask_) +
                             " restoring checkpoint " + std::to_string(id);
    ARROW_ASSIGN_OR_RAISE(auto position_part, state->Get("position"));
    ARROW_ASSIGN_OR_RAISE(auto position,
                          ReadStateRow(position_part, "position", {"subtask", "rows"}, what));
    if (position["subtask"] != subtask_) {
      return arrow::Status::Invalid(what, ": the snapshot is of task ", position["subtask"]);
    }
    started_ = true;
    ARROW_ASSIGN_OR_RAISE(auto staged, state->Get("staged"));
    ARROW_ASSIGN_OR_RAISE(auto rows, state->Get("rows"));
    if (staged == nullptr || !staged->schema()->Equals(*StagedSchema()) || rows == nullptr ||
        !rows->schema()->Equals(*schema_, /*check_metadata=*/false)) {
      return arrow::Status::Invalid(what, ": the snapshot's parts 'staged' and 'rows' are "
                                    "missing or of another schema");
    }
    ARROW_ASSIGN_OR_RAISE(staged, staged->CombineChunks());
    ARROW_ASSIGN_OR_RAISE(rows, rows->CombineChunks());
    int64_t offset = 0;
    collected_->RewindTo(name_, subtask_, id);
    for (int64_t i = 0; i < staged->num_rows(); ++i) {
      const CheckpointId checkpoint =
          static_cast<const arrow::Int64Array&>(*staged->column(0)->chunk(0)).Value(i);
      const int64_t count =
          static_cast<const arrow::Int64Array&>(*staged->column(1)->chunk(0)).Value(i);
      if (count < 0 || offset + count > rows->num_rows() || checkpoint > id) {
        return arrow::Status::Invalid(what, ": staged group ", i, " (checkpoint ", checkpoint,
                                      ", ", count, " rows) does not fit the snapshot's ",
                                      rows->num_rows(), " rows");
      }
      std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
      if (count > 0) {
        const std::shared_ptr<arrow::Table> slice = rows->Slice(offset, count);
        arrow::TableBatchReader reader(*slice);  // refers to the slice: keep it alive
        ARROW_ASSIGN_OR_RAISE(batches, reader.ToRecordBatches());
      }
      Publish(checkpoint, std::move(batches));
      offset += count;
    }
    pending_.clear();
    staged_.clear();
    rows_ = position["rows"];
    return arrow::Status::OK();
  }
  arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) override {
    return arrow::Status::OK();
  }
  int64_t rows_in() const override { return rows_; }
  int64_t rows_out() const override { return rows_; }

 private:
  // The first step of a task that was not restored: what the subtask published in a failed
  // attempt of this run goes.
  void Start() {
    if (started_) return;
    started_ = true;
    CheckpointId first = kNoCheckpoint;
    {
      std::lock_guard<std::mutex> lock(run_->mutex);
      auto it = run_->first_published.find(subtask_);
      if (it == run_->first_published.end()) return;
      first = it->second;
      run_->first_published.erase(it);
    }
    collected_->RewindTo(name_, subtask_, first - 1);
  }
  void Publish(CheckpointId checkpoint, std::vector<std::shared_ptr<arrow::RecordBatch>> batches) {
    {
      std::lock_guard<std::mutex> lock(run_->mutex);
      auto [it, added] = run_->first_published.emplace(subtask_, checkpoint);
      if (!added && checkpoint < it->second) it->second = checkpoint;
    }
    collected_->AddCheckpointed(name_, subtask_, checkpoint, std::move(batches));
  }

  std::shared_ptr<CollectedOutput> collected_;
  std::string name_;
  int32_t subtask_;
  struct Staged {
    CheckpointId checkpoint;
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  };
  static std::shared_ptr<arrow::Schema> StagedSchema() {
    return arrow::schema({arrow::field("checkpoint", arrow::int64(), /*nullable=*/false),
                          arrow::field("rows", arrow::int64(), /*nullable=*/false)});
  }

  int64_t rows_ = 0;
  const bool copy_out_;
  const std::shared_ptr<arrow::Schema> schema_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> pending_;  // since the last snapshot
  std::vector<Staged> staged_;  // snapshotted, until their checkpoint completes
  const std::shared_ptr<CollectRun> run_;
  bool started_ = false;  // Start() ran, or Restore
};

}  // namespace

arrow::Result<BoundOperator> BindCollectSink(const OperatorSpec& spec,
                                             const std::shared_ptr<arrow::Schema>& input,
                                             const BindOptions& options, bool copy_out) {
  if (options.collected == nullptr) {
    return arrow::Status::Invalid(
        "collect sinks need somewhere to put their rows (BindOptions::collected is not set)");
  }
  options.collected->Declare(spec.name, input);
  BoundOperator bound;
  bound.make_operator = [collected = options.collected, name = spec.name, copy_out, input,
                         run = std::make_shared<CollectRun>()](
                            const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<CollectSink>(collected, name, ctx.subtask, copy_out, input, run);
  };
  return bound;
}

}  // namespace sabot
