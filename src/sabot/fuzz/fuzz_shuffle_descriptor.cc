// libFuzzer target: the shuffle descriptor reader an agent runs on sabot.register_shuffle
// (shuffle/shuffle_descriptor.h), including the partition spec and the IPC schema inside.
//
// Properties: no crash or undefined behaviour; what deserializes is valid and serializes to
// bytes that deserialize to the same bytes again.
#include <cstdint>
#include <cstdlib>

#include <arrow/buffer.h>

#include "sabot/shuffle/shuffle_descriptor.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const arrow::Buffer bytes(data, static_cast<int64_t>(size));
  auto descriptor = sabot::ShuffleDescriptor::Deserialize(bytes);
  if (!descriptor.ok()) return 0;
  Require(descriptor->Validate().ok());
  auto serialized = descriptor->Serialize();
  Require(serialized.ok());
  auto again = sabot::ShuffleDescriptor::Deserialize(**serialized);
  Require(again.ok());
  auto reserialized = again->Serialize();
  Require(reserialized.ok() && (*reserialized)->Equals(**serialized));
  return 0;
}
