#include "sabot/dataflow/state_spill.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <arrow/builder.h>
#include <arrow/record_batch.h>
#include <arrow/table.h>
#include <gtest/gtest.h>

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<arrow::Schema> Schema() {
  return arrow::schema({arrow::field("key", arrow::int64()), arrow::field("seq", arrow::int64())});
}

std::shared_ptr<arrow::RecordBatch> Rows(int64_t first, int64_t n) {
  arrow::Int64Builder keys, seqs;
  for (int64_t i = first; i < first + n; ++i) {
    EXPECT_TRUE(keys.Append(i % 37).ok());
    EXPECT_TRUE(seqs.Append(i).ok());
  }
  return arrow::RecordBatch::Make(Schema(), n,
                                  {keys.Finish().ValueOrDie(), seqs.Finish().ValueOrDie()});
}

size_t FilesIn(const fs::path& directory) {
  if (!fs::exists(directory)) return 0;
  size_t n = 0;
  for (const auto& entry : fs::recursive_directory_iterator(directory)) {
    n += entry.is_regular_file() ? 1 : 0;
  }
  return n;
}

// Rows appended in many runs (a read between appends seals a run) come back per partition in
// the order written, every row in the partition of its hash; runs are compacted past kMaxRuns
// (the files stay bounded); Clear(p) drops a partition; the directory goes with Clear().
TEST(SpillRunsTest, ReadsBackEveryRowInOrderAcrossRunsAndCompactions) {
  const fs::path root = fs::temp_directory_path() /
                        ("sabot_spill_runs_test_" + std::to_string(getpid()));
  fs::remove_all(root);
  SpillDirectory directory(root.string(), "runs", "test");
  SpillRuns runs(&directory, "state", arrow::default_memory_pool());
  std::map<int32_t, std::vector<int64_t>> expected;  // partition -> seqs in order
  int64_t next = 0;
  for (int round = 0; round < 3 * static_cast<int>(SpillRuns::kMaxRuns); ++round) {
    auto batch = Rows(next, 25);
    std::vector<uint64_t> hashes(25);
    for (int64_t i = 0; i < 25; ++i) {
      hashes[i] = static_cast<uint64_t>((next + i) % 37) * 0x9E3779B97F4A7C15ULL;
      expected[runs.PartitionOf(hashes[i])].push_back(next + i);
    }
    next += 25;
    ASSERT_OK(runs.Append(batch, hashes.data()));
    // A read seals the run: the next append opens another.
    ASSERT_OK(runs.Read(0, [](std::shared_ptr<arrow::RecordBatch>) {
      return arrow::Status::OK();
    }));
    EXPECT_LE(FilesIn(root), (SpillRuns::kMaxRuns + 1) * kSpillPartitions);
  }
  EXPECT_EQ(runs.rows(), next);
  int32_t cleared = -1;
  for (int32_t p = 0; p < kSpillPartitions; ++p) {
    std::vector<int64_t> got;
    ASSERT_OK(runs.Read(p, [&](std::shared_ptr<arrow::RecordBatch> batch) {
      const auto& seqs = static_cast<const arrow::Int64Array&>(*batch->column(1));
      for (int64_t i = 0; i < seqs.length(); ++i) got.push_back(seqs.Value(i));
      return arrow::Status::OK();
    }));
    EXPECT_EQ(got, expected[p]) << "partition " << p;
    EXPECT_EQ(runs.rows(p), static_cast<int64_t>(expected[p].size()));
    if (!got.empty()) cleared = p;
  }
  ASSERT_GE(cleared, 0);
  runs.Clear(cleared);
  EXPECT_EQ(runs.rows(cleared), 0);
  EXPECT_EQ(runs.rows(), next - static_cast<int64_t>(expected[cleared].size()));
  EXPECT_GT(directory.spilled_bytes(), 0);
  runs.Clear();
  EXPECT_TRUE(runs.empty());
  EXPECT_EQ(FilesIn(root), 0u);
  directory.Remove();
  fs::remove_all(root);
}

// A snapshot part of a few numbers reads back; a missing column is an error naming it.
TEST(SpillRunsTest, Int64RowRoundTrips) {
  auto table = Int64Row({{"watermark", -5}, {"late_rows", 7}});
  ASSERT_OK(table->ValidateFull());
  ASSERT_OK_AND_ASSIGN(auto values, ReadInt64Row(*table, {"late_rows", "watermark"}));
  EXPECT_EQ(values, (std::vector<int64_t>{7, -5}));
  ASSERT_RAISES_WITH(Invalid, "no int64 column 'passed'", ReadInt64Row(*table, {"passed"}));
}

}  // namespace
}  // namespace sabot
