#include "sabot/transport/protocol.h"

#include <charconv>
#include <cstring>

namespace sabot {
namespace {

arrow::Result<int32_t> ParseNonNegative(std::string_view text, std::string_view what,
                                        std::string_view whole) {
  int32_t value = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return arrow::Status::Invalid("malformed shuffle path '", whole, "': ", what, " '", text,
                                  "' is not a non-negative 32-bit integer");
  }
  return value;
}

arrow::Status Malformed(std::string_view whole, std::string_view why) {
  return arrow::Status::Invalid(
      "malformed shuffle path '", whole, "': ", why,
      " (expected /shuffle/{shuffle_id}/partition/{partition_id}[/writer/{task}/attempt/{n}])");
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
  if (text.empty() || text.front() != '/') return Malformed(text, "must start with '/'");
  std::vector<std::string> components;
  size_t start = 1;
  while (start <= text.size()) {
    size_t slash = text.find('/', start);
    if (slash == std::string_view::npos) slash = text.size();
    components.emplace_back(text.substr(start, slash - start));
    start = slash + 1;
  }
  auto parsed = FromComponents(components);
  if (!parsed.ok()) {
    std::string message = parsed.status().message();
    std::string_view prefix = "malformed shuffle path '";
    if (message.rfind(prefix, 0) == 0) {
      size_t end = message.find("': ");
      if (end != std::string::npos) message = message.substr(end + 3);
    }
    return arrow::Status::Invalid("malformed shuffle path '", text, "': ", message);
  }
  return parsed;
}

arrow::Result<PartitionPath> PartitionPath::FromComponents(
    const std::vector<std::string>& components) {
  std::string whole;
  for (const auto& c : components) whole += "/" + c;
  if (components.size() != 4 && components.size() != 8) {
    return Malformed(whole, "wrong number of components");
  }
  if (components[0] != "shuffle" || components[2] != "partition") {
    return Malformed(whole, "unknown keyword");
  }
  PartitionPath path;
  ARROW_RETURN_NOT_OK(ValidateId(components[1], "shuffle id"));
  path.shuffle_id = components[1];
  ARROW_ASSIGN_OR_RAISE(path.partition_id,
                        ParseNonNegative(components[3], "partition id", whole));
  if (components.size() == 8) {
    if (components[4] != "writer" || components[6] != "attempt") {
      return Malformed(whole, "unknown keyword");
    }
    ARROW_ASSIGN_OR_RAISE(path.writer_task,
                          ParseNonNegative(components[5], "writer task", whole));
    ARROW_ASSIGN_OR_RAISE(path.writer_attempt,
                          ParseNonNegative(components[7], "attempt", whole));
  }
  return path;
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
      kind > static_cast<int32_t>(ChannelMessageKind::kError)) {
    return arrow::Status::Invalid("unknown channel message kind ", kind);
  }
  message.kind = static_cast<ChannelMessageKind>(kind);
  if (buffer->size() > kChannelHeaderBytes) {
    message.payload = arrow::SliceBuffer(buffer, kChannelHeaderBytes);
  }
  return message;
}

}  // namespace sabot
