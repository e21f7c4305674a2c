#include "sabot/common/error_detail.h"

#include <sstream>

namespace sabot {

std::string ShuffleErrorDetail::ToString() const {
  std::ostringstream out;
  const char* sep = "";
  if (!context_.shuffle_id.empty()) {
    out << "shuffle '" << context_.shuffle_id << "'";
    sep = " ";
  }
  if (context_.partition_id) {
    out << sep << "partition " << *context_.partition_id;
    sep = " ";
  }
  if (context_.writer_task) {
    out << sep << "writer " << *context_.writer_task;
    sep = " ";
  }
  if (!context_.agent.empty()) {
    out << sep << "agent '" << context_.agent << "'";
    sep = " ";
  }
  if (context_.retryable) out << sep << "(retryable)";
  return out.str();
}

const ShuffleErrorDetail* ShuffleErrorDetail::FromStatus(const arrow::Status& status) {
  const auto& detail = status.detail();
  if (detail == nullptr || std::string_view(detail->type_id()) != kTypeId) return nullptr;
  return static_cast<const ShuffleErrorDetail*>(detail.get());
}

arrow::Status WithShuffleContext(const arrow::Status& status, ShuffleErrorContext context) {
  if (status.ok()) return status;
  auto detail = std::make_shared<ShuffleErrorDetail>(std::move(context));
  std::string where = detail->ToString();
  std::string message = status.message();
  if (!where.empty() && message.find(where) == std::string::npos) {
    message = where + ": " + message;
  }
  return arrow::Status(status.code(), std::move(message), std::move(detail));
}

}  // namespace sabot
