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
  // The message names each part of the context once: parts it already names (an inner layer
  // added them) are not repeated. The detail keeps the whole context.
  const std::string& message = status.message();
  ShuffleErrorContext missing;
  auto absent = [&](const std::string& text) { return message.find(text) == std::string::npos; };
  if (!context.shuffle_id.empty() && absent("shuffle '" + context.shuffle_id + "'")) {
    missing.shuffle_id = context.shuffle_id;
  }
  if (context.partition_id && absent("partition " + std::to_string(*context.partition_id))) {
    missing.partition_id = context.partition_id;
  }
  if (context.writer_task && absent("writer " + std::to_string(*context.writer_task))) {
    missing.writer_task = context.writer_task;
  }
  if (!context.agent.empty() && absent("agent '" + context.agent + "'")) {
    missing.agent = context.agent;
  }
  missing.retryable = context.retryable && absent("(retryable)");
  std::string where = ShuffleErrorDetail(missing).ToString();
  auto detail = std::make_shared<ShuffleErrorDetail>(std::move(context));
  return arrow::Status(status.code(), where.empty() ? message : where + ": " + message,
                       std::move(detail));
}

std::string StatusCause(const arrow::Status& status) {
  const auto& detail = status.detail();
  // A shuffle context is already named in the message (WithShuffleContext puts it there).
  if (detail == nullptr || ShuffleErrorDetail::FromStatus(status) != nullptr) {
    return status.message();
  }
  std::string detail_text = detail->ToString();
  if (detail_text.empty() || status.message().find(detail_text) != std::string::npos) {
    return status.message();
  }
  return status.message() + " (" + detail_text + ")";
}

}  // namespace sabot
