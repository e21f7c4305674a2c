// libFuzzer target: the ticket and descriptor path parser (transport/protocol.h).
//
// Properties beyond "no crash, no undefined behaviour": a parsed ticket has exactly one spelling
// (ToString() gives the input back), the component form agrees with the text form, and every
// error message is short printable ASCII (it becomes a gRPC status message).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/transport/protocol.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

void RequirePrintableAndShort(const arrow::Status& status) {
  Require(status.message().size() < 1024);
  for (char c : status.message()) {
    Require(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = sabot::PartitionPath::Parse(text);
  if (parsed.ok()) {
    Require(parsed->ToString() == text);
    auto again = sabot::PartitionPath::FromComponents(parsed->ToComponents());
    Require(again.ok() && *again == *parsed);
  } else {
    Require(parsed.status().IsInvalid());
    RequirePrintableAndShort(parsed.status());
  }
  // The same bytes as descriptor components, split at '/'.
  std::vector<std::string> components;
  size_t start = 0;
  while (start <= text.size()) {
    size_t slash = text.find('/', start);
    if (slash == std::string_view::npos) slash = text.size();
    components.emplace_back(text.substr(start, slash - start));
    start = slash + 1;
  }
  auto from_components = sabot::PartitionPath::FromComponents(components);
  if (from_components.ok()) {
    Require(from_components->ToComponents() == components);
  } else {
    RequirePrintableAndShort(from_components.status());
  }
  return 0;
}
