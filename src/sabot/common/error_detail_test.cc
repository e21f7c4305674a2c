#include "sabot/common/error_detail.h"

#include <cerrno>
#include <cstring>

#include <arrow/util/io_util.h>
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

TEST(StatusCause, KeepsTheDetailThatMessageDrops) {
  arrow::Status full = arrow::internal::IOErrorFromErrno(ENOSPC, "Error writing bytes to file");
  ASSERT_EQ(full.message(), "Error writing bytes to file");
  EXPECT_EQ(StatusCause(full), "Error writing bytes to file ([errno " + std::to_string(ENOSPC) +
                                   "] " + std::strerror(ENOSPC) + ")");
}

TEST(StatusCause, PlainMessageWithoutDetail) {
  EXPECT_EQ(StatusCause(arrow::Status::Invalid("bad")), "bad");
}

TEST(StatusCause, ShuffleContextIsNotRepeated) {
  arrow::Status status = WithShuffleContext(arrow::Status::IOError("x"),
                                            {.shuffle_id = "s", .partition_id = 1});
  EXPECT_EQ(StatusCause(status), "shuffle 's' partition 1: x");
}

}  // namespace
}  // namespace sabot
