#include "sabot/transport/protocol.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "sabot/common/quoted_input.h"
#include "sabot/memory/sealed_block.h"

namespace sabot {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

arrow::Status Malformed(std::string_view whole, std::string_view why) {
  return arrow::Status::Invalid(
      "malformed shuffle path ", QuoteInput(whole), ": ", why,
      " (expected /shuffle/{shuffle_id}/partition/{partition_id}[/writer/{task}/attempt/{n}])");
}

// A number of the path grammar: decimal digits only (no sign, no leading zero unless it is
// "0"), at most 2^31 - 1, so each number has exactly one spelling.
arrow::Result<int32_t> ParseNumber(std::string_view text, std::string_view what,
                                   std::string_view whole) {
  const bool digits_only = !text.empty() && std::all_of(text.begin(), text.end(), IsDigit);
  const bool leading_zero = text.size() > 1 && text.front() == '0';
  int32_t value = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (!digits_only || leading_zero || ec != std::errc() || end != text.data() + text.size()) {
    return Malformed(whole, std::string(what) + " " + QuoteInput(text) +
                                " is not a non-negative 32-bit decimal integer without sign or "
                                "leading zeros");
  }
  return value;
}

arrow::Result<PartitionPath> ParseComponents(const std::vector<std::string_view>& components,
                                             std::string_view whole) {
  if (components.size() != 4 && components.size() != 8) {
    return Malformed(whole, "wrong number of components");
  }
  if (components[0] != "shuffle" || components[2] != "partition") {
    return Malformed(whole, "unknown keyword");
  }
  PartitionPath path;
  auto valid_id = ValidateId(components[1], "shuffle id");
  if (!valid_id.ok()) return Malformed(whole, valid_id.message());
  path.shuffle_id = std::string(components[1]);
  ARROW_ASSIGN_OR_RAISE(path.partition_id, ParseNumber(components[3], "partition id", whole));
  if (components.size() == 8) {
    if (components[4] != "writer" || components[6] != "attempt") {
      return Malformed(whole, "unknown keyword");
    }
    ARROW_ASSIGN_OR_RAISE(path.writer_task, ParseNumber(components[5], "writer task", whole));
    ARROW_ASSIGN_OR_RAISE(path.writer_attempt, ParseNumber(components[7], "attempt", whole));
  }
  return path;
}

}  // namespace

std::string PartitionPath::ToString() const {
  std::string out;
  for (const auto& component : ToComponents()) {
    out += '/';
    out += component;
  }
  return out;
}

std::vector<std::string> PartitionPath::ToComponents() const {
  std::vector<std::string> out = {"shuffle", shuffle_id, "partition",
                                  std::to_string(partition_id)};
  if (writer_task) {
    out.insert(out.end(), {"writer", std::to_string(*writer_task), "attempt",
                           std::to_string(writer_attempt.value_or(0))});
  }
  return out;
}

arrow::Result<PartitionPath> PartitionPath::Parse(std::string_view text) {
  // The size first: nothing of an oversized input is looked at beyond what the message quotes.
  if (text.size() > kMaxPathBytes) {
    return Malformed(text, "it is " + std::to_string(text.size()) +
                               " bytes long; a shuffle path has at most " +
                               std::to_string(kMaxPathBytes));
  }
  if (text.empty() || text.front() != '/') return Malformed(text, "must start with '/'");
  std::vector<std::string_view> components;
  size_t start = 1;
  while (start <= text.size()) {
    size_t slash = text.find('/', start);
    if (slash == std::string_view::npos) slash = text.size();
    components.push_back(text.substr(start, slash - start));
    start = slash + 1;
  }
  return ParseComponents(components, text);
}

arrow::Result<PartitionPath> PartitionPath::FromComponents(
    const std::vector<std::string>& components) {
  size_t bytes = 0;
  for (const auto& c : components) bytes += c.size() + 1;
  if (components.size() > 8 || bytes > kMaxPathBytes) {
    return arrow::Status::Invalid(
        "malformed shuffle path: ", components.size(), " components of ", bytes,
        " bytes in all; a shuffle path has at most 8 components and ", kMaxPathBytes, " bytes");
  }
  std::string whole;
  for (const auto& c : components) whole += "/" + c;
  std::vector<std::string_view> views(components.begin(), components.end());
  return ParseComponents(views, whole);
}

std::string_view CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return "none";
    case Compression::kLz4Frame:
      return "lz4_frame";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

arrow::Result<Compression> ParseCompression(std::string_view name) {
  for (Compression c : {Compression::kNone, Compression::kLz4Frame, Compression::kZstd}) {
    if (name == CompressionName(c)) return c;
  }
  return arrow::Status::Invalid("unknown compression '", name,
                                "' (expected none, lz4_frame or zstd)");
}

arrow::Result<std::shared_ptr<arrow::Buffer>> EncodeChannelMessage(ChannelMessageKind kind,
                                                                   int32_t value,
                                                                   const arrow::Buffer* payload,
                                                                   arrow::MemoryPool* pool) {
  const int64_t payload_size = payload == nullptr ? 0 : payload->size();
  ARROW_ASSIGN_OR_RAISE(auto buffer,
                        arrow::AllocateBuffer(kChannelHeaderBytes + payload_size, pool));
  uint8_t* out = buffer->mutable_data();
  const int32_t k = static_cast<int32_t>(kind);
  std::memcpy(out, &k, 4);  // little-endian hosts only (x86-64, aarch64)
  std::memcpy(out + 4, &value, 4);
  if (payload_size > 0) std::memcpy(out + kChannelHeaderBytes, payload->data(), payload_size);
  return std::shared_ptr<arrow::Buffer>(std::move(buffer));
}

arrow::Result<ChannelMessage> DecodeChannelMessage(const std::shared_ptr<arrow::Buffer>& buffer) {
  if (buffer == nullptr || buffer->size() < kChannelHeaderBytes) {
    return arrow::Status::Invalid("channel message of ", buffer ? buffer->size() : 0,
                                  " bytes is shorter than its ", kChannelHeaderBytes,
                                  "-byte header");
  }
  int32_t kind = 0;
  ChannelMessage message;
  std::memcpy(&kind, buffer->data(), 4);
  std::memcpy(&message.value, buffer->data() + 4, 4);
  if (kind < static_cast<int32_t>(ChannelMessageKind::kCredit) ||
      kind > static_cast<int32_t>(ChannelMessageKind::kEvent)) {
    return arrow::Status::Invalid("unknown channel message kind ", kind);
  }
  message.kind = static_cast<ChannelMessageKind>(kind);
  if (buffer->size() > kChannelHeaderBytes) {
    message.payload = arrow::SliceBuffer(buffer, kChannelHeaderBytes);
  }
  return message;
}

arrow::Result<std::shared_ptr<arrow::Buffer>> DecodeEventMetadata(
    const std::shared_ptr<arrow::Buffer>& app_metadata) {
  ARROW_ASSIGN_OR_RAISE(ChannelMessage message, DecodeChannelMessage(app_metadata));
  if (message.kind != ChannelMessageKind::kEvent) {
    return arrow::Status::Invalid("the app_metadata of a data message must be an EVENT message, "
                                  "got kind ", static_cast<int32_t>(message.kind));
  }
  if (message.value != 0) {
    return arrow::Status::Invalid("EVENT app_metadata carries value ", message.value,
                                  "; it must be 0");
  }
  if (message.payload == nullptr) return EmptyEventPayload();
  if (message.payload->size() > kMaxEventBytes) {
    return arrow::Status::Invalid("event of ", message.payload->size(),
                                  " bytes exceeds the limit of ", kMaxEventBytes, " bytes");
  }
  return message.payload;
}

arrow::Result<int32_t> DecodeCreditMessage(const std::shared_ptr<arrow::Buffer>& buffer) {
  ARROW_ASSIGN_OR_RAISE(ChannelMessage message, DecodeChannelMessage(buffer));
  if (message.kind != ChannelMessageKind::kCredit) {
    return arrow::Status::Invalid("a reader may send only CREDIT messages, got kind ",
                                  static_cast<int32_t>(message.kind));
  }
  if (message.value < 1 || message.value > kMaxCreditGrant) {
    return arrow::Status::Invalid("CREDIT of ", message.value, " is outside [1, ",
                                  kMaxCreditGrant, "]");
  }
  if (message.payload != nullptr) {
    return arrow::Status::Invalid("CREDIT message carries ", message.payload->size(),
                                  " bytes of payload; it has none");
  }
  return message.value;
}

}  // namespace sabot
