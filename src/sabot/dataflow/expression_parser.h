#pragma once

// The parser of Sabot's expression language (grammar, precedence and errors in
// docs/expressions.md): text -> syntax tree (expression_ast.h). A hand-written recursive-descent
// parser; it checks what needs no schema (syntax, function names and arity, literal arguments,
// type names, literal values) and leaves columns and types to the binder (expression_binder.h).
//
// Errors are arrow::Status::Invalid with a message of the form
//   expression error at 1:9: unexpected ')'; expected an operand (a column, literal, function
//   call or parenthesized expression)
// naming the 1-based line:column (byte column) of the offending token, the token quoted
// (escaped and cut to a bounded length, see common/quoted_input.h), and what was expected.
// Input longer than `limits.max_bytes` and nesting deeper than `limits.max_depth` are rejected
// up front, so no input can exhaust the stack.
//
// Pure functions; safe for concurrent use.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <arrow/result.h>

#include "sabot/dataflow/expression_ast.h"

namespace sabot {

struct ExpressionLimits {
  size_t max_bytes = kMaxExpressionBytes;
  // At most kMaxExpressionDepth; larger values are clamped to it.
  int32_t max_depth = kMaxExpressionDepth;
};

// One whole expression, e.g. "amount * 2 > 100 and user_id is not null".
arrow::Result<ExprPtr> ParseExpression(std::string_view text, const ExpressionLimits& limits = {});

// One projection item: an expression with an optional alias, e.g. "amount * 2 as doubled".
arrow::Result<ProjectionItem> ParseProjectionItem(std::string_view text,
                                                  const ExpressionLimits& limits = {});

// A comma-separated, non-empty projection list, e.g. "user_id, amount * 2 as doubled".
arrow::Result<std::vector<ProjectionItem>> ParseProjectionList(
    std::string_view text, const ExpressionLimits& limits = {});

}  // namespace sabot
