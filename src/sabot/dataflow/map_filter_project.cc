#include "sabot/dataflow/map_filter_project.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <arrow/compute/exec.h>
#include <arrow/type.h>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/expression_binder.h"
#include "sabot/dataflow/expression_evaluation.h"
#include "sabot/dataflow/expression_parser.h"

namespace sabot {

namespace {

// `status` with `context` in front of its message (code and detail kept).
arrow::Status WithContext(const std::string& context, const arrow::Status& status) {
  return status.WithMessage(context, ": ", status.message());
}

// Counts rows for the job summary; the base of the three operators.
class RowCountingOperator : public Operator {
 public:
  int64_t rows_in() const override { return rows_in_; }
  int64_t rows_out() const override { return rows_out_; }

 protected:
  int64_t rows_in_ = 0;
  int64_t rows_out_ = 0;
};

struct MapPlan {
  std::vector<BoundExpression> expressions;
  // For each expression: the output column it replaces, or -1 when it is appended.
  std::vector<int> replaces;
  std::shared_ptr<arrow::Schema> output_schema;
};

class MapOperator : public RowCountingOperator {
 public:
  MapOperator(std::shared_ptr<const MapPlan> plan, arrow::MemoryPool* pool)
      : plan_(std::move(plan)), exec_context_(pool) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    rows_in_ += batch->num_rows();
    arrow::ArrayVector columns = batch->columns();
    for (size_t i = 0; i < plan_->expressions.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto values,
                            EvaluateExpression(batch, plan_->expressions[i], &exec_context_));
      if (plan_->replaces[i] >= 0) {
        columns[plan_->replaces[i]] = std::move(values);
      } else {
        columns.push_back(std::move(values));
      }
    }
    auto result = arrow::RecordBatch::Make(plan_->output_schema, batch->num_rows(),
                                           std::move(columns));
    rows_out_ += result->num_rows();
    return out->Emit(result);
  }

 private:
  std::shared_ptr<const MapPlan> plan_;
  arrow::compute::ExecContext exec_context_;
};

class FilterOperator : public RowCountingOperator {
 public:
  FilterOperator(std::shared_ptr<const BoundExpression> predicate, arrow::MemoryPool* pool)
      : predicate_(std::move(predicate)), exec_context_(pool) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    rows_in_ += batch->num_rows();
    ARROW_ASSIGN_OR_RAISE(auto kept, EvaluateFilter(batch, *predicate_, &exec_context_));
    if (kept->num_rows() == 0) return arrow::Status::OK();
    rows_out_ += kept->num_rows();
    return out->Emit(kept);
  }

 private:
  std::shared_ptr<const BoundExpression> predicate_;
  arrow::compute::ExecContext exec_context_;
};

class ProjectOperator : public RowCountingOperator {
 public:
  ProjectOperator(std::shared_ptr<const BoundProjection> projection, arrow::MemoryPool* pool)
      : projection_(std::move(projection)), exec_context_(pool) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    rows_in_ += batch->num_rows();
    ARROW_ASSIGN_OR_RAISE(auto projected,
                          EvaluateProjection(batch, *projection_, &exec_context_));
    rows_out_ += projected->num_rows();
    return out->Emit(projected);
  }

 private:
  std::shared_ptr<const BoundProjection> projection_;
  arrow::compute::ExecContext exec_context_;
};

arrow::Result<BoundExpression> CompileColumn(const NamedExpression& column,
                                             const std::shared_ptr<arrow::Schema>& input) {
  auto parsed = ParseExpression(column.expression);
  if (!parsed.ok()) {
    return WithContext("column " + QuoteInput(column.name), parsed.status());
  }
  auto bound = BindExpression(*parsed, input);
  if (!bound.ok()) return WithContext("column " + QuoteInput(column.name), bound.status());
  return bound;
}

}  // namespace

arrow::Result<BoundOperator> BindMapOperator(const MapParams& params,
                                             const std::shared_ptr<arrow::Schema>& input) {
  if (params.columns.empty()) return arrow::Status::Invalid("a map needs at least one column");
  auto plan = std::make_shared<MapPlan>();
  arrow::FieldVector fields = input->fields();
  std::set<std::string> seen;
  for (const NamedExpression& column : params.columns) {
    if (column.name.empty()) return arrow::Status::Invalid("a map column has no name");
    if (!seen.insert(column.name).second) {
      return arrow::Status::Invalid("map column ", QuoteInput(column.name),
                                    " is given more than once");
    }
    ARROW_ASSIGN_OR_RAISE(BoundExpression bound, CompileColumn(column, input));
    auto field = arrow::field(column.name, bound.type, /*nullable=*/true);
    const std::vector<int> matches = input->GetAllFieldIndices(column.name);
    if (matches.size() > 1) {
      return arrow::Status::KeyError("map column ", QuoteInput(column.name),
                                     " would replace several input columns of that name");
    }
    if (matches.size() == 1) {
      plan->replaces.push_back(matches[0]);
      fields[matches[0]] = std::move(field);
    } else {
      plan->replaces.push_back(-1);
      fields.push_back(std::move(field));
    }
    plan->expressions.push_back(std::move(bound));
  }
  plan->output_schema = arrow::schema(std::move(fields));
  BoundOperator result;
  result.output_schema = plan->output_schema;
  std::shared_ptr<const MapPlan> shared = std::move(plan);
  result.make_operator =
      [shared](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<MapOperator>(shared, ctx.pool);
  };
  return result;
}

arrow::Result<BoundOperator> BindFilterOperator(const FilterParams& params,
                                                const std::shared_ptr<arrow::Schema>& input) {
  auto parsed = ParseExpression(params.predicate);
  if (!parsed.ok()) return WithContext("predicate", parsed.status());
  auto bound = BindFilter(*parsed, input);
  if (!bound.ok()) return WithContext("predicate", bound.status());
  auto predicate = std::make_shared<const BoundExpression>(std::move(*bound));
  BoundOperator result;
  result.output_schema = input;
  result.make_operator =
      [predicate](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<FilterOperator>(predicate, ctx.pool);
  };
  return result;
}

arrow::Result<BoundOperator> BindProjectOperator(const ProjectParams& params,
                                                 const std::shared_ptr<arrow::Schema>& input) {
  if (params.columns.empty()) return arrow::Status::Invalid("a project needs at least one column");
  std::vector<ProjectionItem> items;
  items.reserve(params.columns.size());
  for (const NamedExpression& column : params.columns) {
    auto parsed = ParseExpression(column.expression);
    if (!parsed.ok()) {
      return WithContext("column " + QuoteInput(column.name.empty() ? column.expression
                                                                    : column.name),
                         parsed.status());
    }
    // `x = x` is the plain column: no alias, so it keeps its input field (nullability,
    // metadata).
    const ExprPtr& expr = *parsed;
    const bool same_column = expr->kind == ExprKind::kColumn && expr->text == column.name;
    items.push_back(ProjectionItem{expr, same_column ? std::string() : column.name});
  }
  ARROW_ASSIGN_OR_RAISE(BoundProjection bound, BindProjection(items, input));
  auto projection = std::make_shared<const BoundProjection>(std::move(bound));
  BoundOperator result;
  result.output_schema = projection->output_schema;
  result.make_operator =
      [projection](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<ProjectOperator>(projection, ctx.pool);
  };
  return result;
}

}  // namespace sabot
