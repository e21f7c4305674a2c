#include "sabot/dataflow/expression_printer.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string_view>

#include <arrow/util/utf8.h>

#include "sabot/dataflow/expression_catalog.h"

namespace sabot {

namespace {

// Binding strength of each grammar level, loosest first (docs/expressions.md, precedence).
enum Level : int {
  kOrLevel = 1,
  kAndLevel = 2,
  kNotLevel = 3,
  kPredicateLevel = 4,
  kAdditiveLevel = 5,
  kMultiplicativeLevel = 6,
  kUnaryLevel = 7,
  kPrimaryLevel = 8,
};

int LevelOf(const ExprNode& node) {
  switch (node.kind) {
    case ExprKind::kUnary:
      return node.unary_op == UnaryOp::kNot ? kNotLevel : kUnaryLevel;
    case ExprKind::kBinary:
      switch (node.binary_op) {
        case BinaryOp::kOr: return kOrLevel;
        case BinaryOp::kAnd: return kAndLevel;
        case BinaryOp::kAdd:
        case BinaryOp::kSubtract: return kAdditiveLevel;
        case BinaryOp::kMultiply:
        case BinaryOp::kDivide:
        case BinaryOp::kModulo: return kMultiplicativeLevel;
        default: return kPredicateLevel;
      }
    case ExprKind::kIsNull:
    case ExprKind::kIn:
    case ExprKind::kBetween:
      return kPredicateLevel;
    default:
      return kPrimaryLevel;
  }
}

void AppendHex(unsigned char c, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("\\x");
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 0xf]);
}

void AppendString(const std::string& value, std::string* out) {
  arrow::util::InitializeUTF8();
  const bool utf8 = arrow::util::ValidateUTF8(value);
  out->push_back('\'');
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\'': out->append("\\'"); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if ((c >= 0x20 && c < 0x7f) || (c >= 0x80 && utf8)) {
          out->push_back(ch);
        } else {
          AppendHex(c, out);
        }
    }
  }
  out->push_back('\'');
}

void AppendFloat(double value, std::string* out) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string text(buffer, ec == std::errc() ? end : buffer);
  // A float literal must look like one: 5 -> 5.0, 1e+20 stays (it has an exponent).
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  out->append(text);
}

bool IsNonNegativeNumber(const ExprNode& node) {
  if (node.kind != ExprKind::kLiteral) return false;
  if (node.literal_kind == LiteralKind::kInt64) return node.int_value >= 0;
  if (node.literal_kind == LiteralKind::kFloat64) return !std::signbit(node.float_value);
  return false;
}

void Append(const ExprNode& node, std::string* out);

void AppendChild(const ExprNode& child, int min_level, std::string* out) {
  if (LevelOf(child) < min_level) {
    out->push_back('(');
    Append(child, out);
    out->push_back(')');
  } else {
    Append(child, out);
  }
}

void AppendLiteral(const ExprNode& node, std::string* out) {
  switch (node.literal_kind) {
    case LiteralKind::kNull: out->append("null"); return;
    case LiteralKind::kBool: out->append(node.bool_value ? "true" : "false"); return;
    case LiteralKind::kInt64: out->append(std::to_string(node.int_value)); return;
    case LiteralKind::kFloat64: AppendFloat(node.float_value, out); return;
    case LiteralKind::kString: AppendString(node.text, out); return;
    case LiteralKind::kTyped:
      out->append(node.type_name);
      out->push_back(' ');
      AppendString(node.text, out);
      return;
    case LiteralKind::kInterval:
      out->append("interval ");
      out->append(std::to_string(node.int_value));
      out->push_back(' ');
      out->append(node.text);
      return;
  }
}

void Append(const ExprNode& node, std::string* out) {
  switch (node.kind) {
    case ExprKind::kColumn:
      out->append(FormatColumnName(node.text));
      return;
    case ExprKind::kLiteral:
      AppendLiteral(node, out);
      return;
    case ExprKind::kUnary: {
      const ExprNode& operand = *node.args[0];
      if (node.unary_op == UnaryOp::kNot) {
        out->append("not ");
        AppendChild(operand, kNotLevel, out);
        return;
      }
      out->push_back('-');
      // -(5) keeps the negation apart from the literal (-5 is the literal itself); a leading
      // '-' of the operand gets a space so the two do not touch.
      if (IsNonNegativeNumber(operand)) {
        out->push_back('(');
        Append(operand, out);
        out->push_back(')');
        return;
      }
      std::string inner;
      AppendChild(operand, kUnaryLevel, &inner);
      if (!inner.empty() && inner[0] == '-') out->push_back(' ');
      out->append(inner);
      return;
    }
    case ExprKind::kBinary: {
      const int level = LevelOf(node);
      const bool comparison = level == kPredicateLevel;
      AppendChild(*node.args[0], comparison ? level + 1 : level, out);
      out->push_back(' ');
      out->append(BinaryOpSymbol(node.binary_op));
      out->push_back(' ');
      AppendChild(*node.args[1], level + 1, out);
      return;
    }
    case ExprKind::kIsNull:
      AppendChild(*node.args[0], kAdditiveLevel, out);
      out->append(node.negated ? " is not null" : " is null");
      return;
    case ExprKind::kIn:
      AppendChild(*node.args[0], kAdditiveLevel, out);
      out->append(node.negated ? " not in (" : " in (");
      for (size_t i = 1; i < node.args.size(); ++i) {
        if (i > 1) out->append(", ");
        Append(*node.args[i], out);
      }
      out->push_back(')');
      return;
    case ExprKind::kBetween:
      AppendChild(*node.args[0], kAdditiveLevel, out);
      out->append(node.negated ? " not between " : " between ");
      AppendChild(*node.args[1], kAdditiveLevel, out);
      out->append(" and ");
      AppendChild(*node.args[2], kAdditiveLevel, out);
      return;
    case ExprKind::kCall:
      out->append(node.text);
      out->push_back('(');
      for (size_t i = 0; i < node.args.size(); ++i) {
        if (i > 0) out->append(", ");
        Append(*node.args[i], out);
      }
      out->push_back(')');
      return;
    case ExprKind::kCast:
      out->append("cast(");
      Append(*node.args[0], out);
      out->append(" as ");
      out->append(node.type_name);
      out->push_back(')');
      return;
    case ExprKind::kCase: {
      out->append("case");
      const size_t pairs = (node.args.size() - (node.has_else ? 1 : 0)) / 2;
      for (size_t i = 0; i < pairs; ++i) {
        out->append(" when ");
        Append(*node.args[2 * i], out);
        out->append(" then ");
        Append(*node.args[2 * i + 1], out);
      }
      if (node.has_else) {
        out->append(" else ");
        Append(*node.args.back(), out);
      }
      out->append(" end");
      return;
    }
  }
}

bool IsPlainIdentifier(const std::string& name) {
  if (name.empty()) return false;
  const auto first = static_cast<unsigned char>(name[0]);
  if (!(std::isalpha(first) || first == '_')) return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || u == '_')) return false;
  }
  return !IsReservedWord(name);
}

}  // namespace

std::string FormatColumnName(const std::string& name) {
  if (IsPlainIdentifier(name)) return name;
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out.push_back('`');
    out.push_back(c);
  }
  out.push_back('`');
  return out;
}

std::string FormatExpression(const ExprNode& expr) {
  std::string out;
  Append(expr, &out);
  return out;
}

std::string FormatProjectionItem(const ProjectionItem& item) {
  std::string out = FormatExpression(*item.expr);
  if (!item.alias.empty()) {
    out += " as ";
    out += FormatColumnName(item.alias);
  }
  return out;
}

}  // namespace sabot
