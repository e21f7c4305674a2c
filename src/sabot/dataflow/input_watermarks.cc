#include "sabot/dataflow/input_watermarks.h"

#include <algorithm>

namespace sabot {

bool InputWatermarks::Update(size_t channel, WatermarkMs watermark) {
  if (channel >= channel_.size() || watermark <= channel_[channel]) return false;
  const bool was_minimum = channel_[channel] == current_;
  channel_[channel] = watermark;
  if (!was_minimum) return false;
  const WatermarkMs minimum = *std::min_element(channel_.begin(), channel_.end());
  if (minimum <= current_) return false;
  current_ = minimum;
  return true;
}

}  // namespace sabot
