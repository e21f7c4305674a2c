#pragma once

// GoogleTest assertions for arrow::Status / arrow::Result and record batches, in the spirit of
// Arrow's own testing helpers.

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#define SABOT_CONCAT_INNER(a, b) a##b
#define SABOT_CONCAT(a, b) SABOT_CONCAT_INNER(a, b)

#define ASSERT_OK(expr)                                                 \
  do {                                                                  \
    ::arrow::Status _st = ::arrow::ToStatus(expr);                      \
    ASSERT_TRUE(_st.ok()) << #expr << " failed: " << _st.ToString();    \
  } while (false)

#define EXPECT_OK(expr)                                                 \
  do {                                                                  \
    ::arrow::Status _st = ::arrow::ToStatus(expr);                      \
    EXPECT_TRUE(_st.ok()) << #expr << " failed: " << _st.ToString();    \
  } while (false)

#define SABOT_ASSIGN_OR_FAIL_IMPL(result_name, lhs, rexpr)                                     \
  auto result_name = (rexpr);                                                                  \
  ASSERT_TRUE(result_name.ok()) << #rexpr << " failed: " << result_name.status().ToString(); \
  lhs = std::move(result_name).ValueUnsafe();

// ASSERT_OK_AND_ASSIGN(auto batch, MakeBatch());
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  SABOT_ASSIGN_OR_FAIL_IMPL(SABOT_CONCAT(_result_, __LINE__), lhs, rexpr)

// Asserts that `expr` fails with arrow::StatusCode `status_code` and a message containing `substring`.
#define ASSERT_RAISES_WITH(status_code, substring, expr)                                    \
  do {                                                                                 \
    ::arrow::Status _st = ::arrow::ToStatus(expr);                                     \
    ASSERT_EQ(_st.code(), ::arrow::StatusCode::status_code) << #expr << ": " << _st.ToString(); \
    ASSERT_NE(_st.message().find((substring)), std::string::npos)                      \
        << #expr << ": message '" << _st.message() << "' lacks '" << (substring) << "'"; \
  } while (false)

namespace sabot::testing {

// Empty when equal; otherwise a description of the first difference (schema, row count, or
// column and row with both values).
std::string DiffBatches(const arrow::RecordBatch& expected, const arrow::RecordBatch& actual);

}  // namespace sabot::testing

#define ASSERT_BATCHES_EQUAL(expected, actual)                              \
  do {                                                                      \
    std::string _diff = ::sabot::testing::DiffBatches((expected), (actual)); \
    ASSERT_TRUE(_diff.empty()) << _diff;                                    \
  } while (false)
