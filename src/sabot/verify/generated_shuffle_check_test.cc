#include "sabot/verify/generated_shuffle_check.h"

#include <gtest/gtest.h>

#include <arrow/array.h>
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
    ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job_, spec));
    ASSERT_OK(check->Check(0, *parts.batches[0]->Slice(0, 3)));
    ASSERT_RAISES_WITH(Invalid, "arrived twice", check->Check(0, *parts.batches[0]->Slice(2, 2)));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto a, GeneratedShuffleCheck::Make(job_, spec));
    ASSERT_OK_AND_ASSIGN(auto b, GeneratedShuffleCheck::Make(job_, spec));
    ASSERT_OK(a->Check(0, *parts.batches[0]));
    ASSERT_OK(b->Check(0, *parts.batches[0]));
    ASSERT_RAISES_WITH(Invalid, "twice", a->MergeCounts(b->counts()));
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

// Sizes from a hostile control message (found by UBSan and ASan: total_rows() overflowed with
// batches_per_writer = 10^15, and the check then asked for terabytes) are refused by Validate()
// and Make() before anything is allocated; row counts saturate instead of overflowing.
TEST(GeneratedJobTest, HostileSizesAreRefusedBeforeAllocating) {
  GeneratedJob job;
  job.data.batch_rows = 65536;
  job.num_writers = 4;
  job.batches_per_writer = 1000000000000000;  // 10^15
  EXPECT_EQ(job.total_rows(), INT64_MAX);
  ASSERT_RAISES_WITH(Invalid, "exceeds", job.Validate());
  job.data.batch_rows = int64_t{1} << 40;
  job.batches_per_writer = int64_t{1} << 40;
  EXPECT_EQ(job.rows_per_writer(), INT64_MAX);
  EXPECT_EQ(job.total_rows(), INT64_MAX);
  ASSERT_RAISES_WITH(Invalid, "batch rows", job.Validate());

  GeneratedJob writers;
  writers.num_writers = 33554432;
  ASSERT_RAISES_WITH(Invalid, "number of writers", writers.Validate());
  GeneratedJob payload;
  payload.data.payload_columns = 0;
  ASSERT_RAISES_WITH(Invalid, "payload columns", payload.Validate());
  GeneratedJob hot;
  hot.data.hot_key_fraction = 2.5;
  ASSERT_RAISES_WITH(Invalid, "hot key fraction", hot.Validate());

  // Within Validate()'s bounds but too big to check (the check's state grows with writers x
  // partitions, never with rows): Make() says how much it would need.
  GeneratedJob wide;
  wide.num_writers = kMaxPartitions;
  ASSERT_OK_AND_ASSIGN(auto wide_spec, wide.MakeSpec(EdgeType::kRebalance, kMaxPartitions));
  ASSERT_RAISES_WITH(Invalid, "bytes of state",
                     GeneratedShuffleCheck::Make(wide, wide_spec).status());
}

// One missing row anywhere, or one row twice, is found with per-stream counts alone.
TEST_F(GeneratedShuffleCheckTest, OneMissingOrRepeatedRowIsFoundForEveryEdge) {
  for (EdgeType edge : {EdgeType::kHash, EdgeType::kRange, EdgeType::kRebalance,
                        EdgeType::kBroadcast}) {
    SCOPED_TRACE(static_cast<int>(edge));
    ASSERT_OK_AND_ASSIGN(auto spec, job_.MakeSpec(edge, 3));
    for (int64_t drop : {int64_t{0}, int64_t{77}, job_.total_rows() - 1}) {
      ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job_, spec));
      bool dropped = false;
      for (int32_t w = 0; w < job_.num_writers; ++w) {
        ASSERT_OK_AND_ASSIGN(auto partitioner,
                             MakePartitioner(*spec, GeneratedSchema(job_.data), w));
        for (int64_t i = 0; i < job_.batches_per_writer; ++i) {
          ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(w, i));
          ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
          for (int32_t p = 0; p < parts.num_partitions(); ++p) {
            auto part = parts.batches[p];
            if (part == nullptr) continue;
            // Without row `drop` (in the first partition that has it).
            auto ids = std::static_pointer_cast<arrow::Int64Array>(part->GetColumnByName("p0"));
            for (int64_t r = 0; r < part->num_rows() && !dropped; ++r) {
              if (ids->Value(r) / 16 != drop) continue;
              dropped = true;
              if (r > 0) ASSERT_OK(check->Check(p, *part->Slice(0, r)));
              part = part->Slice(r + 1);
              break;
            }
            if (part->num_rows() > 0) ASSERT_OK(check->Check(p, *part));
          }
        }
      }
      ASSERT_TRUE(dropped);
      ASSERT_RAISES_WITH(Invalid, "1 of", check->Finish());
    }
  }
}

// Distributed mode: agents' counts merge; a stream counted at two agents is a duplicate.
TEST_F(GeneratedShuffleCheckTest, ARestoredPartitionChecksTheReplayExactly) {
  // A checkpoint after writer 0's first batch: a NEW check restored from every partition's
  // progress accepts exactly the rest (the replay) and still catches a row delivered twice.
  ASSERT_OK_AND_ASSIGN(auto spec, job_.MakeSpec(EdgeType::kHash, 3));
  auto feed = [&](GeneratedShuffleCheck* check, int32_t w, int64_t i) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto partitioner, MakePartitioner(*spec, GeneratedSchema(job_.data), w));
    ARROW_ASSIGN_OR_RAISE(auto batch, job_.WriterBatch(w, i));
    ARROW_ASSIGN_OR_RAISE(auto parts, partitioner->Partition(batch));
    for (int32_t p = 0; p < parts.num_partitions(); ++p) {
      if (parts.batches[p]) ARROW_RETURN_NOT_OK(check->Check(p, *parts.batches[p]));
    }
    return arrow::Status::OK();
  };
  ASSERT_OK_AND_ASSIGN(auto first, GeneratedShuffleCheck::Make(job_, spec));
  ASSERT_OK(feed(first.get(), 0, 0));
  std::vector<GeneratedShuffleCheck::PartitionProgress> snapshot;
  for (int32_t p = 0; p < 3; ++p) {
    ASSERT_OK_AND_ASSIGN(auto progress, first->Progress(p));
    snapshot.push_back(progress);
  }
  ASSERT_OK_AND_ASSIGN(auto restored, GeneratedShuffleCheck::Make(job_, spec));
  for (int32_t p = 0; p < 3; ++p) ASSERT_OK(restored->RestorePartition(p, snapshot[p]));
  EXPECT_EQ(restored->rows_checked(), first->rows_checked());
  ASSERT_OK(feed(restored.get(), 0, 1));
  ASSERT_OK(feed(restored.get(), 1, 0));
  ASSERT_OK(feed(restored.get(), 1, 1));
  ASSERT_OK(restored->Finish());
  // Without the restore, the rest alone is short; with it, the first batch again is a repeat.
  ASSERT_OK_AND_ASSIGN(auto again, GeneratedShuffleCheck::Make(job_, spec));
  for (int32_t p = 0; p < 3; ++p) ASSERT_OK(again->RestorePartition(p, snapshot[p]));
  ASSERT_RAISES_WITH(Invalid, "order", feed(again.get(), 0, 0));
  ASSERT_RAISES_WITH(Invalid, "partition 3 is not one of the 3", first->Progress(3));
  snapshot[0].received.pop_back();
  ASSERT_RAISES_WITH(Invalid, "entries for 2 writers", again->RestorePartition(0, snapshot[0]));
}

TEST_F(GeneratedShuffleCheckTest, CountsMergeAcrossAgents) {
  ASSERT_OK_AND_ASSIGN(auto spec, job_.MakeSpec(EdgeType::kHash, 4));
  ASSERT_OK_AND_ASSIGN(auto all, GeneratedShuffleCheck::Make(job_, spec));
  ASSERT_OK(FeedDirect(all.get(), *spec));
  // Two "agents", each with the partitions p % 2 == a.
  ASSERT_OK_AND_ASSIGN(auto coordinator, GeneratedShuffleCheck::Make(job_, spec));
  for (int a = 0; a < 2; ++a) {
    std::vector<int64_t> counts = all->counts();
    for (size_t i = 0; i < counts.size(); ++i) {
      if (static_cast<int>(i / job_.num_writers) % 2 != a) counts[i] = 0;
    }
    ASSERT_OK(coordinator->MergeCounts(counts));
  }
  ASSERT_OK(coordinator->Finish());
  EXPECT_EQ(coordinator->rows_checked(), job_.total_rows());
  ASSERT_RAISES_WITH(Invalid, "twice", coordinator->MergeCounts(all->counts()));
  ASSERT_RAISES_WITH(Invalid, "do not match", coordinator->MergeCounts({1, 2, 3}));
}

}  // namespace
}  // namespace sabot
