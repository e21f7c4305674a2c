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

// A deployment that restores a checkpoint carries the storage's name, directory and the id.
TEST(ControlActions, CheckpointDeploymentRoundTrips) {
  TaskDeployment deployment;
  deployment.job_id = "job-3-a2";
  deployment.plan_json = "{}";
  deployment.agents = {"grpc+tcp://127.0.0.1:5000"};
  deployment.task_agents = {0, 0};
  deployment.tasks = {0, 1};
  ControlMessage plain;
  PutTaskDeployment(deployment, &plain);
  EXPECT_FALSE(plain.Has("checkpoint_job"));
  ASSERT_OK_AND_ASSIGN(TaskDeployment plain_back, GetTaskDeployment(plain));
  EXPECT_TRUE(plain_back.checkpoint_job.empty());
  EXPECT_EQ(plain_back.restore_checkpoint, kNoCheckpoint);

  deployment.checkpoint_job = "job-3";
  deployment.checkpoint_directory = "/tmp/check points/x";
  deployment.checkpoint_retained = 3;
  deployment.restore_checkpoint = 17;
  ControlMessage message;
  PutTaskDeployment(deployment, &message);
  ASSERT_OK_AND_ASSIGN(ControlMessage decoded, ControlMessage::Decode(message.Encode()));
  ASSERT_OK_AND_ASSIGN(TaskDeployment back, GetTaskDeployment(decoded));
  EXPECT_EQ(back.checkpoint_job, "job-3");
  EXPECT_EQ(back.checkpoint_directory, "/tmp/check points/x");
  EXPECT_EQ(back.checkpoint_retained, 3);
  EXPECT_EQ(back.restore_checkpoint, 17);

  ControlMessage bad = decoded;
  bad.SetInt("checkpoint_retained", 0);
  EXPECT_TRUE(GetTaskDeployment(bad).status().IsInvalid());
  bad = decoded;
  bad.SetInt("restore_checkpoint", -1);
  EXPECT_TRUE(GetTaskDeployment(bad).status().IsInvalid());
  bad = decoded;
  bad.Set("checkpoint_job", "../up");
  EXPECT_TRUE(GetTaskDeployment(bad).status().IsInvalid());
}

JobStatusReport EmptyStatus() {
  JobStatusReport report;
  report.task_index = {0, 1};
  report.task_finished = {0, 0};
  report.task_rows_in = {0, 0};
  report.task_rows_out = {0, 0};
  return report;
}

// Snapshot acks in a job status: files with sizes and checksums, a failed snapshot with its
// error (its task unknown), several checkpoints at once.
TEST(ControlActions, SnapshotAcksRoundTrip) {
  JobStatusReport report = EmptyStatus();
  SnapshotAck first;
  first.task = 0;
  first.id = 4;
  first.files = {{"0-0/1-offsets.arrow", 1234, 0xDEADBEEFu}, {"0-0/3-state.arrow", 0, 0}};
  SnapshotAck empty;
  empty.task = 1;
  empty.id = 4;
  SnapshotAck ended;
  ended.task = 2;
  ended.id = 4;
  ended.finished = true;
  SnapshotAck failed;
  failed.id = 5;
  failed.error = arrow::Status::IOError("disk full\twhile writing\nchk-000005");
  report.snapshots = {first, empty, ended, failed};
  ControlMessage message;
  PutJobStatus(report, &message);
  ASSERT_OK_AND_ASSIGN(ControlMessage decoded, ControlMessage::Decode(message.Encode()));
  ASSERT_OK_AND_ASSIGN(JobStatusReport back, GetJobStatus(decoded, {}));
  ASSERT_EQ(back.snapshots.size(), 4u);
  EXPECT_EQ(back.snapshots[0].task, 0);
  EXPECT_EQ(back.snapshots[0].id, 4);
  EXPECT_EQ(back.snapshots[0].files, first.files);
  EXPECT_TRUE(back.snapshots[0].error.ok());
  EXPECT_EQ(back.snapshots[1].task, 1);
  EXPECT_TRUE(back.snapshots[1].files.empty());
  EXPECT_FALSE(back.snapshots[1].finished);
  EXPECT_EQ(back.snapshots[2].task, 2);
  EXPECT_TRUE(back.snapshots[2].finished);
  EXPECT_TRUE(back.snapshots[2].files.empty());
  EXPECT_EQ(back.snapshots[3].task, -1);
  EXPECT_EQ(back.snapshots[3].id, 5);
  EXPECT_TRUE(back.snapshots[3].error.IsIOError());
  EXPECT_EQ(back.snapshots[3].error.message(), "disk full while writing chk-000005");

  // A status without acks (a job without checkpoints) has none.
  ControlMessage none;
  PutJobStatus(EmptyStatus(), &none);
  EXPECT_FALSE(none.Has("snapshots"));
  ASSERT_OK_AND_ASSIGN(JobStatusReport none_back, GetJobStatus(none, {}));
  EXPECT_TRUE(none_back.snapshots.empty());
}

TEST(ControlActions, MalformedSnapshotAcksAreRefused) {
  for (const char* text : {"A\t0\t4",                      // no line break
                           "X\t0\t4\n",                    // unknown kind
                           "A\t-1\t4\n",                   // a negative task in an ack
                           "F\t0\t4\t10\t1\tp\n",         // a file outside its ack
                           "A\t0\t4\nF\t1\t4\t10\t1\tp\n",  // a file of another task
                           "A\t0\t4\nF\t0\t4\t10\t4294967296\tp\n",  // crc too big
                           "A\t0\t4\nF\t0\t4\t10\t1\t\n",   // no path
                           "D\t0\t4\nF\t0\t4\t10\t1\tp\n",  // a file of an ended task
                           "A\t0\tx\n"}) {
    ControlMessage message;
    PutJobStatus(EmptyStatus(), &message);
    message.SetBytes("snapshots", *arrow::Buffer::FromString(text));
    EXPECT_TRUE(GetJobStatus(message, {}).status().IsInvalid()) << text;
  }
}

}  // namespace
}  // namespace sabot
