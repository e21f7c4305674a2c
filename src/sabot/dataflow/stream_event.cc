#include "sabot/dataflow/stream_event.h"

#include <cstring>

#include <arrow/status.h>

namespace sabot {

namespace {
constexpr uint8_t kFormatVersion = 1;
}  // namespace

arrow::Result<std::shared_ptr<arrow::Buffer>> EncodeStreamEvent(const StreamEvent& event) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> bytes,
                        arrow::AllocateBuffer(kStreamEventBytes));
  uint8_t* out = bytes->mutable_data();
  out[0] = kFormatVersion;
  out[1] = static_cast<uint8_t>(event.kind);
  const auto value = static_cast<uint64_t>(event.value);
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(value >> (8 * i));
  return bytes;
}

arrow::Result<StreamEvent> DecodeStreamEvent(const arrow::Buffer& bytes) {
  if (bytes.size() != kStreamEventBytes) {
    return arrow::Status::Invalid("stream event: ", bytes.size(), " bytes, expected ",
                                  kStreamEventBytes);
  }
  const uint8_t* in = bytes.data();
  if (in[0] != kFormatVersion) {
    return arrow::Status::Invalid("stream event: format version ", static_cast<int>(in[0]),
                                  ", expected ", static_cast<int>(kFormatVersion));
  }
  StreamEvent event;
  switch (in[1]) {
    case static_cast<uint8_t>(StreamEvent::Kind::kWatermark):
    case static_cast<uint8_t>(StreamEvent::Kind::kEndOfInput):
    case static_cast<uint8_t>(StreamEvent::Kind::kBarrier):
      event.kind = static_cast<StreamEvent::Kind>(in[1]);
      break;
    default:
      return arrow::Status::Invalid("stream event: unknown kind ", static_cast<int>(in[1]));
  }
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(in[2 + i]) << (8 * i);
  event.value = static_cast<int64_t>(value);
  return event;
}

}  // namespace sabot
