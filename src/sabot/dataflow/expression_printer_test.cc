#include "sabot/dataflow/expression_printer.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sabot/dataflow/expression_catalog.h"
#include "sabot/dataflow/expression_parser.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

std::string Canonical(const std::string& text) {
  auto parsed = ParseExpression(text);
  if (!parsed.ok()) return "ERROR " + parsed.status().ToString();
  return FormatExpression(**parsed);
}

TEST(ExpressionPrinterTest, CanonicalText) {
  EXPECT_EQ(Canonical("A=1 AND b<>2"), "A == 1 and b != 2");
  EXPECT_EQ(Canonical("(a + b) * c"), "(a + b) * c");
  EXPECT_EQ(Canonical("a + (b * c)"), "a + b * c");
  EXPECT_EQ(Canonical("a - (b - c)"), "a - (b - c)");
  EXPECT_EQ(Canonical("(a - b) - c"), "a - b - c");
  EXPECT_EQ(Canonical("not (a or b)"), "not (a or b)");
  EXPECT_EQ(Canonical("(not a) = b"), "(not a) == b");
  EXPECT_EQ(Canonical("(a = b) = c"), "(a == b) == c");
  EXPECT_EQ(Canonical("-(5)"), "-(5)");
  EXPECT_EQ(Canonical("- 5"), "-5");
  EXPECT_EQ(Canonical("- -5"), "- -5");
  EXPECT_EQ(Canonical("-(-a)"), "- -a");
  EXPECT_EQ(Canonical("a - -5"), "a - -5");
  EXPECT_EQ(Canonical("1e20"), "1e+20");
  EXPECT_EQ(Canonical("2.50"), "2.5");
  EXPECT_EQ(Canonical("3.0"), "3.0");
  EXPECT_EQ(Canonical("'a\\'b\\\\c\\x01\n'"), "'a\\'b\\\\c\\x01\\n'");
  EXPECT_EQ(Canonical("'h\xc3\xa9'"), "'h\xc3\xa9'");
  EXPECT_EQ(Canonical("'\\xc3'"), "'\\xc3'");
  EXPECT_EQ(Canonical("`a b` + `and` + `x``y` + ok_1"), "`a b` + `and` + `x``y` + ok_1");
  EXPECT_EQ(Canonical("TIMESTAMP '2024-01-01 00:00:00'"), "timestamp[us] '2024-01-01 00:00:00'");
  EXPECT_EQ(Canonical("Interval 1 Hour"), "interval 1 hours");
  EXPECT_EQ(Canonical("CAST(a AS double)"), "cast(a as float64)");
  EXPECT_EQ(Canonical("CASE WHEN a THEN 1 ELSE 2 END"), "case when a then 1 else 2 end");
  EXPECT_EQ(Canonical("x NOT IN (1,2)"), "x not in (1, 2)");
  EXPECT_EQ(Canonical("x not between 1 and 2+3"), "x not between 1 and 2 + 3");
  EXPECT_EQ(Canonical("(a between 1 and 2) = true"), "(a between 1 and 2) == true");
  EXPECT_EQ(Canonical("a is not null"), "a is not null");
  EXPECT_EQ(Canonical("Substr(s, 1, 2)"), "substr(s, 1, 2)");
}

TEST(ExpressionPrinterTest, ProjectionItems) {
  ASSERT_OK_AND_ASSIGN(auto item, ParseProjectionItem("a+1 AS `my col`"));
  EXPECT_EQ(FormatProjectionItem(item), "a + 1 as `my col`");
  ASSERT_OK_AND_ASSIGN(auto plain, ParseProjectionItem("a"));
  EXPECT_EQ(FormatProjectionItem(plain), "a");
}

// Random trees over every node kind, operator, literal kind and function, for the round-trip
// property: parse(print(tree)) == tree.
class TreeGenerator {
 public:
  explicit TreeGenerator(uint64_t seed) : rng_(seed) {}

  ExprPtr Tree(int depth) {
    if (depth <= 1 || Pick(4) == 0) return Leaf();
    switch (Pick(9)) {
      case 0: return MakeUnary(Pick(2) ? UnaryOp::kNot : UnaryOp::kNegate, Tree(depth - 1));
      case 1:
      case 2:
        return MakeBinary(static_cast<BinaryOp>(Pick(13)), Tree(depth - 1), Tree(depth - 1));
      case 3: return MakeIsNull(Tree(depth - 1), Pick(2) == 1);
      case 4: {
        std::vector<ExprPtr> list;
        const int n = 1 + Pick(3);
        for (int i = 0; i < n; ++i) list.push_back(Tree(depth - 1));
        return MakeIn(Tree(depth - 1), std::move(list), Pick(2) == 1);
      }
      case 5:
        return MakeBetween(Tree(depth - 1), Tree(depth - 1), Tree(depth - 1), Pick(2) == 1);
      case 6: return Call(depth);
      case 7: return MakeCast(Tree(depth - 1), TypeName());
      default: {
        std::vector<ExprPtr> args;
        const int pairs = 1 + Pick(3);
        for (int i = 0; i < 2 * pairs; ++i) args.push_back(Tree(depth - 1));
        const bool has_else = Pick(2) == 1;
        if (has_else) args.push_back(Tree(depth - 1));
        return MakeCase(std::move(args), has_else);
      }
    }
  }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }

  std::string Name() {
    static const std::vector<std::string> kNames = {
        "a", "user_id", "_x9", "Amount", "and", "NULL", "with space", "back`tick", "", "1a",
        "date", "timestamp", "interval", "abs", "caf\xc3\xa9", "x\ny"};
    std::string name = kNames[Pick(static_cast<int>(kNames.size()))];
    return name.empty() ? "e" : name;
  }

  std::string Bytes() {
    std::string out;
    const int n = Pick(6);
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>(Pick(256)));
    return out;
  }

  std::string TypeName() {
    static const std::vector<std::string> kTypes = {
        "bool",    "int8",    "int16",   "int32",   "int64",        "uint8",
        "uint16",  "uint32",  "uint64",  "float32", "float64",      "string",
        "date32",  "timestamp[s]", "timestamp[ms]", "timestamp[us]", "timestamp[ns]",
        "duration[s]", "duration[ns]"};
    return kTypes[Pick(static_cast<int>(kTypes.size()))];
  }

  double Float() {
    static const std::vector<double> kSpecial = {0.0, -0.0, 1.0, -1.5, 1e300, -2.5e-300,
                                                 0.1, 123456789.125, 1e20};
    if (Pick(2) == 0) return kSpecial[Pick(static_cast<int>(kSpecial.size()))];
    std::uniform_real_distribution<double> dist(-1e6, 1e6);
    return dist(rng_);
  }

  ExprPtr Leaf() {
    switch (Pick(9)) {
      case 0: return MakeColumn(Name());
      case 1: return MakeNullLiteral();
      case 2: return MakeBoolLiteral(Pick(2) == 1);
      case 3: {
        static const std::vector<int64_t> kInts = {0, 1, -1, 42,
                                                   std::numeric_limits<int64_t>::max(),
                                                   std::numeric_limits<int64_t>::min()};
        if (Pick(2) == 0) return MakeInt64Literal(kInts[Pick(static_cast<int>(kInts.size()))]);
        return MakeInt64Literal(static_cast<int64_t>(rng_()));
      }
      case 4: return MakeFloat64Literal(Float());
      case 5: return MakeStringLiteral(Bytes());
      case 6: {
        static const std::vector<std::pair<std::string, std::string>> kTyped = {
            {"timestamp[us]", "2024-01-01 00:00:00"}, {"date32", "2024-02-29"},
            {"int8", "-5"}, {"float64", "1.5"}, {"timestamp[ms]", "1970-01-01T00:00:01"}};
        const auto& pick = kTyped[Pick(static_cast<int>(kTyped.size()))];
        return MakeTypedLiteral(pick.first, pick.second);
      }
      case 7: {
        static const std::vector<std::string> kUnits = {"nanoseconds", "seconds", "minutes",
                                                        "hours", "days"};
        return MakeIntervalLiteral(Pick(1000), kUnits[Pick(static_cast<int>(kUnits.size()))]);
      }
      default: return MakeColumn(Name());
    }
  }

  ExprPtr Call(int depth) {
    const auto functions = AllFunctions();
    const FunctionSpec& spec = functions[Pick(static_cast<int>(functions.size()))];
    int n = spec.min_args;
    if (spec.max_args < 0) n += Pick(3);
    else n += Pick(spec.max_args - spec.min_args + 1);
    std::vector<ExprPtr> args;
    for (int i = 0; i < n; ++i) {
      switch (ArgRuleAt(spec, i)) {
        case ArgRule::kAny: args.push_back(Tree(depth - 1)); break;
        case ArgRule::kIntLiteral: args.push_back(MakeInt64Literal(Pick(21) - 10)); break;
        case ArgRule::kStringLiteral: args.push_back(MakeStringLiteral(Bytes())); break;
      }
    }
    return MakeCall(std::string(spec.name), std::move(args));
  }

  std::mt19937_64 rng_;
};

TEST(ExpressionPrinterTest, RoundTripOverRandomTrees) {
  TreeGenerator generator(20261130);
  for (int i = 0; i < 20000; ++i) {
    const ExprPtr tree = generator.Tree(1 + i % 7);
    const std::string text = FormatExpression(*tree);
    auto parsed = ParseExpression(text);
    ASSERT_TRUE(parsed.ok()) << "tree " << i << " printed as: " << text << "\n"
                             << parsed.status().ToString();
    ASSERT_TRUE(ExprEquals(**parsed, *tree)) << "tree " << i << " printed as: " << text
                                             << "\nreparsed prints as: "
                                             << FormatExpression(**parsed);
    // Canonical text is a fixed point.
    ASSERT_EQ(FormatExpression(**parsed), text);
  }
}

TEST(ExpressionPrinterTest, RoundTripOfProjectionItems) {
  TreeGenerator generator(7);
  for (int i = 0; i < 2000; ++i) {
    ProjectionItem item{generator.Tree(1 + i % 5), i % 3 == 0 ? "" : "out `" + std::to_string(i)};
    const std::string text = FormatProjectionItem(item);
    ASSERT_OK_AND_ASSIGN(auto parsed, ParseProjectionItem(text));
    ASSERT_TRUE(ExprEquals(*parsed.expr, *item.expr)) << text;
    ASSERT_EQ(parsed.alias, item.alias) << text;
  }
}

}  // namespace
}  // namespace sabot
