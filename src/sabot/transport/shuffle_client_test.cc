#include "sabot/transport/shuffle_client.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include <arrow/util/byte_size.h>

#include "sabot/common/data_generator.h"
#include "sabot/common/error_detail.h"
#include "sabot/testing/assertions.h"
#include "sabot/transport/agent_process_testing.h"

namespace sabot::testing {
namespace {

constexpr int kBatches = 30;
constexpr int64_t kRows = 200;

// One agent, one partition: block b of the served stream is generated batch b, whole.
std::vector<std::string> AgentArgs(int port, int delay_ms) {
  return {"--shuffle", "kill", "--partitions", "1", "--batches", std::to_string(kBatches),
          "--rows", std::to_string(kRows), "--port", std::to_string(port), "--serve-delay-ms",
          std::to_string(delay_ms)};
}

std::shared_ptr<arrow::RecordBatch> Expected(int64_t index) {
  DataGeneratorOptions data;
  data.batch_rows = kRows;
  return GenerateBatch(data, index).ValueOrDie();
}

ShuffleClientOptions FastRetries(int attempts) {
  ShuffleClientOptions options;
  options.max_attempts = attempts;
  options.initial_backoff = std::chrono::milliseconds(50);
  options.max_backoff = std::chrono::milliseconds(400);
  options.call_timeout = std::chrono::milliseconds(20'000);
  return options;
}

const PartitionPath kPath{"kill", 0, std::nullopt, std::nullopt};

// The agent is killed mid-stream and restarted on the same port: the client retries on a fresh
// connection, resumes after what it delivered, and the reader sees every batch exactly once.
TEST(ShuffleClientTest, RetriesAgainstARestartedServerWithoutDuplicates) {
  ASSERT_OK_AND_ASSIGN(auto agent, AgentProcess::Start(SABOT_TEST_AGENT_PATH, AgentArgs(0, 5)));
  const int port = agent->port();
  const std::string uri = agent->uri();
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(FastRetries(10)));
  std::vector<std::shared_ptr<arrow::RecordBatch>> received;
  std::unique_ptr<AgentProcess> restarted;
  arrow::Status restart_status;
  ASSERT_OK(client->FetchPartition(uri, kPath, [&](std::shared_ptr<arrow::RecordBatch> batch) {
    received.push_back(std::move(batch));
    if (received.size() == 10) {
      agent->Kill();
      auto again = AgentProcess::Start(SABOT_TEST_AGENT_PATH, AgentArgs(port, 0));
      if (again.ok()) restarted = std::move(*again);
      restart_status = again.status();
    }
    return arrow::Status::OK();
  }));
  ASSERT_OK(restart_status);
  ASSERT_EQ(received.size(), static_cast<size_t>(kBatches));
  for (int i = 0; i < kBatches; ++i) ASSERT_BATCHES_EQUAL(*Expected(i), *received[i]);
}

// The agent dies and stays down: after the last retry the error names agent, shuffle,
// partition and cause, and says the failure was transient.
TEST(ShuffleClientTest, ReportsAClearErrorWhenTheServerStaysDown) {
  ASSERT_OK_AND_ASSIGN(auto agent, AgentProcess::Start(SABOT_TEST_AGENT_PATH, AgentArgs(0, 5)));
  const std::string uri = agent->uri();
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(FastRetries(3)));
  int delivered = 0;
  arrow::Status status = client->FetchPartition(uri, kPath, [&](std::shared_ptr<arrow::RecordBatch>) {
    if (++delivered == 5) agent->Kill();
    return arrow::Status::OK();
  });
  ASSERT_FALSE(status.ok());
  EXPECT_GE(delivered, 5);
  EXPECT_LT(delivered, kBatches);
  const std::string message = status.message();
  EXPECT_NE(message.find("shuffle 'kill'"), std::string::npos) << message;
  EXPECT_NE(message.find("partition 0"), std::string::npos) << message;
  EXPECT_NE(message.find(uri), std::string::npos) << message;
  EXPECT_NE(message.find("gave up after 3 attempts"), std::string::npos) << message;
  const auto* detail = ShuffleErrorDetail::FromStatus(status);
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->context().agent, uri);
  EXPECT_TRUE(detail->context().retryable);
}

TEST(ShuffleClientTest, PermanentErrorsAreNotRetriedAndConnectionsArePooled) {
  ASSERT_OK_AND_ASSIGN(auto agent, AgentProcess::Start(SABOT_TEST_AGENT_PATH, AgentArgs(0, 0)));
  ShuffleClientOptions options = FastRetries(5);
  options.initial_backoff = std::chrono::milliseconds(2'000);  // a retry would show in the time
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(options));
  const auto start = std::chrono::steady_clock::now();
  auto unknown = client->FetchAll(agent->uri(), {"nope", 0, std::nullopt, std::nullopt});
  ASSERT_FALSE(unknown.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1'500));
  EXPECT_NE(unknown.status().message().find("unknown shuffle 'nope'"), std::string::npos);
  const auto* detail = ShuffleErrorDetail::FromStatus(unknown.status());
  ASSERT_NE(detail, nullptr);
  EXPECT_FALSE(detail->context().retryable);
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto batches, client->FetchAll(agent->uri(), kPath));
    EXPECT_EQ(batches.size(), static_cast<size_t>(kBatches));
  }
  EXPECT_EQ(client->num_connections(), 1);
}

TEST(ShuffleClientTest, DeadlineExceededIsRetriedThenReported) {
  ASSERT_OK_AND_ASSIGN(auto agent, AgentProcess::Start(SABOT_TEST_AGENT_PATH, AgentArgs(0, 50)));
  ShuffleClientOptions options = FastRetries(2);
  options.call_timeout = std::chrono::milliseconds(300);
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(options));
  auto result = client->FetchAll(agent->uri(), kPath);
  ASSERT_FALSE(result.ok());
  const auto* detail = ShuffleErrorDetail::FromStatus(result.status());
  ASSERT_NE(detail, nullptr) << result.status().ToString();
  EXPECT_TRUE(detail->context().retryable) << result.status().ToString();
  EXPECT_NE(result.status().message().find("Deadline Exceeded"), std::string::npos);
  EXPECT_NE(result.status().message().find("gave up after 2 attempts"), std::string::npos)
      << result.status().ToString();
}

TEST(ShuffleClientTest, CancellationStopsAFetch) {
  ASSERT_OK_AND_ASSIGN(auto agent, AgentProcess::Start(SABOT_TEST_AGENT_PATH, AgentArgs(0, 100)));
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(FastRetries(3)));
  arrow::StopSource stop;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop.RequestStop();
  });
  const auto start = std::chrono::steady_clock::now();
  int delivered = 0;
  arrow::Status status = client->FetchPartition(
      agent->uri(), kPath,
      [&](std::shared_ptr<arrow::RecordBatch>) {
        ++delivered;
        return arrow::Status::OK();
      },
      stop.token());
  canceller.join();
  ASSERT_TRUE(status.IsCancelled()) << status.ToString();
  EXPECT_LT(delivered, kBatches);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2'500));
}

TEST(ShuffleClientTest, FetchManyBoundsBytesAndReportsErrors) {
  ASSERT_OK_AND_ASSIGN(auto agent, AgentProcess::Start(SABOT_TEST_AGENT_PATH, AgentArgs(0, 0)));
  ShuffleClientOptions options = FastRetries(1);
  options.max_bytes_in_flight = 1;  // one batch at a time
  options.parallelism = 2;
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(options));
  ASSERT_OK_AND_ASSIGN(auto stream,
                       client->FetchMany({{agent->uri(), kPath}, {agent->uri(), kPath}}));
  std::vector<int> per_request(2, 0);
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto item, stream->Next());
    if (item.batch == nullptr) break;
    ASSERT_BATCHES_EQUAL(*Expected(per_request[item.request_index]), *item.batch);
    ++per_request[item.request_index];
  }
  EXPECT_EQ(per_request, (std::vector<int>{kBatches, kBatches}));
  // With a bound of 1 byte, at most one batch is ever held (the bound admits one when empty).
  EXPECT_GT(stream->peak_bytes_held(), 0);
  EXPECT_LE(stream->peak_bytes_held(), arrow::util::TotalBufferSize(*Expected(0)));
  ASSERT_OK_AND_ASSIGN(auto failing, client->FetchMany({{agent->uri(), kPath},
                                                        {agent->uri(), {"nope", 0, std::nullopt, std::nullopt}}}));
  arrow::Status status;
  while (status.ok()) {
    auto item = failing->Next();
    if (!item.ok()) status = item.status();
    else if (item->batch == nullptr) break;
  }
  EXPECT_NE(status.message().find("unknown shuffle 'nope'"), std::string::npos)
      << status.ToString();
}

}  // namespace
}  // namespace sabot::testing
