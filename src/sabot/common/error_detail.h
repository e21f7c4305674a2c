#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <arrow/status.h>

namespace sabot {

// Where in the shuffle an error happened, and whether trying again may help. Attached to an
// arrow::Status as its StatusDetail, the way Flight attaches FlightStatusDetail, so callers can
// inspect it (ShuffleErrorDetail::FromStatus) instead of parsing messages.
struct ShuffleErrorContext {
  std::string shuffle_id;               // empty when not about one shuffle
  std::optional<int32_t> partition_id;  // destination partition, if any
  std::optional<int32_t> writer_task;   // upstream writer task, if any
  std::string agent;                    // agent id or address, if any
  bool retryable = false;               // a transient condition: the same call may succeed later
};

// Immutable; safe to share across threads.
class ShuffleErrorDetail : public arrow::StatusDetail {
 public:
  static constexpr const char* kTypeId = "sabot::ShuffleErrorDetail";

  explicit ShuffleErrorDetail(ShuffleErrorContext context) : context_(std::move(context)) {}

  const char* type_id() const override { return kTypeId; }
  // "shuffle 's1' partition 3 writer 2 agent '127.0.0.1:8816' (retryable)"; only set fields.
  std::string ToString() const override;

  const ShuffleErrorContext& context() const { return context_; }

  // The detail attached to `status`, or nullptr when it has none.
  static const ShuffleErrorDetail* FromStatus(const arrow::Status& status);

 private:
  ShuffleErrorContext context_;
};

// `status` with `context` attached (and, when the message does not say it yet, appended to the
// message). Returns OK unchanged.
arrow::Status WithShuffleContext(const arrow::Status& status, ShuffleErrorContext context);

// The text of `status` to quote inside another error: its message and, when it carries a
// detail, the detail too ("Error writing bytes to file ([errno 28] No space left on device)").
// `Status::message()` alone drops the detail, which is where Arrow keeps the errno of a failed
// system call: without it "disk full" reads as a bare "Error writing bytes to file".
std::string StatusCause(const arrow::Status& status);

}  // namespace sabot
