#include "sabot/dataflow/stream_event.h"

#include <limits>

#include <gtest/gtest.h>

#include "sabot/dataflow/input_watermarks.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

TEST(StreamEventTest, RoundTripsEveryKindAndExtremeValues) {
  for (const StreamEvent& event :
       {StreamEvent::Watermark(0), StreamEvent::Watermark(-1),
        StreamEvent::Watermark(std::numeric_limits<int64_t>::max()),
        StreamEvent::Watermark(std::numeric_limits<int64_t>::min()), StreamEvent::EndOfInput(),
        StreamEvent{StreamEvent::Kind::kBarrier, 12345}}) {
    ASSERT_OK_AND_ASSIGN(auto bytes, EncodeStreamEvent(event));
    EXPECT_EQ(bytes->size(), kStreamEventBytes);
    ASSERT_OK_AND_ASSIGN(auto decoded, DecodeStreamEvent(*bytes));
    EXPECT_EQ(decoded, event);
  }
}

TEST(StreamEventTest, BytesAreLittleEndianAsDocumented) {
  ASSERT_OK_AND_ASSIGN(auto bytes, EncodeStreamEvent(StreamEvent::Watermark(0x0102030405060708)));
  const uint8_t expected[] = {1, 1, 8, 7, 6, 5, 4, 3, 2, 1};
  ASSERT_EQ(bytes->size(), 10);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(bytes->data()[i], expected[i]) << i;
}

TEST(StreamEventTest, RejectsWhatItDidNotEncode) {
  const uint8_t short_bytes[] = {1, 1, 0};
  EXPECT_TRUE(DecodeStreamEvent(arrow::Buffer(short_bytes, 3)).status().IsInvalid());
  uint8_t bad_version[10] = {2, 1};
  auto status = DecodeStreamEvent(arrow::Buffer(bad_version, 10)).status();
  EXPECT_TRUE(status.IsInvalid());
  EXPECT_NE(status.message().find("version 2"), std::string::npos) << status;
  uint8_t bad_kind[10] = {1, 9};
  status = DecodeStreamEvent(arrow::Buffer(bad_kind, 10)).status();
  EXPECT_NE(status.message().find("unknown kind 9"), std::string::npos) << status;
}

TEST(InputWatermarksTest, TheMinimumOverChannelsAdvancesOnlyWhenTheSlowestDoes) {
  InputWatermarks watermarks(3);
  EXPECT_FALSE(watermarks.Update(0, 100));
  EXPECT_FALSE(watermarks.Update(1, 50));
  EXPECT_EQ(watermarks.current(), kNoWatermark);
  EXPECT_TRUE(watermarks.Update(2, 70));
  EXPECT_EQ(watermarks.current(), 50);
  EXPECT_FALSE(watermarks.Update(0, 200));  // not the slowest
  EXPECT_FALSE(watermarks.Update(1, 40));   // backwards: ignored
  EXPECT_TRUE(watermarks.Update(1, 300));
  EXPECT_EQ(watermarks.current(), 70);
  EXPECT_TRUE(watermarks.End(2));  // an ended channel never holds the others back
  EXPECT_EQ(watermarks.current(), 200);
  EXPECT_TRUE(watermarks.End(0));
  EXPECT_TRUE(watermarks.End(1));
  EXPECT_EQ(watermarks.current(), kEndOfTimeWatermark);
  EXPECT_FALSE(watermarks.Update(7, 1));  // unknown channel
}

TEST(InputWatermarksTest, AnIdleChannelDoesNotHoldTheWatermarkBackAndRejoinsWithoutMovingItBack) {
  InputWatermarks watermarks(3);
  EXPECT_FALSE(watermarks.Update(0, 100));
  EXPECT_FALSE(watermarks.Update(1, 120));
  EXPECT_EQ(watermarks.current(), kNoWatermark);  // channel 2 sent nothing yet
  EXPECT_TRUE(watermarks.SetIdle(2));
  EXPECT_TRUE(watermarks.idle(2));
  EXPECT_EQ(watermarks.current(), 100);
  EXPECT_FALSE(watermarks.SetIdle(2));  // already idle
  EXPECT_TRUE(watermarks.Update(0, 150));
  EXPECT_EQ(watermarks.current(), 120);
  // Channel 2 comes back far behind: it counts again, but the watermark does not go back.
  watermarks.SetActive(2);
  EXPECT_FALSE(watermarks.idle(2));
  EXPECT_FALSE(watermarks.Update(2, 10));
  EXPECT_EQ(watermarks.current(), 120);
  EXPECT_FALSE(watermarks.Update(1, 400));  // channel 2 (10) is now the slowest
  EXPECT_EQ(watermarks.current(), 120);
  EXPECT_TRUE(watermarks.Update(2, 130));
  EXPECT_EQ(watermarks.current(), 130);
  // A watermark from an idle channel makes it active again.
  EXPECT_TRUE(watermarks.SetIdle(2));
  EXPECT_EQ(watermarks.current(), 150);
  EXPECT_FALSE(watermarks.Update(2, 140));
  EXPECT_FALSE(watermarks.idle(2));
  EXPECT_EQ(watermarks.current(), 150);
  // Every channel idle or ended: the watermark stays (nothing is known of the idle ones).
  EXPECT_FALSE(watermarks.End(0));  // channel 2 (140) holds it
  EXPECT_TRUE(watermarks.End(2));
  EXPECT_EQ(watermarks.current(), 400);
  EXPECT_FALSE(watermarks.SetIdle(0));  // ended: never idle
  EXPECT_FALSE(watermarks.SetIdle(1));
  EXPECT_EQ(watermarks.current(), 400);
  EXPECT_TRUE(watermarks.End(1));
  EXPECT_EQ(watermarks.current(), kEndOfTimeWatermark);
}

}  // namespace
}  // namespace sabot
