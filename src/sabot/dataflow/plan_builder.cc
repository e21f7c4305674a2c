#include "sabot/dataflow/plan_builder.h"

#include <set>
#include <utility>

namespace sabot {

namespace {

AggregateSpec Aggregate(AggregateFunction function, std::string column, std::string alias) {
  return AggregateSpec{function, std::move(column), std::move(alias)};
}

}  // namespace

WindowParams Tumbling(std::chrono::milliseconds size) {
  return WindowParams{WindowType::kTumbling, size, {}, {}};
}
WindowParams Sliding(std::chrono::milliseconds size, std::chrono::milliseconds slide) {
  return WindowParams{WindowType::kSliding, size, slide, {}};
}
WindowParams Session(std::chrono::milliseconds gap) {
  return WindowParams{WindowType::kSession, {}, {}, gap};
}
AggregateSpec Count() { return Aggregate(AggregateFunction::kCount, "", ""); }
AggregateSpec CountRows(std::string alias) {
  return Aggregate(AggregateFunction::kCount, "", std::move(alias));
}
AggregateSpec Count(std::string column, std::string alias) {
  return Aggregate(AggregateFunction::kCount, std::move(column), std::move(alias));
}
AggregateSpec Sum(std::string column, std::string alias) {
  return Aggregate(AggregateFunction::kSum, std::move(column), std::move(alias));
}
AggregateSpec Min(std::string column, std::string alias) {
  return Aggregate(AggregateFunction::kMin, std::move(column), std::move(alias));
}
AggregateSpec Max(std::string column, std::string alias) {
  return Aggregate(AggregateFunction::kMax, std::move(column), std::move(alias));
}
AggregateSpec Mean(std::string column, std::string alias) {
  return Aggregate(AggregateFunction::kMean, std::move(column), std::move(alias));
}
AggregateSpec CountDistinct(std::string column, std::string alias) {
  return Aggregate(AggregateFunction::kCountDistinct, std::move(column), std::move(alias));
}
AggregateSpec First(std::string column, std::string alias) {
  return Aggregate(AggregateFunction::kFirst, std::move(column), std::move(alias));
}
AggregateSpec Last(std::string column, std::string alias) {
  return Aggregate(AggregateFunction::kLast, std::move(column), std::move(alias));
}
AggregateSpec ApproxMedian(std::string column, std::string alias) {
  return Aggregate(AggregateFunction::kApproxMedian, std::move(column), std::move(alias));
}

#define SABOT_STREAM_ADD(params, parallelism, name)                                      \
  (builder_ ? builder_->AddOperator((params), (parallelism), std::move(name), {this}) \
            : Stream())

Stream Stream::Map(std::vector<NamedExpression> columns, std::optional<int32_t> parallelism,
                   std::string name) {
  return SABOT_STREAM_ADD(MapParams{std::move(columns)}, parallelism, name);
}
Stream Stream::Map(std::string column, std::string expression,
                   std::optional<int32_t> parallelism, std::string name) {
  return Map({NamedExpression{std::move(column), std::move(expression)}}, parallelism,
             std::move(name));
}
Stream Stream::FunctionMap(std::string function, std::optional<int32_t> parallelism,
                           std::string name) {
  return SABOT_STREAM_ADD(FunctionMapParams{std::move(function)}, parallelism, name);
}
Stream Stream::Filter(std::string predicate, std::optional<int32_t> parallelism,
                      std::string name) {
  return SABOT_STREAM_ADD(FilterParams{std::move(predicate)}, parallelism, name);
}
Stream Stream::Project(std::vector<NamedExpression> columns, std::optional<int32_t> parallelism,
                       std::string name) {
  return SABOT_STREAM_ADD(ProjectParams{std::move(columns)}, parallelism, name);
}
Stream Stream::KeyBy(std::vector<std::string> keys, std::string name) {
  return SABOT_STREAM_ADD(KeyByParams{std::move(keys)}, std::nullopt, name);
}
Stream Stream::Window(WindowParams window, std::optional<int32_t> parallelism,
                      std::string name) {
  return SABOT_STREAM_ADD(window, parallelism, name);
}
Stream Stream::Aggregate(std::vector<AggregateSpec> aggregates,
                         std::optional<int32_t> parallelism, std::string name) {
  return SABOT_STREAM_ADD(AggregateParams{std::move(aggregates)}, parallelism, name);
}
Stream Stream::Sink(FileSinkParams params, std::optional<int32_t> parallelism, std::string name) {
  return SABOT_STREAM_ADD(std::move(params), parallelism, name);
}
Stream Stream::Sink(ConsoleSinkParams params, std::optional<int32_t> parallelism,
                    std::string name) {
  return SABOT_STREAM_ADD(params, parallelism, name);
}
Stream Stream::Sink(CollectSinkParams params, std::optional<int32_t> parallelism,
                    std::string name) {
  return SABOT_STREAM_ADD(params, parallelism, name);
}
Stream Stream::Sink(VerifySinkParams params, std::optional<int32_t> parallelism,
                    std::string name) {
  return SABOT_STREAM_ADD(params, parallelism, name);
}

#undef SABOT_STREAM_ADD

Stream Stream::Join(const Stream& right, std::vector<std::string> left_keys,
                    std::vector<std::string> right_keys, JoinType how,
                    std::optional<int32_t> parallelism, std::string name) {
  return Join(right, JoinParams{std::move(left_keys), std::move(right_keys), how},
              parallelism, std::move(name));
}

Stream Stream::Join(const Stream& right, JoinParams params, std::optional<int32_t> parallelism,
                    std::string name) {
  if (!builder_) return Stream();
  if (right.builder_ != builder_) {
    builder_->RecordError(arrow::Status::Invalid(
        "join: the right input is ",
        right.builder_ ? "a stream of another PlanBuilder" : "a default-constructed Stream"));
    return Stream();
  }
  return builder_->AddOperator(std::move(params), parallelism, std::move(name), {this, &right});
}

Stream PlanBuilder::Source(GeneratorSourceParams params, int32_t parallelism, std::string name) {
  return AddOperator(std::move(params), parallelism, std::move(name), {});
}

Stream PlanBuilder::Source(FileSourceParams params, int32_t parallelism, std::string name) {
  return AddOperator(std::move(params), parallelism, std::move(name), {});
}

Stream PlanBuilder::Source(TableSourceParams params, int32_t parallelism, std::string name) {
  return AddOperator(std::move(params), parallelism, std::move(name), {});
}

void PlanBuilder::RecordError(arrow::Status status) {
  if (first_error_.ok()) first_error_ = std::move(status);
}

Stream PlanBuilder::AddOperator(OperatorParams params, std::optional<int32_t> parallelism,
                                std::string name, const std::vector<const Stream*>& inputs) {
  OperatorId id = static_cast<OperatorId>(nodes_.size());
  if (name.empty()) {
    std::string base(OperatorKindName(OperatorKindOf(params)));
    std::set<std::string> used;
    for (const Node& node : nodes_) used.insert(node.spec.name);
    name = base;
    for (int n = 2; used.count(name); ++n) name = base + "_" + std::to_string(n);
  }
  Node node;
  node.spec.id = id;
  node.spec.name = std::move(name);
  node.spec.params = std::move(params);
  node.parallelism = parallelism;
  nodes_.push_back(std::move(node));
  for (size_t i = 0; i < inputs.size(); ++i) {
    edges_.push_back(EdgeSpec{inputs[i]->id_, id, static_cast<int32_t>(i), inputs[i]->request_});
  }
  return Stream(this, id);
}

arrow::Result<LogicalPlan> PlanBuilder::Build() const {
  ARROW_RETURN_NOT_OK(first_error_);
  std::vector<OperatorSpec> ops;
  ops.reserve(nodes_.size());
  for (const Node& node : nodes_) ops.push_back(node.spec);
  // Operators are added after their inputs, so one pass in id order resolves every inherited
  // parallelism; a window looks ahead to its aggregate's explicit one.
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& node = nodes_[i];
    if (node.parallelism) {
      ops[i].parallelism = *node.parallelism;
      continue;
    }
    ops[i].parallelism = 1;  // sources without inputs
    std::vector<const EdgeSpec*> in, out;
    for (const EdgeSpec& e : edges_) {
      if (e.to == ops[i].id) in.push_back(&e);
      if (e.from == ops[i].id) out.push_back(&e);
    }
    OperatorKind kind = ops[i].kind();
    if (kind == OperatorKind::kWindow && out.size() == 1 &&
        nodes_[out[0]->to].spec.kind() == OperatorKind::kAggregate &&
        nodes_[out[0]->to].parallelism) {
      ops[i].parallelism = *nodes_[out[0]->to].parallelism;
    } else if (!in.empty()) {
      ops[i].parallelism = ops[in[0]->from].parallelism;
    }
  }
  return LogicalPlan::Make(std::move(ops), edges_, options_);
}

}  // namespace sabot
