#include "sabot/runtime/cluster_state.h"

#include <gtest/gtest.h>

namespace sabot {
namespace {

TEST(ClusterStateTest, StateNamesRoundTrip) {
  for (JobState state : {JobState::kCreated, JobState::kScheduled, JobState::kRunning,
                         JobState::kFinished, JobState::kFailed, JobState::kCancelled,
                         JobState::kRestarting}) {
    auto parsed = ParseJobState(JobStateName(state));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, state);
  }
  EXPECT_EQ(JobStateName(JobState::kCancelled), "cancelled");
  EXPECT_EQ(JobStateName(JobState::kRestarting), "restarting");
}

TEST(ClusterStateTest, UnknownStateNamesTheInput) {
  auto parsed = ParseJobState("done");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("'done'"), std::string::npos)
      << parsed.status().message();
}

TEST(ClusterStateTest, OnlyFinishedFailedCancelledAreFinal) {
  EXPECT_FALSE(IsFinal(JobState::kCreated));
  EXPECT_FALSE(IsFinal(JobState::kScheduled));
  EXPECT_FALSE(IsFinal(JobState::kRunning));
  EXPECT_TRUE(IsFinal(JobState::kFinished));
  EXPECT_TRUE(IsFinal(JobState::kFailed));
  EXPECT_TRUE(IsFinal(JobState::kCancelled));
  // A restarting job runs again (or fails) later.
  EXPECT_FALSE(IsFinal(JobState::kRestarting));
}

}  // namespace
}  // namespace sabot
