#include "sabot/dataflow/expression_evaluation.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/scalar.h>
#include <arrow/type.h>

#include "sabot/dataflow/expression_binder.h"
#include "sabot/testing/assertions.h"

// Every expected value here is computed by plain C++ loops over the input columns (the
// reference), independently of Arrow's kernels, and compared value by value with what the
// evaluation produced.

namespace sabot {
namespace {

constexpr int kRows = 2000;

// The input, as plain vectors (nullopt = null), and as a record batch.
struct Input {
  std::vector<std::optional<int64_t>> i;
  std::vector<int32_t> j;
  std::vector<std::optional<double>> x;
  std::vector<std::optional<std::string>> s;
  std::vector<std::optional<bool>> b;
  std::vector<int64_t> ts;  // microseconds since the epoch
  std::shared_ptr<arrow::RecordBatch> batch;
};

Input MakeInput(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  static const std::vector<std::string> kWords = {"apple", "Banana", "  cherry ", "apricot",
                                                  "caf\xc3\xa9", "", "ab", "zebra"};
  Input in;
  arrow::Int64Builder ib;
  arrow::Int32Builder jb;
  arrow::DoubleBuilder xb;
  arrow::StringBuilder sb;
  arrow::BooleanBuilder bb;
  arrow::TimestampBuilder tb(arrow::timestamp(arrow::TimeUnit::MICRO),
                             arrow::default_memory_pool());
  for (int r = 0; r < kRows; ++r) {
    std::optional<int64_t> i;
    if (pick(10) != 0) i = pick(2001) - 1000;
    std::optional<double> x;
    if (pick(8) != 0) x = (pick(20001) - 10000) / 8.0;
    std::optional<std::string> s;
    if (pick(7) != 0) s = kWords[pick(static_cast<int>(kWords.size()))];
    std::optional<bool> b;
    if (pick(5) != 0) b = pick(2) == 1;
    const int32_t j = pick(10);
    // Around 2024-01-01 00:00:00 UTC (1704067200 s), +- 2 days, whole seconds.
    const int64_t ts = (1704067200LL + pick(4 * 86400) - 2 * 86400) * 1000000LL;
    in.i.push_back(i);
    in.j.push_back(j);
    in.x.push_back(x);
    in.s.push_back(s);
    in.b.push_back(b);
    in.ts.push_back(ts);
    EXPECT_OK(i ? ib.Append(*i) : ib.AppendNull());
    EXPECT_OK(jb.Append(j));
    EXPECT_OK(x ? xb.Append(*x) : xb.AppendNull());
    EXPECT_OK(s ? sb.Append(*s) : sb.AppendNull());
    EXPECT_OK(b ? bb.Append(*b) : bb.AppendNull());
    EXPECT_OK(tb.Append(ts));
  }
  auto schema = arrow::schema({arrow::field("i", arrow::int64()),
                               arrow::field("j", arrow::int32(), false),
                               arrow::field("x", arrow::float64()),
                               arrow::field("s", arrow::utf8()),
                               arrow::field("b", arrow::boolean()),
                               arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO))});
  arrow::ArrayVector columns(6);
  EXPECT_OK(ib.Finish(&columns[0]));
  EXPECT_OK(jb.Finish(&columns[1]));
  EXPECT_OK(xb.Finish(&columns[2]));
  EXPECT_OK(sb.Finish(&columns[3]));
  EXPECT_OK(bb.Finish(&columns[4]));
  EXPECT_OK(tb.Finish(&columns[5]));
  in.batch = arrow::RecordBatch::Make(schema, kRows, columns);
  return in;
}

using Tri = std::optional<bool>;  // Kleene truth value

Tri And(Tri a, Tri b) {
  if (a == false || b == false) return false;
  if (!a || !b) return std::nullopt;
  return true;
}
Tri Or(Tri a, Tri b) {
  if (a == true || b == true) return true;
  if (!a || !b) return std::nullopt;
  return false;
}

// The rows a filter must keep: those whose reference predicate is true.
void ExpectFilter(const Input& in, const std::string& text,
                  const std::function<Tri(int)>& reference) {
  SCOPED_TRACE(text);
  ASSERT_OK_AND_ASSIGN(auto predicate, CompileFilter(text, in.batch->schema()));
  ASSERT_OK_AND_ASSIGN(auto out, EvaluateFilter(in.batch, predicate));
  std::vector<int> keep;
  for (int r = 0; r < kRows; ++r) {
    if (reference(r) == true) keep.push_back(r);
  }
  ASSERT_EQ(out->num_rows(), static_cast<int64_t>(keep.size()));
  ASSERT_TRUE(out->schema()->Equals(*in.batch->schema()));
  for (int c = 0; c < out->num_columns(); ++c) {
    for (size_t k = 0; k < keep.size(); ++k) {
      ASSERT_OK_AND_ASSIGN(auto got, out->column(c)->GetScalar(static_cast<int64_t>(k)));
      ASSERT_OK_AND_ASSIGN(auto want, in.batch->column(c)->GetScalar(keep[k]));
      ASSERT_TRUE(got->Equals(*want)) << "column " << c << " output row " << k;
    }
  }
}

template <typename ArrayType, typename T>
void ExpectColumn(const Input& in, const std::string& text,
                  const std::function<std::optional<T>(int)>& reference) {
  SCOPED_TRACE(text);
  ASSERT_OK_AND_ASSIGN(auto projection, CompileProjection(text, in.batch->schema()));
  ASSERT_OK_AND_ASSIGN(auto out, EvaluateProjection(in.batch, projection));
  ASSERT_EQ(out->num_rows(), kRows);
  ASSERT_TRUE(out->schema()->Equals(*projection.output_schema));
  const auto* column = dynamic_cast<const ArrayType*>(out->column(0).get());
  ASSERT_NE(column, nullptr) << out->column(0)->type()->ToString();
  for (int r = 0; r < kRows; ++r) {
    const std::optional<T> want = reference(r);
    ASSERT_EQ(column->IsValid(r), want.has_value()) << "row " << r;
    if (!want) continue;
    if constexpr (std::is_same_v<T, std::string>) {
      ASSERT_EQ(column->GetString(r), *want) << "row " << r;
    } else if constexpr (std::is_floating_point_v<T>) {
      ASSERT_DOUBLE_EQ(column->Value(r), *want) << "row " << r;
    } else {
      ASSERT_EQ(column->Value(r), *want) << "row " << r;
    }
  }
}

class ExpressionEvaluationTest : public ::testing::Test {
 protected:
  Input in_ = MakeInput(42);
};

TEST_F(ExpressionEvaluationTest, FiltersWithKleeneLogic) {
  const Input& in = in_;
  auto gt = [&](int r, int64_t v) -> Tri {
    if (!in.i[r]) return std::nullopt;
    return *in.i[r] > v;
  };
  ExpectFilter(in, "i > 10", [&](int r) { return gt(r, 10); });
  ExpectFilter(in, "i > 10 and s is not null",
               [&](int r) { return And(gt(r, 10), Tri(in.s[r].has_value())); });
  ExpectFilter(in, "b or i > 500", [&](int r) { return Or(in.b[r], gt(r, 500)); });
  ExpectFilter(in, "not b", [&](int r) -> Tri {
    if (!in.b[r]) return std::nullopt;
    return !*in.b[r];
  });
  ExpectFilter(in, "b and null or j = 3", [&](int r) {
    return Or(And(in.b[r], std::nullopt), Tri(in.j[r] == 3));
  });
  ExpectFilter(in, "i is null", [&](int r) { return Tri(!in.i[r].has_value()); });
  ExpectFilter(in, "j in (1, 3, 5)", [&](int r) {
    return Tri(in.j[r] == 1 || in.j[r] == 3 || in.j[r] == 5);
  });
  // SQL: x IN (..., NULL) is true on a match, else null (so never kept when not matched) ...
  ExpectFilter(in, "j in (2, null)", [&](int r) { return Or(Tri(in.j[r] == 2), std::nullopt); });
  // ... and NOT IN with a null in the list keeps nothing.
  ExpectFilter(in, "j not in (2, null)", [&](int r) -> Tri {
    Tri inside = Or(Tri(in.j[r] == 2), std::nullopt);
    if (!inside) return std::nullopt;
    return !*inside;
  });
  ExpectFilter(in, "x between -10 and 10.5", [&](int r) -> Tri {
    if (!in.x[r]) return std::nullopt;
    return *in.x[r] >= -10 && *in.x[r] <= 10.5;
  });
  ExpectFilter(in, "i not between -100 and 100", [&](int r) -> Tri {
    if (!in.i[r]) return std::nullopt;
    return !(*in.i[r] >= -100 && *in.i[r] <= 100);
  });
  ExpectFilter(in, "s = 'apple' or s <> 'zebra' and starts_with(s, 'a')", [&](int r) -> Tri {
    if (!in.s[r]) return std::nullopt;
    const std::string& s = *in.s[r];
    return s == "apple" || (s != "zebra" && s.rfind("a", 0) == 0);
  });
  ExpectFilter(in, "ts >= timestamp '2024-01-01 00:00:00'",
               [&](int r) { return Tri(in.ts[r] >= 1704067200LL * 1000000); });
  ExpectFilter(in, "ts + interval 1 days < timestamp[s] '2024-01-01T00:00:00'",
               [&](int r) { return Tri(in.ts[r] + 86400LL * 1000000 < 1704067200LL * 1000000); });
  ExpectFilter(in, "j = 1.5", [&](int) { return Tri(false); });
  ExpectFilter(in, "j < 1.5", [&](int r) { return Tri(in.j[r] < 1.5); });
}

TEST_F(ExpressionEvaluationTest, InListsAsHashLookupOrChainOfEquals) {
  const Input& in = in_;
  using OptB = std::optional<bool>;
  auto uses_is_in = [&](const std::string& text) {
    auto bound = CompileProjection(text, in.batch->schema());
    EXPECT_TRUE(bound.ok()) << bound.status().ToString();
    return bound.ok() && bound->expressions[0].expression.ToString().find("is_in") !=
                             std::string::npos;
  };
  // Exact cases become one is_in; the others stay a chain of equals. Both agree with the
  // reference, nulls included.
  EXPECT_TRUE(uses_is_in("j in (1, 3, 5)"));
  EXPECT_TRUE(uses_is_in("i not in (1, 2)"));
  EXPECT_TRUE(uses_is_in("s in ('apple', 'zebra')"));
  EXPECT_TRUE(uses_is_in("ts in (timestamp '2024-01-01 00:00:00')"));
  EXPECT_FALSE(uses_is_in("j in (1, 3000000000)"));  // not an int32
  EXPECT_FALSE(uses_is_in("x in (1, 2)"));           // float x
  EXPECT_FALSE(uses_is_in("i in (1, null)"));        // a null listed
  EXPECT_FALSE(uses_is_in("i in (1, j)"));           // not a literal
  EXPECT_FALSE(uses_is_in("i in (1, int8 '2')"));     // mixed kinds

  std::string evens = "i in (0";
  for (int v = 2; v <= 1000; v += 2) evens += ", " + std::to_string(v);
  evens += ")";
  EXPECT_TRUE(uses_is_in(evens));
  ExpectColumn<arrow::BooleanArray, bool>(in, evens, [&](int r) -> OptB {
    if (!in.i[r]) return std::nullopt;
    return *in.i[r] >= 0 && *in.i[r] <= 1000 && *in.i[r] % 2 == 0;
  });
  ExpectColumn<arrow::BooleanArray, bool>(in, "i not in (1, 2, -3)", [&](int r) -> OptB {
    if (!in.i[r]) return std::nullopt;
    return !(*in.i[r] == 1 || *in.i[r] == 2 || *in.i[r] == -3);
  });
  ExpectColumn<arrow::BooleanArray, bool>(in, "s in ('apple', 'ab', '')", [&](int r) -> OptB {
    if (!in.s[r]) return std::nullopt;
    return *in.s[r] == "apple" || *in.s[r] == "ab" || in.s[r]->empty();
  });
  ExpectColumn<arrow::BooleanArray, bool>(in, "j in (1, 3000000000)",
                                          [&](int r) { return OptB(in.j[r] == 1); });
  ExpectColumn<arrow::BooleanArray, bool>(in, "x in (0.5, -1.25)", [&](int r) -> OptB {
    if (!in.x[r]) return std::nullopt;
    return *in.x[r] == 0.5 || *in.x[r] == -1.25;
  });
  ExpectColumn<arrow::BooleanArray, bool>(in, "i in (1, null)", [&](int r) -> OptB {
    if (in.i[r] && *in.i[r] == 1) return true;
    return std::nullopt;
  });
}

TEST_F(ExpressionEvaluationTest, ConstantFilters) {
  ExpectFilter(in_, "true", [](int) { return Tri(true); });
  ExpectFilter(in_, "false", [](int) { return Tri(false); });
  ExpectFilter(in_, "1 = 1 and null", [](int) { return Tri(std::nullopt); });
}

TEST_F(ExpressionEvaluationTest, Arithmetic) {
  const Input& in = in_;
  ExpectColumn<arrow::Int64Array, int64_t>(in, "i * 2 + j", [&](int r) -> std::optional<int64_t> {
    if (!in.i[r]) return std::nullopt;
    return *in.i[r] * 2 + in.j[r];
  });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "i / 7", [&](int r) -> std::optional<int64_t> {
    if (!in.i[r]) return std::nullopt;
    return *in.i[r] / 7;  // truncation toward zero, as C++
  });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "i % 7", [&](int r) -> std::optional<int64_t> {
    if (!in.i[r]) return std::nullopt;
    return *in.i[r] % 7;  // the sign of the dividend, as C++
  });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "-i - -3", [&](int r) -> std::optional<int64_t> {
    if (!in.i[r]) return std::nullopt;
    return -*in.i[r] + 3;
  });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "j + 2147483647", [&](int r) {
    return std::optional<int64_t>(int64_t{in.j[r]} + 2147483647);  // int64, not int32 overflow
  });
  ExpectColumn<arrow::DoubleArray, double>(in, "j * 0.1", [&](int r) {
    return std::optional<double>(in.j[r] * 0.1);  // float64, not float32
  });
  ExpectColumn<arrow::DoubleArray, double>(in, "x / 2 + i", [&](int r) -> std::optional<double> {
    if (!in.x[r] || !in.i[r]) return std::nullopt;
    return *in.x[r] / 2 + static_cast<double>(*in.i[r]);
  });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "i + null", [&](int) {
    return std::optional<int64_t>();
  });
}

TEST_F(ExpressionEvaluationTest, ArithmeticErrors) {
  ASSERT_OK_AND_ASSIGN(auto overflow, CompileProjection("i * 9223372036854775807 + 1",
                                                        in_.batch->schema()));
  ASSERT_RAISES_WITH(Invalid, "evaluating 'i * 9223372036854775807 + 1': overflow",
                     EvaluateProjection(in_.batch, overflow).status());
  ASSERT_OK_AND_ASSIGN(auto divide, CompileProjection("j / (j - j)", in_.batch->schema()));
  ASSERT_RAISES_WITH(Invalid, "divide by zero", EvaluateProjection(in_.batch, divide).status());
  ASSERT_OK_AND_ASSIGN(auto narrow, CompileProjection("cast(i as int8)", in_.batch->schema()));
  ASSERT_RAISES_WITH(Invalid, "evaluating 'cast(i as int8)'",
                     EvaluateProjection(in_.batch, narrow).status());
}

TEST_F(ExpressionEvaluationTest, Functions) {
  const Input& in = in_;
  using OptI = std::optional<int64_t>;
  using OptD = std::optional<double>;
  using OptS = std::optional<std::string>;
  using OptB = std::optional<bool>;
  auto on_x = [&](double (*f)(double)) {
    return [&in, f](int r) -> OptD { return in.x[r] ? OptD(f(*in.x[r])) : std::nullopt; };
  };
  ExpectColumn<arrow::Int64Array, int64_t>(in, "abs(i)", [&](int r) -> OptI {
    return in.i[r] ? OptI(std::llabs(*in.i[r])) : std::nullopt;
  });
  ExpectColumn<arrow::DoubleArray, double>(in, "floor(x)", on_x([](double v) { return std::floor(v); }));
  ExpectColumn<arrow::DoubleArray, double>(in, "ceil(x)", on_x([](double v) { return std::ceil(v); }));
  ExpectColumn<arrow::DoubleArray, double>(in, "round(x)",
                                           on_x([](double v) { return std::nearbyint(v); }));
  ExpectColumn<arrow::DoubleArray, double>(in, "sqrt(abs(x))",
                                           on_x([](double v) { return std::sqrt(std::fabs(v)); }));
  ExpectColumn<arrow::DoubleArray, double>(in, "power(x, 2)", on_x([](double v) { return v * v; }));
  ExpectColumn<arrow::DoubleArray, double>(in, "sign(x)", on_x([](double v) {
    return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0;
  }));
  auto on_s = [&](std::function<std::string(const std::string&)> f) {
    return [&in, f](int r) -> OptS { return in.s[r] ? OptS(f(*in.s[r])) : std::nullopt; };
  };
  auto ascii_map = [](const std::string& s, int (*f)(int)) {
    std::string out = s;
    for (char& c : out) {
      if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(c));
    }
    return out;
  };
  ExpectColumn<arrow::StringArray, std::string>(
      in, "lower(s)", on_s([&](const std::string& s) { return ascii_map(s, ::tolower); }));
  ExpectColumn<arrow::StringArray, std::string>(
      in, "upper(s)", on_s([&](const std::string& s) {
        // Upper-casing é (c3 a9) gives É (c3 89).
        std::string out = ascii_map(s, ::toupper);
        const size_t pos = out.find("\xc3\xa9");
        if (pos != std::string::npos) out[pos + 1] = '\x89';
        return out;
      }));
  ExpectColumn<arrow::StringArray, std::string>(in, "trim(s)", on_s([](const std::string& s) {
    const size_t first = s.find_first_not_of(' ');
    if (first == std::string::npos) return std::string();
    return s.substr(first, s.find_last_not_of(' ') - first + 1);
  }));
  // Code points, not bytes: café has 4.
  auto code_points = [](const std::string& s) {
    int n = 0;
    for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
    return n;
  };
  ExpectColumn<arrow::Int32Array, int32_t>(in, "length(s)", [&](int r) -> std::optional<int32_t> {
    return in.s[r] ? std::optional<int32_t>(code_points(*in.s[r])) : std::nullopt;
  });
  ExpectColumn<arrow::StringArray, std::string>(in, "substr(s, 2, 3)", on_s([](const std::string& s) {
    // ASCII except café, whose code points 2..4 are "af\xc3\xa9".
    if (s == "caf\xc3\xa9") return std::string("af\xc3\xa9");
    return s.size() < 2 ? std::string() : s.substr(1, 3);
  }));
  ExpectColumn<arrow::StringArray, std::string>(in, "concat(s, '-', s)",
                                                on_s([](const std::string& s) { return s + "-" + s; }));
  ExpectColumn<arrow::BooleanArray, bool>(in, "contains(s, 'an')", [&](int r) -> OptB {
    return in.s[r] ? OptB(in.s[r]->find("an") != std::string::npos) : std::nullopt;
  });
  ExpectColumn<arrow::BooleanArray, bool>(in, "ends_with(s, 'e')", [&](int r) -> OptB {
    return in.s[r] ? OptB(!in.s[r]->empty() && in.s[r]->back() == 'e') : std::nullopt;
  });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "coalesce(i, j * 1000)", [&](int r) {
    return OptI(in.i[r] ? *in.i[r] : in.j[r] * 1000);
  });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "if(b, i, -1)", [&](int r) -> OptI {
    if (!in.b[r] || !*in.b[r]) return OptI(-1);  // a null condition takes the else branch
    return in.i[r];
  });
  ExpectColumn<arrow::StringArray, std::string>(
      in, "case when i > 0 then 'pos' when i < 0 then 'neg' when i = 0 then 'zero' end",
      [&](int r) -> OptS {
        if (!in.i[r]) return std::nullopt;
        return *in.i[r] > 0 ? "pos" : *in.i[r] < 0 ? "neg" : "zero";
      });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "case when b then 1 else 0 end",
                                           [&](int r) { return OptI(in.b[r] == true ? 1 : 0); });
  ExpectColumn<arrow::StringArray, std::string>(in, "cast(j as string)",
                                                [&](int r) { return OptS(std::to_string(in.j[r])); });
  auto civil = [&](int r) {
    // Days and seconds since the epoch -> hour, day of month (all timestamps fall in
    // 2023-12-30 .. 2024-01-03).
    const int64_t seconds = in.ts[r] / 1000000;
    const int64_t day = seconds / 86400 - 19721;  // 19721 = days from 1970-01-01 to 2023-12-30
    return std::pair<int64_t, int64_t>(day, (seconds % 86400) / 3600);
  };
  ExpectColumn<arrow::Int64Array, int64_t>(in, "hour(ts)",
                                           [&](int r) { return OptI(civil(r).second); });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "year(ts) * 10000 + month(ts) * 100 + day(ts)",
                                           [&](int r) {
                                             static const int64_t kDates[] = {
                                                 20231230, 20231231, 20240101, 20240102,
                                                 20240103};
                                             return OptI(kDates[civil(r).first]);
                                           });
  ExpectColumn<arrow::Int64Array, int64_t>(in, "minute(ts) * 60 + second(ts)", [&](int r) {
    return OptI((in.ts[r] / 1000000) % 3600);
  });
}

TEST_F(ExpressionEvaluationTest, ProjectionShapeAndZeroCopyColumns) {
  ASSERT_OK_AND_ASSIGN(auto projection,
                       CompileProjection("s, j + 1 as k, 7 as seven", in_.batch->schema()));
  ASSERT_OK_AND_ASSIGN(auto out, EvaluateProjection(in_.batch, projection));
  ASSERT_EQ(out->num_columns(), 3);
  EXPECT_EQ(out->schema()->field(0)->name(), "s");
  EXPECT_EQ(out->schema()->field(1)->name(), "k");
  EXPECT_EQ(out->schema()->field(2)->name(), "seven");
  // A plain column is the input's array, not a copy.
  EXPECT_EQ(out->column(0)->data()->buffers[2], in_.batch->column(3)->data()->buffers[2]);
  // A constant is broadcast to every row.
  ASSERT_EQ(out->column(2)->length(), kRows);
  const auto& seven = static_cast<const arrow::Int64Array&>(*out->column(2));
  for (int r = 0; r < kRows; ++r) ASSERT_EQ(seven.Value(r), 7);
}

TEST_F(ExpressionEvaluationTest, EmptyBatchesAndSlices) {
  ASSERT_OK_AND_ASSIGN(auto predicate, CompileFilter("i > 0", in_.batch->schema()));
  ASSERT_OK_AND_ASSIGN(auto empty, EvaluateFilter(in_.batch->Slice(0, 0), predicate));
  EXPECT_EQ(empty->num_rows(), 0);
  // A slice (non-zero offset) filters like the rows it holds.
  auto slice = in_.batch->Slice(100, 50);
  ASSERT_OK_AND_ASSIGN(auto filtered, EvaluateFilter(slice, predicate));
  int64_t expected = 0;
  for (int r = 100; r < 150; ++r) expected += in_.i[r] && *in_.i[r] > 0;
  EXPECT_EQ(filtered->num_rows(), expected);
}

TEST_F(ExpressionEvaluationTest, SchemaMismatchIsAnError) {
  ASSERT_OK_AND_ASSIGN(auto predicate, CompileFilter("i > 0", in_.batch->schema()));
  ASSERT_OK_AND_ASSIGN(auto other, in_.batch->RemoveColumn(5));
  ASSERT_RAISES_WITH(Invalid, "filter 'i > 0' was bound to schema",
                     EvaluateFilter(other, predicate).status());
  ASSERT_OK_AND_ASSIGN(auto projection, CompileProjection("i", in_.batch->schema()));
  ASSERT_RAISES_WITH(Invalid, "projection was bound to schema",
                     EvaluateProjection(other, projection).status());
}

}  // namespace
}  // namespace sabot
