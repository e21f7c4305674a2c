#pragma once

#include <string_view>

#include <arrow/result.h>

#include "sabot/runtime/control_message.h"
#include "sabot/verify/generated_shuffle_check.h"
#include "sabot/shuffle/shuffle_manager.h"

namespace sabot {

// The control actions a job manager sends an agent over Flight DoAction (docs/shuffle-service.md).
// Bodies and results are ControlMessages.
inline constexpr std::string_view kActionRegisterShuffle = "sabot.register_shuffle";
inline constexpr std::string_view kActionRunWriters = "sabot.run_writers";
inline constexpr std::string_view kActionRunReaders = "sabot.run_readers";
inline constexpr std::string_view kActionShuffleStats = "sabot.shuffle_stats";
inline constexpr std::string_view kActionProgress = "sabot.progress";
inline constexpr std::string_view kActionCancelShuffle = "sabot.cancel_shuffle";
inline constexpr std::string_view kActionReleaseJob = "sabot.release_job";
inline constexpr std::string_view kActionShutdown = "sabot.shutdown";

// GeneratedJob <-> fields of a control message.
void PutGeneratedJob(const GeneratedJob& job, ControlMessage* message);
arrow::Result<GeneratedJob> GetGeneratedJob(const ControlMessage& message);

// Writer locations as "task@location" items, comma-free by construction.
void PutWriterLocations(const std::vector<WriterLocation>& locations, ControlMessage* message);
arrow::Result<std::vector<WriterLocation>> GetWriterLocations(const ControlMessage& message);

// ShuffleStats <-> fields.
void PutShuffleStats(const ShuffleStats& stats, ControlMessage* message);
arrow::Result<ShuffleStats> GetShuffleStats(const ControlMessage& message);

}  // namespace sabot
