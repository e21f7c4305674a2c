#include "sabot/runtime/agent.h"

#include <string>

#include <gtest/gtest.h>

#include "sabot/runtime/control_actions.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

// An agent on a free loopback port with shuffle "s" registered: 2 writers, 2 partitions, HASH on
// the generated table's key.
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions options;
    options.server.port = 0;
    ASSERT_OK_AND_ASSIGN(agent_, Agent::Make(options));
    job_.num_writers = 2;
    job_.batches_per_writer = 2;
    job_.data.batch_rows = 100;
    ShuffleDescriptor descriptor;
    descriptor.shuffle_id = "s";
    ASSERT_OK_AND_ASSIGN(descriptor.spec, job_.MakeSpec(EdgeType::kHash, 2));
    descriptor.schema = GeneratedSchema(job_.data);
    descriptor.num_writers = 2;
    ASSERT_OK_AND_ASSIGN(auto bytes, descriptor.Serialize());
    ControlMessage request;
    request.SetBytes("descriptor", *bytes);
    request.Set("job_id", "j");
    ASSERT_OK(agent_->HandleAction(kActionRegisterShuffle, request.Encode()).status());
  }

  ControlMessage Request(const GeneratedJob& job, const std::string& tasks) {
    ControlMessage request;
    request.Set("shuffle_id", "s");
    PutGeneratedJob(job, &request);
    request.Set("tasks", tasks);
    request.Set("upstream", "0:0@" + agent_->location() + " 1:0@" + agent_->location());
    return request;
  }

  arrow::Status RunReaders(const ControlMessage& request) {
    return agent_->HandleAction(kActionRunReaders, request.Encode()).status();
  }

  std::unique_ptr<Agent> agent_;
  GeneratedJob job_;
};

// Item: one run_readers with num_writers = 33554432 made an agent allocate 5.3 GB for its check.
// Every size is now checked against the registered shuffle, and bounded, before any allocation.
TEST_F(AgentTest, RunRequestsAreCheckedAgainstTheRegisteredShuffle) {
  GeneratedJob writers = job_;
  writers.num_writers = 33554432;
  ASSERT_RAISES_WITH(Invalid, "writers", RunReaders(Request(writers, "0")));
  writers.num_writers = 3;
  ASSERT_RAISES_WITH(Invalid, "3 writers but shuffle 's' was registered with 2",
                     RunReaders(Request(writers, "0")));

  GeneratedJob rows = job_;
  rows.batches_per_writer = 1000000000000000;  // 10^15
  ASSERT_RAISES_WITH(Invalid, "exceeds", RunReaders(Request(rows, "0")));

  GeneratedJob schema = job_;
  schema.data.payload_columns = 5;
  ASSERT_RAISES_WITH(Invalid, "schema", RunReaders(Request(schema, "0")));

  ASSERT_RAISES_WITH(IndexError, "partition 2 is out of range", RunReaders(Request(job_, "2")));
  ASSERT_RAISES_WITH(IndexError, "partition -1", RunReaders(Request(job_, "-1")));
  ASSERT_RAISES_WITH(Invalid, "twice", RunReaders(Request(job_, "0,0")));
  ASSERT_RAISES_WITH(IndexError, "writer task 2 is out of range",
                     agent_->HandleAction(kActionRunWriters, Request(job_, "2").Encode()).status());

  ControlMessage upstream = Request(job_, "0");
  upstream.Set("upstream", "5:0@grpc+tcp://127.0.0.1:1");
  ASSERT_RAISES_WITH(IndexError, "writer task 5", RunReaders(upstream));
  upstream.Set("upstream", "0:0@a 0:0@b");
  ASSERT_RAISES_WITH(Invalid, "appears twice", RunReaders(upstream));
  upstream.Set("upstream", "+1:0@a");
  ASSERT_RAISES_WITH(Invalid, "bad task or attempt", RunReaders(upstream));
  upstream.Set("upstream", "99999999999:0@a");
  ASSERT_RAISES_WITH(Invalid, "bad task or attempt", RunReaders(upstream));

  ControlMessage unregistered = Request(job_, "0");
  unregistered.Set("shuffle_id", "other");
  ASSERT_RAISES_WITH(KeyError, "other", RunReaders(unregistered));
  unregistered.Set("shuffle_id", "../x");
  ASSERT_RAISES_WITH(Invalid, "shuffle id", RunReaders(unregistered));
}

TEST_F(AgentTest, MalformedActionsAreQuotedEscaped) {
  auto unknown = agent_->HandleAction("sabot.\xff\x01", "");
  ASSERT_RAISES_WITH(NotImplemented, "'sabot.\\xff\\x01'", unknown.status());
  auto line = agent_->HandleAction(kActionProgress, "shuffle_id\xfe\n");
  ASSERT_RAISES_WITH(Invalid, "'shuffle_id\\xfe'", line.status());
  auto number = agent_->HandleAction(
      kActionRunReaders, "batch_rows=" + std::string(100000, '9') + "\nshuffle_id=s\n");
  ASSERT_FALSE(number.ok());
  EXPECT_LT(number.status().message().size(), 512u) << number.status().message().size();
  // Ids are checked (and quoted escaped) by every action that takes one.
  for (auto action : {kActionProgress, kActionCancelShuffle, kActionShuffleStats}) {
    ASSERT_RAISES_WITH(Invalid, "shuffle id '\\x01'",
                       agent_->HandleAction(action, "shuffle_id=\x01\n").status());
  }
  ASSERT_RAISES_WITH(Invalid, "job id",
                     agent_->HandleAction(kActionReleaseJob, "job_id=a/b\n").status());
  // The agent still answers.
  ControlMessage progress;
  progress.Set("shuffle_id", "s");
  ASSERT_OK(agent_->HandleAction(kActionProgress, progress.Encode()).status());
}

}  // namespace
}  // namespace sabot
