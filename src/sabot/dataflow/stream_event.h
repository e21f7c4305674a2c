#pragma once

// The dataflow layer's in-band events and their bytes. The shuffle carries events as opaque,
// ordered records (docs/wire-protocol.md); this file gives them meaning: a watermark, the end of
// a task's input, and (for the fault-tolerance issue) a checkpoint barrier.
//
// Bytes (10, little-endian): [0] format version (1), [1] kind (1 watermark, 2 end of input,
// 3 checkpoint barrier), [2..9] int64 value (the watermark in ms since the epoch; the barrier's
// checkpoint id; 0 for end of input). Documented in docs/dataflow.md.

#include <cstdint>
#include <memory>

#include <arrow/buffer.h>
#include <arrow/result.h>

namespace sabot {

struct StreamEvent {
  enum class Kind : uint8_t { kWatermark = 1, kEndOfInput = 2, kBarrier = 3 };
  Kind kind = Kind::kWatermark;
  int64_t value = 0;

  static StreamEvent Watermark(int64_t watermark_ms) { return {Kind::kWatermark, watermark_ms}; }
  static StreamEvent EndOfInput() { return {Kind::kEndOfInput, 0}; }
  bool operator==(const StreamEvent&) const = default;
};

inline constexpr int64_t kStreamEventBytes = 10;

arrow::Result<std::shared_ptr<arrow::Buffer>> EncodeStreamEvent(const StreamEvent& event);
// Invalid, naming what is wrong, for anything EncodeStreamEvent did not make.
arrow::Result<StreamEvent> DecodeStreamEvent(const arrow::Buffer& bytes);

}  // namespace sabot
