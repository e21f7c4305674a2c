#include "sabot/dataflow/table_source.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/table.h>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/state_row.h"
#include "sabot/dataflow/watermark_generator.h"

namespace sabot {

arrow::Status ProvidedTables::Add(std::string name, std::shared_ptr<arrow::Table> table) {
  if (name.empty()) return arrow::Status::Invalid("a provided table needs a name");
  if (table == nullptr) {
    return arrow::Status::Invalid("the table provided as ", QuoteInput(name), " is null");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  tables_[std::move(name)] = std::move(table);
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Table>> ProvidedTables::Get(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = tables_.find(name);
  if (it != tables_.end()) return it->second;
  std::string provided;
  for (const auto& [other, table] : tables_) {
    provided += (provided.empty() ? "" : ", ") + QuoteInput(other);
  }
  return arrow::Status::KeyError("no table named ", QuoteInput(name), " was provided (provided: ",
                                 provided.empty() ? "none" : provided, ")");
}

std::vector<std::string> ProvidedTables::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  out.reserve(tables_.size());
  for (const auto& [name, table] : tables_) out.push_back(name);
  return out;
}

TableRowRange TableSourceTaskRows(int64_t num_rows, int32_t subtask, int32_t parallelism) {
  // k*N/P without overflow for any N < 2^63 and P <= kMaxOperatorParallelism: N = q*P + r.
  auto start = [&](int64_t k) {
    const int64_t q = num_rows / parallelism;
    const int64_t r = num_rows % parallelism;
    return q * k + (r * k) / parallelism;
  };
  return {start(subtask), start(int64_t{subtask} + 1)};
}

namespace {

// What the tasks of one table source share: the table cut into zero-copy batches.
struct TableSourcePlan {
  std::shared_ptr<arrow::Table> table;
  std::shared_ptr<arrow::Schema> schema;
  // The table's rows as slices of at most batch_rows rows, cut at every chunk boundary, without
  // empty ones; offsets[i] is the table row of batches[i]'s first row, offsets.back() the
  // table's row count.
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::vector<int64_t> offsets;
  int64_t batch_rows = 0;
  std::optional<EventTimeSpec> event_time;
};

arrow::Result<std::shared_ptr<const TableSourcePlan>> MakePlan(
    std::shared_ptr<arrow::Table> table, const TableSourceParams& params) {
  // Cheap structural checks (lengths, types against the schema); values are the provider's.
  ARROW_RETURN_NOT_OK(table->Validate());
  auto plan = std::make_shared<TableSourcePlan>();
  plan->schema = table->schema();
  plan->batch_rows = params.batch_rows;
  plan->event_time = params.event_time;
  arrow::TableBatchReader reader(*table);
  reader.set_chunksize(params.batch_rows);
  int64_t row = 0;
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
    if (batch == nullptr) break;
    if (batch->num_rows() == 0) continue;
    plan->offsets.push_back(row);
    row += batch->num_rows();
    plan->batches.push_back(std::move(batch));
  }
  plan->offsets.push_back(row);
  if (row != table->num_rows()) {
    return arrow::Status::Invalid("the table's batches hold ", row, " rows, the table ",
                                  table->num_rows());
  }
  plan->table = std::move(table);
  return plan;
}

class TableSourceReader : public SourceReader {
 public:
  TableSourceReader(std::shared_ptr<const TableSourcePlan> plan, TableRowRange rows,
                    int32_t subtask, SourceWatermarks watermarks)
      : plan_(std::move(plan)), subtask_(subtask), begin_row_(rows.begin), next_row_(rows.begin),
        end_row_(rows.end), watermarks_(std::move(watermarks)) {
    // The batch holding the first row of the range: the last one starting at or before it.
    const auto& offsets = plan_->offsets;
    batch_ = static_cast<size_t>(
        std::upper_bound(offsets.begin(), offsets.end() - 1, next_row_) - offsets.begin());
    if (batch_ > 0) --batch_;
  }

  arrow::Result<Step> Next() override {
    if (std::optional<Step> watermark = watermarks_.TakePending()) return *watermark;
    Step step;
    if (next_row_ >= end_row_) {
      step.kind = Step::Kind::kEnd;
      return step;
    }
    // Batches before the range's end hold its rows; skip one that ends at next_row_.
    while (plan_->offsets[batch_ + 1] <= next_row_) ++batch_;
    const std::shared_ptr<arrow::RecordBatch>& whole = plan_->batches[batch_];
    const int64_t first = next_row_ - plan_->offsets[batch_];
    const int64_t length = std::min(whole->num_rows() - first, end_row_ - next_row_);
    step.batch = (first == 0 && length == whole->num_rows()) ? whole : whole->Slice(first, length);
    next_row_ += length;
    rows_out_ += length;
    ARROW_RETURN_NOT_OK(watermarks_.Observe(*step.batch));
    step.kind = Step::Kind::kBatch;
    return step;
  }

  void Abort() override { next_row_ = end_row_; }
  int64_t rows_out() const override { return rows_out_; }

  // The position: the next table row to read, with the task's row range (a restart must be
  // given the same table, split the same way), the rows emitted and the watermark state.
  arrow::Status Snapshot(CheckpointId id, StateWriter* state) override {
    StateRowValues values = {{"subtask", subtask_},
                             {"begin_row", begin_row_},
                             {"end_row", end_row_},
                             {"table_rows", plan_->offsets.back()},
                             {"next_row", next_row_},
                             {"rows_out", rows_out_}};
    AppendWatermarkState(watermarks_.state(), &values);
    ARROW_ASSIGN_OR_RAISE(auto row, MakeStateRow(values));
    return state->Put("position", std::move(row));
  }

  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    const std::string what = "table source task " + std::to_string(subtask_) +
                             " restoring checkpoint " + std::to_string(id);
    std::vector<std::string> names = {"subtask", "begin_row", "end_row", "table_rows",
                                      "next_row", "rows_out"};
    for (std::string& name : WatermarkStateNames()) names.push_back(std::move(name));
    ARROW_ASSIGN_OR_RAISE(auto part, state->Get("position"));
    ARROW_ASSIGN_OR_RAISE(auto values, ReadStateRow(part, "position", names, what));
    if (values["subtask"] != subtask_ || values["begin_row"] != begin_row_ ||
        values["end_row"] != end_row_ || values["table_rows"] != plan_->offsets.back()) {
      return arrow::Status::Invalid(
          what, ": the snapshot is of task ", values["subtask"], " reading rows [",
          values["begin_row"], ", ", values["end_row"], ") of ", values["table_rows"],
          "; this task reads rows [", begin_row_, ", ", end_row_, ") of ", plan_->offsets.back(),
          " (the table and the source's parallelism must stay the same across a restart)");
    }
    const int64_t next = values["next_row"];
    if (next < begin_row_ || next > end_row_ || values["rows_out"] < 0) {
      return arrow::Status::Invalid(what, ": position row ", next, " is outside the task's rows");
    }
    next_row_ = next;
    rows_out_ = values["rows_out"];
    // The batch holding next_row_ is found from the range's first batch on (Next skips forward).
    watermarks_.Rewind(WatermarkStateOf(values));
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<const TableSourcePlan> plan_;
  const int32_t subtask_;
  const int64_t begin_row_;
  int64_t next_row_;
  const int64_t end_row_;
  size_t batch_ = 0;
  SourceWatermarks watermarks_;
  int64_t rows_out_ = 0;
};

}  // namespace

arrow::Result<BoundOperator> BindTableSource(const OperatorSpec& spec,
                                             const TableSourceParams& params,
                                             const BindOptions& options) {
  if (options.tables == nullptr) {
    return arrow::Status::Invalid(
        "reads the in-memory table ", QuoteInput(params.table),
        ", but the program running the job provided no tables (BindOptions::tables)");
  }
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Table> table, options.tables->Get(params.table));
  if (params.event_time.has_value()) {
    ARROW_RETURN_NOT_OK(ResolveEventTimeColumn(*table->schema(), *params.event_time).status());
  }
  auto plan = MakePlan(std::move(table), params);
  if (!plan.ok()) {
    return plan.status().WithMessage("table ", QuoteInput(params.table), ": ",
                                     plan.status().message());
  }
  std::shared_ptr<const TableSourcePlan> shared = *std::move(plan);
  BoundOperator bound;
  bound.output_schema = shared->schema;
  bound.make_source =
      [shared](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<SourceReader>> {
    ARROW_ASSIGN_OR_RAISE(auto watermarks, SourceWatermarks::Make("table source", ctx,
                                                                  *shared->schema,
                                                                  shared->event_time));
    return std::make_unique<TableSourceReader>(
        shared, TableSourceTaskRows(shared->offsets.back(), ctx.subtask, ctx.parallelism),
        ctx.subtask, std::move(watermarks));
  };
  return bound;
}

}  // namespace sabot
