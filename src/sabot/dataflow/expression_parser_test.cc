#include "sabot/dataflow/expression_parser.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/scalar.h>
#include <arrow/type.h>

#include "sabot/dataflow/expression_catalog.h"
#include "sabot/dataflow/expression_printer.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

// Fully parenthesized rendering of a tree, independent of the canonical printer, so precedence
// tests check the tree's shape and not the printer's choice of parentheses.
std::string Shape(const ExprNode& node) {
  auto args = [&](size_t from) {
    std::string out;
    for (size_t i = from; i < node.args.size(); ++i) {
      if (i > from) out += " ";
      out += Shape(*node.args[i]);
    }
    return out;
  };
  switch (node.kind) {
    case ExprKind::kColumn: return node.text;
    case ExprKind::kLiteral: return FormatExpression(node);
    case ExprKind::kUnary:
      return "(" + std::string(UnaryOpSymbol(node.unary_op)) + " " + args(0) + ")";
    case ExprKind::kBinary:
      return "(" + std::string(BinaryOpSymbol(node.binary_op)) + " " + args(0) + ")";
    case ExprKind::kIsNull: return std::string(node.negated ? "(notnull " : "(isnull ") + args(0) + ")";
    case ExprKind::kIn: return std::string(node.negated ? "(notin " : "(in ") + args(0) + ")";
    case ExprKind::kBetween:
      return std::string(node.negated ? "(notbetween " : "(between ") + args(0) + ")";
    case ExprKind::kCall: return "(" + node.text + " " + args(0) + ")";
    case ExprKind::kCast: return "(cast " + args(0) + " " + node.type_name + ")";
    case ExprKind::kCase: return std::string(node.has_else ? "(case+else " : "(case ") + args(0) + ")";
  }
  return "?";
}

std::string ShapeOf(const std::string& text) {
  auto parsed = ParseExpression(text);
  if (!parsed.ok()) return "ERROR " + parsed.status().ToString();
  return Shape(**parsed);
}

TEST(ExpressionParserTest, PrecedenceAndAssociativity) {
  EXPECT_EQ(ShapeOf("a + b * c"), "(+ a (* b c))");
  EXPECT_EQ(ShapeOf("a * b + c"), "(+ (* a b) c)");
  EXPECT_EQ(ShapeOf("a - b - c"), "(- (- a b) c)");
  EXPECT_EQ(ShapeOf("a / b / c"), "(/ (/ a b) c)");
  EXPECT_EQ(ShapeOf("a % b * c"), "(* (% a b) c)");
  EXPECT_EQ(ShapeOf("(a - b) - c"), "(- (- a b) c)");
  EXPECT_EQ(ShapeOf("a - (b - c)"), "(- a (- b c))");
  EXPECT_EQ(ShapeOf("-a * b"), "(* (- a) b)");
  EXPECT_EQ(ShapeOf("- -a"), "(- (- a))");
  EXPECT_EQ(ShapeOf("a + b < c * d"), "(< (+ a b) (* c d))");
  EXPECT_EQ(ShapeOf("a = 1 or b = 2 and c = 3"), "(or (== a 1) (and (== b 2) (== c 3)))");
  EXPECT_EQ(ShapeOf("a or b or c"), "(or (or a b) c)");
  EXPECT_EQ(ShapeOf("a and b and c"), "(and (and a b) c)");
  EXPECT_EQ(ShapeOf("not a and b"), "(and (not a) b)");
  EXPECT_EQ(ShapeOf("not a = b"), "(not (== a b))");
  EXPECT_EQ(ShapeOf("not not a"), "(not (not a))");
  EXPECT_EQ(ShapeOf("a + 1 is null"), "(isnull (+ a 1))");
  EXPECT_EQ(ShapeOf("a is not null and b"), "(and (notnull a) b)");
  EXPECT_EQ(ShapeOf("a between 1 and 2 and b"), "(and (between a 1 2) b)");
  EXPECT_EQ(ShapeOf("a + 1 not between b - 1 and b * 2"),
            "(notbetween (+ a 1) (- b 1) (* b 2))");
  EXPECT_EQ(ShapeOf("a in (1, 2 + 3, b) or c"), "(or (in a 1 (+ 2 3) b) c)");
  EXPECT_EQ(ShapeOf("a not in (1)"), "(notin a 1)");
  EXPECT_EQ(ShapeOf("(a or b) and c"), "(and (or a b) c)");
}

TEST(ExpressionParserTest, ComparisonSpellings) {
  EXPECT_EQ(ShapeOf("a = b"), "(== a b)");
  EXPECT_EQ(ShapeOf("a == b"), "(== a b)");
  EXPECT_EQ(ShapeOf("a != b"), "(!= a b)");
  EXPECT_EQ(ShapeOf("a <> b"), "(!= a b)");
  EXPECT_EQ(ShapeOf("a < b"), "(< a b)");
  EXPECT_EQ(ShapeOf("a <= b"), "(<= a b)");
  EXPECT_EQ(ShapeOf("a > b"), "(> a b)");
  EXPECT_EQ(ShapeOf("a >= b"), "(>= a b)");
  EXPECT_EQ(ShapeOf("A AND B OR NOT C IS NULL"), "(or (and A B) (not (isnull C)))");
}

TEST(ExpressionParserTest, Literals) {
  ASSERT_OK_AND_ASSIGN(auto i, ParseExpression("42"));
  EXPECT_EQ(i->literal_kind, LiteralKind::kInt64);
  EXPECT_EQ(i->int_value, 42);
  ASSERT_OK_AND_ASSIGN(auto max, ParseExpression("9223372036854775807"));
  EXPECT_EQ(max->int_value, std::numeric_limits<int64_t>::max());
  ASSERT_OK_AND_ASSIGN(auto min, ParseExpression("-9223372036854775808"));
  EXPECT_EQ(min->int_value, std::numeric_limits<int64_t>::min());
  ASSERT_OK_AND_ASSIGN(auto f, ParseExpression("2.5e3"));
  EXPECT_EQ(f->literal_kind, LiteralKind::kFloat64);
  EXPECT_EQ(f->float_value, 2500.0);
  ASSERT_OK_AND_ASSIGN(auto g, ParseExpression(".5"));
  EXPECT_EQ(g->float_value, 0.5);
  ASSERT_OK_AND_ASSIGN(auto nz, ParseExpression("-0.0"));
  EXPECT_TRUE(std::signbit(nz->float_value));
  ASSERT_OK_AND_ASSIGN(auto s, ParseExpression(R"('it\'s \\ \n\t\r\0 \x41\"')"));
  EXPECT_EQ(s->literal_kind, LiteralKind::kString);
  EXPECT_EQ(s->text, std::string("it's \\ \n\t\r\0 A\"", 14));
  ASSERT_OK_AND_ASSIGN(auto utf8, ParseExpression("'h\xc3\xa9'"));
  EXPECT_EQ(utf8->text, "h\xc3\xa9");
  ASSERT_OK_AND_ASSIGN(auto t, ParseExpression("TRUE"));
  EXPECT_EQ(t->literal_kind, LiteralKind::kBool);
  EXPECT_TRUE(t->bool_value);
  ASSERT_OK_AND_ASSIGN(auto fa, ParseExpression("false"));
  EXPECT_FALSE(fa->bool_value);
  ASSERT_OK_AND_ASSIGN(auto n, ParseExpression("Null"));
  EXPECT_EQ(n->literal_kind, LiteralKind::kNull);
  ASSERT_OK_AND_ASSIGN(auto ts, ParseExpression("timestamp '2024-01-01 00:00:00'"));
  EXPECT_EQ(ts->literal_kind, LiteralKind::kTyped);
  EXPECT_EQ(ts->type_name, "timestamp[us]");
  EXPECT_EQ(ts->text, "2024-01-01 00:00:00");
  ASSERT_OK_AND_ASSIGN(auto tsms, ParseExpression("TIMESTAMP[MS] '2024-01-01T12:00:00'"));
  EXPECT_EQ(tsms->type_name, "timestamp[ms]");
  ASSERT_OK_AND_ASSIGN(auto d, ParseExpression("date '2024-02-29'"));
  EXPECT_EQ(d->type_name, "date32");
  ASSERT_OK_AND_ASSIGN(auto i8, ParseExpression("int8 '-5'"));
  EXPECT_EQ(i8->type_name, "int8");
  ASSERT_OK_AND_ASSIGN(auto iv, ParseExpression("interval 5 MINUTE"));
  EXPECT_EQ(iv->literal_kind, LiteralKind::kInterval);
  EXPECT_EQ(iv->int_value, 5);
  EXPECT_EQ(iv->text, "minutes");
}

TEST(ExpressionParserTest, Columns) {
  ASSERT_OK_AND_ASSIGN(auto c, ParseExpression("user_id"));
  EXPECT_EQ(c->kind, ExprKind::kColumn);
  EXPECT_EQ(c->text, "user_id");
  ASSERT_OK_AND_ASSIGN(auto q, ParseExpression("`weird name``s`"));
  EXPECT_EQ(q->kind, ExprKind::kColumn);
  EXPECT_EQ(q->text, "weird name`s");
  ASSERT_OK_AND_ASSIGN(auto kw, ParseExpression("`and` + `null`"));
  EXPECT_EQ(Shape(*kw), "(+ and null)");
  // A type name is a column unless a string follows; 'interval' unless a number follows.
  EXPECT_EQ(ShapeOf("date = timestamp"), "(== date timestamp)");
  EXPECT_EQ(ShapeOf("interval + 1"), "(+ interval 1)");
  // Columns are case-sensitive; keywords and functions are not.
  ASSERT_OK_AND_ASSIGN(auto upper, ParseExpression("ABS(Amount)"));
  EXPECT_EQ(Shape(*upper), "(abs Amount)");
}

TEST(ExpressionParserTest, Positions) {
  ASSERT_OK_AND_ASSIGN(auto e, ParseExpression("a +\n  bb * 3"));
  EXPECT_EQ(e->position.line, 1);
  EXPECT_EQ(e->position.column, 3);
  const ExprNode& product = *e->args[1];
  EXPECT_EQ(product.position.line, 2);
  EXPECT_EQ(product.position.column, 6);
  EXPECT_EQ(product.args[0]->position.column, 3);
}

TEST(ExpressionCatalogTest, AllowlistIsSortedAndFound) {
  const auto functions = AllFunctions();
  for (size_t k = 0; k < functions.size(); ++k) {
    if (k > 0) {
      EXPECT_LT(functions[k - 1].name, functions[k].name);
    }
    EXPECT_EQ(FindFunction(functions[k].name), &functions[k]);
    std::string upper(functions[k].name);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(FindFunction(upper), &functions[k]);
  }
  EXPECT_EQ(FindFunction("hash"), nullptr);
  EXPECT_EQ(FindFunction(""), nullptr);
  EXPECT_EQ(FindFunction("zzz"), nullptr);
}

TEST(ExpressionCatalogTest, TypeNames) {
  for (const char* spelling : {"bool", "boolean", "INT8", "int16", "int32", "int64", "uint8",
                               "uint16", "uint32", "uint64", "float", "float32", "double",
                               "float64", "string", "utf8", "date", "date32", "timestamp",
                               "duration"}) {
    auto canonical = CanonicalTypeName(spelling, "");
    ASSERT_TRUE(canonical.has_value()) << spelling;
    ASSERT_OK_AND_ASSIGN(auto type, TypeFromCanonicalName(*canonical));
    // The canonical name is its own canonical name (base and [unit] are passed apart).
    const size_t bracket = canonical->find('[');
    if (bracket == std::string::npos) {
      EXPECT_EQ(CanonicalTypeName(*canonical, ""), canonical) << spelling;
    } else {
      EXPECT_EQ(CanonicalTypeName(canonical->substr(0, bracket),
                                  canonical->substr(bracket + 1,
                                                    canonical->size() - bracket - 2)),
                canonical)
          << spelling;
    }
    EXPECT_NE(type, nullptr);
  }
  EXPECT_EQ(CanonicalTypeName("timestamp", "NS"), "timestamp[ns]");
  ASSERT_OK_AND_ASSIGN(auto ns, TypeFromCanonicalName("timestamp[ns]"));
  EXPECT_TRUE(ns->Equals(arrow::timestamp(arrow::TimeUnit::NANO)));
  ASSERT_OK_AND_ASSIGN(auto dur, TypeFromCanonicalName("duration[ms]"));
  EXPECT_TRUE(dur->Equals(arrow::duration(arrow::TimeUnit::MILLI)));
  EXPECT_FALSE(CanonicalTypeName("int64", "ms").has_value());
  EXPECT_FALSE(CanonicalTypeName("timestamp", "h").has_value());
  EXPECT_FALSE(CanonicalTypeName("decimal", "").has_value());
  EXPECT_FALSE(TypeFromCanonicalName("double").ok());  // an alias, not canonical
  ASSERT_OK_AND_ASSIGN(auto minutes, IntervalScalar(5, "minutes"));
  EXPECT_EQ(minutes->ToString(), "300");
  EXPECT_TRUE(minutes->type->Equals(arrow::duration(arrow::TimeUnit::SECOND)));
}

TEST(ExpressionParserTest, EveryAllowedFunctionParses) {
  for (const FunctionSpec& spec : AllFunctions()) {
    std::string text = std::string(spec.name) + "(";
    for (int i = 0; i < spec.min_args; ++i) {
      if (i > 0) text += ", ";
      switch (ArgRuleAt(spec, i)) {
        case ArgRule::kAny: text += "x"; break;
        case ArgRule::kIntLiteral: text += "2"; break;
        case ArgRule::kStringLiteral: text += "'p'"; break;
      }
    }
    text += ")";
    ASSERT_OK_AND_ASSIGN(auto call, ParseExpression(text));
    EXPECT_EQ(call->kind, ExprKind::kCall) << text;
    EXPECT_EQ(call->text, spec.name) << text;
    EXPECT_EQ(static_cast<int>(call->args.size()), spec.min_args) << text;
    // One argument too many (or too few for variadic-free specs) is an arity error.
    if (spec.max_args >= 0) {
      std::string too_many = std::string(spec.name) + "(";
      for (int i = 0; i <= spec.max_args; ++i) too_many += i > 0 ? ", 1" : "1";
      too_many += ")";
      ASSERT_RAISES_WITH(Invalid, "expected", ParseExpression(too_many).status());
    }
    ASSERT_RAISES_WITH(Invalid, "argument", ParseExpression(std::string(spec.name) + "()").status());
  }
}

TEST(ExpressionParserTest, CastCaseAndCalls) {
  EXPECT_EQ(ShapeOf("cast(a + 1 as INT32)"), "(cast (+ a 1) int32)");
  EXPECT_EQ(ShapeOf("cast(a as double)"), "(cast a float64)");
  EXPECT_EQ(ShapeOf("cast(a as timestamp[ns])"), "(cast a timestamp[ns])");
  EXPECT_EQ(ShapeOf("cast(a as boolean)"), "(cast a bool)");
  EXPECT_EQ(ShapeOf("case when a > 1 then 'x' when a > 0 then 'y' else 'z' end"),
            "(case+else (> a 1) 'x' (> a 0) 'y' 'z')");
  EXPECT_EQ(ShapeOf("case when a then 1 end"), "(case a 1)");
  EXPECT_EQ(ShapeOf("if(a > 0, a, -a)"), "(if (> a 0) a (- a))");
  EXPECT_EQ(ShapeOf("round(x, -2)"), "(round x -2)");
  EXPECT_EQ(ShapeOf("coalesce(a, b, c, 0)"), "(coalesce a b c 0)");
}

TEST(ExpressionParserTest, ProjectionLists) {
  ASSERT_OK_AND_ASSIGN(auto items, ParseProjectionList("user_id, amount * 2 AS doubled, `x y`"
                                                       " as `out put`"));
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].alias, "");
  EXPECT_EQ(items[1].alias, "doubled");
  EXPECT_EQ(Shape(*items[1].expr), "(* amount 2)");
  EXPECT_EQ(items[2].alias, "out put");
  ASSERT_OK_AND_ASSIGN(auto one, ParseProjectionItem("lower(name) as n"));
  EXPECT_EQ(one.alias, "n");
  ASSERT_RAISES_WITH(Invalid, "1:2: unexpected ','", ParseProjectionItem("a, b").status());
  ASSERT_RAISES_WITH(Invalid, "1:6: unexpected 'and'; expected an output column name",
                     ParseProjectionList("a as and").status());
  ASSERT_RAISES_WITH(Invalid, "1:3: unexpected 'as'; an alias is allowed only in a projection",
                     ParseExpression("a as b").status());
  ASSERT_RAISES_WITH(Invalid, "1:3: unexpected end of expression",
                     ParseProjectionList("a,").status());
}

struct BadInput {
  std::string text;
  std::string message;
};

TEST(ExpressionParserTest, ErrorsNamePositionTokenAndExpectation) {
  const std::vector<BadInput> cases = {
      {"", "1:1: empty expression"},
      {"   ", "1:1: empty expression"},
      {"a +", "1:4: unexpected end of expression; expected an operand"},
      {"a + )", "1:5: unexpected ')'; expected an operand"},
      {"(a + b", "1:7: unexpected end of expression; expected ')' to close the parenthesis"},
      {"a b", "1:3: unexpected 'b'; expected an operator or the end"},
      {"a < b < c", "1:7: unexpected '<'; comparisons do not chain"},
      {"a = b is null", "1:7: unexpected 'is'; comparisons do not chain"},
      {"a is b", "1:6: unexpected 'b'; expected 'null' or 'not null' after 'is'"},
      {"a is not 1", "1:10: unexpected '1'; expected 'null' after 'is not'"},
      {"a not b", "1:7: unexpected 'b'; expected 'in' or 'between' after 'not'"},
      {"a in 1", "1:6: unexpected '1'; expected '(' to open the list"},
      {"a in (1, 2", "1:11: unexpected end of expression; expected ',' or ')'"},
      {"a in ()", "1:7: unexpected ')'; expected an operand"},
      {"a between 1 or 2", "1:13: unexpected 'or'; expected 'and' between the bounds"},
      {"'abc", "1:1: unterminated string literal"},
      {"'a\\qb'", "1:3: invalid escape '\\\\q' in string literal"},
      {"'\\x4'", "1:2: invalid escape in string literal; expected two hex digits"},
      {"`abc", "1:1: unterminated quoted column name"},
      {"``", "1:1: empty quoted column name"},
      {"a $ b", "1:3: unexpected character '$'"},
      {"a + \x01", "1:5: unexpected character '\\x01'"},
      {"1.", "1:1: malformed number '1.'; expected a digit after the decimal point"},
      {"1e", "1:1: malformed number '1e'; expected a digit in the exponent"},
      {"12abc", "1:1: malformed number '12a'"},
      {"9223372036854775808", "1:1: integer literal '9223372036854775808' out of range"},
      {"-(9223372036854775808)", "1:3: integer literal"},
      {"1e999", "1:1: float literal '1e999' out of range"},
      {"1e-400", "1:1: float literal '1e-400' out of range"},
      {"foo(1)", "1:1: unknown function 'foo'; expected one of abs, ceil"},
      {"abs(1, 2)", "1:1: function abs called with 2 arguments; expected 1: abs(x)"},
      {"substr(s)", "function substr called with 1 argument; expected 2 to 3"},
      {"coalesce()", "function coalesce called with 0 arguments; expected at least 1"},
      {"round(x, y)", "1:10: argument 2 of round must be an integer literal"},
      {"starts_with(s, 1)", "1:16: argument 2 of starts_with must be a string literal"},
      {"abs(1", "1:6: unexpected end of expression; expected ',' or ')' in the arguments of abs"},
      {"cast(a int8)", "1:8: unexpected 'int8'; expected 'as' and a type name"},
      {"cast(a as int9)", "1:11: unknown type 'int9'; expected one of bool"},
      {"cast(a as timestamp[xs])", "1:11: unknown type 'timestamp'[xs]"},
      {"cast(a as 5)", "1:11: unexpected '5'; expected a type name after 'as'"},
      {"case a end", "1:6: unexpected 'a'; expected 'when' after 'case'"},
      {"case when a 1 end", "1:13: unexpected '1'; expected 'then'"},
      {"case when a then 1", "1:19: unexpected end of expression; expected 'when', 'else' or 'end'"},
      {"date '2024-13-45'", "1:6: invalid date32 literal '2024-13-45'"},
      {"interval 5 fortnights", "1:12: unexpected 'fortnights'; expected an interval unit"},
      {"interval 9223372036854775807 days", "1:1: interval 9223372036854775807 days overflows"},
      {"and", "1:1: unexpected 'and'; expected an operand"},
      {"a\n  + * b", "2:5: unexpected '*'; expected an operand"},
      {"a = 'long" + std::string(100, 'x') + "' b",
       "unexpected 'b'"},
      {"x + " + std::string(100, 'y') + "(1)", "...' (100 bytes)"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseExpression(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_TRUE(parsed.status().IsInvalid()) << c.text;
    EXPECT_NE(parsed.status().message().find(c.message), std::string::npos)
        << "input: " << c.text << "\nmessage: " << parsed.status().message()
        << "\nexpected to contain: " << c.message;
    EXPECT_EQ(parsed.status().message().rfind("expression error", 0), 0u) << c.text;
    EXPECT_LT(parsed.status().message().size(), 1200u) << c.text;
  }
}

TEST(ExpressionParserTest, ErrorMessagesArePrintableAscii) {
  // Found by fuzz_expression_parser: Arrow's own message about a bad typed literal quoted the
  // literal with its tab bytes unescaped.
  for (const std::string& text : {std::string("d = date '2024-02-\t\t\xff" "29'"),
                                 std::string("a\t+\t\x01"), std::string("`\t`(1)"),
                                 std::string("timestamp '\x80\t'")}) {
    auto parsed = ParseExpression(text);
    ASSERT_FALSE(parsed.ok()) << text;
    for (char c : parsed.status().message()) {
      ASSERT_TRUE(c >= 0x20 && c < 0x7f) << "byte " << static_cast<int>(c) << " in "
                                         << parsed.status().message();
    }
  }
}

TEST(ExpressionParserTest, LengthBound) {
  const std::string ok(kMaxExpressionBytes - 2, 'a');
  EXPECT_OK(ParseExpression("`" + ok + "`").status());
  ASSERT_RAISES_WITH(Invalid, "65537 bytes long; expected at most 65536",
                     ParseExpression(std::string(kMaxExpressionBytes + 1, 'a')).status());
  ExpressionLimits small;
  small.max_bytes = 4;
  ASSERT_RAISES_WITH(Invalid, "expected at most 4", ParseExpression("a + b", small).status());
}

TEST(ExpressionParserTest, DepthBoundOnNesting) {
  auto nested = [](int levels, const std::string& open, const std::string& close) {
    std::string text;
    for (int i = 0; i < levels; ++i) text += open;
    text += "a";
    for (int i = 0; i < levels; ++i) text += close;
    return text;
  };
  // The whole expression is one level, so 255 parentheses fit and 256 do not.
  EXPECT_OK(ParseExpression(nested(kMaxExpressionDepth - 1, "(", ")")).status());
  ASSERT_RAISES_WITH(Invalid, "nests deeper than 256 levels",
                     ParseExpression(nested(kMaxExpressionDepth, "(", ")")).status());
  ASSERT_RAISES_WITH(Invalid, "nests deeper than 256",
                     ParseExpression(nested(30000, "(", ")")).status());
  ExpressionLimits shallow;
  shallow.max_depth = 4;
  EXPECT_OK(ParseExpression(nested(3, "(", ")"), shallow).status());
  ASSERT_RAISES_WITH(Invalid, "1:4: expression nests deeper than 4 levels at '('",
                     ParseExpression(nested(4, "(", ")"), shallow).status());
  ASSERT_RAISES_WITH(Invalid, "expression tree deeper than 4 levels",
                     ParseExpression("a + a + a + a + a", shallow).status());
  ExpressionLimits huge;
  huge.max_depth = 1 << 30;  // clamped to kMaxExpressionDepth
  ASSERT_RAISES_WITH(Invalid, "nests deeper than 256",
                     ParseExpression(nested(kMaxExpressionDepth, "(", ")"), huge).status());
  ASSERT_RAISES_WITH(Invalid, "nests deeper than 256",
                     ParseExpression(nested(10000, "abs(", ")")).status());
  ASSERT_RAISES_WITH(Invalid, "nests deeper than 256",
                     ParseExpression(nested(10000, "not ", "")).status());
  ASSERT_RAISES_WITH(Invalid, "nests deeper than 256",
                     ParseExpression(nested(30000, "- ", "")).status());
}

TEST(ExpressionParserTest, DepthBoundOnLongChains) {
  // a + a + ... builds a left-deep tree without recursion in the parser; its depth is bounded
  // too, so later walks over the tree cannot overflow the stack.
  std::string chain = "a";
  for (int i = 0; i < kMaxExpressionDepth - 1; ++i) chain += " + a";
  ASSERT_OK_AND_ASSIGN(auto ok, ParseExpression(chain));
  EXPECT_EQ(ok->depth, kMaxExpressionDepth);
  ASSERT_RAISES_WITH(Invalid, "expression tree deeper than 256 levels",
                     ParseExpression(chain + " + a").status());
  std::string ors = "a";
  for (int i = 0; i < 10000; ++i) ors += " or a";
  ASSERT_RAISES_WITH(Invalid, "deeper than 256", ParseExpression(ors).status());
  // Wide is fine: a long IN list or argument list is not deep.
  std::string list = "a in (0";
  for (int i = 1; i < 5000; ++i) list += ", " + std::to_string(i);
  list += ")";
  ASSERT_OK_AND_ASSIGN(auto wide, ParseExpression(list));
  EXPECT_EQ(wide->args.size(), 5001u);
}

TEST(ExpressionParserTest, ExamplesOfTheDocsParse) {
  // docs/expressions.md, "Examples".
  for (const char* text : {
           "amount > 100 and status in ('paid', 'shipped')",
           "user_id is not null and not starts_with(email, 'test+')",
           "event_time >= timestamp '2024-01-01 00:00:00' and event_time < timestamp "
           "'2024-02-01 00:00:00'",
           "case when amount >= 1000 then 'large' when amount >= 100 then 'medium' else "
           "'small' end as size",
           "round(amount * 1.2, 2) as with_tax, cast(user_id as string) as uid, `order id`",
           "coalesce(discount, 0) between 0 and 0.5",
           "event_time + interval 5 minutes as deadline",
       }) {
    auto parsed = ParseProjectionList(text);
    EXPECT_TRUE(parsed.ok()) << text << ": " << parsed.status().ToString();
  }
}

}  // namespace
}  // namespace sabot
