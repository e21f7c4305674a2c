#include "sabot/dataflow/generator_source.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/type.h>

#include "sabot/dataflow/state_row.h"
#include "sabot/dataflow/watermark_generator.h"

namespace sabot {

namespace {

// A 64-bit mix of (seed, stream, row): the values of the transactions table's own columns.
uint64_t Mix(uint64_t seed, uint64_t stream, int64_t row) {
  uint64_t x = seed ^ (stream * 0xC2B2AE3D27D4EB4FULL) ^
               (static_cast<uint64_t>(row) * 0x9E3779B97F4A7C15ULL);
  x ^= x >> 31;
  x *= 0x7FB5D329728EA185ULL;
  x ^= x >> 27;
  x *= 0x81DADEF4BC2DD44DULL;
  x ^= x >> 33;
  return x;
}

constexpr uint64_t kAmountStream = 1;
constexpr uint64_t kJitterStream = 2;

std::shared_ptr<arrow::Schema> TransactionsSchema() {
  return arrow::schema({arrow::field("user_id", arrow::int64(), /*nullable=*/false),
                        arrow::field("amount", arrow::float64(), false),
                        arrow::field("event_time", arrow::timestamp(arrow::TimeUnit::MILLI),
                                     false)});
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> GenerateTransactions(
    const GeneratorSourceParams& params, int64_t first_row, int64_t n, arrow::MemoryPool* pool) {
  const DataGeneratorOptions options = ShuffleTableOptions(params);
  ARROW_ASSIGN_OR_RAISE(auto users, arrow::AllocateBuffer(n * sizeof(int64_t), pool));
  ARROW_ASSIGN_OR_RAISE(auto amounts, arrow::AllocateBuffer(n * sizeof(double), pool));
  ARROW_ASSIGN_OR_RAISE(auto times, arrow::AllocateBuffer(n * sizeof(int64_t), pool));
  auto* user_data = reinterpret_cast<int64_t*>(users->mutable_data());
  auto* amount_data = reinterpret_cast<double*>(amounts->mutable_data());
  auto* time_data = reinterpret_cast<int64_t*>(times->mutable_data());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = first_row + i;
    user_data[i] = GeneratedKey(options, row);
    amount_data[i] = static_cast<double>(Mix(params.seed, kAmountStream, row) % 1000000) / 100.0;
    const auto jitter = static_cast<int64_t>(Mix(params.seed, kJitterStream, row) %
                                             (kTransactionsMaxDisorderMs + 1));
    time_data[i] = kTransactionsEpochMs + row - jitter;
  }
  auto schema = TransactionsSchema();
  return arrow::RecordBatch::Make(
      schema, n,
      {std::make_shared<arrow::Int64Array>(n, std::move(users)),
       std::make_shared<arrow::DoubleArray>(n, std::move(amounts)),
       std::make_shared<arrow::TimestampArray>(schema->field(2)->type(), n, std::move(times))});
}

arrow::Status CheckParams(const GeneratorSourceParams& params) {
  if (params.rows < 0) return arrow::Status::Invalid("rows must be >= 0, got ", params.rows);
  if (params.batch_rows < 1) {
    return arrow::Status::Invalid("batch_rows must be >= 1, got ", params.batch_rows);
  }
  if (params.key_cardinality < 1) {
    return arrow::Status::Invalid("key_cardinality must be >= 1, got ", params.key_cardinality);
  }
  if (!(params.hot_key_fraction >= 0 && params.hot_key_fraction <= 1)) {
    return arrow::Status::Invalid("hot_key_fraction must be in [0, 1], got ",
                                  params.hot_key_fraction);
  }
  if (params.payload_columns < 0 || params.payload_columns > 64) {
    return arrow::Status::Invalid("payload_columns must be in [0, 64], got ",
                                  params.payload_columns);
  }
  if (!(std::isfinite(params.rows_per_second) && params.rows_per_second >= 0)) {
    return arrow::Status::Invalid("rows_per_second must be a finite number >= 0");
  }
  if (params.rows == 0 && params.rows_per_second == 0) {
    return arrow::Status::Invalid("rows = 0 (unbounded) needs a rate: set rows_per_second > 0");
  }
  return arrow::Status::OK();
}

// One task of a generator source. See generator_source.h for what it yields.
class GeneratorSourceReader : public SourceReader {
 public:
  GeneratorSourceReader(const GeneratorSourceParams& params, const TaskContext& ctx,
                        SourceWatermarks watermarks)
      : params_(params),
        subtask_(ctx.subtask),
        parallelism_(ctx.parallelism),
        pool_(ctx.pool),
        watermarks_(std::move(watermarks)) {
    if (params_.rows > 0) {
      const BatchRange range = GeneratorTaskBatches(params_, ctx.subtask, ctx.parallelism);
      next_batch_ = range.begin;
      end_batch_ = range.end;
    } else {
      next_batch_ = ctx.subtask;
    }
    if (params_.rows_per_second > 0) {
      rate_ = params_.rows_per_second / ctx.parallelism;
      // About a tenth of a second of rows per step, so the pace is smooth at low rates.
      slice_rows_ = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(rate_ / 10)), 1,
                                        params_.batch_rows);
    } else {
      slice_rows_ = params_.batch_rows;
    }
  }

  arrow::Result<Step> Next() override {
    if (std::optional<Step> watermark = watermarks_.TakePending()) return *watermark;
    Step step;
    if (current_ == nullptr || offset_ >= current_->num_rows()) {
      current_.reset();
      offset_ = 0;
      if (params_.rows > 0 ? next_batch_ >= end_batch_
                           : next_batch_ > (INT64_MAX / params_.batch_rows) - 1) {
        step.kind = Step::Kind::kEnd;
        return step;
      }
      ARROW_RETURN_NOT_OK(LoadBatch(next_batch_));
    }
    if (rate_ > 0) {
      const auto now = std::chrono::steady_clock::now();
      if (!started_) {
        started_ = true;
        start_ = now;
      }
      const auto due = start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(
                                        static_cast<double>(rows_out_ - paced_from_) / rate_));
      if (now < due) {
        step.kind = Step::Kind::kWait;
        step.ready_at = due;
        return step;
      }
    }
    const int64_t slice = std::min(slice_rows_, current_->num_rows() - offset_);
    step.batch = (offset_ == 0 && slice == current_->num_rows()) ? current_
                                                                 : current_->Slice(offset_, slice);
    offset_ += slice;
    rows_out_ += slice;
    ARROW_RETURN_NOT_OK(watermarks_.Observe(*step.batch));
    step.kind = Step::Kind::kBatch;
    return step;
  }

  void Abort() override { current_.reset(); }
  int64_t rows_out() const override { return rows_out_; }

  // The position: the batch being sliced (or the next one to generate) and the rows of it
  // already emitted; the rows emitted in all; the watermark state. Rows are a pure function of
  // (params, row number), so regenerating a batch gives the same rows.
  arrow::Status Snapshot(CheckpointId id, StateWriter* state) override {
    const bool in_batch = current_ != nullptr && offset_ < current_->num_rows();
    StateRowValues values = {{"subtask", subtask_},
                             {"parallelism", parallelism_},
                             {"batch", in_batch ? current_batch_ : next_batch_},
                             {"offset", in_batch ? offset_ : 0},
                             {"rows_out", rows_out_}};
    AppendWatermarkState(watermarks_.state(), &values);
    ARROW_ASSIGN_OR_RAISE(auto row, MakeStateRow(values));
    return state->Put("position", std::move(row));
  }

  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    const std::string what = "generator source task " + std::to_string(subtask_) +
                             " restoring checkpoint " + std::to_string(id);
    std::vector<std::string> names = {"subtask", "parallelism", "batch", "offset", "rows_out"};
    for (std::string& name : WatermarkStateNames()) names.push_back(std::move(name));
    ARROW_ASSIGN_OR_RAISE(auto part, state->Get("position"));
    ARROW_ASSIGN_OR_RAISE(auto values, ReadStateRow(part, "position", names, what));
    if (values["subtask"] != subtask_ || values["parallelism"] != parallelism_) {
      return arrow::Status::Invalid(what, ": the snapshot is of task ", values["subtask"], " of ",
                                    values["parallelism"], " (a source's parallelism cannot "
                                    "change across a restart)");
    }
    const int64_t batch = values["batch"];
    const int64_t offset = values["offset"];
    const bool in_range =
        params_.rows > 0
            ? batch >= GeneratorTaskBatches(params_, subtask_, parallelism_).begin &&
                  batch <= end_batch_
            : batch >= 0 && batch % parallelism_ == subtask_;
    if (!in_range || offset < 0 || offset >= params_.batch_rows || values["rows_out"] < 0) {
      return arrow::Status::Invalid(what, ": position batch ", batch, " offset ", offset,
                                    " is not one of this task's");
    }
    current_.reset();
    offset_ = 0;
    next_batch_ = batch;
    if (offset > 0) {
      ARROW_RETURN_NOT_OK(LoadBatch(batch));
      if (offset >= current_->num_rows()) {
        return arrow::Status::Invalid(what, ": offset ", offset, " is past batch ", batch, "'s ",
                                      current_->num_rows(), " rows");
      }
      offset_ = offset;
    }
    rows_out_ = values["rows_out"];
    // The rate is kept from the restart on: the pace starts again at the restored rows.
    started_ = false;
    paced_from_ = rows_out_;
    watermarks_.Rewind(WatermarkStateOf(values));
    return arrow::Status::OK();
  }

 private:
  // Generates batch `index` of the table into current_ and moves next_batch_ past it.
  arrow::Status LoadBatch(int64_t index) {
    const int64_t first_row = index * params_.batch_rows;
    const int64_t n = params_.rows > 0 ? std::min(params_.batch_rows, params_.rows - first_row)
                                       : params_.batch_rows;
    ARROW_ASSIGN_OR_RAISE(current_, GenerateTableRows(params_, first_row, n, pool_));
    current_batch_ = index;
    next_batch_ = index + (params_.rows > 0 ? 1 : parallelism_);
    return arrow::Status::OK();
  }

  const GeneratorSourceParams params_;
  const int32_t subtask_;
  const int32_t parallelism_;
  arrow::MemoryPool* pool_;
  SourceWatermarks watermarks_;
  int64_t next_batch_ = 0;
  int64_t end_batch_ = 0;  // bounded only
  int64_t current_batch_ = 0;  // the index of current_
  std::shared_ptr<arrow::RecordBatch> current_;
  int64_t offset_ = 0;
  double rate_ = 0;  // rows per second of this task; 0 = unlimited
  int64_t slice_rows_ = 1;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_;
  int64_t paced_from_ = 0;  // rows_out_ when the pace started (restored rows)
  int64_t rows_out_ = 0;
};

}  // namespace

DataGeneratorOptions ShuffleTableOptions(const GeneratorSourceParams& params) {
  DataGeneratorOptions options;
  options.batch_rows = params.batch_rows;
  options.key_cardinality = params.key_cardinality;
  options.distribution = params.distribution == KeyDistributionKind::kSkewed
                             ? KeyDistribution::kSkewed
                             : KeyDistribution::kUniform;
  options.hot_key_fraction = params.hot_key_fraction;
  options.string_key = params.string_key;
  options.payload_columns = params.payload_columns;
  options.seed = params.seed;
  return options;
}

GeneratorSourceParams ShuffleTableParams(const DataGeneratorOptions& options, int64_t rows) {
  GeneratorSourceParams params;
  params.table = GeneratorTable::kShuffle;
  params.rows = rows;
  params.batch_rows = options.batch_rows;
  params.key_cardinality = options.key_cardinality;
  params.distribution = options.distribution == KeyDistribution::kSkewed
                            ? KeyDistributionKind::kSkewed
                            : KeyDistributionKind::kUniform;
  params.hot_key_fraction = options.hot_key_fraction;
  params.string_key = options.string_key;
  params.payload_columns = options.payload_columns;
  params.seed = options.seed;
  return params;
}

std::shared_ptr<arrow::Schema> GeneratorSchema(const GeneratorSourceParams& params) {
  if (params.table == GeneratorTable::kTransactions) return TransactionsSchema();
  return GeneratedSchema(ShuffleTableOptions(params));
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> GenerateTableRows(
    const GeneratorSourceParams& params, int64_t first_row, int64_t num_rows,
    arrow::MemoryPool* pool) {
  if (first_row < 0 || num_rows < 0) {
    return arrow::Status::Invalid("negative generator row range ", first_row, " + ", num_rows);
  }
  if (params.table == GeneratorTable::kTransactions) {
    return GenerateTransactions(params, first_row, num_rows, pool);
  }
  if (params.batch_rows < 1 || first_row % params.batch_rows != 0 ||
      num_rows > params.batch_rows) {
    return arrow::Status::Invalid("the shuffle table is generated by whole batches of ",
                                  params.batch_rows, " rows; rows ", first_row, " + ", num_rows,
                                  " are not within one");
  }
  ARROW_ASSIGN_OR_RAISE(auto batch, GenerateBatch(ShuffleTableOptions(params),
                                                  first_row / params.batch_rows, pool));
  if (num_rows == batch->num_rows()) return batch;
  return batch->Slice(0, num_rows);
}

BatchRange GeneratorTaskBatches(const GeneratorSourceParams& params, int32_t subtask,
                                int32_t parallelism) {
  if (params.rows <= 0 || params.batch_rows < 1 || parallelism < 1) return {};
  const __int128 batches = (params.rows + params.batch_rows - 1) / params.batch_rows;
  BatchRange range;
  range.begin = static_cast<int64_t>(batches * subtask / parallelism);
  range.end = static_cast<int64_t>(batches * (subtask + 1) / parallelism);
  return range;
}

arrow::Result<BoundOperator> BindGeneratorSource(const OperatorSpec& spec,
                                                 const GeneratorSourceParams& params) {
  ARROW_RETURN_NOT_OK(CheckParams(params));
  std::shared_ptr<arrow::Schema> schema = GeneratorSchema(params);
  if (params.event_time.has_value()) {
    ARROW_RETURN_NOT_OK(ResolveEventTimeColumn(*schema, *params.event_time).status());
  }
  BoundOperator bound;
  bound.output_schema = schema;
  bound.make_source =
      [params, schema](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<SourceReader>> {
    ARROW_ASSIGN_OR_RAISE(auto watermarks, SourceWatermarks::Make("generator source", ctx,
                                                                  *schema, params.event_time));
    return std::make_unique<GeneratorSourceReader>(params, ctx, std::move(watermarks));
  };
  return bound;
}

}  // namespace sabot
