#include "sabot/partition/write_combining_scatter.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/memory_pool.h>
#include <gtest/gtest.h>

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

// A case: `columns` input columns of `width` bytes a value, `rows` rows, `partitions` partitions.
struct Case {
  int64_t width;
  int columns;
  int64_t rows;
  int32_t partitions;
};

// Runs the scatter and checks every output byte against an independent computation: a scalar
// loop that appends each row's value to its partition's list, partitions laid out one after the
// other in partition order.
void ExpectExact(const Case& c, const std::vector<PartitionId>& ids, WriteCombiningScatter* scatter) {
  SCOPED_TRACE("width " + std::to_string(c.width) + ", " + std::to_string(c.columns) +
               " columns, " + std::to_string(c.rows) + " rows, " + std::to_string(c.partitions) +
               " partitions");
  std::mt19937_64 rng(static_cast<uint64_t>(c.rows * 31 + c.width));
  const int64_t bytes = c.rows * c.width;
  std::vector<std::vector<uint8_t>> inputs(static_cast<size_t>(c.columns));
  std::vector<std::unique_ptr<arrow::Buffer>> outputs;
  std::vector<WriteCombiningScatter::Column> columns;
  for (auto& input : inputs) {
    // One spare byte in front: the input need not be aligned.
    input.resize(static_cast<size_t>(bytes + 1));
    for (auto& byte : input) byte = static_cast<uint8_t>(rng());
    ASSERT_OK_AND_ASSIGN(auto out, arrow::AllocateBuffer(bytes, arrow::default_memory_pool()));
    std::memset(out->mutable_data(), 0xEE, static_cast<size_t>(bytes));
    columns.push_back({input.data() + 1, out->mutable_data()});
    outputs.push_back(std::move(out));
  }

  std::vector<std::vector<int64_t>> rows_of(static_cast<size_t>(c.partitions));
  for (int64_t i = 0; i < c.rows; ++i) rows_of[ids[i]].push_back(i);
  std::vector<int64_t> starts(static_cast<size_t>(c.partitions));
  int64_t start = 0;
  for (int32_t p = 0; p < c.partitions; ++p) {
    starts[p] = start;
    start += static_cast<int64_t>(rows_of[p].size());
  }

  scatter->Scatter(c.width, columns, ids.data(), c.rows, starts.data(), c.partitions);

  for (int k = 0; k < c.columns; ++k) {
    std::vector<uint8_t> expected;
    for (const auto& rows : rows_of) {
      for (int64_t row : rows) {
        const uint8_t* value = inputs[k].data() + 1 + row * c.width;
        expected.insert(expected.end(), value, value + c.width);
      }
    }
    const uint8_t* got = outputs[k]->data();
    for (int64_t b = 0; b < bytes; ++b) {
      if (got[b] != expected[b]) {
        FAIL() << "column " << k << ": byte " << b << " (row " << b / c.width << " of the output) is "
               << int{got[b]} << ", expected " << int{expected[b]};
      }
    }
  }
}

std::vector<PartitionId> UniformIds(int64_t rows, int32_t partitions, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<PartitionId> ids(static_cast<size_t>(rows));
  for (auto& id : ids) id = static_cast<PartitionId>(rng() % static_cast<uint64_t>(partitions));
  return ids;
}

// Both kernels: the widest the CPU has (AVX-512 here) and the portable one (SSE2).
class WriteCombiningScatterKernels
    : public ::testing::TestWithParam<WriteCombiningScatter::Kernel> {};

TEST_P(WriteCombiningScatterKernels, EveryWidthAndGroupSizeIsExact) {
  WriteCombiningScatter scatter(GetParam());  // reused across cases: stale lines must not leak
  for (int64_t width : {1, 2, 4, 8, 16}) {
    for (int columns : {1, 2, 3, 4, 5, 9}) {
      for (int32_t partitions : {2, 3, 64, 1000}) {
        const int64_t rows = 20000 + width * 7 + columns;  // not a whole number of lines
        ExpectExact({width, columns, rows, partitions}, UniformIds(rows, partitions, 5), &scatter);
      }
    }
  }
}


// Partition boundaries fall anywhere inside lines: partitions of 0, 1, a few and many rows, in
// every arrangement the order of the ids below produces.
TEST_P(WriteCombiningScatterKernels, PartitionsOfEverySizeShareLines) {
  WriteCombiningScatter scatter(GetParam());
  const int32_t partitions = 40;
  std::vector<PartitionId> ids;
  std::mt19937 rng(3);
  for (int32_t p = 0; p < partitions; ++p) {
    const int count = p % 5 == 0 ? 0 : static_cast<int>(rng() % 70);  // some empty
    for (int k = 0; k < count; ++k) ids.push_back(p);
  }
  std::shuffle(ids.begin(), ids.end(), rng);
  for (int64_t width : {1, 4, 8, 16}) {
    ExpectExact({width, 2, static_cast<int64_t>(ids.size()), partitions}, ids, &scatter);
  }
}

TEST_P(WriteCombiningScatterKernels, SkewedAndSinglePartitionIds) {
  WriteCombiningScatter scatter(GetParam());
  const int64_t rows = 50000;
  std::mt19937_64 rng(9);
  std::vector<PartitionId> skewed(rows);
  for (auto& id : skewed) id = rng() % 10 < 9 ? 17 : static_cast<PartitionId>(rng() % 64);
  ExpectExact({8, 4, rows, 64}, skewed, &scatter);
  std::vector<PartitionId> one(rows, 63);
  ExpectExact({8, 3, rows, 64}, one, &scatter);
  std::vector<PartitionId> alternating(rows);
  for (int64_t i = 0; i < rows; ++i) alternating[i] = static_cast<PartitionId>(i % 2);
  ExpectExact({2, 1, rows, 2}, alternating, &scatter);
}

INSTANTIATE_TEST_SUITE_P(Kernels, WriteCombiningScatterKernels,
                         ::testing::Values(WriteCombiningScatter::Kernel::kBest,
                                           WriteCombiningScatter::Kernel::kPortable),
                         [](const auto& info) {
                           return info.param == WriteCombiningScatter::Kernel::kBest
                                      ? std::string("Best")
                                      : std::string("Portable");
                         });

TEST(WriteCombiningScatter, PaysOnlyForLargeOutputsWithSeveralLinesPerPartition) {
  // The partition benchmark's batches: 64 Ki rows of 32 bytes.
  EXPECT_TRUE(WriteCombiningScatter::Pays(64 * 1024, 32, 64));
  EXPECT_TRUE(WriteCombiningScatter::Pays(64 * 1024, 32, 512));
  EXPECT_FALSE(WriteCombiningScatter::Pays(4096, 32, 64));        // fits in cache
  EXPECT_FALSE(WriteCombiningScatter::Pays(64 * 1024, 32, 8192));  // few rows per partition
  EXPECT_FALSE(WriteCombiningScatter::Pays(1 << 20, 32, 8));       // the plain scatter wins
  EXPECT_TRUE(WriteCombiningScatter::SupportsWidth(16));
  EXPECT_FALSE(WriteCombiningScatter::SupportsWidth(3));
  EXPECT_FALSE(WriteCombiningScatter::SupportsWidth(32));
}

}  // namespace
}  // namespace sabot
