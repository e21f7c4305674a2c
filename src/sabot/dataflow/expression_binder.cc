#include "sabot/dataflow/expression_binder.h"

#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include <arrow/builder.h>
#include <arrow/compute/api_scalar.h>
#include <arrow/compute/cast.h>
#include <arrow/scalar.h>
#include <arrow/status.h>
#include <arrow/type.h>
#include <arrow/util/int_util_overflow.h>
#include <arrow/util/utf8.h>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/expression_catalog.h"
#include "sabot/dataflow/expression_parser.h"
#include "sabot/dataflow/expression_printer.h"

namespace sabot {

namespace {

namespace cp = arrow::compute;
using cp::Expression;

// Error messages quote at most this many bytes of an expression's text.
constexpr size_t kQuotedTextBytes = 120;
// ... and list at most this many available columns.
constexpr int kListedColumns = 32;

std::string_view ArrowBinaryName(BinaryOp op) {
  switch (op) {
    case BinaryOp::kOr: return "or_kleene";
    case BinaryOp::kAnd: return "and_kleene";
    case BinaryOp::kEq: return "equal";
    case BinaryOp::kNe: return "not_equal";
    case BinaryOp::kLt: return "less";
    case BinaryOp::kLe: return "less_equal";
    case BinaryOp::kGt: return "greater";
    case BinaryOp::kGe: return "greater_equal";
    case BinaryOp::kAdd: return "add_checked";
    case BinaryOp::kSubtract: return "subtract_checked";
    case BinaryOp::kMultiply: return "multiply_checked";
    case BinaryOp::kDivide: return "divide_checked";
    case BinaryOp::kModulo: return "remainder_checked";
  }
  return "";
}

// Arrow's message made printable ASCII on one line (it may quote names or values).
std::string OneLine(const std::string& message) {
  std::string out = SanitizeMessage(message, 300);
  for (char& c : out) {
    if (c == '\t') c = ' ';
  }
  return out;
}

std::string Quoted(const ExprNode& node) {
  return QuoteInput(FormatExpression(node), kQuotedTextBytes);
}

std::string AvailableColumns(const arrow::Schema& schema) {
  if (schema.num_fields() == 0) return "none (the input has no columns)";
  std::string out;
  for (int i = 0; i < schema.num_fields() && i < kListedColumns; ++i) {
    if (i > 0) out += ", ";
    out += QuoteInput(schema.field(i)->name());
  }
  if (schema.num_fields() > kListedColumns) {
    out += ", ... (" + std::to_string(schema.num_fields()) + " columns)";
  }
  return out;
}

// A tree -> an unbound Expression. Checks what binding would report less clearly: columns,
// literal values and literal arguments.
class Lowering {
 public:
  explicit Lowering(const arrow::Schema& schema) : schema_(schema) {}

  arrow::Result<Expression> Lower(const ExprNode& node) {
    switch (node.kind) {
      case ExprKind::kColumn:
        return LowerColumn(node);
      case ExprKind::kLiteral:
        return LowerLiteral(node);
      case ExprKind::kUnary: {
        if (node.unary_op == UnaryOp::kNot) {
          ARROW_ASSIGN_OR_RAISE(auto operand, LowerLogical(*node.args[0]));
          return cp::call("invert", {std::move(operand)});
        }
        ARROW_ASSIGN_OR_RAISE(auto operand, LowerArithmetic(*node.args[0]));
        return cp::call("negate_checked", {std::move(operand)});
      }
      case ExprKind::kBinary: {
        const bool logical = node.binary_op == BinaryOp::kAnd || node.binary_op == BinaryOp::kOr;
        const bool arithmetic = node.binary_op >= BinaryOp::kAdd;
        Expression lhs, rhs;
        if (logical) {
          ARROW_ASSIGN_OR_RAISE(lhs, LowerLogical(*node.args[0]));
          ARROW_ASSIGN_OR_RAISE(rhs, LowerLogical(*node.args[1]));
        } else if (arithmetic) {
          ARROW_ASSIGN_OR_RAISE(lhs, LowerArithmetic(*node.args[0]));
          ARROW_ASSIGN_OR_RAISE(rhs, LowerArithmetic(*node.args[1]));
        } else {
          ARROW_ASSIGN_OR_RAISE(lhs, Lower(*node.args[0]));
          ARROW_ASSIGN_OR_RAISE(rhs, Lower(*node.args[1]));
        }
        return cp::call(std::string(ArrowBinaryName(node.binary_op)),
                        {std::move(lhs), std::move(rhs)});
      }
      case ExprKind::kIsNull: {
        ARROW_ASSIGN_OR_RAISE(auto operand, Lower(*node.args[0]));
        return node.negated ? cp::call("is_valid", {std::move(operand)})
                            : cp::call("is_null", {std::move(operand)},
                                       cp::NullOptions(/*nan_is_null=*/false));
      }
      case ExprKind::kIn:
        return LowerIn(node);
      case ExprKind::kBetween: {
        ARROW_ASSIGN_OR_RAISE(auto operand, Lower(*node.args[0]));
        ARROW_ASSIGN_OR_RAISE(auto low, Lower(*node.args[1]));
        ARROW_ASSIGN_OR_RAISE(auto high, Lower(*node.args[2]));
        Expression both = cp::call("and_kleene", {cp::call("greater_equal", {operand, low}),
                                                  cp::call("less_equal", {operand, high})});
        return node.negated ? cp::call("invert", {std::move(both)}) : both;
      }
      case ExprKind::kCall:
        return LowerCall(node);
      case ExprKind::kCast: {
        ARROW_ASSIGN_OR_RAISE(auto operand, Lower(*node.args[0]));
        ARROW_ASSIGN_OR_RAISE(auto type, TypeFromCanonicalName(node.type_name));
        return cp::call("cast", {std::move(operand)}, cp::CastOptions::Safe(type));
      }
      case ExprKind::kCase:
        return LowerCase(node);
    }
    return arrow::Status::Invalid("unknown expression node");
  }

 private:
  static arrow::Status CheckUtf8(const ExprNode& node) {
    arrow::util::InitializeUTF8();
    if (arrow::util::ValidateUTF8(node.text)) return arrow::Status::OK();
    return arrow::Status::TypeError("string literal ", QuoteInput(node.text), " at ",
                                    ToString(node.position),
                                    " is not valid UTF-8; expected UTF-8 text");
  }

  // An operand of and, or, not, or a CASE condition: a bare null is a null of type bool (Arrow's
  // Kleene kernels take no null-typed argument).
  arrow::Result<Expression> LowerLogical(const ExprNode& node) {
    if (node.kind == ExprKind::kLiteral && node.literal_kind == LiteralKind::kNull) {
      return cp::literal(arrow::MakeNullScalar(arrow::boolean()));
    }
    return Lower(node);
  }

  // An operand of arithmetic: a number literal keeps its type (int64 or float64). Arrow's Bind
  // would otherwise narrow it to the other operand's type (int16_column + 1 computing, and
  // overflowing, in int16; int32_column * 0.1 in float32); the cast stops that, so the result
  // type is the common numeric type of the operands' declared types.
  arrow::Result<Expression> LowerArithmetic(const ExprNode& node) {
    ARROW_ASSIGN_OR_RAISE(auto lowered, Lower(node));
    if (node.kind == ExprKind::kLiteral && (node.literal_kind == LiteralKind::kInt64 ||
                                            node.literal_kind == LiteralKind::kFloat64)) {
      auto type = node.literal_kind == LiteralKind::kInt64 ? arrow::int64() : arrow::float64();
      return cp::call("cast", {std::move(lowered)}, cp::CastOptions::Safe(type));
    }
    return lowered;
  }

  arrow::Result<Expression> LowerColumn(const ExprNode& node) {
    const auto indices = schema_.GetAllFieldIndices(node.text);
    if (indices.empty()) {
      return arrow::Status::KeyError("unknown column ", QuoteInput(node.text), " at ",
                                     ToString(node.position), "; available columns: ",
                                     AvailableColumns(schema_));
    }
    if (indices.size() > 1) {
      return arrow::Status::KeyError("ambiguous column ", QuoteInput(node.text), " at ",
                                     ToString(node.position), ": the input has ",
                                     indices.size(), " columns of that name");
    }
    return cp::field_ref(node.text);
  }

  arrow::Result<Expression> LowerLiteral(const ExprNode& node) {
    switch (node.literal_kind) {
      case LiteralKind::kNull:
        return cp::literal(std::make_shared<arrow::NullScalar>());
      case LiteralKind::kBool:
        return cp::literal(node.bool_value);
      case LiteralKind::kInt64:
        return cp::literal(node.int_value);
      case LiteralKind::kFloat64:
        return cp::literal(node.float_value);
      case LiteralKind::kString:
        ARROW_RETURN_NOT_OK(CheckUtf8(node));
        return cp::literal(std::make_shared<arrow::StringScalar>(node.text));
      case LiteralKind::kTyped: {
        ARROW_ASSIGN_OR_RAISE(auto type, TypeFromCanonicalName(node.type_name));
        if (type->id() == arrow::Type::STRING) ARROW_RETURN_NOT_OK(CheckUtf8(node));
        auto scalar = arrow::Scalar::Parse(type, node.text);
        if (!scalar.ok()) {
          return arrow::Status::TypeError("invalid ", node.type_name, " literal ",
                                          QuoteInput(node.text), " at ",
                                          ToString(node.position));
        }
        return cp::literal(*std::move(scalar));
      }
      case LiteralKind::kInterval: {
        ARROW_ASSIGN_OR_RAISE(auto scalar, IntervalScalar(node.int_value, node.text));
        return cp::literal(std::move(scalar));
      }
    }
    return arrow::Status::Invalid("unknown literal kind");
  }

  // x IN (a, b, ...) is (x == a) OR (x == b) OR ... in Kleene logic, combined as a balanced
  // tree: SQL's semantics (null when nothing matches and x or a listed value is null).
  arrow::Result<Expression> LowerIn(const ExprNode& node) {
    ARROW_ASSIGN_OR_RAISE(auto operand, Lower(*node.args[0]));
    ARROW_ASSIGN_OR_RAISE(auto set_lookup, LowerInAsSetLookup(node, operand));
    if (set_lookup) {
      return node.negated ? cp::call("invert", {std::move(*set_lookup)}) : *set_lookup;
    }
    std::vector<Expression> terms;
    for (size_t i = 1; i < node.args.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto value, Lower(*node.args[i]));
      terms.push_back(cp::call("equal", {operand, std::move(value)}));
    }
    while (terms.size() > 1) {
      std::vector<Expression> next;
      for (size_t i = 0; i + 1 < terms.size(); i += 2) {
        next.push_back(cp::call("or_kleene", {std::move(terms[i]), std::move(terms[i + 1])}));
      }
      if (terms.size() % 2 == 1) next.push_back(std::move(terms.back()));
      terms = std::move(next);
    }
    return node.negated ? cp::call("invert", {std::move(terms[0])}) : terms[0];
  }

  // x IN (literal, ...) as one hash lookup, is_in, when that has exactly the semantics of the
  // chain of equals: every listed value a non-null literal, no float literal, x of an integer,
  // string, bool, date or timestamp type (floats are left out: a hash lookup and `equal`
  // disagree on -0.0 and NaN), and every value castable to x's type without loss (the value set
  // is cast here, once). Null x gives null (EMIT_NULL). nullopt when any condition fails.
  arrow::Result<std::optional<Expression>> LowerInAsSetLookup(const ExprNode& node,
                                                              const Expression& operand) {
    const ExprNode& first = *node.args[1];
    for (size_t i = 1; i < node.args.size(); ++i) {
      const ExprNode& value = *node.args[i];
      if (value.kind != ExprKind::kLiteral || value.literal_kind != first.literal_kind ||
          value.type_name != first.type_name) {
        return std::nullopt;
      }
      const LiteralKind kind = value.literal_kind;
      if (kind != LiteralKind::kInt64 && kind != LiteralKind::kString &&
          kind != LiteralKind::kBool && kind != LiteralKind::kTyped) {
        return std::nullopt;
      }
    }
    auto bound = operand.Bind(schema_);
    if (!bound.ok() || bound->type() == nullptr) return std::nullopt;
    const auto type = bound->type()->GetSharedPtr();
    const arrow::Type::type id = type->id();
    if (!arrow::is_integer(id) && id != arrow::Type::STRING && id != arrow::Type::BOOL &&
        id != arrow::Type::DATE32 && id != arrow::Type::TIMESTAMP) {
      return std::nullopt;
    }
    ARROW_ASSIGN_OR_RAISE(auto first_value, LowerLiteral(first));
    ARROW_ASSIGN_OR_RAISE(auto builder, arrow::MakeBuilder(first_value.literal()->type()));
    for (size_t i = 1; i < node.args.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto value, LowerLiteral(*node.args[i]));
      ARROW_RETURN_NOT_OK(builder->AppendScalar(*value.literal()->scalar()));
    }
    ARROW_ASSIGN_OR_RAISE(auto values, builder->Finish());
    auto cast = cp::Cast(*values, type, cp::CastOptions::Safe());
    if (!cast.ok()) return std::nullopt;
    return cp::call("is_in", {operand},
                    cp::SetLookupOptions(*std::move(cast), cp::SetLookupOptions::EMIT_NULL));
  }

  arrow::Result<Expression> LowerCall(const ExprNode& node) {
    const FunctionSpec* spec = FindFunction(node.text);
    if (spec == nullptr) {
      return arrow::Status::Invalid("unknown function ", QuoteInput(node.text), " at ",
                                    ToString(node.position), "; expected one of ",
                                    AllowedFunctionNames());
    }
    std::vector<Expression> args;
    for (size_t i = 0; i < node.args.size(); ++i) {
      if (ArgRuleAt(*spec, i) != ArgRule::kAny) continue;  // an option, not an argument
      ARROW_ASSIGN_OR_RAISE(auto arg, Lower(*node.args[i]));
      args.push_back(std::move(arg));
    }
    const std::string arrow_name(spec->arrow_name);
    const std::string_view name = spec->name;
    if (name == "round") {
      const int64_t digits = node.args.size() > 1 ? node.args[1]->int_value : 0;
      return cp::call(arrow_name, std::move(args), cp::RoundOptions(digits));
    }
    if (name == "contains" || name == "starts_with" || name == "ends_with") {
      return cp::call(arrow_name, std::move(args),
                      cp::MatchSubstringOptions(node.args[1]->text));
    }
    if (name == "if") {
      // if(c, a, b) is CASE WHEN c THEN a ELSE b END: a null condition takes the else branch
      // (Arrow's if_else would give null), the same as CASE.
      Expression condition = std::move(args[0]);
      if (node.args[0]->kind == ExprKind::kLiteral &&
          node.args[0]->literal_kind == LiteralKind::kNull) {
        condition = cp::literal(arrow::MakeNullScalar(arrow::boolean()));
      }
      return cp::call(arrow_name, {cp::call("make_struct", {std::move(condition)},
                                            cp::MakeStructOptions({"when0"})),
                                   std::move(args[1]), std::move(args[2])});
    }
    if (name == "substr") return LowerSubstr(node, arrow_name, std::move(args));
    if (name == "concat") {
      args.push_back(cp::literal(std::make_shared<arrow::StringScalar>("")));
      return cp::call(arrow_name, std::move(args));
    }
    return cp::call(arrow_name, std::move(args));
  }

  // substr(s, start [, length]): 1-based start >= 1, length >= 0, in code points.
  arrow::Result<Expression> LowerSubstr(const ExprNode& node, const std::string& arrow_name,
                                        std::vector<Expression> args) {
    const int64_t start = node.args[1]->int_value;
    if (start < 1) {
      return arrow::Status::TypeError("substr start ", start, " at ",
                                      ToString(node.args[1]->position),
                                      " is out of range; expected 1 or more (1 = first "
                                      "character)");
    }
    int64_t stop = std::numeric_limits<int64_t>::max();
    if (node.args.size() > 2) {
      const int64_t length = node.args[2]->int_value;
      if (length < 0) {
        return arrow::Status::TypeError("substr length ", length, " at ",
                                        ToString(node.args[2]->position),
                                        " is negative; expected 0 or more");
      }
      if (arrow::internal::AddWithOverflow(start - 1, length, &stop)) {
        stop = std::numeric_limits<int64_t>::max();
      }
    }
    return cp::call(arrow_name, std::move(args), cp::SliceOptions(start - 1, stop));
  }

  // CASE WHEN c1 THEN v1 ... ELSE e END is case_when(make_struct(c1, ...), v1, ..., e).
  arrow::Result<Expression> LowerCase(const ExprNode& node) {
    const size_t pairs = (node.args.size() - (node.has_else ? 1 : 0)) / 2;
    std::vector<Expression> conditions;
    std::vector<std::string> names;
    std::vector<Expression> values;
    for (size_t i = 0; i < pairs; ++i) {
      ARROW_ASSIGN_OR_RAISE(auto condition, LowerLogical(*node.args[2 * i]));
      ARROW_ASSIGN_OR_RAISE(auto value, Lower(*node.args[2 * i + 1]));
      conditions.push_back(std::move(condition));
      names.push_back("when" + std::to_string(i));
      values.push_back(std::move(value));
    }
    if (node.has_else) {
      ARROW_ASSIGN_OR_RAISE(auto value, Lower(*node.args.back()));
      values.push_back(std::move(value));
    }
    values.insert(values.begin(), cp::call("make_struct", std::move(conditions),
                                           cp::MakeStructOptions(std::move(names))));
    return cp::call("case_when", std::move(values));
  }

  const arrow::Schema& schema_;
};

std::string DescribeOperation(const ExprNode& node) {
  switch (node.kind) {
    case ExprKind::kUnary:
      return node.unary_op == UnaryOp::kNot ? "'not' (invert)" : "unary '-' (negate_checked)";
    case ExprKind::kBinary:
      return "'" + std::string(BinaryOpSymbol(node.binary_op)) + "' (" +
             std::string(ArrowBinaryName(node.binary_op)) + ")";
    case ExprKind::kIsNull:
      return node.negated ? "'is not null'" : "'is null'";
    case ExprKind::kIn:
      return node.negated ? "'not in'" : "'in'";
    case ExprKind::kBetween:
      return node.negated ? "'not between'" : "'between'";
    case ExprKind::kCall: {
      const FunctionSpec* spec = FindFunction(node.text);
      return "function " + node.text +
             (spec ? " (" + std::string(spec->arrow_name) + ")" : std::string());
    }
    case ExprKind::kCast:
      return "cast to " + node.type_name;
    case ExprKind::kCase:
      return "'case'";
    default:
      return "expression";
  }
}

arrow::Result<Expression> LowerAndBind(const ExprNode& node, const arrow::Schema& schema) {
  Lowering lowering(schema);
  ARROW_ASSIGN_OR_RAISE(auto unbound, lowering.Lower(node));
  return unbound.Bind(schema);
}

// Binding `node` failed with `failure`: finds the innermost sub-expression whose arguments bind
// but which does not, and names it, with the argument types.
arrow::Status Diagnose(const ExprNode& node, const arrow::Schema& schema,
                       const arrow::Status& failure) {
  std::string types;
  for (const auto& child : node.args) {
    auto bound = LowerAndBind(*child, schema);
    if (!bound.ok()) return Diagnose(*child, schema, bound.status());
    if (!types.empty()) types += ", ";
    types += bound->type() ? bound->type()->ToString() : "?";
  }
  return arrow::Status::TypeError(
      "type mismatch at ", ToString(node.position), " in ", Quoted(node), ": ",
      DescribeOperation(node), " does not accept (", types, ") [",
      OneLine(failure.message()), "]");
}

}  // namespace

arrow::Result<BoundExpression> BindExpression(const ExprPtr& ast,
                                              const std::shared_ptr<arrow::Schema>& schema) {
  if (ast == nullptr || schema == nullptr) {
    return arrow::Status::Invalid("BindExpression: null expression or schema");
  }
  if (ast->depth > kMaxExpressionDepth) {
    return arrow::Status::Invalid("expression tree deeper than ", kMaxExpressionDepth,
                                  " levels");
  }
  Lowering lowering(*schema);
  ARROW_ASSIGN_OR_RAISE(auto unbound, lowering.Lower(*ast));
  auto bound = unbound.Bind(*schema);
  if (!bound.ok()) return Diagnose(*ast, *schema, bound.status());
  BoundExpression out;
  out.ast = ast;
  out.text = FormatExpression(*ast);
  out.type = bound->type()->GetSharedPtr();
  out.expression = *std::move(bound);
  out.input_schema = schema;
  return out;
}

arrow::Result<BoundExpression> BindFilter(const ExprPtr& ast,
                                          const std::shared_ptr<arrow::Schema>& schema) {
  ARROW_ASSIGN_OR_RAISE(auto bound, BindExpression(ast, schema));
  if (bound.type->id() != arrow::Type::BOOL) {
    return arrow::Status::TypeError("filter ", QuoteInput(bound.text, kQuotedTextBytes),
                                    " has type ", bound.type->ToString(),
                                    "; a filter must be bool");
  }
  return bound;
}

arrow::Result<BoundProjection> BindProjection(const std::vector<ProjectionItem>& items,
                                              const std::shared_ptr<arrow::Schema>& schema) {
  if (items.empty()) return arrow::Status::Invalid("empty projection; expected one item or more");
  BoundProjection out;
  out.input_schema = schema;
  arrow::FieldVector fields;
  std::set<std::string> names;
  for (size_t i = 0; i < items.size(); ++i) {
    const ProjectionItem& item = items[i];
    ARROW_ASSIGN_OR_RAISE(auto bound, BindExpression(item.expr, schema));
    std::shared_ptr<arrow::Field> field;
    if (!item.alias.empty()) {
      field = arrow::field(item.alias, bound.type);
    } else if (item.expr->kind == ExprKind::kColumn) {
      field = schema->GetFieldByName(item.expr->text);
    } else {
      field = arrow::field(bound.text, bound.type);
    }
    if (!names.insert(field->name()).second) {
      return arrow::Status::Invalid("projection item ", i + 1, " (",
                                    QuoteInput(bound.text, kQuotedTextBytes),
                                    ") repeats the output column name ",
                                    QuoteInput(field->name(), kQuotedTextBytes),
                                    "; give it another name with 'as'");
    }
    fields.push_back(std::move(field));
    out.expressions.push_back(std::move(bound));
  }
  out.output_schema = arrow::schema(std::move(fields));
  return out;
}

arrow::Result<BoundExpression> CompileFilter(std::string_view text,
                                             const std::shared_ptr<arrow::Schema>& schema) {
  ARROW_ASSIGN_OR_RAISE(auto ast, ParseExpression(text));
  return BindFilter(ast, schema);
}

arrow::Result<BoundProjection> CompileProjection(std::string_view text,
                                                 const std::shared_ptr<arrow::Schema>& schema) {
  ARROW_ASSIGN_OR_RAISE(auto items, ParseProjectionList(text));
  return BindProjection(items, schema);
}

}  // namespace sabot
