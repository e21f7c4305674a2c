#include "sabot/dataflow/console_sink.h"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/scalar.h>

#include "sabot/common/thread_annotations.h"

namespace sabot {

namespace {

constexpr size_t kMaxCellChars = 40;

std::string CellText(const arrow::Array& column, int64_t row) {
  if (column.IsNull(row)) return "null";
  auto scalar = column.GetScalar(row);
  std::string text = scalar.ok() ? (*scalar)->ToString() : "?";
  if (text.size() > kMaxCellChars) text = text.substr(0, kMaxCellChars - 3) + "...";
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return text;
}

// What the tasks of one console sink share.
struct ConsoleState {
  std::ostream* out = nullptr;
  std::string name;
  int64_t max_rows = 0;

  std::mutex mutex;
  int64_t rows_shown SABOT_GUARDED_BY(mutex) = 0;
  std::mutex write_mutex;  // held only for one write of preformatted text
  std::atomic<int64_t> rows_total{0};
  std::atomic<int32_t> tasks_finished{0};

  void Write(const std::string& text) {
    std::lock_guard<std::mutex> lock(write_mutex);
    *out << text << std::flush;
  }
};

class ConsoleSink : public Operator {
 public:
  ConsoleSink(std::shared_ptr<ConsoleState> state, int32_t subtask, int32_t parallelism)
      : state_(std::move(state)), subtask_(subtask), parallelism_(parallelism) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    const int64_t n = batch->num_rows();
    rows_ += n;
    state_->rows_total.fetch_add(n, std::memory_order_relaxed);
    int64_t first = 0;
    int64_t show = 0;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      first = state_->rows_shown;
      show = std::min(n, state_->max_rows - first);
      if (show > 0) state_->rows_shown += show;
    }
    if (show <= 0) return arrow::Status::OK();
    std::string text = state_->name + " [task " + std::to_string(subtask_) + "] rows " +
                       std::to_string(first + 1) + "-" + std::to_string(first + show) + ":\n" +
                       FormatRows(*batch, show);
    state_->Write(text);
    return arrow::Status::OK();
  }
  arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) override {
    return arrow::Status::OK();
  }
  arrow::Status Finish(OperatorOutput* out) override {
    if (state_->tasks_finished.fetch_add(1) + 1 == parallelism_) {
      int64_t shown = 0;
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        shown = state_->rows_shown;
      }
      state_->Write(state_->name + ": " + std::to_string(state_->rows_total.load()) + " rows (" +
                    std::to_string(shown) + " shown)\n");
    }
    return arrow::Status::OK();
  }
  int64_t rows_in() const override { return rows_; }
  int64_t rows_out() const override { return rows_; }

 private:
  std::shared_ptr<ConsoleState> state_;
  int32_t subtask_;
  int32_t parallelism_;
  int64_t rows_ = 0;
};

}  // namespace

std::string FormatRows(const arrow::RecordBatch& batch, int64_t num_rows) {
  num_rows = std::min(num_rows, batch.num_rows());
  const int columns = batch.num_columns();
  std::vector<std::vector<std::string>> cells(columns);
  std::vector<size_t> widths(columns);
  for (int c = 0; c < columns; ++c) {
    cells[c].reserve(num_rows);
    widths[c] = batch.schema()->field(c)->name().size();
    for (int64_t r = 0; r < num_rows; ++r) {
      cells[c].push_back(CellText(*batch.column(c), r));
      widths[c] = std::max(widths[c], cells[c].back().size());
    }
  }
  std::ostringstream text;
  auto pad = [&](const std::string& s, size_t width) {
    text << s << std::string(width - std::min(width, s.size()), ' ');
  };
  for (int c = 0; c < columns; ++c) {
    text << (c == 0 ? "  " : " | ");
    pad(batch.schema()->field(c)->name(), widths[c]);
  }
  text << '\n';
  for (int64_t r = 0; r < num_rows; ++r) {
    for (int c = 0; c < columns; ++c) {
      text << (c == 0 ? "  " : " | ");
      pad(cells[c][r], widths[c]);
    }
    text << '\n';
  }
  return text.str();
}

arrow::Result<BoundOperator> BindConsoleSink(const OperatorSpec& spec,
                                             const ConsoleSinkParams& params,
                                             const std::shared_ptr<arrow::Schema>& input,
                                             const BindOptions& options) {
  if (params.max_rows < 0) {
    return arrow::Status::Invalid("max_rows must be >= 0, got ", params.max_rows);
  }
  auto state = std::make_shared<ConsoleState>();
  state->out = options.console != nullptr ? options.console : &std::cout;
  state->name = spec.name;
  state->max_rows = params.max_rows;
  BoundOperator bound;
  bound.make_operator =
      [state](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<ConsoleSink>(state, ctx.subtask, ctx.parallelism);
  };
  return bound;
}

}  // namespace sabot
