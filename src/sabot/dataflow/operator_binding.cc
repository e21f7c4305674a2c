#include "sabot/dataflow/operator_binding.h"

#include <algorithm>
#include <string>
#include <utility>
#include <variant>

#include <arrow/status.h>

#include "sabot/dataflow/aggregate_operator.h"
#include "sabot/dataflow/collect_sink.h"
#include "sabot/dataflow/console_sink.h"
#include "sabot/dataflow/file_sink.h"
#include "sabot/dataflow/file_source.h"
#include "sabot/dataflow/function_map.h"
#include "sabot/dataflow/generator_source.h"
#include "sabot/dataflow/join_operator.h"
#include "sabot/dataflow/map_filter_project.h"
#include "sabot/dataflow/table_source.h"
#include "sabot/dataflow/windowed_aggregate.h"

namespace sabot {

void CollectedOutput::Add(const std::string& sink, int32_t subtask,
                          std::shared_ptr<arrow::RecordBatch> batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  Sink& entry = sinks_[sink];
  if (entry.schema == nullptr) entry.schema = batch->schema();
  entry.batches[subtask].push_back(std::move(batch));
  entry.checkpoints[subtask].push_back(kNoCheckpoint);
}

void CollectedOutput::AddCheckpointed(const std::string& sink, int32_t subtask, CheckpointId id,
                                      std::vector<std::shared_ptr<arrow::RecordBatch>> batches) {
  std::lock_guard<std::mutex> lock(mutex_);
  Sink& entry = sinks_[sink];
  CheckpointId& through = entry.published_through[subtask];
  if (id <= through) return;
  through = id;
  auto& list = entry.batches[subtask];
  auto& tags = entry.checkpoints[subtask];
  for (auto& batch : batches) {
    if (entry.schema == nullptr) entry.schema = batch->schema();
    list.push_back(std::move(batch));
    tags.push_back(id);
  }
}

void CollectedOutput::RewindTo(const std::string& sink, int32_t subtask, CheckpointId id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sinks_.find(sink);
  if (it == sinks_.end()) return;
  Sink& entry = it->second;
  auto& list = entry.batches[subtask];
  auto& tags = entry.checkpoints[subtask];
  while (!tags.empty() && tags.back() > id) {
    tags.pop_back();
    list.pop_back();
  }
  CheckpointId& through = entry.published_through[subtask];
  through = std::min(through, id);
}

void CollectedOutput::Declare(const std::string& sink, std::shared_ptr<arrow::Schema> schema) {
  std::lock_guard<std::mutex> lock(mutex_);
  Sink& entry = sinks_[sink];
  if (entry.schema == nullptr) entry.schema = std::move(schema);
}

arrow::Result<std::shared_ptr<arrow::Table>> CollectedOutput::Table(
    const std::string& sink) const {
  std::shared_ptr<arrow::Schema> schema;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sinks_.find(sink);
    if (it == sinks_.end()) {
      return arrow::Status::KeyError("no collect sink named '", sink, "' collected anything");
    }
    schema = it->second.schema;
    for (const auto& [subtask, list] : it->second.batches) {
      batches.insert(batches.end(), list.begin(), list.end());
    }
  }
  // Batches are immutable; the table is assembled outside the lock.
  return arrow::Table::FromRecordBatches(schema, batches);
}

std::vector<std::shared_ptr<arrow::RecordBatch>> CollectedOutput::Batches(const std::string& sink,
                                                                          int32_t subtask) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sinks_.find(sink);
  if (it == sinks_.end()) return {};
  auto batches = it->second.batches.find(subtask);
  if (batches == it->second.batches.end()) return {};
  return batches->second;
}

std::vector<std::string> CollectedOutput::sinks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names;
  names.reserve(sinks_.size());
  for (const auto& [name, entry] : sinks_) names.push_back(name);
  return names;
}

std::string OperatorLabel(const OperatorSpec& spec) {
  return "operator '" + spec.name + "' (" + std::string(OperatorKindName(spec.kind())) + ")";
}

namespace {

// `status` with "operator '<name>' (<kind>): " in front of its message; code and detail kept.
arrow::Status NameOperator(const OperatorSpec& spec, const arrow::Status& status) {
  return status.WithMessage(OperatorLabel(spec), ": ", status.message());
}

arrow::Status ExpectInputs(const OperatorSpec& spec,
                           const std::vector<std::shared_ptr<arrow::Schema>>& input_schemas,
                           size_t expected) {
  if (input_schemas.size() != expected) {
    return arrow::Status::Invalid("expected ", expected, " input schema(s), got ",
                                  input_schemas.size());
  }
  for (size_t i = 0; i < input_schemas.size(); ++i) {
    if (input_schemas[i] == nullptr) return arrow::Status::Invalid("input ", i, " has no schema");
  }
  return arrow::Status::OK();
}

arrow::Result<BoundOperator> BindUnnamed(
    const OperatorSpec& spec, const std::vector<std::shared_ptr<arrow::Schema>>& input_schemas,
    const BindOptions& options, const OperatorPlanContext& context) {
  const OperatorKind kind = spec.kind();
  return std::visit(
      [&](const auto& params) -> arrow::Result<BoundOperator> {
        using P = std::decay_t<decltype(params)>;
        if constexpr (std::is_same_v<P, KeyByParams>) {
          return arrow::Status::Invalid(
              "key_by is folded into the edge after it by the execution graph and is never "
              "bound");
        } else if constexpr (std::is_same_v<P, JoinParams>) {
          ARROW_RETURN_NOT_OK(ExpectInputs(spec, input_schemas, 2));
          return BindJoin(spec, params, input_schemas, context);
        } else if constexpr (std::is_same_v<P, WindowParams>) {
          ARROW_RETURN_NOT_OK(ExpectInputs(spec, input_schemas, 1));
          return BindWindow(spec, params, input_schemas[0], context);
        } else if constexpr (std::is_same_v<P, VerifySinkParams>) {
          return arrow::Status::Invalid(
              "a verify_sink is bound with its input edge, by BindJob (job_binding.h)");
        } else {
          ARROW_RETURN_NOT_OK(ExpectInputs(spec, input_schemas, IsSource(kind) ? 0 : 1));
          if constexpr (std::is_same_v<P, GeneratorSourceParams>) {
            return BindGeneratorSource(spec, params);
          } else if constexpr (std::is_same_v<P, FileSourceParams>) {
            return BindFileSource(spec, params);
          } else if constexpr (std::is_same_v<P, TableSourceParams>) {
            return BindTableSource(spec, params, options);
          } else if constexpr (std::is_same_v<P, MapParams>) {
            return BindMapOperator(params, input_schemas[0]);
          } else if constexpr (std::is_same_v<P, FilterParams>) {
            return BindFilterOperator(params, input_schemas[0]);
          } else if constexpr (std::is_same_v<P, ProjectParams>) {
            return BindProjectOperator(params, input_schemas[0]);
          } else if constexpr (std::is_same_v<P, AggregateParams>) {
            if (context.input_window != nullptr) {
              return BindWindowedAggregate(spec, params, *context.input_window, input_schemas[0],
                                           context, options);
            }
            return BindAggregateOperator(spec, params, input_schemas[0], context);
          } else if constexpr (std::is_same_v<P, FileSinkParams>) {
            return BindFileSink(spec, params, input_schemas[0], options,
                                /*exactly_once=*/context.checkpoints);
          } else if constexpr (std::is_same_v<P, ConsoleSinkParams>) {
            return BindConsoleSink(spec, params, input_schemas[0], options);
          } else if constexpr (std::is_same_v<P, CollectSinkParams>) {
            return BindCollectSink(spec, input_schemas[0], options,
                                   /*copy_out=*/!context.input_outlives_job);
          } else if constexpr (std::is_same_v<P, FunctionMapParams>) {
            return BindFunctionMap(spec, params, input_schemas[0], options);
          } else {
            // False for every P, but only known when instantiated: a kind added to OperatorParams
            // without a branch above fails to compile.
            static_assert(sizeof(P) == 0, "every operator kind is bound or refused above");
          }
        }
      },
      spec.params);
}

}  // namespace

arrow::Result<BoundOperator> BindOperator(
    const OperatorSpec& spec, const std::vector<std::shared_ptr<arrow::Schema>>& input_schemas,
    const BindOptions& options, const OperatorPlanContext& context) {
  auto bound = BindUnnamed(spec, input_schemas, options, context);
  if (!bound.ok()) return NameOperator(spec, bound.status());
  return bound;
}

}  // namespace sabot
