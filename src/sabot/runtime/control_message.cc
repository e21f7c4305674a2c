#include "sabot/runtime/control_message.h"

#include <algorithm>
#include <charconv>

#include <arrow/status.h>
#include <arrow/util/base64.h>

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

arrow::Result<int64_t> ParseInt(std::string_view text, std::string_view name) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return arrow::Status::Invalid("control field ", QuoteInput(name), " is not an integer: ",
                                  QuoteInput(text));
  }
  return value;
}

}  // namespace

void ControlMessage::Set(const std::string& name, std::string value) {
  std::replace(value.begin(), value.end(), '\n', ' ');
  fields_[name] = std::move(value);
}

void ControlMessage::SetInt(const std::string& name, int64_t value) {
  Set(name, std::to_string(value));
}

void ControlMessage::SetInts(const std::string& name, const std::vector<int64_t>& values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text += ',';
    text += std::to_string(values[i]);
  }
  Set(name, std::move(text));
}

void ControlMessage::SetBytes(const std::string& name, const arrow::Buffer& bytes) {
  Set(name, arrow::util::base64_encode(std::string_view(
                reinterpret_cast<const char*>(bytes.data()), static_cast<size_t>(bytes.size()))));
}

arrow::Result<std::string> ControlMessage::Get(const std::string& name) const {
  auto it = fields_.find(name);
  if (it == fields_.end()) {
    return arrow::Status::KeyError("control message lacks the field ", QuoteInput(name));
  }
  return it->second;
}

arrow::Result<int64_t> ControlMessage::GetInt(const std::string& name) const {
  ARROW_ASSIGN_OR_RAISE(std::string text, Get(name));
  return ParseInt(text, name);
}

arrow::Result<std::vector<int64_t>> ControlMessage::GetInts(const std::string& name) const {
  ARROW_ASSIGN_OR_RAISE(std::string text, Get(name));
  std::vector<int64_t> out;
  if (text.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item(text.data() + start,
                          (comma == std::string::npos ? text.size() : comma) - start);
    ARROW_ASSIGN_OR_RAISE(int64_t value, ParseInt(item, name));
    out.push_back(value);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

arrow::Result<std::shared_ptr<arrow::Buffer>> ControlMessage::GetBytes(
    const std::string& name) const {
  ARROW_ASSIGN_OR_RAISE(std::string text, Get(name));
  auto decoded = arrow::util::base64_decode(text);
  if (!decoded.ok()) {
    return arrow::Status::Invalid("control field '", name, "' is not base64: ",
                                  decoded.status().message());
  }
  return arrow::Buffer::FromString(std::move(decoded).ValueUnsafe());
}

std::string ControlMessage::Encode() const {
  std::string out;
  for (const auto& [name, value] : fields_) {
    out += name;
    out += '=';
    out += value;
    out += '\n';
  }
  return out;
}

arrow::Result<ControlMessage> ControlMessage::Decode(std::string_view text) {
  ControlMessage message;
  int64_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    size_t end = text.find('\n');
    if (end == std::string_view::npos) {
      return arrow::Status::Invalid("control message line ", line_number, " is not terminated");
    }
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    size_t equals = line.find('=');
    if (equals == std::string_view::npos || !ValidName(line.substr(0, equals))) {
      return arrow::Status::Invalid("control message line ", line_number,
                                    " is not name=value: ", QuoteInput(line));
    }
    std::string name(line.substr(0, equals));
    if (message.Has(name)) {
      return arrow::Status::Invalid("control message repeats the field ", QuoteInput(name));
    }
    message.Set(name, std::string(line.substr(equals + 1)));
  }
  return message;
}

}  // namespace sabot
