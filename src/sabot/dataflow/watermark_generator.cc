#include "sabot/dataflow/watermark_generator.h"

#include <string>

#include <arrow/compute/api_aggregate.h>
#include <arrow/scalar.h>
#include <arrow/type.h>

namespace sabot {

namespace {

std::string ColumnList(const arrow::Schema& schema) {
  std::string names;
  for (const auto& field : schema.fields()) {
    if (!names.empty()) names += ", ";
    names += field->name();
  }
  return names;
}

// Units of a timestamp per millisecond, or -1000 for seconds (multiply by 1000).
int64_t UnitDivisor(const arrow::DataType& type) {
  if (type.id() != arrow::Type::TIMESTAMP) return 1;
  switch (static_cast<const arrow::TimestampType&>(type).unit()) {
    case arrow::TimeUnit::SECOND:
      return -1000;
    case arrow::TimeUnit::MILLI:
      return 1;
    case arrow::TimeUnit::MICRO:
      return 1000;
    case arrow::TimeUnit::NANO:
      return 1000000;
  }
  return 1;
}

// Floor division for negative event times (before 1970).
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

arrow::Result<int> ResolveEventTimeColumn(const arrow::Schema& schema, const EventTimeSpec& spec) {
  const int index = schema.GetFieldIndex(spec.column);
  if (index < 0) {
    if (!schema.GetAllFieldsByName(spec.column).empty()) {
      return arrow::Status::KeyError("event-time column '", spec.column,
                                     "' is ambiguous (several columns have that name)");
    }
    return arrow::Status::KeyError("event-time column '", spec.column,
                                   "' is not a column of the source; its columns are: ",
                                   ColumnList(schema));
  }
  const auto& type = *schema.field(index)->type();
  if (type.id() != arrow::Type::TIMESTAMP && !arrow::is_integer(type.id())) {
    return arrow::Status::TypeError("event-time column '", spec.column, "' has type ",
                                    type.ToString(),
                                    "; it must be a timestamp or an integer (milliseconds)");
  }
  if (spec.max_out_of_orderness.count() < 0) {
    return arrow::Status::Invalid("max_out_of_orderness must be >= 0, got ",
                                  spec.max_out_of_orderness.count(), " ms");
  }
  return index;
}

arrow::Result<WatermarkGenerator> WatermarkGenerator::Make(const arrow::Schema& schema,
                                                           const EventTimeSpec& spec) {
  ARROW_ASSIGN_OR_RAISE(int index, ResolveEventTimeColumn(schema, spec));
  return WatermarkGenerator(index, UnitDivisor(*schema.field(index)->type()),
                            spec.max_out_of_orderness.count());
}

arrow::Result<std::optional<WatermarkMs>> WatermarkGenerator::Observe(
    const arrow::RecordBatch& batch) {
  if (column_ >= batch.num_columns()) {
    return arrow::Status::Invalid("event-time column ", column_, " missing from a batch of ",
                                  batch.num_columns(), " columns");
  }
  if (batch.num_rows() == 0) return std::nullopt;
  ARROW_ASSIGN_OR_RAISE(
      arrow::Datum min_max,
      arrow::compute::MinMax(batch.column(column_),
                             arrow::compute::ScalarAggregateOptions(/*skip_nulls=*/true,
                                                                    /*min_count=*/1)));
  const auto& pair = min_max.scalar_as<arrow::StructScalar>();
  const auto& max_scalar = pair.value[1];
  if (!max_scalar->is_valid) return std::nullopt;  // only nulls
  int64_t max_value = 0;
  if (max_scalar->type->id() == arrow::Type::TIMESTAMP) {
    max_value = static_cast<const arrow::TimestampScalar&>(*max_scalar).value;
  } else if (max_scalar->type->id() == arrow::Type::UINT64) {
    const uint64_t v = static_cast<const arrow::UInt64Scalar&>(*max_scalar).value;
    max_value = v > static_cast<uint64_t>(kEndOfTimeWatermark - 1)
                    ? kEndOfTimeWatermark - 1
                    : static_cast<int64_t>(v);
  } else {
    ARROW_ASSIGN_OR_RAISE(auto as_int64, max_scalar->CastTo(arrow::int64()));
    max_value = static_cast<const arrow::Int64Scalar&>(*as_int64).value;
  }
  int64_t max_ms = 0;
  if (unit_divisor_ < 0) {
    if (__builtin_mul_overflow(max_value, -unit_divisor_, &max_ms)) {
      max_ms = max_value < 0 ? kNoWatermark + 1 : kEndOfTimeWatermark - 1;
    }
  } else {
    max_ms = FloorDiv(max_value, unit_divisor_);
  }
  if (max_ms <= max_event_time_) return std::nullopt;
  max_event_time_ = max_ms;
  int64_t candidate = 0;
  if (__builtin_sub_overflow(max_ms, lateness_ms_, &candidate) || candidate <= kNoWatermark) {
    return std::nullopt;  // so far back that no watermark is meaningful yet
  }
  // A watermark is a promise about later rows; the end-of-time value is the executor's.
  if (candidate >= kEndOfTimeWatermark) candidate = kEndOfTimeWatermark - 1;
  if (candidate <= watermark_) return std::nullopt;
  watermark_ = candidate;
  return candidate;
}

arrow::Result<SourceWatermarks> SourceWatermarks::Make(
    std::string_view source, const TaskContext& ctx, const arrow::Schema& schema,
    const std::optional<EventTimeSpec>& event_time) {
  if (ctx.parallelism < 1 || ctx.subtask < 0 || ctx.subtask >= ctx.parallelism) {
    return arrow::Status::Invalid(source, " task ", ctx.subtask, " of ", ctx.parallelism,
                                  " does not exist");
  }
  if (!event_time.has_value()) return SourceWatermarks(std::nullopt);
  ARROW_ASSIGN_OR_RAISE(WatermarkGenerator generator, WatermarkGenerator::Make(schema, *event_time));
  return SourceWatermarks(std::move(generator));
}

arrow::Status SourceWatermarks::Observe(const arrow::RecordBatch& batch) {
  if (!generator_.has_value()) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(std::optional<WatermarkMs> advanced, generator_->Observe(batch));
  if (advanced.has_value()) pending_ = advanced;
  return arrow::Status::OK();
}

std::optional<SourceReader::Step> SourceWatermarks::TakePending() {
  if (!pending_.has_value()) return std::nullopt;
  SourceReader::Step step;
  step.kind = SourceReader::Step::Kind::kWatermark;
  step.watermark = *pending_;
  pending_.reset();
  return step;
}

SourceWatermarks::State SourceWatermarks::state() const {
  State state;
  if (generator_.has_value()) {
    state.max_event_time = generator_->max_event_time();
    state.watermark = generator_->watermark();
  }
  state.pending = pending_.value_or(kNoWatermark);
  return state;
}

void SourceWatermarks::Rewind(const State& state) {
  if (!generator_.has_value()) return;
  generator_->Rewind(state.max_event_time, state.watermark);
  if (state.pending == kNoWatermark) {
    pending_.reset();
  } else {
    pending_ = state.pending;
  }
}

}  // namespace sabot
