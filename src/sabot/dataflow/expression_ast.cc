#include "sabot/dataflow/expression_ast.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace sabot {

namespace {

std::shared_ptr<ExprNode> NewNode(ExprKind kind, SourcePosition position) {
  auto node = std::make_shared<ExprNode>();
  node->kind = kind;
  node->position = position;
  return node;
}

std::shared_ptr<ExprNode> NewLiteral(LiteralKind literal_kind, SourcePosition position) {
  auto node = NewNode(ExprKind::kLiteral, position);
  node->literal_kind = literal_kind;
  return node;
}

ExprPtr WithArgs(std::shared_ptr<ExprNode> node, std::vector<ExprPtr> args) {
  int32_t depth = 0;
  for (const auto& arg : args) depth = std::max(depth, arg->depth);
  node->depth = depth + 1;
  node->args = std::move(args);
  return node;
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

}  // namespace

std::string ToString(SourcePosition position) {
  return std::to_string(position.line) + ":" + std::to_string(position.column);
}

ExprPtr MakeColumn(std::string name, SourcePosition position) {
  auto node = NewNode(ExprKind::kColumn, position);
  node->text = std::move(name);
  return node;
}

ExprPtr MakeNullLiteral(SourcePosition position) {
  return NewLiteral(LiteralKind::kNull, position);
}

ExprPtr MakeBoolLiteral(bool value, SourcePosition position) {
  auto node = NewLiteral(LiteralKind::kBool, position);
  node->bool_value = value;
  return node;
}

ExprPtr MakeInt64Literal(int64_t value, SourcePosition position) {
  auto node = NewLiteral(LiteralKind::kInt64, position);
  node->int_value = value;
  return node;
}

ExprPtr MakeFloat64Literal(double value, SourcePosition position) {
  auto node = NewLiteral(LiteralKind::kFloat64, position);
  node->float_value = value;
  return node;
}

ExprPtr MakeStringLiteral(std::string value, SourcePosition position) {
  auto node = NewLiteral(LiteralKind::kString, position);
  node->text = std::move(value);
  return node;
}

ExprPtr MakeTypedLiteral(std::string type_name, std::string text, SourcePosition position) {
  auto node = NewLiteral(LiteralKind::kTyped, position);
  node->type_name = std::move(type_name);
  node->text = std::move(text);
  return node;
}

ExprPtr MakeIntervalLiteral(int64_t count, std::string unit, SourcePosition position) {
  auto node = NewLiteral(LiteralKind::kInterval, position);
  node->int_value = count;
  node->text = std::move(unit);
  return node;
}

ExprPtr MakeUnary(UnaryOp op, ExprPtr operand, SourcePosition position) {
  auto node = NewNode(ExprKind::kUnary, position);
  node->unary_op = op;
  return WithArgs(std::move(node), {std::move(operand)});
}

ExprPtr MakeBinary(BinaryOp op, ExprPtr lhs, ExprPtr rhs, SourcePosition position) {
  auto node = NewNode(ExprKind::kBinary, position);
  node->binary_op = op;
  return WithArgs(std::move(node), {std::move(lhs), std::move(rhs)});
}

ExprPtr MakeIsNull(ExprPtr operand, bool negated, SourcePosition position) {
  auto node = NewNode(ExprKind::kIsNull, position);
  node->negated = negated;
  return WithArgs(std::move(node), {std::move(operand)});
}

ExprPtr MakeIn(ExprPtr operand, std::vector<ExprPtr> list, bool negated,
               SourcePosition position) {
  auto node = NewNode(ExprKind::kIn, position);
  node->negated = negated;
  list.insert(list.begin(), std::move(operand));
  return WithArgs(std::move(node), std::move(list));
}

ExprPtr MakeBetween(ExprPtr operand, ExprPtr low, ExprPtr high, bool negated,
                    SourcePosition position) {
  auto node = NewNode(ExprKind::kBetween, position);
  node->negated = negated;
  return WithArgs(std::move(node), {std::move(operand), std::move(low), std::move(high)});
}

ExprPtr MakeCall(std::string name, std::vector<ExprPtr> args, SourcePosition position) {
  auto node = NewNode(ExprKind::kCall, position);
  node->text = std::move(name);
  return WithArgs(std::move(node), std::move(args));
}

ExprPtr MakeCast(ExprPtr operand, std::string type_name, SourcePosition position) {
  auto node = NewNode(ExprKind::kCast, position);
  node->type_name = std::move(type_name);
  return WithArgs(std::move(node), {std::move(operand)});
}

ExprPtr MakeCase(std::vector<ExprPtr> args, bool has_else, SourcePosition position) {
  auto node = NewNode(ExprKind::kCase, position);
  node->has_else = has_else;
  return WithArgs(std::move(node), std::move(args));
}

bool ExprEquals(const ExprNode& a, const ExprNode& b) {
  if (a.kind != b.kind || a.literal_kind != b.literal_kind || a.unary_op != b.unary_op ||
      a.binary_op != b.binary_op || a.negated != b.negated || a.has_else != b.has_else ||
      a.bool_value != b.bool_value || a.int_value != b.int_value ||
      !SameBits(a.float_value, b.float_value) || a.text != b.text ||
      a.type_name != b.type_name || a.args.size() != b.args.size()) {
    return false;
  }
  for (size_t i = 0; i < a.args.size(); ++i) {
    if (!ExprEquals(*a.args[i], *b.args[i])) return false;
  }
  return true;
}

std::string_view BinaryOpSymbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kOr: return "or";
    case BinaryOp::kAnd: return "and";
    case BinaryOp::kEq: return "==";
    case BinaryOp::kNe: return "!=";
    case BinaryOp::kLt: return "<";
    case BinaryOp::kLe: return "<=";
    case BinaryOp::kGt: return ">";
    case BinaryOp::kGe: return ">=";
    case BinaryOp::kAdd: return "+";
    case BinaryOp::kSubtract: return "-";
    case BinaryOp::kMultiply: return "*";
    case BinaryOp::kDivide: return "/";
    case BinaryOp::kModulo: return "%";
  }
  return "?";
}

std::string_view UnaryOpSymbol(UnaryOp op) { return op == UnaryOp::kNegate ? "-" : "not"; }

}  // namespace sabot
