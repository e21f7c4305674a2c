#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

bool Printable(unsigned char c) { return c >= 0x20 && c < 0x7f; }

void AppendEscaped(unsigned char c, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("\\x");
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 0xf]);
}

}  // namespace

std::string QuoteInput(std::string_view input, size_t max_bytes) {
  const size_t shown = input.size() < max_bytes ? input.size() : max_bytes;
  std::string out;
  out.reserve(shown + 2);
  out.push_back('\'');
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(input[i]);
    if (c == '\\' || c == '\'') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (Printable(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      AppendEscaped(c, &out);
    }
  }
  if (shown < input.size()) {
    out.append("...' (");
    out.append(std::to_string(input.size()));
    out.append(" bytes)");
  } else {
    out.push_back('\'');
  }
  return out;
}

std::string SanitizeMessage(std::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(text.size() < max_bytes ? text.size() : max_bytes);
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t width = (Printable(c) || c == '\t') ? 1 : 4;
    if (out.size() + width > max_bytes) {
      out.append("... (");
      out.append(std::to_string(text.size()));
      out.append(" bytes)");
      return out;
    }
    if (width == 1) {
      out.push_back(static_cast<char>(c));
    } else {
      AppendEscaped(c, &out);
    }
  }
  return out;
}

}  // namespace sabot
