#pragma once

// Canonical text of an expression tree (docs/expressions.md, "Canonical form"): lower-case
// keywords, one spelling per operator (== and !=), single spaces around binary operators,
// parentheses only where precedence needs them, columns backquoted only when they are not plain
// identifiers or are reserved words, strings with escapes for ', \ and bytes that are not
// printable (valid UTF-8 is kept), floats in their shortest round-trip form.
//
// The text parses back (expression_parser.h) to a tree equal to the input (ExprEquals); this is
// the form in which plans and job files carry expressions.
//
// Pure functions; safe for concurrent use. The tree must be at most kMaxExpressionDepth deep
// (every parsed tree is).

#include <string>

#include "sabot/dataflow/expression_ast.h"

namespace sabot {

std::string FormatExpression(const ExprNode& expr);

// "expr" or "expr as alias".
std::string FormatProjectionItem(const ProjectionItem& item);

// A column name as it must be written: itself when it is a plain identifier that is not a
// reserved word, otherwise backquoted with ` doubled.
std::string FormatColumnName(const std::string& name);

}  // namespace sabot
