#pragma once

// The stateless row operators: map, filter and project, computed with the expression library
// (expression_binder.h, expression_evaluation.h; the language is in docs/expressions.md) over
// whole batches — no per-row code.
//
//   map      MapParams: each `name = expression` is evaluated against the input batch; a name
//            that is an input column replaces it in place, other names are appended in the
//            order given. Every expression sees the input columns (not the other outputs of the
//            same map). Output schema: the input's fields, replaced ones with the expression's
//            type (nullable), then the new ones.
//   filter   FilterParams: keeps the rows where the boolean predicate is true (false and null
//            drop the row). Output schema = input schema; a batch with no row left is not
//            emitted.
//   project  ProjectParams: exactly the given columns, in order; a plain column reference (named
//            after itself or not named) keeps its input field, a renamed column or any other
//            expression is a nullable field of the expression's type.
//
// Binding parses and binds every expression once (KeyError for an unknown column, TypeError for
// a type mismatch, Invalid for a syntax error: the expression library's message with its
// line:column, after the column or predicate it belongs to). The bound expressions are
// immutable and shared by all the operator's task instances; each instance is used by one
// thread at a time and evaluates with its task's memory pool. Watermarks pass through.

#include <memory>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

arrow::Result<BoundOperator> BindMapOperator(const MapParams& params,
                                             const std::shared_ptr<arrow::Schema>& input);
arrow::Result<BoundOperator> BindFilterOperator(const FilterParams& params,
                                                const std::shared_ptr<arrow::Schema>& input);
arrow::Result<BoundOperator> BindProjectOperator(const ProjectParams& params,
                                                 const std::shared_ptr<arrow::Schema>& input);

}  // namespace sabot
