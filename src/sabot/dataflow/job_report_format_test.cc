#include "sabot/dataflow/job_report_format.h"

#include <gtest/gtest.h>

namespace sabot {
namespace {

using std::chrono::milliseconds;

OperatorReport Op(OperatorId id, std::string name, OperatorKind kind, int32_t parallelism,
                  int64_t in, int64_t out, milliseconds busy) {
  OperatorReport r;
  r.id = id;
  r.name = std::move(name);
  r.kind = kind;
  r.parallelism = parallelism;
  r.rows_in = in;
  r.rows_out = out;
  r.busy = busy;
  return r;
}

EdgeReport Shuffle(std::string from, std::string to, std::string type,
                   std::vector<std::vector<int64_t>> rows) {
  EdgeReport e;
  e.shuffle_id = "s0." + from + "." + to;
  e.from = std::move(from);
  e.to = std::move(to);
  e.type = std::move(type);
  e.num_writers = static_cast<int32_t>(rows.size());
  e.num_partitions = rows.empty() ? 0 : static_cast<int32_t>(rows[0].size());
  e.rows = std::move(rows);
  return e;
}

TEST(EdgeReportTest, TotalRowsAndSkew) {
  EdgeReport e = Shuffle("a", "b", "hash", {{10, 30}, {10, 10}});
  EXPECT_EQ(e.total_rows(), 60);
  // Partition sums 20 and 40; mean 30; largest 40.
  EXPECT_DOUBLE_EQ(e.skew(), 40.0 / 30.0);
  EXPECT_DOUBLE_EQ(Shuffle("a", "b", "hash", {{0, 0}}).skew(), 0);
  EXPECT_DOUBLE_EQ(Shuffle("a", "b", "hash", {{5, 5, 5}}).skew(), 1.0);
  EdgeReport chained;
  chained.chained = true;
  EXPECT_EQ(chained.total_rows(), 0);
  EXPECT_DOUBLE_EQ(chained.skew(), 0);
  // A partition that received nothing still counts in the mean.
  EdgeReport empty_partition = Shuffle("a", "b", "hash", {{6, 0}});
  EXPECT_DOUBLE_EQ(empty_partition.skew(), 2.0);
}

TEST(FormatTest, NumbersBytesSeconds) {
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1000), "1,000");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
  EXPECT_EQ(FormatCount(-1234), "-1,234");
  EXPECT_EQ(FormatCount(INT64_MIN), "-9,223,372,036,854,775,808");
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(256LL << 20), "256.0 MiB");
  EXPECT_EQ(FormatBytes(3LL << 30), "3.0 GiB");
  EXPECT_EQ(FormatSeconds(milliseconds(1234)), "1.234 s");
}

JobReport SampleReport() {
  JobReport report;
  report.job_id = "seeds";
  report.wall = milliseconds(2500);
  report.peak_memory_bytes = 12LL << 20;
  report.memory_budget_bytes = 256LL << 20;
  report.operators = {
      Op(0, "source", OperatorKind::kGeneratorSource, 2, 0, 1000, milliseconds(300)),
      Op(1, "map", OperatorKind::kMap, 2, 1000, 1000, milliseconds(120)),
      Op(3, "sink", OperatorKind::kParquetSink, 3, 1000, 1000, milliseconds(45)),
  };
  EdgeReport chained;
  chained.from = "source";
  chained.to = "map";
  chained.type = "forward";
  chained.chained = true;
  chained.num_writers = 2;
  chained.num_partitions = 2;
  EdgeReport hash = Shuffle("map", "sink", "hash", {{100, 200, 200}, {300, 100, 100}});
  hash.bytes = 24576;
  hash.bytes_spilled = 0;
  hash.blocked = milliseconds(7);
  report.edges = {chained, hash};
  return report;
}

TEST(JobSummaryTest, OperatorsAndEdgesWithTheirMatrix) {
  EXPECT_EQ(FormatJobSummary(SampleReport()),
            "job seeds finished in 2.500 s; peak memory 12.0 MiB of a 256.0 MiB budget\n"
            "operators:\n"
            "  operator  kind              tasks  rows in  rows out     time\n"
            "  source    generator_source      2        0     1,000  0.300 s\n"
            "  map       map                   2    1,000     1,000  0.120 s\n"
            "  sink      parquet_sink          3    1,000     1,000  0.045 s\n"
            "edges: 2 (1 shuffle)\n"
            "  source -> map  forward, chained (no shuffle)\n"
            "  map -> sink  hash 2x3  1,000 rows  24.0 KiB  skew 1.20  spilled 0 B  blocked "
            "0.007 s\n"
            "    rows    p0   p1   p2\n"
            "    w0     100  200  200\n"
            "    w1     300  100  100\n"
            "    total  400  300  300\n");
}

TEST(JobSummaryTest, LateRowsAreShownForTheOperatorsThatHadAny) {
  JobReport report = SampleReport();
  OperatorReport agg = Op(2, "agg", OperatorKind::kAggregate, 3, 1000, 20, milliseconds(9));
  agg.late_rows = 1234;
  report.operators.insert(report.operators.begin() + 2, agg);
  std::string text = FormatJobSummary(report);
  EXPECT_NE(text.find("  sink      parquet_sink          3    1,000     1,000  0.045 s\n"
                      "late rows: agg 1,234\n"
                      "edges: 2 (1 shuffle)\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(FormatJobSummary(SampleReport()).find("late rows"), std::string::npos);
}

TEST(JobSummaryTest, CheckpointsAndRestartsAreShownForJobsThatTookAny) {
  JobReport report = SampleReport();
  report.checkpoints.completed = 12;
  report.checkpoints.failed = 1;
  report.checkpoints.last_id = 14;
  report.checkpoints.last_bytes = 3 << 20;
  report.checkpoints.last_duration = milliseconds(42);
  report.checkpoints.restarts = 1;
  report.checkpoints.restored_from = 9;
  std::string text = FormatJobSummary(report);
  EXPECT_NE(text.find("  sink      parquet_sink          3    1,000     1,000  0.045 s\n"
                      "checkpoints: 12 completed, 1 failed; last #14 3.0 MiB in 0.042 s; "
                      "restarts 1 (last from checkpoint #9)\n"
                      "edges: 2 (1 shuffle)\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(FormatJobSummary(SampleReport()).find("checkpoints"), std::string::npos);
}

TEST(JobSummaryTest, StateSpilledByAnOperatorIsShownUnderTheOperators) {
  JobReport report = SampleReport();
  report.operators[1].state_spilled_bytes = 3 << 20;
  const std::string summary = FormatJobSummary(report);
  EXPECT_NE(summary.find("  sink      parquet_sink          3    1,000     1,000  0.045 s\n"
                         "  map: state spilled 3.0 MiB\n"
                         "edges:"),
            std::string::npos)
      << summary;
}

TEST(JobSummaryTest, LargeMatricesAreCutWithANote) {
  JobReport report;
  report.job_id = "big";
  std::vector<std::vector<int64_t>> rows(10, std::vector<int64_t>(12, 1));
  rows[9][0] = 1000;  // a writer that is not shown still counts in the total
  report.edges = {Shuffle("a", "b", "rebalance", rows)};
  std::string text = FormatJobSummary(report);
  EXPECT_NE(text.find("  a -> b  rebalance 10x12  1,119 rows"), std::string::npos) << text;
  EXPECT_NE(text.find("    rows      p0  p1  p2  p3  p4  p5  p6  p7\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("    w7         1   1   1   1   1   1   1   1\n"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("    w8"), std::string::npos) << text;
  EXPECT_NE(text.find("    total  1,009  10  10  10  10  10  10  10\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("    (10x12 matrix cut to its first 8 writers and 8 partitions; the total "
                      "row counts every writer)\n"),
            std::string::npos)
      << text;
}

TEST(JobSummaryTest, UserTextIsEscaped) {
  JobReport report = SampleReport();
  report.job_id = "a\x1b[2Jb";
  report.operators[0].name = "s\n";
  std::string text = FormatJobSummary(report);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("job a\\x1b[2Jb finished"), std::string::npos) << text;
  EXPECT_NE(text.find("  s\\x0a "), std::string::npos) << text;
}

JobProgress Snapshot(milliseconds elapsed, int64_t source_rows, int64_t sink_rows,
                     milliseconds blocked) {
  JobProgress p;
  p.elapsed = elapsed;
  p.operators = {Op(0, "source", OperatorKind::kGeneratorSource, 2, 0, source_rows, {}),
                 Op(3, "sink", OperatorKind::kParquetSink, 3, sink_rows, sink_rows, {})};
  EdgeReport e = Shuffle("source", "sink", "hash", {});
  e.num_writers = 2;
  e.num_partitions = 3;
  e.blocked = blocked;
  p.edges = {e};
  p.tasks_running = 4;
  p.tasks_finished = 1;
  p.tasks_total = 5;
  return p;
}

TEST(ProgressTest, BlockHasRatesAndBackpressure) {
  JobProgress first = Snapshot(milliseconds(1000), 50000, 20000, milliseconds(100));
  JobProgress second = Snapshot(milliseconds(2000), 150000, 120000, milliseconds(1100));
  EXPECT_EQ(ProgressRenderer::FormatBlock(first, nullptr),
            "elapsed 1.0 s  tasks: 4 running, 1 finished of 5\n"
            "  source       0 in  50,000 out  50,000 rows/s\n"
            "  sink    20,000 in  20,000 out  20,000 rows/s\n"
            "  source -> sink  blocked 0.100 s (5% of writer time)\n");
  EXPECT_EQ(ProgressRenderer::FormatBlock(second, &first),
            "elapsed 2.0 s  tasks: 4 running, 1 finished of 5\n"
            "  source        0 in  150,000 out  100,000 rows/s\n"
            "  sink    120,000 in  120,000 out  100,000 rows/s\n"
            "  source -> sink  blocked 1.100 s (50% of writer time)\n");
}

TEST(ProgressTest, TerminalRedrawsInPlace) {
  ProgressRenderer renderer(/*terminal=*/true);
  JobProgress first = Snapshot(milliseconds(500), 10, 0, {});
  JobProgress second = Snapshot(milliseconds(1000), 20, 10, {});
  std::string a = renderer.Update(first);
  EXPECT_EQ(a, ProgressRenderer::FormatBlock(first, nullptr));
  std::string b = renderer.Update(second);
  // Back over the 4 lines drawn, clear them, draw the new block.
  EXPECT_EQ(b, "\x1b[4F\x1b[J" + ProgressRenderer::FormatBlock(second, &first));
  EXPECT_EQ(renderer.Finish(), "\x1b[4F\x1b[J");
  EXPECT_EQ(renderer.Finish(), "");
}

TEST(ProgressTest, TerminalLinesAreCutToItsWidth) {
  ProgressRenderer renderer(/*terminal=*/true, std::chrono::seconds(5), /*width=*/20);
  std::string block = renderer.Update(Snapshot(milliseconds(500), 10, 0, {}));
  EXPECT_EQ(block,
            "elapsed 0.5 s  task\n"  // 19 characters: one less than the width
            "  source  0 in  10 \n"
            "  sink    0 in   0 \n"
            "  source -> sink  b\n");
}

TEST(ProgressTest, PlainOutputEveryFewSecondsWithoutControlSequences) {
  ProgressRenderer renderer(/*terminal=*/false, std::chrono::seconds(5));
  EXPECT_EQ(renderer.Update(Snapshot(milliseconds(500), 1, 0, {})), "");
  EXPECT_EQ(renderer.Update(Snapshot(milliseconds(4999), 2, 0, {})), "");
  JobProgress at5 = Snapshot(milliseconds(5000), 3, 0, {});
  std::string printed = renderer.Update(at5);
  EXPECT_NE(printed, "");
  EXPECT_EQ(printed.find('\x1b'), std::string::npos);
  EXPECT_EQ(renderer.Update(Snapshot(milliseconds(9000), 4, 0, {})), "");
  EXPECT_NE(renderer.Update(Snapshot(milliseconds(10000), 5, 0, {})), "");
  EXPECT_EQ(renderer.Finish(), "");
}

}  // namespace
}  // namespace sabot
