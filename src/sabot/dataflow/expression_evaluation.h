#pragma once

// Evaluation of bound expressions (expression_binder.h) over record batches, for the map,
// filter and project operators: whole-batch Arrow kernels (ExecuteScalarExpression and the
// "filter" kernel), no per-row code.
//
// Null semantics (docs/expressions.md): a filter keeps the rows where the predicate is true and
// drops those where it is false or null, as SQL's WHERE does.
//
// Pure functions of their inputs; safe for concurrent use with distinct or shared arguments.
// Output arrays may share buffers with the input batch (a projected column is the input column).
// Memory comes from `ctx`'s pool (the default pool when `ctx` is null).

#include <memory>

#include <arrow/compute/exec.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

#include "sabot/dataflow/expression_binder.h"

namespace sabot {

// The value of `expression` for every row of `batch`, as an array of batch->num_rows() values
// (a constant is broadcast). Invalid when the batch's schema is not the one the expression was
// bound against; errors of the kernels (e.g. "overflow", "divide by zero") are returned as is,
// prefixed with the expression's text.
arrow::Result<std::shared_ptr<arrow::Array>> EvaluateExpression(
    const std::shared_ptr<arrow::RecordBatch>& batch, const BoundExpression& expression,
    arrow::compute::ExecContext* ctx = nullptr);

// The rows of `batch` for which `predicate` (bound with BindFilter) is true, in order.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> EvaluateFilter(
    const std::shared_ptr<arrow::RecordBatch>& batch, const BoundExpression& predicate,
    arrow::compute::ExecContext* ctx = nullptr);

// A batch of projection.output_schema: column i is expression i evaluated over `batch`.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> EvaluateProjection(
    const std::shared_ptr<arrow::RecordBatch>& batch, const BoundProjection& projection,
    arrow::compute::ExecContext* ctx = nullptr);

}  // namespace sabot
