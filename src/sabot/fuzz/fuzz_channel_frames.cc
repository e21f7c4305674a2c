// libFuzzer target: the DoExchange frame decoder (transport/protocol.h DecodeChannelMessage and
// DecodeCreditMessage) and what the server does with a reader's frames: grant their credits to
// the channel (ChannelState::Grant).
//
// The input is a sequence of frames, each a one-byte length (0-255) followed by that many bytes.
// Properties: no crash or undefined behaviour (UBSan found a signed overflow in Grant); a
// decoded frame re-encodes to its input; a credit message grants 1 to kMaxCreditGrant; the
// channel's credits stay within [0, kMaxChannelCredits]; a frame read as a DoGet event's
// app_metadata (DecodeEventMetadata) yields exactly the bytes after its header, never null.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <arrow/buffer.h>

#include "sabot/transport/channel_state.h"
#include "sabot/transport/protocol.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sabot::ChannelState state(sabot::StreamKey{"s", 0, 0, 0});
  size_t pos = 0;
  while (pos < size) {
    const size_t length = data[pos++];
    const size_t take = length < size - pos ? length : size - pos;
    auto frame = arrow::Buffer::FromString(
        std::string(reinterpret_cast<const char*>(data + pos), take));
    pos += take;
    auto message = sabot::DecodeChannelMessage(frame);
    if (message.ok()) {
      auto encoded = sabot::EncodeChannelMessage(message->kind, message->value,
                                                 message->payload.get());
      Require(encoded.ok() && (*encoded)->Equals(*frame));
    }
    auto event = sabot::DecodeEventMetadata(frame);
    if (event.ok()) {
      Require(*event != nullptr && message.ok() &&
              message->kind == sabot::ChannelMessageKind::kEvent);
      Require((*event)->size() == frame->size() - sabot::kChannelHeaderBytes);
      Require(std::memcmp((*event)->data(), frame->data() + sabot::kChannelHeaderBytes,
                          static_cast<size_t>((*event)->size())) == 0);
    }
    auto credits = sabot::DecodeCreditMessage(frame);
    if (credits.ok()) {
      Require(*credits >= 1 && *credits <= sabot::kMaxCreditGrant);
      state.Grant(*credits);
    } else if (message.ok()) {
      // What a hostile reader could make the server grant before the checks existed.
      state.Grant(message->value);
    }
    Require(state.credits() >= 0 && state.credits() <= sabot::kMaxChannelCredits);
  }
  return 0;
}
