#include "sabot/common/error_detail.h"

#include <gtest/gtest.h>

namespace sabot {
namespace {

TEST(ShuffleErrorDetail, AttachesContextAndKeepsCode) {
  arrow::Status status = WithShuffleContext(
      arrow::Status::IOError("connection refused"),
      {.shuffle_id = "s1", .partition_id = 3, .agent = "127.0.0.1:9", .retryable = true});
  ASSERT_TRUE(status.IsIOError());
  EXPECT_EQ(status.message(),
            "shuffle 's1' partition 3 agent '127.0.0.1:9' (retryable): connection refused");
  const ShuffleErrorDetail* detail = ShuffleErrorDetail::FromStatus(status);
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->context().shuffle_id, "s1");
  EXPECT_EQ(*detail->context().partition_id, 3);
  EXPECT_FALSE(detail->context().writer_task.has_value());
  EXPECT_TRUE(detail->context().retryable);
}

TEST(ShuffleErrorDetail, OkStaysOk) {
  EXPECT_TRUE(WithShuffleContext(arrow::Status::OK(), {.shuffle_id = "s"}).ok());
}

TEST(ShuffleErrorDetail, AbsentOnPlainStatus) {
  EXPECT_EQ(ShuffleErrorDetail::FromStatus(arrow::Status::Invalid("x")), nullptr);
}

TEST(ShuffleErrorDetail, DoesNotRepeatContextAlreadyInMessage) {
  arrow::Status once = WithShuffleContext(arrow::Status::Invalid("bad"), {.shuffle_id = "s"});
  arrow::Status twice = WithShuffleContext(once, {.shuffle_id = "s"});
  EXPECT_EQ(twice.message(), "shuffle 's': bad");
}

}  // namespace
}  // namespace sabot
