#include "sabot/dataflow/expression_binder.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/type.h>

#include "sabot/dataflow/expression_catalog.h"
#include "sabot/dataflow/expression_parser.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::Schema> TestSchema() {
  return arrow::schema({
      arrow::field("i", arrow::int64()),
      arrow::field("j", arrow::int32(), /*nullable=*/false),
      arrow::field("x", arrow::float64()),
      arrow::field("s", arrow::utf8()),
      arrow::field("b", arrow::boolean()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO)),
      arrow::field("d", arrow::date32()),
      arrow::field("weird name", arrow::int16()),
  });
}

arrow::Result<BoundExpression> Bind(const std::string& text) {
  ARROW_ASSIGN_OR_RAISE(auto ast, ParseExpression(text));
  return BindExpression(ast, TestSchema());
}

std::string TypeOf(const std::string& text) {
  auto bound = Bind(text);
  if (!bound.ok()) return "ERROR " + bound.status().ToString();
  EXPECT_TRUE(bound->expression.IsBound()) << text;
  return bound->type->ToString();
}

TEST(ExpressionBinderTest, TypesOfOperators) {
  EXPECT_EQ(TypeOf("i + 1"), "int64");
  EXPECT_EQ(TypeOf("j + 1"), "int64");
  EXPECT_EQ(TypeOf("j * 1.5"), "double");
  EXPECT_EQ(TypeOf("i / 2"), "int64");
  EXPECT_EQ(TypeOf("i % 2"), "int64");
  EXPECT_EQ(TypeOf("-x"), "double");
  EXPECT_EQ(TypeOf("`weird name` + 1"), "int64");
  EXPECT_EQ(TypeOf("i > 1 and b or not b"), "bool");
  EXPECT_EQ(TypeOf("s = 'a'"), "bool");
  EXPECT_EQ(TypeOf("i is null"), "bool");
  EXPECT_EQ(TypeOf("s is not null"), "bool");
  EXPECT_EQ(TypeOf("j in (1, 2, null)"), "bool");
  EXPECT_EQ(TypeOf("x not between 1 and 2.5"), "bool");
  EXPECT_EQ(TypeOf("ts >= timestamp '2024-01-01 00:00:00'"), "bool");
  EXPECT_EQ(TypeOf("d < date '2024-01-01'"), "bool");
  EXPECT_EQ(TypeOf("ts + interval 5 minutes"), "timestamp[us]");
  EXPECT_EQ(TypeOf("i + null"), "int64");
  EXPECT_EQ(TypeOf("b and null"), "bool");
  EXPECT_EQ(TypeOf("case when i > 0 then 'pos' when i < 0 then 'neg' else 'zero' end"),
            "string");
  EXPECT_EQ(TypeOf("case when b then x end"), "double");
  EXPECT_EQ(TypeOf("if(b, i, j)"), "int64");
}

TEST(ExpressionBinderTest, TypesOfCasts) {
  const std::vector<std::pair<std::string, std::string>> casts = {
      {"bool", "bool"},       {"int8", "int8"},       {"int16", "int16"},
      {"int32", "int32"},     {"int64", "int64"},     {"uint8", "uint8"},
      {"uint16", "uint16"},   {"uint32", "uint32"},   {"uint64", "uint64"},
      {"float32", "float"},   {"float64", "double"},  {"string", "string"},
  };
  for (const auto& [name, type] : casts) {
    EXPECT_EQ(TypeOf("cast(i as " + name + ")"), type) << name;
  }
  EXPECT_EQ(TypeOf("cast(s as date32)"), "date32[day]");
  EXPECT_EQ(TypeOf("cast(s as timestamp[ms])"), "timestamp[ms]");
  EXPECT_EQ(TypeOf("cast(i as duration[s])"), "duration[s]");
}

TEST(ExpressionBinderTest, EveryAllowedFunctionBinds) {
  // Each allowed function with arguments of a type it accepts, and the result type.
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"abs(i)", "int64"},
      {"ceil(x)", "double"},
      {"coalesce(i, j, 0)", "int64"},
      {"concat(s, '-', s)", "string"},
      {"contains(s, 'ab')", "bool"},
      {"day(ts)", "int64"},
      {"ends_with(s, 'z')", "bool"},
      {"floor(x)", "double"},
      {"hour(ts)", "int64"},
      {"if(b, 'y', 'n')", "string"},
      {"length(s)", "int32"},
      {"lower(s)", "string"},
      {"minute(ts)", "int64"},
      {"month(d)", "int64"},
      {"power(x, 2)", "double"},
      {"round(x, 2)", "double"},
      {"second(ts)", "int64"},
      {"sign(x)", "double"},
      {"sqrt(x)", "double"},
      {"starts_with(s, 'a')", "bool"},
      {"substr(s, 2, 3)", "string"},
      {"trim(s)", "string"},
      {"upper(s)", "string"},
      {"year(ts)", "int64"},
  };
  ASSERT_EQ(calls.size(), AllFunctions().size());
  size_t k = 0;
  for (const FunctionSpec& spec : AllFunctions()) {
    ASSERT_EQ(calls[k].first.substr(0, spec.name.size() + 1), std::string(spec.name) + "(");
    EXPECT_EQ(TypeOf(calls[k].first), calls[k].second) << calls[k].first;
    ++k;
  }
}

TEST(ExpressionBinderTest, UnknownColumnNamesItAndTheAvailableOnes) {
  ASSERT_RAISES_WITH(KeyError, "unknown column 'amount' at 1:5; available columns: 'i', 'j', "
                               "'x', 's', 'b', 'ts', 'd', 'weird name'",
                     Bind("i + amount").status());
  ASSERT_RAISES_WITH(KeyError, "unknown column 'I' at 1:1", Bind("I").status());
  auto dup = arrow::schema({arrow::field("a", arrow::int64()), arrow::field("a", arrow::utf8())});
  ASSERT_OK_AND_ASSIGN(auto ast, ParseExpression("a + 1"));
  ASSERT_RAISES_WITH(KeyError, "ambiguous column 'a' at 1:1", BindExpression(ast, dup).status());
}

TEST(ExpressionBinderTest, TypeMismatchNamesTheInnermostSubexpression) {
  ASSERT_RAISES_WITH(TypeError,
                     "type mismatch at 1:3 in 'i + s': '+' (add_checked) does not accept "
                     "(int64, string)",
                     Bind("i + s").status());
  ASSERT_RAISES_WITH(TypeError,
                     "type mismatch at 1:16 in 'lower(i)': function lower (utf8_lower) does not "
                     "accept (int64)",
                     Bind("abs(i) > 1 and lower(i) = 'x'").status());
  ASSERT_RAISES_WITH(TypeError, "in 'not i': 'not' (invert) does not accept (int64)",
                     Bind("not i").status());
  ASSERT_RAISES_WITH(TypeError, "in 'b and s': 'and' (and_kleene) does not accept (bool, string)",
                     Bind("b and s").status());
  ASSERT_RAISES_WITH(TypeError, "in 'd + 1.5'", Bind("d + 1.5").status());
  ASSERT_RAISES_WITH(TypeError, "in 'cast(b as date32)': cast to date32 does not accept (bool)",
                     Bind("cast(b as date32)").status());
  ASSERT_RAISES_WITH(TypeError, "'between' does not accept (string, int64, int64)",
                     Bind("s between 1 and 2").status());
}

TEST(ExpressionBinderTest, LiteralChecks) {
  ASSERT_RAISES_WITH(TypeError, "string literal '\\xff' at 1:6 is not valid UTF-8",
                     Bind("s == '\\xff'").status());
  ASSERT_RAISES_WITH(TypeError, "string literal '\\xc3(' at 1:6 is not valid UTF-8",
                     Bind("s == string '\\xc3('").status());
  ASSERT_RAISES_WITH(TypeError, "substr start 0 at 1:11 is out of range",
                     Bind("substr(s, 0, 2)").status());
  ASSERT_RAISES_WITH(TypeError, "substr length -1 at 1:14 is negative",
                     Bind("substr(s, 1, -1)").status());
}

TEST(ExpressionBinderTest, FilterMustBeBool) {
  ASSERT_OK_AND_ASSIGN(auto ast, ParseExpression("i + 1"));
  ASSERT_RAISES_WITH(TypeError, "filter 'i + 1' has type int64; a filter must be bool",
                     BindFilter(ast, TestSchema()).status());
  ASSERT_OK(CompileFilter("i > 1", TestSchema()).status());
  ASSERT_RAISES_WITH(TypeError, "has type null", CompileFilter("null", TestSchema()).status());
  ASSERT_RAISES_WITH(Invalid, "expression error at 1:5", CompileFilter("i > )", TestSchema()).status());
}

TEST(ExpressionBinderTest, ProjectionNamesAndTypes) {
  ASSERT_OK_AND_ASSIGN(auto projection,
                       CompileProjection("j, i * 2 as doubled, x + 1, `weird name`", TestSchema()));
  const auto& out = *projection.output_schema;
  ASSERT_EQ(out.num_fields(), 4);
  EXPECT_EQ(out.field(0)->name(), "j");
  EXPECT_FALSE(out.field(0)->nullable());  // a plain column keeps its field
  EXPECT_EQ(out.field(1)->name(), "doubled");
  EXPECT_EQ(out.field(1)->type()->id(), arrow::Type::INT64);
  EXPECT_EQ(out.field(2)->name(), "x + 1");
  EXPECT_EQ(out.field(2)->type()->id(), arrow::Type::DOUBLE);
  EXPECT_EQ(out.field(3)->name(), "weird name");
  EXPECT_EQ(projection.expressions[1].text, "i * 2");
  ASSERT_RAISES_WITH(Invalid, "projection item 2 ('i + 0') repeats the output column name 'i'",
                     CompileProjection("i, i + 0 as i", TestSchema()).status());
  ASSERT_RAISES_WITH(KeyError, "unknown column 'nope' at 1:4",
                     CompileProjection("i, nope", TestSchema()).status());
}

}  // namespace
}  // namespace sabot
