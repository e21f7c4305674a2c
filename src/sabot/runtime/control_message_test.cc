#include "sabot/runtime/control_message.h"

#include <gtest/gtest.h>

#include "sabot/runtime/control_actions.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

TEST(ControlMessage, RoundTripsEveryKind) {
  ControlMessage message;
  message.Set("name", "shuffle-1");
  message.SetInt("count", -42);
  message.SetInts("tasks", {0, 3, 7});
  message.SetInts("none", {});
  std::string binary("\0\xff\n=x", 5);
  message.SetBytes("blob", *arrow::Buffer::FromString(binary));
  ASSERT_OK_AND_ASSIGN(ControlMessage back, ControlMessage::Decode(message.Encode()));
  EXPECT_EQ(*back.Get("name"), "shuffle-1");
  EXPECT_EQ(*back.GetInt("count"), -42);
  EXPECT_EQ(*back.GetInts("tasks"), (std::vector<int64_t>{0, 3, 7}));
  EXPECT_TRUE(back.GetInts("none")->empty());
  EXPECT_EQ((*back.GetBytes("blob"))->ToString(), binary);
}

TEST(ControlMessage, ErrorsNameTheField) {
  ASSERT_OK_AND_ASSIGN(ControlMessage message, ControlMessage::Decode("a=1\nb=x\n"));
  ASSERT_RAISES_WITH(KeyError, "'missing'", message.Get("missing").status());
  ASSERT_RAISES_WITH(Invalid, "'b'", message.GetInt("b").status());
  ASSERT_RAISES_WITH(Invalid, "line 1", ControlMessage::Decode("no equals\n").status());
  ASSERT_RAISES_WITH(Invalid, "not terminated", ControlMessage::Decode("a=1").status());
  ASSERT_RAISES_WITH(Invalid, "repeats", ControlMessage::Decode("a=1\na=2\n").status());
  ASSERT_RAISES_WITH(Invalid, "line 1", ControlMessage::Decode("Bad-Name=1\n").status());
}

TEST(ControlActions, JobAndLocationsRoundTrip) {
  GeneratedJob job;
  job.data.batch_rows = 123;
  job.data.distribution = KeyDistribution::kSkewed;
  job.data.hot_key_fraction = 0.25;
  job.num_writers = 3;
  job.batches_per_writer = 9;
  std::vector<WriterLocation> upstream = {{0, 0, "grpc+tcp://127.0.0.1:5000"},
                                          {1, 2, "grpc+tcp://127.0.0.1:5001"}};
  ControlMessage message;
  PutGeneratedJob(job, &message);
  PutWriterLocations(upstream, &message);
  ASSERT_OK_AND_ASSIGN(ControlMessage back, ControlMessage::Decode(message.Encode()));
  ASSERT_OK_AND_ASSIGN(GeneratedJob job_back, GetGeneratedJob(back));
  EXPECT_EQ(job_back.data.batch_rows, 123);
  EXPECT_EQ(job_back.data.distribution, KeyDistribution::kSkewed);
  EXPECT_DOUBLE_EQ(job_back.data.hot_key_fraction, 0.25);
  EXPECT_EQ(job_back.total_rows(), job.total_rows());
  ASSERT_OK_AND_ASSIGN(auto locations, GetWriterLocations(back));
  ASSERT_EQ(locations.size(), 2u);
  EXPECT_EQ(locations[1].writer_task, 1);
  EXPECT_EQ(locations[1].attempt, 2);
  EXPECT_EQ(locations[1].agent, "grpc+tcp://127.0.0.1:5001");
}

}  // namespace
}  // namespace sabot
