#include "sabot/shuffle/generated_shuffle_check.h"

#include <gtest/gtest.h>

#include <arrow/compute/api.h>

#include "sabot/partition/partitioner.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

// The reference partition function agrees with the golden values of docs/hashing.md.
TEST(ReferenceHashPartition, GoldenValues) {
  EXPECT_EQ(ReferenceHashPartitionOfInt64(0, 8), 3);
  EXPECT_EQ(ReferenceHashPartitionOfInt64(0, 64), 24);
  EXPECT_EQ(ReferenceHashPartitionOfInt64(0, 512), 192);
  EXPECT_EQ(ReferenceHashPartitionOfInt64(1, 512), 137);
  EXPECT_EQ(ReferenceHashPartitionOfInt64(-1, 64), 59);
  EXPECT_EQ(ReferenceHashPartitionOfInt64(42, 8), 6);
}

class GeneratedShuffleCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    job_.data.batch_rows = 50;
    job_.data.key_cardinality = 20;
    job_.num_writers = 2;
    job_.batches_per_writer = 2;
  }

  // Partitions every writer's batches directly (no shuffle) and feeds the check.
  arrow::Status FeedDirect(GeneratedShuffleCheck* check, const PartitionSpec& spec) {
    for (int32_t w = 0; w < job_.num_writers; ++w) {
      ARROW_ASSIGN_OR_RAISE(auto partitioner,
                            MakePartitioner(spec, GeneratedSchema(job_.data), w));
      for (int64_t i = 0; i < job_.batches_per_writer; ++i) {
        ARROW_ASSIGN_OR_RAISE(auto batch, job_.WriterBatch(w, i));
        ARROW_ASSIGN_OR_RAISE(auto parts, partitioner->Partition(batch));
        for (int32_t p = 0; p < parts.num_partitions(); ++p) {
          if (parts.batches[p]) ARROW_RETURN_NOT_OK(check->Check(p, *parts.batches[p]));
        }
      }
    }
    return arrow::Status::OK();
  }

  GeneratedJob job_;
};

TEST_F(GeneratedShuffleCheckTest, AcceptsTheCorrectResultForEveryEdge) {
  for (EdgeType edge : {EdgeType::kHash, EdgeType::kRange, EdgeType::kRebalance,
                        EdgeType::kBroadcast}) {
    SCOPED_TRACE(static_cast<int>(edge));
    ASSERT_OK_AND_ASSIGN(auto spec, job_.MakeSpec(edge, 4));
    ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job_, spec));
    ASSERT_OK(FeedDirect(check.get(), *spec));
    ASSERT_OK(check->Finish());
  }
}

TEST_F(GeneratedShuffleCheckTest, DetectsMissingDuplicateMisplacedAndReordered) {
  ASSERT_OK_AND_ASSIGN(auto spec, job_.MakeSpec(EdgeType::kRebalance, 2));
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  // Rows 0, 2, 4 ... of writer 0 go to partition 0 under REBALANCE (writer 0 starts at 0).
  ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(*spec, batch->schema(), 0));
  ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
  {
    ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job_, spec));
    ASSERT_RAISES_WITH(Invalid, "belongs to partition 0", check->Check(1, *parts.batches[0]));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job_, spec));
    ASSERT_OK(check->Check(0, *parts.batches[0]));
    ASSERT_RAISES_WITH(Invalid, "order", check->Check(0, *parts.batches[0]));
    ASSERT_RAISES_WITH(Invalid, "never arrived", check->Finish());
  }
  {
    ASSERT_OK_AND_ASSIGN(auto a, GeneratedShuffleCheck::Make(job_, spec));
    ASSERT_OK_AND_ASSIGN(auto b, GeneratedShuffleCheck::Make(job_, spec));
    ASSERT_OK(a->Check(0, *parts.batches[0]));
    ASSERT_OK(b->Check(0, *parts.batches[0]));
    ASSERT_OK_AND_ASSIGN(auto seen, b->SerializeSeen());
    ASSERT_RAISES_WITH(Invalid, "twice", a->MergeSeen(*seen));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job_, spec));
    auto altered = parts.batches[0]->SetColumn(
        0, parts.batches[0]->schema()->field(0),
        arrow::compute::Add(parts.batches[0]->column(0), arrow::Datum(int64_t{1}))
            .ValueOrDie()
            .make_array())
                       .ValueOrDie();
    ASSERT_RAISES_WITH(Invalid, "with key", check->Check(0, *altered));
  }
}

}  // namespace
}  // namespace sabot
