#include "sabot/common/ids.h"

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

}  // namespace

arrow::Status ValidateId(std::string_view id, std::string_view what) {
  constexpr size_t kMaxIdLength = 128;
  if (id.empty()) return arrow::Status::Invalid(what, " is empty");
  if (id.size() > kMaxIdLength) {
    return arrow::Status::Invalid(what, " is ", id.size(), " characters long; at most ",
                                  kMaxIdLength, " are allowed");
  }
  if (id.front() == '.') {
    return arrow::Status::Invalid(what, " ", QuoteInput(id), " starts with '.'");
  }
  for (size_t i = 0; i < id.size(); ++i) {
    if (!IsIdChar(id[i])) {
      return arrow::Status::Invalid(what, " ", QuoteInput(id),
                                    " has a character not allowed at position ", i, " (allowed: letters, digits, '_', '-', '.')");
    }
  }
  return arrow::Status::OK();
}

arrow::Status ValidateCount(int64_t count, std::string_view what) {
  if (count < 1 || count > kMaxPartitions) {
    return arrow::Status::Invalid(what, " must be between 1 and ", kMaxPartitions, ", got ",
                                  count);
  }
  return arrow::Status::OK();
}

}  // namespace sabot
