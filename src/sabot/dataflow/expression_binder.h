#pragma once

// Binding: an expression tree (expression_ast.h) checked against the schema of the batches it
// will see, and turned into a bound arrow::compute::Expression that Arrow's kernels evaluate
// (expression_evaluation.h). Type rules, implicit casts and errors are in docs/expressions.md.
//
// Errors:
//   KeyError   an unknown column, naming it, its position and the available columns;
//   TypeError  no kernel for the argument types (naming the sub-expression's canonical text,
//              its position and the argument types), a filter that is not bool, a substr with
//              a bad start or length, a string literal that is not UTF-8;
//   Invalid    duplicate output names in a projection.
//
// Bound objects are immutable and may be shared between tasks and threads; binding is a pure
// function, safe for concurrent use.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/compute/expression.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/expression_ast.h"

namespace sabot {

// An expression bound to one input schema.
struct BoundExpression {
  // The tree it came from, and its canonical text (expression_printer.h).
  ExprPtr ast;
  std::string text;
  // Bound (Expression::IsBound()): every field reference resolved, every call's kernel chosen.
  arrow::compute::Expression expression;
  // The type of its result.
  std::shared_ptr<arrow::DataType> type;
  // The schema it was bound against; evaluation checks that batches have it.
  std::shared_ptr<arrow::Schema> input_schema;
};

// `ast` bound against `schema`.
arrow::Result<BoundExpression> BindExpression(const ExprPtr& ast,
                                              const std::shared_ptr<arrow::Schema>& schema);

// As BindExpression, and the result must be bool (TypeError otherwise).
arrow::Result<BoundExpression> BindFilter(const ExprPtr& ast,
                                          const std::shared_ptr<arrow::Schema>& schema);

// A projection list bound against one schema: one expression per output column.
struct BoundProjection {
  std::vector<BoundExpression> expressions;
  // One field per expression. Its name is the item's alias, or the column's name for a plain
  // column reference, or the expression's canonical text. A plain column keeps its input field
  // (nullability, metadata); other fields are nullable.
  std::shared_ptr<arrow::Schema> output_schema;
  std::shared_ptr<arrow::Schema> input_schema;
};

// Binds every item; Invalid when two items get the same output name (name one with `as`).
arrow::Result<BoundProjection> BindProjection(const std::vector<ProjectionItem>& items,
                                              const std::shared_ptr<arrow::Schema>& schema);

// Parse + bind in one step, for callers that hold text (job files, plans).
arrow::Result<BoundExpression> CompileFilter(std::string_view text,
                                             const std::shared_ptr<arrow::Schema>& schema);
arrow::Result<BoundProjection> CompileProjection(std::string_view text,
                                                 const std::shared_ptr<arrow::Schema>& schema);

}  // namespace sabot
