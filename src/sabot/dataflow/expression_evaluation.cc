#include "sabot/dataflow/expression_evaluation.h"

#include <utility>

#include <arrow/array/util.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/expression.h>
#include <arrow/memory_pool.h>
#include <arrow/scalar.h>
#include <arrow/status.h>

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

namespace cp = arrow::compute;

constexpr size_t kQuotedTextBytes = 120;
constexpr size_t kSchemaTextBytes = 400;

arrow::Status CheckSchema(const arrow::RecordBatch& batch, const arrow::Schema& expected,
                          const std::string& what) {
  if (batch.schema()->Equals(expected, /*check_metadata=*/false)) return arrow::Status::OK();
  return arrow::Status::Invalid(
      what, " was bound to schema {", SanitizeMessage(expected.ToString(), kSchemaTextBytes),
      "} but the batch has schema {",
      SanitizeMessage(batch.schema()->ToString(), kSchemaTextBytes), "}");
}

arrow::Result<cp::ExecBatch> ToExecBatch(const arrow::RecordBatch& batch) {
  return cp::ExecBatch(batch);
}

arrow::Result<arrow::Datum> Execute(const arrow::RecordBatch& batch,
                                    const BoundExpression& expression, cp::ExecContext* ctx) {
  ARROW_ASSIGN_OR_RAISE(auto input, ToExecBatch(batch));
  auto result = cp::ExecuteScalarExpression(expression.expression, input, ctx);
  if (!result.ok()) {
    return result.status().WithMessage(
        "evaluating ", QuoteInput(expression.text, kQuotedTextBytes), ": ",
        result.status().message());
  }
  return result;
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::Array>> EvaluateExpression(
    const std::shared_ptr<arrow::RecordBatch>& batch, const BoundExpression& expression,
    cp::ExecContext* ctx) {
  ARROW_RETURN_NOT_OK(CheckSchema(*batch, *expression.input_schema,
                                  "expression " + QuoteInput(expression.text, kQuotedTextBytes)));
  ARROW_ASSIGN_OR_RAISE(auto datum, Execute(*batch, expression, ctx));
  if (datum.is_scalar()) {
    arrow::MemoryPool* pool = ctx ? ctx->memory_pool() : arrow::default_memory_pool();
    return arrow::MakeArrayFromScalar(*datum.scalar(), batch->num_rows(), pool);
  }
  return datum.make_array();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> EvaluateFilter(
    const std::shared_ptr<arrow::RecordBatch>& batch, const BoundExpression& predicate,
    cp::ExecContext* ctx) {
  ARROW_RETURN_NOT_OK(CheckSchema(*batch, *predicate.input_schema,
                                  "filter " + QuoteInput(predicate.text, kQuotedTextBytes)));
  if (predicate.type->id() != arrow::Type::BOOL) {
    return arrow::Status::TypeError("filter ", QuoteInput(predicate.text, kQuotedTextBytes),
                                    " has type ", predicate.type->ToString(),
                                    "; a filter must be bool");
  }
  ARROW_ASSIGN_OR_RAISE(auto mask, Execute(*batch, predicate, ctx));
  if (mask.is_scalar()) {
    const auto& scalar = mask.scalar_as<arrow::BooleanScalar>();
    if (scalar.is_valid && scalar.value) return batch;
    return batch->Slice(0, 0);
  }
  ARROW_ASSIGN_OR_RAISE(auto filtered,
                        cp::Filter(batch, mask, cp::FilterOptions::Defaults(), ctx));
  return filtered.record_batch();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> EvaluateProjection(
    const std::shared_ptr<arrow::RecordBatch>& batch, const BoundProjection& projection,
    cp::ExecContext* ctx) {
  ARROW_RETURN_NOT_OK(CheckSchema(*batch, *projection.input_schema, "projection"));
  arrow::ArrayVector columns;
  columns.reserve(projection.expressions.size());
  for (const auto& expression : projection.expressions) {
    ARROW_ASSIGN_OR_RAISE(auto column, EvaluateExpression(batch, expression, ctx));
    columns.push_back(std::move(column));
  }
  return arrow::RecordBatch::Make(projection.output_schema, batch->num_rows(),
                                  std::move(columns));
}

}  // namespace sabot
