#include "sabot/transport/channel_state.h"

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace sabot {
namespace {

// A hostile reader's grants (found by UBSan: CREDIT(2^31 - 1) then CREDIT(10^6) overflowed the
// credit count) saturate instead of overflowing; non-positive grants grant nothing.
TEST(ChannelStateTest, GrantsSaturateAndNeverOverflow) {
  ChannelState state(StreamKey{"s", 0, 0, 0});
  state.Grant(std::numeric_limits<int32_t>::max());
  EXPECT_EQ(state.credits(), kMaxChannelCredits);
  state.Grant(1000000);
  EXPECT_EQ(state.credits(), kMaxChannelCredits);
  state.Grant(0);
  state.Grant(std::numeric_limits<int32_t>::min());
  EXPECT_EQ(state.credits(), kMaxChannelCredits);

  ChannelState fresh(StreamKey{"s", 0, 1, 0});
  fresh.Grant(-5);
  EXPECT_EQ(fresh.credits(), 0);
  fresh.Grant(2);
  fresh.Grant(3);
  EXPECT_EQ(fresh.credits(), 5);
}

}  // namespace
}  // namespace sabot
