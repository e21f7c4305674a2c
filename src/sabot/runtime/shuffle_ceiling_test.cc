#include "sabot/runtime/shuffle_ceiling.h"

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/buffer.h>

#include "sabot/common/batch_bytes.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

GeneratedJob SmallJob() {
  GeneratedJob job;
  job.data.batch_rows = 1000;
  job.num_writers = 3;
  job.batches_per_writer = 5;
  return job;
}

// The job's bytes, counted from every batch generated anew (not the working set the ceiling
// cycles through).
int64_t JobBytes(const GeneratedJob& job) {
  int64_t bytes = 0;
  for (int32_t w = 0; w < job.num_writers; ++w) {
    for (int64_t i = 0; i < job.batches_per_writer; ++i) {
      bytes += BatchBufferBytes(*job.WriterBatch(w, i).ValueOrDie());
    }
  }
  return bytes;
}

TEST(ShuffleCeiling, MemcpyCopiesEveryByteOfTheJob) {
  const GeneratedJob job = SmallJob();
  for (int32_t threads : {1, 2, 5}) {
    ASSERT_OK_AND_ASSIGN(auto ceiling, MeasureMemcpyCeiling(job, threads));
    EXPECT_EQ(ceiling.rows, job.total_rows());
    EXPECT_EQ(ceiling.bytes, JobBytes(job));
    EXPECT_EQ(ceiling.parallelism, threads);
    EXPECT_GT(ceiling.elapsed.count(), 0);
    EXPECT_GT(ceiling.bytes_per_second(), 0);
  }
}

// More batches than the working set holds: the distinct ones are cycled, and as many bytes
// move as the job has (fixed-width columns: every batch has the same size).
TEST(ShuffleCeiling, LargeJobsCycleThroughTheWorkingSet) {
  GeneratedJob job;
  job.data.batch_rows = 64 * 1024;  // 2 MiB a batch
  job.num_writers = 1;
  job.batches_per_writer = kCeilingWorkingSetBytes / (2 << 20) + 5;
  ASSERT_OK_AND_ASSIGN(auto first, job.WriterBatch(0, 0));
  const int64_t batch_bytes = BatchBufferBytes(*first);
  ASSERT_OK_AND_ASSIGN(auto ceiling, MeasureMemcpyCeiling(job, 1));
  EXPECT_EQ(ceiling.rows, job.total_rows());
  EXPECT_EQ(ceiling.bytes, batch_bytes * job.batches_per_writer);
}

TEST(ShuffleCeiling, FlightStreamsEveryRowOfTheJob) {
  const GeneratedJob job = SmallJob();
  for (int32_t streams : {1, 2}) {
    ASSERT_OK_AND_ASSIGN(auto ceiling, MeasureFlightCeiling(job, streams));
    EXPECT_EQ(ceiling.rows, job.total_rows());
    EXPECT_GT(ceiling.bytes, 0);
    EXPECT_EQ(ceiling.parallelism, streams);
    EXPECT_GT(ceiling.bytes_per_second(), 0);
  }
}
TEST(ShuffleCeiling, PipelinedFlightEdgeMovesEveryRowOfTheJob) {
  const GeneratedJob job = SmallJob();
  ASSERT_OK_AND_ASSIGN(auto streamed, MeasureFlightCeiling(job, 2));
  for (int32_t streams : {1, 2, 4}) {
    for (int32_t credits : {1, 3}) {
      SCOPED_TRACE(std::to_string(streams) + " streams, " + std::to_string(credits) + " credits");
      ASSERT_OK_AND_ASSIGN(auto edge, MeasurePipelinedFlightEdge(job, streams, credits));
      EXPECT_EQ(edge.rows, job.total_rows());
      // The decoded batches' buffers, as the plain Flight stream's reader counts them.
      EXPECT_EQ(edge.bytes, streamed.bytes);
      EXPECT_EQ(edge.parallelism, streams);
      EXPECT_GT(edge.bytes_per_second(), 0);
    }
  }
}

TEST(ShuffleCeiling, EmptyJobsAndBadParallelism) {
  GeneratedJob job = SmallJob();
  job.batches_per_writer = 0;
  ASSERT_OK_AND_ASSIGN(auto copied, MeasureMemcpyCeiling(job, 2));
  EXPECT_EQ(copied.bytes, 0);
  ASSERT_OK_AND_ASSIGN(auto streamed, MeasureFlightCeiling(job, 2));
  EXPECT_EQ(streamed.rows, 0);
  ASSERT_RAISES_WITH(Invalid, "parallelism", MeasureMemcpyCeiling(SmallJob(), 0).status());
  ASSERT_RAISES_WITH(Invalid, "parallelism", MeasureFlightCeiling(SmallJob(), -1).status());
  ASSERT_OK_AND_ASSIGN(auto edge, MeasurePipelinedFlightEdge(job, 2));
  EXPECT_EQ(edge.rows, 0);
  ASSERT_RAISES_WITH(Invalid, "parallelism", MeasurePipelinedFlightEdge(SmallJob(), 0).status());
  ASSERT_RAISES_WITH(Invalid, "exclusive_credits",
                     MeasurePipelinedFlightEdge(SmallJob(), 2, 0).status());
}

}  // namespace
}  // namespace sabot
