#pragma once

// The watermark of a task with several input channels: the minimum over its channels, as in
// Flink. A channel that has sent nothing yet holds the task's watermark at kNoWatermark; a
// channel that ended counts as kEndOfTimeWatermark, so it never holds the others back.
//
// Idle channels (docs/dataflow.md, "Idle inputs"): the task marks a channel idle when it sent
// nothing for the job's idle timeout (PlanOptions::idle_timeout); an idle channel does not hold
// the watermark back. While every channel that has not ended is idle, the watermark stays where
// it is (nothing is known of the idle channels' progress). A channel that sends again is active
// again (SetActive, or implicitly by Update); its watermark counts again from then on, but the
// task's watermark never goes backwards: rows it brings behind the watermark are late rows.

#include <cstdint>
#include <vector>

#include "sabot/dataflow/operator.h"

namespace sabot {

// Not thread-safe: one task uses it.
class InputWatermarks {
 public:
  explicit InputWatermarks(size_t channels)
      : channel_(channels, kNoWatermark), idle_(channels, false) {}

  // Channel `channel` reported `watermark` (a smaller one than it reported before is ignored:
  // watermarks never go back); an idle channel becomes active. True when the task's watermark
  // advanced; then current() is new.
  bool Update(size_t channel, WatermarkMs watermark);
  // Channel `channel` ended. True when the task's watermark advanced.
  bool End(size_t channel) { return Update(channel, kEndOfTimeWatermark); }
  // Channel `channel` sent nothing for the idle timeout. True when the task's watermark advanced.
  bool SetIdle(size_t channel);
  // Channel `channel` sent something (a row): it counts again. Never moves the watermark.
  void SetActive(size_t channel);
  bool idle(size_t channel) const { return channel < idle_.size() && idle_[channel]; }
  bool ended(size_t channel) const {
    return channel < channel_.size() && channel_[channel] == kEndOfTimeWatermark;
  }
  // The task's watermark (kNoWatermark before every active channel reported one).
  WatermarkMs current() const { return current_; }
  size_t channels() const { return channel_.size(); }

 private:
  // Recomputes current_ from the active channels; true when it advanced.
  bool Recompute();

  std::vector<WatermarkMs> channel_;
  std::vector<bool> idle_;
  size_t idle_count_ = 0;
  WatermarkMs current_ = kNoWatermark;
};

}  // namespace sabot
