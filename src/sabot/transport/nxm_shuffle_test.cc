// Several agents as separate processes on loopback exchange an N x M shuffle; every row is
// checked against an independent computation from the data generator's definition of the table.

#include <map>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>

#include "sabot/common/data_generator.h"
#include "sabot/testing/assertions.h"
#include "sabot/transport/agent_process_testing.h"
#include "sabot/transport/shuffle_client.h"

namespace sabot::testing {
namespace {

constexpr int kAgents = 3;
constexpr int kPartitions = 4;
constexpr int kBatchesPerAgent = 3;
constexpr int64_t kRows = 2000;

class NxMShuffleTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NxMShuffleTest, EveryRowArrivesOnceAtItsPartitionInOrder) {
  std::vector<std::unique_ptr<AgentProcess>> agents;
  for (int i = 0; i < kAgents; ++i) {
    ASSERT_OK_AND_ASSIGN(
        auto agent,
        AgentProcess::Start(SABOT_TEST_AGENT_PATH,
                            {"--shuffle", "nxm", "--agent", std::to_string(i), "--agents",
                             std::to_string(kAgents), "--partitions", std::to_string(kPartitions),
                             "--batches", std::to_string(kBatchesPerAgent), "--rows",
                             std::to_string(kRows), "--compression", GetParam()}));
    agents.push_back(std::move(agent));
  }
  ShuffleClientOptions options;
  options.parallelism = 3;
  options.max_bytes_in_flight = 32 << 10;  // far below the data size: the bound is exercised
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(options));
  std::vector<FetchRequest> requests;
  for (int p = 0; p < kPartitions; ++p) {
    for (int a = 0; a < kAgents; ++a) {
      requests.push_back({agents[a]->uri(), PartitionPath{"nxm", p, std::nullopt, std::nullopt}});
    }
  }
  ASSERT_OK_AND_ASSIGN(auto stream, client->FetchMany(requests));

  DataGeneratorOptions data;
  data.batch_rows = kRows;
  const int64_t total_rows = kAgents * kBatchesPerAgent * kRows;
  std::vector<int> seen(total_rows, 0);
  std::map<size_t, int64_t> last_row;  // per request: rows arrive in order per writer
  int64_t received = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto item, stream->Next());
    if (item.batch == nullptr) break;
    const FetchRequest& request = requests[item.request_index];
    const int agent = static_cast<int>(item.request_index % kAgents);
    const auto& batch = *item.batch;
    ASSERT_EQ(batch.num_columns(), GeneratedSchema(data)->num_fields());
    auto keys = std::static_pointer_cast<arrow::Int64Array>(batch.GetColumnByName("key"));
    auto p0 = std::static_pointer_cast<arrow::Int64Array>(batch.GetColumnByName("p0"));
    auto p2 = std::static_pointer_cast<arrow::Int64Array>(batch.GetColumnByName("p2"));
    for (int64_t i = 0; i < batch.num_rows(); ++i) {
      const int64_t row = p0->Value(i) / 16;
      ASSERT_EQ(p0->Value(i), row * 16);
      ASSERT_GE(row, 0);
      ASSERT_LT(row, total_rows);
      ASSERT_EQ(p2->Value(i), row * 16 + 2);
      const int64_t key = GeneratedKey(data, row);
      ASSERT_EQ(keys->Value(i), key) << "row " << row;
      ASSERT_EQ(((key % kPartitions) + kPartitions) % kPartitions, request.path.partition_id)
          << "row " << row << " reached the wrong partition";
      ASSERT_EQ(row / (kBatchesPerAgent * kRows), agent) << "row " << row << " from wrong agent";
      auto [it, first] = last_row.emplace(item.request_index, row);
      if (!first) {
        ASSERT_GT(row, it->second) << "order lost within writer " << agent;
        it->second = row;
      }
      ++seen[row];
      ++received;
    }
  }
  EXPECT_EQ(received, total_rows);
  for (int64_t row = 0; row < total_rows; ++row) {
    ASSERT_EQ(seen[row], 1) << "row " << row << " arrived " << seen[row] << " times";
  }
  EXPECT_EQ(client->num_connections(), kAgents) << "one pooled connection per agent";
}

INSTANTIATE_TEST_SUITE_P(Compression, NxMShuffleTest,
                         ::testing::Values("none", "lz4_frame", "zstd"));

}  // namespace
}  // namespace sabot::testing
