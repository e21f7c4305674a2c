#include "substrait_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <string_view>

#include <arrow/compute/api_scalar.h>
#include <arrow/compute/expression.h>
#include <arrow/engine/substrait/serde.h>
#include <arrow/scalar.h>
#include <arrow/type.h>

namespace sabot::python {
namespace {

namespace cp = arrow::compute;

const std::map<std::string, std::string, std::less<>>& InfixOperators() {
  static const auto* ops = new std::map<std::string, std::string, std::less<>>{
      {"add", "+"},          {"add_checked", "+"},
      {"subtract", "-"},     {"subtract_checked", "-"},
      {"multiply", "*"},     {"multiply_checked", "*"},
      {"divide", "/"},       {"divide_checked", "/"},
      {"equal", "="},        {"not_equal", "!="},
      {"less", "<"},         {"less_equal", "<="},
      {"greater", ">"},      {"greater_equal", ">="},
      {"and", "and"},        {"and_kleene", "and"},
      {"or", "or"},          {"or_kleene", "or"},
  };
  return *ops;
}

// Arrow functions with a same-meaning function of the language, by the language's name.
const std::map<std::string, std::string, std::less<>>& Functions() {
  static const auto* fns = new std::map<std::string, std::string, std::less<>>{
      {"abs", "abs"},     {"abs_checked", "abs"},     {"ceil", "ceil"},   {"floor", "floor"},
      {"sqrt", "sqrt"},   {"sqrt_checked", "sqrt"},   {"power", "power"}, {"sign", "sign"},
      {"power_checked", "power"},                     {"coalesce", "coalesce"},
  };
  return *fns;
}

std::string Quote(std::string_view text, char quote) {
  std::string out(1, quote);
  for (unsigned char c : text) {
    if (quote == '`') {
      out += c == '`' ? std::string("``") : std::string(1, static_cast<char>(c));
      continue;
    }
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\0': out += "\\0"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += quote;
  return out;
}

arrow::Result<std::string> Literal(const arrow::Scalar& scalar) {
  if (!scalar.is_valid) return std::string("null");
  const arrow::DataType& type = *scalar.type;
  switch (type.id()) {
    case arrow::Type::BOOL:
      return std::string(static_cast<const arrow::BooleanScalar&>(scalar).value ? "true"
                                                                                : "false");
    case arrow::Type::INT64: {
      int64_t v = static_cast<const arrow::Int64Scalar&>(scalar).value;
      // The language reads "-5" as a literal; INT64_MIN too.
      return std::to_string(v);
    }
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::UINT8:
    case arrow::Type::UINT16:
    case arrow::Type::UINT32:
    case arrow::Type::UINT64:
    case arrow::Type::FLOAT:
      return type.ToString() + " " + Quote(scalar.ToString(), '\'');
    case arrow::Type::DOUBLE: {
      double v = static_cast<const arrow::DoubleScalar&>(scalar).value;
      if (!std::isfinite(v)) {
        return arrow::Status::NotImplemented("the literal ", v,
                                             " is not finite; the expression language has no "
                                             "form for it");
      }
      // The shortest text that reads back as the same double.
      char buf[64];
      std::to_chars_result written = std::to_chars(buf, buf + sizeof(buf), v);
      std::string text(buf, written.ptr);
      if (text.find_first_of(".eE") == std::string::npos) text += ".0";
      // A negative literal is the language's too, but parenthesized it stays one operand.
      return v < 0 ? "(" + text + ")" : text;
    }
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
      return Quote(static_cast<const arrow::BaseBinaryScalar&>(scalar).view(), '\'');
    case arrow::Type::DATE32:
      return "date " + Quote(scalar.ToString(), '\'');
    case arrow::Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampType&>(type);
      if (!ts.timezone().empty()) {
        return arrow::Status::NotImplemented(
            "timestamp literals with a time zone have no form in the expression language");
      }
      static constexpr const char* kUnits[] = {"s", "ms", "us", "ns"};
      return std::string("timestamp[") + kUnits[static_cast<int>(ts.unit())] + "] " +
             Quote(scalar.ToString(), '\'');
    }
    default:
      return arrow::Status::NotImplemented("a literal of type ", type.ToString(),
                                           " has no form in the expression language "
                                           "(docs/expressions.md)");
  }
}

arrow::Result<std::string> Text(const cp::Expression& expr, const arrow::Schema& schema) {
  if (const arrow::Datum* datum = expr.literal()) {
    if (!datum->is_scalar()) {
      return arrow::Status::NotImplemented("a non-scalar literal has no form in the language");
    }
    return Literal(*datum->scalar());
  }
  if (const arrow::FieldRef* ref = expr.field_ref()) {
    if (const std::string* name = ref->name()) return Quote(*name, '`');
    ARROW_ASSIGN_OR_RAISE(arrow::FieldPath path, ref->FindOne(schema));
    if (path.indices().size() != 1) {
      return arrow::Status::NotImplemented("nested field references (", ref->ToString(),
                                           ") have no form in the expression language");
    }
    return Quote(schema.field(path.indices()[0])->name(), '`');
  }
  const cp::Expression::Call* call = expr.call();
  if (call == nullptr) return arrow::Status::Invalid("an expression of unknown form");
  std::vector<std::string> args;
  for (const cp::Expression& arg : call->arguments) {
    ARROW_ASSIGN_OR_RAISE(std::string text, Text(arg, schema));
    args.push_back(std::move(text));
  }
  const std::string& fn = call->function_name;
  auto infix = InfixOperators().find(fn);
  if (infix != InfixOperators().end() && args.size() == 2) {
    return "(" + args[0] + " " + infix->second + " " + args[1] + ")";
  }
  if (args.size() == 1) {
    if (fn == "invert") return "(not " + args[0] + ")";
    if (fn == "negate" || fn == "negate_checked") return "(-" + args[0] + ")";
    if (fn == "is_valid") return "(" + args[0] + " is not null)";
    if (fn == "is_null") {
      const auto* options = static_cast<const cp::NullOptions*>(call->options.get());
      if (options != nullptr && options->nan_is_null) {
        return arrow::Status::NotImplemented(
            "is_null with nan_is_null=true has no form in the expression language");
      }
      return "(" + args[0] + " is null)";
    }
  }
  auto named = Functions().find(fn);
  if (named != Functions().end()) {
    std::string out = named->second + "(";
    for (size_t i = 0; i < args.size(); ++i) out += (i ? ", " : "") + args[i];
    return out + ")";
  }
  return arrow::Status::NotImplemented(
      "the function '", fn,
      "' has no form in Sabot's expression language (docs/expressions.md lists what does); "
      "write the expression as text instead");
}

}  // namespace

arrow::Result<std::vector<std::pair<std::string, std::string>>> SubstraitToText(
    const arrow::Buffer& serialized) {
  ARROW_ASSIGN_OR_RAISE(arrow::engine::BoundExpressions bound,
                        arrow::engine::DeserializeExpressions(serialized));
  std::vector<std::pair<std::string, std::string>> out;
  for (const arrow::engine::NamedExpression& named : bound.named_expressions) {
    auto text = Text(named.expression, *bound.schema);
    if (!text.ok()) {
      return text.status().WithMessage("expression ", named.expression.ToString(), ": ",
                                       text.status().message());
    }
    out.emplace_back(named.name, *std::move(text));
  }
  return out;
}

}  // namespace sabot::python
