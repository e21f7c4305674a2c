#include "sabot/shuffle/shuffle_descriptor.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include <arrow/type.h>

#include "sabot/verify/generated_shuffle_check.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

ShuffleDescriptor Sample() {
  ShuffleDescriptor d;
  d.shuffle_id = "job-7.agg";
  d.spec = PartitionSpec::Hash({"user", "day"}, 12).ValueOrDie();
  d.schema = arrow::schema({arrow::field("user", arrow::utf8()), arrow::field("day", arrow::date32()),
                            arrow::field("amount", arrow::float64())});
  d.num_writers = 5;
  d.options.mode = ShuffleMode::kBlocking;
  d.options.compression = arrow::Compression::ZSTD;
  d.options.target_block_rows = 1234;
  d.options.buffer_timeout = std::chrono::milliseconds(0);
  d.options.floating_credits = 3;
  return d;
}

TEST(ShuffleDescriptor, RoundTrip) {
  ShuffleDescriptor d = Sample();
  ASSERT_OK_AND_ASSIGN(auto bytes, d.Serialize());
  ASSERT_OK_AND_ASSIGN(ShuffleDescriptor back, ShuffleDescriptor::Deserialize(*bytes));
  EXPECT_EQ(back.shuffle_id, d.shuffle_id);
  EXPECT_TRUE(back.spec->Equals(*d.spec));
  EXPECT_TRUE(back.schema->Equals(*d.schema));
  EXPECT_EQ(back.num_writers, 5);
  EXPECT_EQ(back.options.mode, ShuffleMode::kBlocking);
  EXPECT_EQ(back.options.compression, arrow::Compression::ZSTD);
  EXPECT_EQ(back.options.target_block_rows, 1234);
  EXPECT_EQ(back.options.buffer_timeout.count(), 0);
  EXPECT_EQ(back.options.floating_credits, 3);
  ASSERT_OK_AND_ASSIGN(auto again, back.Serialize());
  EXPECT_TRUE(again->Equals(*bytes));
}

TEST(ShuffleDescriptor, EveryTruncationIsACleanError) {
  ASSERT_OK_AND_ASSIGN(auto bytes, Sample().Serialize());
  for (int64_t size = 0; size < bytes->size(); ++size) {
    auto result = ShuffleDescriptor::Deserialize(*arrow::SliceBuffer(bytes, 0, size));
    EXPECT_FALSE(result.ok()) << "truncated to " << size;
  }
  std::string garbage = "not a descriptor at all";
  EXPECT_FALSE(ShuffleDescriptor::Deserialize(arrow::Buffer(garbage)).ok());
}

TEST(ShuffleDescriptor, ValidateNamesTheProblem) {
  ShuffleDescriptor d = Sample();
  d.shuffle_id = "../etc";
  ASSERT_RAISES_WITH(Invalid, "shuffle id", d.Validate());
  d = Sample();
  d.spec = PartitionSpec::Hash({"missing"}, 3).ValueOrDie();
  ASSERT_RAISES_WITH(Invalid, "key column 'missing'", d.Validate());
  d = Sample();
  d.spec = PartitionSpec::Forward(4).ValueOrDie();
  ASSERT_RAISES_WITH(Invalid, "FORWARD", d.Validate());
  d = Sample();
  d.num_writers = 0;
  ASSERT_RAISES_WITH(Invalid, "writer tasks", d.Validate());
  d = Sample();
  d.options.exclusive_credits = 0;
  ASSERT_RAISES_WITH(Invalid, "exclusive_credits", d.Validate());
  d = Sample();
  d.options.target_block_bytes = int64_t{1} << 62;
  ASSERT_RAISES_WITH(Invalid, "target_block_bytes", d.Validate());
  d = Sample();
  d.options.timeout = std::chrono::milliseconds(INT64_MAX);
  ASSERT_RAISES_WITH(Invalid, "timeout", d.Validate());
  d = Sample();
  d.options.compression = arrow::Compression::SNAPPY;
  ASSERT_RAISES_WITH(Invalid, "compression", d.Validate());
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

// The compression code is checked while still an integer (UBSan found an invalid enum load when
// a descriptor carried 2^31 - 1); every code outside none/lz4/zstd is a clean Invalid.
TEST(ShuffleDescriptor, UnknownCompressionCodesAreRefused) {
  ASSERT_OK_AND_ASSIGN(auto bytes, Sample().Serialize());
  // The options end the descriptor as nine int64 fields; compression is the third.
  const int64_t offset = bytes->size() - 9 * 8 + 2 * 8;
  for (int64_t code : {int64_t{2147483647}, int64_t{-1}, int64_t{1}, int64_t{1} << 40}) {
    SCOPED_TRACE(code);
    std::string edited = bytes->ToString();
    std::memcpy(edited.data() + offset, &code, sizeof(code));
    ASSERT_RAISES_WITH(Invalid, "compression",
                       ShuffleDescriptor::Deserialize(arrow::Buffer(edited)).status());
  }
  ASSERT_OK_AND_ASSIGN(auto zstd, ShuffleCompressionFromCode(arrow::Compression::ZSTD));
  EXPECT_EQ(zstd, arrow::Compression::ZSTD);
}

// Found by fuzz_shuffle_descriptor: a RANGE spec whose IPC metadata puts the boundaries' values
// at an odd offset made the range check read an int64 from a misaligned address (UBSan). The
// reader now copies such buffers to aligned memory and validates the batch in full.
TEST(ShuffleDescriptor, MisalignedRangeBoundariesAreReadSafely) {
  std::ifstream file(std::string(SABOT_FUZZ_CORPUS_DIR) +
                         "/fuzz_shuffle_descriptor/regression_misaligned_range_boundaries",
                     std::ios::binary);
  ASSERT_TRUE(file.good());
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 100u);
  auto descriptor = ShuffleDescriptor::Deserialize(arrow::Buffer(bytes));
  if (descriptor.ok()) {
    ASSERT_OK(descriptor->Validate());
    ASSERT_EQ(descriptor->spec->edge_type(), EdgeType::kRange);
    ASSERT_OK(descriptor->spec->boundaries()->ValidateFull());
  } else {
    EXPECT_TRUE(descriptor.status().IsInvalid()) << descriptor.status().ToString();
  }
}

TEST(ShuffleDescriptor, RangeBoundariesSurviveTheRoundTrip) {
  GeneratedJob job;
  ShuffleDescriptor d = Sample();
  d.spec = job.MakeSpec(EdgeType::kRange, 4).ValueOrDie();
  d.schema = GeneratedSchema(job.data);
  ASSERT_OK_AND_ASSIGN(auto bytes, d.Serialize());
  ASSERT_OK_AND_ASSIGN(ShuffleDescriptor back, ShuffleDescriptor::Deserialize(*bytes));
  ASSERT_TRUE(back.spec->Equals(*d.spec)) << back.spec->ToString();
  ASSERT_BATCHES_EQUAL(*d.spec->boundaries(), *back.spec->boundaries());
}

}  // namespace
}  // namespace sabot
