#include "sabot/dataflow/input_watermarks.h"

#include <algorithm>

namespace sabot {

bool InputWatermarks::Update(size_t channel, WatermarkMs watermark) {
  if (channel >= channel_.size()) return false;
  if (idle_[channel]) {
    SetActive(channel);
    if (watermark > channel_[channel]) channel_[channel] = watermark;
    return Recompute();
  }
  if (watermark <= channel_[channel]) return false;
  const bool was_minimum = channel_[channel] <= current_;
  channel_[channel] = watermark;
  if (!was_minimum) return false;
  return Recompute();
}

bool InputWatermarks::SetIdle(size_t channel) {
  if (channel >= channel_.size() || idle_[channel] || ended(channel)) return false;
  idle_[channel] = true;
  ++idle_count_;
  return Recompute();
}

void InputWatermarks::SetActive(size_t channel) {
  if (channel >= channel_.size() || !idle_[channel]) return;
  idle_[channel] = false;
  --idle_count_;
}

bool InputWatermarks::Recompute() {
  WatermarkMs minimum = kEndOfTimeWatermark;
  for (size_t c = 0; c < channel_.size(); ++c) {
    if (!idle_[c]) minimum = std::min(minimum, channel_[c]);
  }
  // Every channel not ended is idle: nothing says how far they are.
  if (idle_count_ > 0 && minimum == kEndOfTimeWatermark) return false;
  if (minimum <= current_) return false;
  current_ = minimum;
  return true;
}

}  // namespace sabot
