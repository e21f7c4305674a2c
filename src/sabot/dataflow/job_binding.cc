#include "sabot/dataflow/job_binding.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include <arrow/builder.h>
#include <arrow/compute/cast.h>
#include <arrow/record_batch.h>
#include <arrow/scalar.h>
#include <arrow/type.h>

#include "sabot/common/ids.h"
#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/shuffle_fitting.h"
#include "sabot/dataflow/verify_sink.h"

namespace sabot {

namespace {

// What binding operator `id` needs of the plan beyond its input schemas (operator_binding.h).
// `bounded` says, for every operator before `id` in topological order, whether its stream ends.
OperatorPlanContext PlanContextOf(const LogicalPlan& plan, OperatorId id,
                                  const std::unordered_map<OperatorId, bool>& bounded) {
  OperatorPlanContext context;
  context.bounded_input = bounded.at(id);
  context.checkpoints = plan.options().checkpoint.enabled();
  // The sources upstream, each once, in plan order.
  std::set<OperatorId> seen;
  std::vector<OperatorId> stack = {id};
  std::vector<const OperatorSpec*> sources;
  while (!stack.empty()) {
    const OperatorId at = stack.back();
    stack.pop_back();
    for (size_t e : plan.InputEdges(at)) {
      const OperatorId from = plan.edges()[e].from;
      if (!seen.insert(from).second) continue;
      const OperatorSpec* spec = plan.FindOperator(from);
      if (IsSource(spec->kind())) sources.push_back(spec);
      stack.push_back(from);
    }
  }
  std::sort(sources.begin(), sources.end(), [&](const OperatorSpec* a, const OperatorSpec* b) {
    return a - plan.operators().data() < b - plan.operators().data();
  });
  for (const OperatorSpec* source : sources) {
    std::string column;
    bool source_bounded = true;
    if (const auto* g = std::get_if<GeneratorSourceParams>(&source->params)) {
      if (g->event_time) column = g->event_time->column;
      source_bounded = g->rows > 0;
    } else if (const auto* f = std::get_if<FileSourceParams>(&source->params)) {
      if (f->event_time) column = f->event_time->column;
    } else if (const auto* t = std::get_if<TableSourceParams>(&source->params)) {
      if (t->event_time) column = t->event_time->column;
    }
    context.sources_event_time.push_back({source->name, std::move(column), source_bounded});
  }
  for (size_t e : plan.InputEdges(id)) {
    const EdgeSpec& edge = plan.edges()[e];
    if (edge.input != 0) continue;
    context.input_keys = plan.OutputKeys(edge.from);
    const OperatorSpec* from = plan.FindOperator(edge.from);
    if (from->kind() == OperatorKind::kWindow) context.input_window = from;
    break;
  }
  return context;
}

// OperatorPlanContext::input_outlives_job: `id`'s chain starts with a source and holds only
// map, filter, project and function_map operators before `id`.
bool InputOutlivesJob(const ExecutionGraph& graph, OperatorId id) {
  std::optional<int32_t> chain = graph.ChainOf(id);
  if (!chain) return false;
  const std::vector<OperatorId>& ops = graph.chains()[*chain].operators;
  for (size_t i = 0; i < ops.size() && ops[i] != id; ++i) {
    const OperatorKind kind = graph.plan().FindOperator(ops[i])->kind();
    const bool stateless = kind == OperatorKind::kMap || kind == OperatorKind::kFilter ||
                           kind == OperatorKind::kProject || kind == OperatorKind::kFunctionMap;
    if (i == 0 ? !IsSource(kind) : !stateless) return false;
  }
  return !ops.empty() && ops[0] != id;
}

std::string EdgeLabel(const LogicalPlan& plan, const GraphEdge& edge) {
  return "edge '" + plan.FindOperator(edge.from_operator)->name + "' -> '" +
         plan.FindOperator(edge.to_operator)->name + "'";
}

std::string ColumnList(const arrow::Schema& schema) {
  std::string out;
  for (const auto& field : schema.fields()) {
    if (!out.empty()) out += ", ";
    out += field->name();
  }
  return out;
}

// Each key must be a column of `schema`.
arrow::Status CheckKeys(const std::string& label, const std::vector<std::string>& keys,
                        const arrow::Schema& schema) {
  for (const auto& key : keys) {
    if (schema.GetFieldIndex(key) < 0) {
      return arrow::Status::KeyError(label, ": no column '", key, "' in its input (columns: ",
                                     ColumnList(schema), ")");
    }
  }
  return arrow::Status::OK();
}

// The boundary value `value` as a scalar of `type`.
arrow::Result<std::shared_ptr<arrow::Scalar>> BoundaryScalar(
    const BoundaryValue& value, const std::shared_ptr<arrow::DataType>& type) {
  std::shared_ptr<arrow::Scalar> scalar;
  if (const auto* i = std::get_if<int64_t>(&value)) {
    scalar = arrow::MakeScalar(*i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    scalar = arrow::MakeScalar(*d);
  } else {
    scalar = arrow::MakeScalar(std::get<std::string>(value));
  }
  return scalar->CastTo(type);
}

// RANGE boundaries as the batch PartitionSpec::Range wants: one column per key, one row per
// boundary.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> BoundaryBatch(
    const std::string& label, const GraphEdge& edge, const arrow::Schema& schema) {
  if (edge.boundaries.empty()) {
    return arrow::Status::NotImplemented(
        label, ": a range edge needs its boundaries in the plan (", edge.num_partitions - 1,
        " rows of ", edge.keys.size(),
        " values); sampling the data for them is not done by this executor");
  }
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (size_t k = 0; k < edge.keys.size(); ++k) {
    auto field = schema.GetFieldByName(edge.keys[k]);
    std::unique_ptr<arrow::ArrayBuilder> builder;
    ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), field->type(), &builder));
    for (const auto& row : edge.boundaries) {
      auto scalar = BoundaryScalar(row[k], field->type());
      if (!scalar.ok()) {
        return arrow::Status::TypeError(label, ": range boundary for key '", edge.keys[k],
                                        "' does not fit its type ", field->type()->ToString(),
                                        ": ", scalar.status().message());
      }
      ARROW_RETURN_NOT_OK(builder->AppendScalar(**scalar));
    }
    ARROW_ASSIGN_OR_RAISE(auto column, builder->Finish());
    fields.push_back(field);
    columns.push_back(std::move(column));
  }
  return arrow::RecordBatch::Make(arrow::schema(fields),
                                  static_cast<int64_t>(edge.boundaries.size()), columns);
}

arrow::Result<std::shared_ptr<const PartitionSpec>> EdgePartitionSpec(
    const std::string& label, const GraphEdge& edge, const arrow::Schema& schema) {
  switch (edge.type) {
    case EdgeType::kHash:
      ARROW_RETURN_NOT_OK(CheckKeys(label, edge.keys, schema));
      return PartitionSpec::Hash(edge.keys, edge.num_partitions);
    case EdgeType::kRange: {
      ARROW_RETURN_NOT_OK(CheckKeys(label, edge.keys, schema));
      ARROW_ASSIGN_OR_RAISE(auto boundaries, BoundaryBatch(label, edge, schema));
      return PartitionSpec::Range(std::move(boundaries));
    }
    case EdgeType::kBroadcast:
      return PartitionSpec::Broadcast(edge.num_partitions);
    case EdgeType::kRebalance:
      return PartitionSpec::Rebalance(edge.num_partitions);
    case EdgeType::kForward:
      return PartitionSpec::Forward(edge.num_partitions);
  }
  return arrow::Status::Invalid(label, ": unknown edge type");
}

// A verify sink, given the generator source and the graph edge that feed it (validation made sure
// there is exactly one such edge, from a generator source).
arrow::Result<BoundOperator> BindVerifySinkOfJob(const BoundJob& job, const OperatorSpec& spec,
                                                 const arrow::Schema& input) {
  const LogicalPlan& plan = job.graph.plan();
  for (const GraphEdge& edge : job.graph.edges()) {
    if (edge.to_operator != spec.id) continue;
    const OperatorSpec& from = *plan.FindOperator(edge.from_operator);
    ARROW_ASSIGN_OR_RAISE(auto edge_spec, EdgePartitionSpec(EdgeLabel(plan, edge), edge, input));
    return BindVerifySink(spec, std::get<GeneratorSourceParams>(from.params), from.parallelism,
                          std::move(edge_spec));
  }
  return arrow::Status::Invalid("no edge into it");
}

// Prefixes `status`'s message with `label` unless it already names the operator.
arrow::Status Labelled(const std::string& label, const arrow::Status& status) {
  if (status.ok() || status.message().rfind("operator '", 0) == 0 ||
      status.message().rfind("edge '", 0) == 0) {
    return status;
  }
  return status.WithMessage(label, ": ", status.message());
}

}  // namespace

arrow::Result<std::shared_ptr<const BoundJob>> BindJob(const LogicalPlan& plan,
                                                       const BindOptions& options,
                                                       ShuffleOptions shuffle_options) {
  if (options.job_id.empty() || options.job_id.size() > kMaxJobIdLength ||
      options.job_id.find('.') != std::string::npos || !ValidateId(options.job_id, "job id").ok()) {
    return arrow::Status::Invalid("job id '", options.job_id, "': expected 1 to ", kMaxJobIdLength,
                                  " characters of [A-Za-z0-9_-], not starting with '-'");
  }
  ARROW_ASSIGN_OR_RAISE(ExecutionGraph graph, ExecutionGraph::Make(plan));
  // Two file sinks in one directory would write the same part files (one format), or leave a
  // directory no file source can read back (two formats).
  std::map<std::string, std::string> sink_of_directory;
  for (const OperatorSpec& spec : plan.operators()) {
    const auto* sink = std::get_if<FileSinkParams>(&spec.params);
    const auto* window = std::get_if<WindowParams>(&spec.params);
    // A window's late output writes part files as a file sink does.
    const std::string* directory =
        sink != nullptr ? &sink->directory
        : window != nullptr && window->late_output ? &window->late_output->directory
                                                    : nullptr;
    if (directory == nullptr) continue;
    auto [it, inserted] =
        sink_of_directory.try_emplace(*directory, spec.name);
    if (!inserted) {
      return arrow::Status::Invalid(
          OperatorLabel(spec), ": writes its part files into ", QuoteInput(*directory),
          ", as operator '", it->second, "' does: give each file sink a directory of its own");
    }
  }
  auto job = std::make_shared<BoundJob>(BoundJob{options.job_id, std::move(graph), {}, {}, {}});

  // Whether each operator's stream ends: sources by their kind, the others when all inputs do.
  std::unordered_map<OperatorId, bool> bounded;
  for (OperatorId id : plan.topological_order()) {
    const OperatorSpec& spec = *plan.FindOperator(id);
    bool ends = true;
    if (const auto* generator = std::get_if<GeneratorSourceParams>(&spec.params)) {
      ends = generator->rows > 0;
    }
    for (size_t e : plan.InputEdges(id)) ends = ends && bounded.at(plan.edges()[e].from);
    bounded[id] = ends;
  }

  for (OperatorId id : plan.topological_order()) {
    const OperatorSpec& spec = *plan.FindOperator(id);
    const std::string label = OperatorLabel(spec);
    // The schema of each input: every edge into one input (a union) must bring the same one.
    std::map<int32_t, std::pair<std::string, std::shared_ptr<arrow::Schema>>> inputs;
    for (size_t e : plan.InputEdges(id)) {
      const EdgeSpec& edge = plan.edges()[e];
      const std::string& from = plan.FindOperator(edge.from)->name;
      const auto& schema = job->output_schemas.at(edge.from);
      auto [it, inserted] = inputs.try_emplace(edge.input, from, schema);
      if (!inserted && !it->second.second->Equals(*schema, /*check_metadata=*/false)) {
        return arrow::Status::TypeError(
            label, ": input ", edge.input, " is a union of streams with different schemas: '",
            it->second.first, "' gives (", it->second.second->ToString(), "), '", from,
            "' gives (", schema->ToString(), ")");
      }
    }
    std::vector<std::shared_ptr<arrow::Schema>> input_schemas;
    for (auto& [input, named] : inputs) input_schemas.push_back(named.second);

    if (spec.kind() == OperatorKind::kKeyBy) {
      const auto& keys = std::get<KeyByParams>(spec.params).keys;
      ARROW_RETURN_NOT_OK(CheckKeys(label, keys, *input_schemas.at(0)));
      job->output_schemas[id] = input_schemas.at(0);
      continue;
    }
    arrow::Result<BoundOperator> bound;
    if (spec.kind() == OperatorKind::kVerifySink) {
      // The one operator that needs its input edge: it checks where each row arrived.
      bound = BindVerifySinkOfJob(*job, spec, *input_schemas.at(0));
    } else {
      OperatorPlanContext context = PlanContextOf(plan, id, bounded);
      context.input_outlives_job = InputOutlivesJob(job->graph, id);
      bound = BindOperator(spec, input_schemas, options, context);
    }
    if (!bound.ok()) return Labelled(label, bound.status());
    if (bound->output_schema != nullptr) job->output_schemas[id] = bound->output_schema;
    job->operators.emplace(id, std::move(*bound));
  }

  shuffle_options.mode = plan.options().shuffle_mode;
  for (size_t e : job->graph.shuffle_edges()) {
    const GraphEdge& edge = job->graph.edges()[e];
    const std::string label = EdgeLabel(plan, edge);
    const auto& schema = job->output_schemas.at(edge.from_operator);
    ShuffleDescriptor descriptor;
    descriptor.shuffle_id = options.job_id + "." + edge.shuffle_id;
    ARROW_ASSIGN_OR_RAISE(descriptor.spec, EdgePartitionSpec(label, edge, *schema));
    descriptor.schema = schema;
    descriptor.num_writers = edge.num_writers;
    descriptor.options = shuffle_options;
    ARROW_RETURN_NOT_OK(Labelled(label, descriptor.Validate()));
    job->shuffles.push_back(std::move(descriptor));
  }
  if (options.memory_budget > 0) {
    ShuffleManagerOptions manager;
    manager.memory_budget = options.memory_budget;
    auto label_of = [&](size_t i) {
      const GraphEdge& edge = job->graph.edges()[job->graph.shuffle_edges()[i]];
      // Named after the operator it feeds, so a job file places it at that operator's line.
      return EdgeLabel(plan, edge) + " (into operator '" +
             plan.FindOperator(edge.to_operator)->name + "')";
    };
    // A task opens the writers of every output shuffle of its chain together.
    std::vector<std::vector<size_t>> writer_groups(job->graph.chains().size());
    for (size_t i = 0; i < job->graph.shuffle_edges().size(); ++i) {
      const GraphEdge& edge = job->graph.edges()[job->graph.shuffle_edges()[i]];
      writer_groups[static_cast<size_t>(edge.from_chain)].push_back(i);
    }
    ARROW_ASSIGN_OR_RAISE(FittedShuffles fitted,
                          FitShufflesToBudget(std::move(job->shuffles), manager, label_of,
                                              writer_groups));
    job->shuffles = std::move(fitted.shuffles);
    job->memory_budget = options.memory_budget;
    job->network_fraction = fitted.network_fraction;
    job->network_segment_size = fitted.segment_size;
  }
  return job;
}

}  // namespace sabot
