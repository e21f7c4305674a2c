#include "sabot/common/ids.h"

#include <gtest/gtest.h>

#include <vector>

namespace sabot {
namespace {

TEST(ValidateId, AcceptsPlainIds) {
  EXPECT_TRUE(ValidateId("shuffle-1_a.b", "shuffle id").ok());
  EXPECT_TRUE(ValidateId(std::string(128, 'x'), "shuffle id").ok());
}

TEST(ValidateId, RejectsTraversalSeparatorsAndOddLengths) {
  for (const std::string& bad : std::vector<std::string>{"", "..", ".hidden", "a/b", "..\\x", "a b", std::string(129, 'x'),
                          std::string("a\0b", 3)}) {
    arrow::Status status = ValidateId(bad, "shuffle id");
    EXPECT_TRUE(status.IsInvalid()) << bad;
    EXPECT_NE(status.message().find("shuffle id"), std::string::npos) << status.ToString();
  }
}

TEST(ValidateId, QuotesTheIdEscaped) {
  // A non-UTF-8 id must not put invalid UTF-8 into the message (it may become a gRPC status).
  arrow::Status status = ValidateId("bad\xff\x01id", "shuffle id");
  ASSERT_TRUE(status.IsInvalid());
  EXPECT_NE(status.message().find("'bad\\xff\\x01id'"), std::string::npos) << status.message();
}

TEST(ValidateCount, Bounds) {
  EXPECT_TRUE(ValidateCount(1, "n").ok());
  EXPECT_TRUE(ValidateCount(kMaxPartitions, "n").ok());
  EXPECT_TRUE(ValidateCount(0, "n").IsInvalid());
  EXPECT_TRUE(ValidateCount(-3, "n").IsInvalid());
  arrow::Status status = ValidateCount(int64_t{1} << 40, "num_partitions");
  EXPECT_TRUE(status.IsInvalid());
  EXPECT_NE(status.message().find("num_partitions"), std::string::npos);
}

}  // namespace
}  // namespace sabot
