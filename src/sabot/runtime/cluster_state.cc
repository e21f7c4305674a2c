#include "sabot/runtime/cluster_state.h"

#include <array>

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 7> kJobStateNames = {{
    {JobState::kCreated, "created"},
    {JobState::kScheduled, "scheduled"},
    {JobState::kRunning, "running"},
    {JobState::kFinished, "finished"},
    {JobState::kFailed, "failed"},
    {JobState::kCancelled, "cancelled"},
    {JobState::kRestarting, "restarting"},
}};

}  // namespace

std::string_view JobStateName(JobState state) {
  for (const auto& [value, name] : kJobStateNames) {
    if (value == state) return name;
  }
  return "unknown";
}

arrow::Result<JobState> ParseJobState(std::string_view name) {
  for (const auto& [value, known] : kJobStateNames) {
    if (known == name) return value;
  }
  return arrow::Status::Invalid("unknown job state ", QuoteInput(name),
                                " (expected created, scheduled, running, finished, failed, "
                                "cancelled or restarting)");
}

}  // namespace sabot
