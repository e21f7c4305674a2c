#pragma once

// The syntax tree of Sabot's expression language (docs/expressions.md): what the parser
// (expression_parser.h) produces, the printer (expression_printer.h) writes back as canonical
// text, and the binder (expression_binder.h) turns into an arrow::compute::Expression.
//
// Nodes are immutable once built and shared (`ExprPtr` is a shared_ptr to const), so a tree may
// be read from any number of threads at once. A tree made by the parser is at most
// kMaxExpressionDepth levels deep, which bounds every recursive walk over it (printing, binding,
// comparing, destroying); code that builds trees by hand must keep to the same bound.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sabot {

// The deepest tree (and the deepest nesting of parentheses, calls and prefix operators) the parser
// accepts, and the longest text, in bytes. They keep hostile input from exhausting the stack.
inline constexpr int32_t kMaxExpressionDepth = 256;
inline constexpr size_t kMaxExpressionBytes = 64 * 1024;

// Where a node starts in the expression's text: 1-based line and 1-based byte column.
struct SourcePosition {
  int32_t line = 1;
  int32_t column = 1;
};

// "L:C", e.g. "1:7".
std::string ToString(SourcePosition position);

enum class ExprKind : uint8_t {
  kColumn,   // a column reference; `text` is its name
  kLiteral,  // a constant; see LiteralKind
  kUnary,    // `unary_op` applied to args[0]
  kBinary,   // args[0] `binary_op` args[1]
  kIsNull,   // args[0] IS [NOT] NULL (`negated` for IS NOT NULL)
  kIn,       // args[0] [NOT] IN (args[1], ..., args[n])
  kBetween,  // args[0] [NOT] BETWEEN args[1] AND args[2]
  kCall,     // function `text` (canonical lower-case name from the catalog) applied to args
  kCast,     // CAST(args[0] AS `type_name`)
  kCase,     // CASE WHEN args[0] THEN args[1] ... [ELSE args[n-1]] END (`has_else`)
};

enum class LiteralKind : uint8_t {
  kNull,      // null (Arrow type null)
  kBool,      // `bool_value`
  kInt64,     // `int_value`
  kFloat64,   // `float_value`
  kString,    // `text` holds the bytes (after escapes are resolved)
  kTyped,     // `type_name` 'text', e.g. timestamp[us] '2024-01-01 00:00:00'
  kInterval,  // interval `int_value` `text` (a canonical plural unit, e.g. "minutes")
};

enum class UnaryOp : uint8_t { kNegate, kNot };

enum class BinaryOp : uint8_t {
  kOr, kAnd,                           // Kleene logic
  kEq, kNe, kLt, kLe, kGt, kGe,        // comparisons
  kAdd, kSubtract, kMultiply, kDivide, kModulo,  // checked arithmetic
};

struct ExprNode;
using ExprPtr = std::shared_ptr<const ExprNode>;

// One node. Which fields mean something depends on `kind` (see ExprKind and LiteralKind); the
// others keep their defaults, so two trees can be compared field by field.
struct ExprNode {
  ExprKind kind = ExprKind::kLiteral;
  SourcePosition position;
  // The height of the tree under this node: 1 for a leaf.
  int32_t depth = 1;
  LiteralKind literal_kind = LiteralKind::kNull;
  UnaryOp unary_op = UnaryOp::kNegate;
  BinaryOp binary_op = BinaryOp::kAdd;
  bool negated = false;
  bool has_else = false;
  bool bool_value = false;
  int64_t int_value = 0;
  double float_value = 0;
  std::string text;
  std::string type_name;
  std::vector<ExprPtr> args;
};

// Constructors; each sets `depth` from its children. `position` is where the node's text starts.
ExprPtr MakeColumn(std::string name, SourcePosition position = {});
ExprPtr MakeNullLiteral(SourcePosition position = {});
ExprPtr MakeBoolLiteral(bool value, SourcePosition position = {});
ExprPtr MakeInt64Literal(int64_t value, SourcePosition position = {});
ExprPtr MakeFloat64Literal(double value, SourcePosition position = {});
ExprPtr MakeStringLiteral(std::string value, SourcePosition position = {});
// `type_name` must be canonical (CanonicalTypeName in expression_catalog.h).
ExprPtr MakeTypedLiteral(std::string type_name, std::string text, SourcePosition position = {});
// `unit` must be canonical (CanonicalIntervalUnit in expression_catalog.h).
ExprPtr MakeIntervalLiteral(int64_t count, std::string unit, SourcePosition position = {});
ExprPtr MakeUnary(UnaryOp op, ExprPtr operand, SourcePosition position = {});
ExprPtr MakeBinary(BinaryOp op, ExprPtr lhs, ExprPtr rhs, SourcePosition position = {});
ExprPtr MakeIsNull(ExprPtr operand, bool negated, SourcePosition position = {});
ExprPtr MakeIn(ExprPtr operand, std::vector<ExprPtr> list, bool negated,
               SourcePosition position = {});
ExprPtr MakeBetween(ExprPtr operand, ExprPtr low, ExprPtr high, bool negated,
                    SourcePosition position = {});
// `name` must be a canonical catalog name (FindFunction in expression_catalog.h).
ExprPtr MakeCall(std::string name, std::vector<ExprPtr> args, SourcePosition position = {});
ExprPtr MakeCast(ExprPtr operand, std::string type_name, SourcePosition position = {});
// `args` = condition, value, condition, value, ... [, else value].
ExprPtr MakeCase(std::vector<ExprPtr> args, bool has_else, SourcePosition position = {});

// Structural equality ignoring positions; floats compare by bit pattern (so -0.0 != 0.0, and a
// NaN equals itself), which is what a text round trip must preserve.
bool ExprEquals(const ExprNode& a, const ExprNode& b);

// The spelling of an operator in canonical text: "or", "and", "==", "!=", "<", ..., "%";
// "-" and "not" for the unary operators.
std::string_view BinaryOpSymbol(BinaryOp op);
std::string_view UnaryOpSymbol(UnaryOp op);

// One item of a projection list: `expr [AS alias]`.
struct ProjectionItem {
  ExprPtr expr;
  // Empty when no alias was given (an alias is never empty).
  std::string alias;
};

}  // namespace sabot
