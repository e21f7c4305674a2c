#include "sabot/dataflow/console_sink.h"

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/type.h>

#include "sabot/dataflow/operator_binding.h"
#include "sabot/dataflow/operator_testing.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using testing::NoOutput;

std::shared_ptr<arrow::RecordBatch> Numbers(int64_t first, int64_t n) {
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_OK(ids.Append(first + i));
    if (i % 3 == 2) {
      EXPECT_OK(names.AppendNull());
    } else {
      EXPECT_OK(names.Append("n" + std::to_string(first + i)));
    }
  }
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8())});
  return arrow::RecordBatch::Make(schema, n,
                                  {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie()});
}

size_t Count(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++count;
  }
  return count;
}

TEST(ConsoleSinkTest, FormatsATable) {
  EXPECT_EQ(FormatRows(*Numbers(8, 3), 3),
            "  id | name\n"
            "  8  | n8  \n"
            "  9  | n9  \n"
            "  10 | null\n");
}

TEST(ConsoleSinkTest, PrintsTheFirstRowsOverAllTasksAndCountsAll) {
  std::ostringstream out;
  BindOptions options;
  options.console = &out;
  OperatorSpec spec;
  spec.name = "show";
  spec.parallelism = 4;
  spec.params = ConsoleSinkParams{7};
  auto batch = Numbers(0, 5);
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(spec, {batch->schema()}, options));
  ASSERT_EQ(bound.output_schema, nullptr);
  std::vector<std::thread> threads;
  std::vector<arrow::Status> results(4);
  for (int32_t k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      TaskContext ctx;
      ctx.subtask = k;
      ctx.parallelism = 4;
      auto made = bound.make_operator(ctx);
      if (!made.ok()) {
        results[k] = made.status();
        return;
      }
      auto& op = **made;
      NoOutput none;
      for (int i = 0; i < 10 && results[k].ok(); ++i) results[k] = op.Process(0, batch, &none);
      if (results[k].ok()) results[k] = op.OnWatermark(5, &none);
      if (results[k].ok()) results[k] = op.Finish(&none);
      if (op.rows_in() != 50) results[k] = arrow::Status::Invalid("rows_in ", op.rows_in());
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) ASSERT_OK(r);
  const std::string text = out.str();
  // 7 row lines in all (rows 0..4 of the batch carry "n0".."n3" or null), one header per piece.
  size_t row_lines = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("  ", 0) == 0 && line.find("id") == std::string::npos) ++row_lines;
  }
  EXPECT_EQ(row_lines, 7u) << text;
  EXPECT_EQ(Count(text, "show: 200 rows (7 shown)\n"), 1u) << text;
  EXPECT_EQ(Count(text, "rows 1-"), 1u) << text;
}

}  // namespace
}  // namespace sabot
