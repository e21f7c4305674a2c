#pragma once

// The watermark of a task with several input channels: the minimum over its channels, as in
// Flink. A channel that has sent nothing yet holds the task's watermark at kNoWatermark; a
// channel that ended counts as kEndOfTimeWatermark, so it never holds the others back.

#include <cstdint>
#include <vector>

#include "sabot/dataflow/operator.h"

namespace sabot {

// Not thread-safe: one task uses it.
class InputWatermarks {
 public:
  explicit InputWatermarks(size_t channels) : channel_(channels, kNoWatermark) {}

  // Channel `channel` reported `watermark` (a smaller one than it reported before is ignored:
  // watermarks never go back). True when the task's watermark advanced; then current() is new.
  bool Update(size_t channel, WatermarkMs watermark);
  // Channel `channel` ended. True when the task's watermark advanced.
  bool End(size_t channel) { return Update(channel, kEndOfTimeWatermark); }
  // The minimum over the channels (kNoWatermark before every channel reported one).
  WatermarkMs current() const { return current_; }
  size_t channels() const { return channel_.size(); }

 private:
  std::vector<WatermarkMs> channel_;
  WatermarkMs current_ = kNoWatermark;
};

}  // namespace sabot
