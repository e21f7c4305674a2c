#include "sabot/dataflow/file_source.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/compute/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <arrow/table.h>
#include <arrow/type.h>
#include <parquet/arrow/writer.h>

#include "sabot/dataflow/operator_binding.h"
#include "sabot/dataflow/state_testing.h"
#include "sabot/testing/assertions.h"

// Files are written here with Arrow C++ (Parquet with several row groups, IPC file format, CSV
// text written by hand) and read back through the sources; the reference is the table written.

namespace sabot {
namespace {

namespace fs = std::filesystem;

// rows [first, first + n): id int64, value double (id / 2), name utf8 ("n<id % 7>"), ts
// timestamp[ms] (1000 * id).
std::shared_ptr<arrow::Table> Rows(int64_t first, int64_t n) {
  arrow::Int64Builder ids;
  arrow::DoubleBuilder values;
  arrow::StringBuilder names;
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MILLI),
                                arrow::default_memory_pool());
  for (int64_t i = first; i < first + n; ++i) {
    EXPECT_OK(ids.Append(i));
    EXPECT_OK(values.Append(static_cast<double>(i) / 2));
    EXPECT_OK(names.Append("n" + std::to_string(i % 7)));
    EXPECT_OK(times.Append(1000 * i));
  }
  auto schema = arrow::schema({arrow::field("id", arrow::int64()),
                               arrow::field("value", arrow::float64()),
                               arrow::field("name", arrow::utf8()),
                               arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MILLI))});
  return arrow::Table::Make(schema, {ids.Finish().ValueOrDie(), values.Finish().ValueOrDie(),
                                     names.Finish().ValueOrDie(), times.Finish().ValueOrDie()});
}

void WriteParquet(const std::shared_ptr<arrow::Table>& table, const std::string& path,
                  int64_t row_group_rows) {
  auto out = arrow::io::FileOutputStream::Open(path).ValueOrDie();
  ASSERT_OK(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, row_group_rows));
  ASSERT_OK(out->Close());
}

void WriteIpc(const std::shared_ptr<arrow::Table>& table, const std::string& path,
              int64_t batch_rows) {
  auto out = arrow::io::FileOutputStream::Open(path).ValueOrDie();
  auto writer = arrow::ipc::MakeFileWriter(out, table->schema()).ValueOrDie();
  ASSERT_OK(writer->WriteTable(*table, batch_rows));
  ASSERT_OK(writer->Close());
  ASSERT_OK(out->Close());
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

struct TaskOutput {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::vector<WatermarkMs> watermarks;
};

arrow::Result<TaskOutput> RunTask(const BoundOperator& bound, int32_t subtask,
                                  int32_t parallelism) {
  TaskContext ctx;
  ctx.subtask = subtask;
  ctx.parallelism = parallelism;
  ARROW_ASSIGN_OR_RAISE(auto reader, bound.make_source(ctx));
  TaskOutput out;
  int64_t rows = 0;
  for (;;) {
    ARROW_ASSIGN_OR_RAISE(auto step, reader->Next());
    if (step.kind == SourceReader::Step::Kind::kEnd) break;
    if (step.kind == SourceReader::Step::Kind::kBatch) {
      if (!step.batch->schema()->Equals(*bound.output_schema)) {
        return arrow::Status::Invalid("batch schema differs from the bound one");
      }
      rows += step.batch->num_rows();
      out.batches.push_back(step.batch);
    } else if (step.kind == SourceReader::Step::Kind::kWatermark) {
      out.watermarks.push_back(step.watermark);
    }
  }
  if (reader->rows_out() != rows) return arrow::Status::Invalid("rows_out disagrees");
  return out;
}

// All tasks' rows, sorted by `id`.
arrow::Result<std::shared_ptr<arrow::Table>> ReadAllSorted(const BoundOperator& bound,
                                                           int32_t parallelism) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> all;
  for (int32_t k = 0; k < parallelism; ++k) {
    ARROW_ASSIGN_OR_RAISE(auto out, RunTask(bound, k, parallelism));
    all.insert(all.end(), out.batches.begin(), out.batches.end());
  }
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(bound.output_schema, all));
  ARROW_ASSIGN_OR_RAISE(auto indices,
                        arrow::compute::SortIndices(arrow::Datum(table),
                                                    arrow::compute::SortOptions(
                                                        {arrow::compute::SortKey("id")})));
  ARROW_ASSIGN_OR_RAISE(auto sorted, arrow::compute::Take(table, indices));
  return sorted.table()->CombineChunks();
}

OperatorSpec Spec(const std::string& name, FileSourceParams params, int32_t parallelism = 1) {
  OperatorSpec spec;
  spec.name = name;
  spec.parallelism = parallelism;
  spec.params = std::move(params);
  return spec;
}

class FileSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sabot_file_source_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(FileSourceTest, ParquetRowGroupsSplitExactlyOnceOverAnyParallelism) {
  fs::create_directories(dir_ / "data" / "sub");
  WriteParquet(Rows(0, 6000), Path("data/a.parquet"), 1000);        // 6 row groups
  WriteParquet(Rows(6000, 4000), Path("data/sub/b.parquet"), 1500);  // 3 row groups
  WriteParquet(Rows(10000, 10), Path("data/.hidden.parquet"), 5);    // skipped
  const auto expected = Rows(0, 10000)->CombineChunks().ValueOrDie();

  FileSourceParams params;
  params.paths = {Path("data")};
  ASSERT_OK_AND_ASSIGN(auto units, FileSourceUnits(params));
  ASSERT_EQ(units.size(), 9u);
  EXPECT_EQ(units[0].path, Path("data/a.parquet"));
  EXPECT_EQ(units[5].row_group, 5);
  EXPECT_EQ(units[6].path, Path("data/sub/b.parquet"));
  EXPECT_EQ(units[6].row_group, 0);

  for (int32_t parallelism : {1, 2, 3, 7}) {
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("src", params, parallelism), {}, {}));
    ASSERT_TRUE(bound.output_schema->Equals(*expected->schema()));
    ASSERT_OK_AND_ASSIGN(auto got, ReadAllSorted(bound, parallelism));
    ASSERT_TRUE(got->Equals(*expected)) << "parallelism " << parallelism;
    // Task k reads units k, k+P, ...: its first batch starts at its first unit's first row.
    for (int32_t k = 0; k < parallelism; ++k) {
      ASSERT_OK_AND_ASSIGN(auto out, RunTask(bound, k, parallelism));
      const int64_t first_id =
          static_cast<const arrow::Int64Array&>(*out.batches.front()->column(0)).Value(0);
      const int64_t unit_first = units[k].path == Path("data/a.parquet")
                                     ? units[k].row_group * 1000
                                     : 6000 + units[k].row_group * 1500;
      EXPECT_EQ(first_id, unit_first);
      for (const auto& batch : out.batches) EXPECT_LE(batch->num_rows(), 1500);
    }
  }
}

TEST_F(FileSourceTest, GlobAndExplicitFilesAndWatermarks) {
  WriteParquet(Rows(0, 300), Path("p1.parquet"), 100);
  WriteParquet(Rows(300, 300), Path("p2.parquet"), 100);
  WriteText(Path("notes.txt"), "not parquet");
  FileSourceParams params;
  params.paths = {Path("p*.parquet"), Path("p1.parquet")};  // duplicates are read once
  params.event_time = EventTimeSpec{"ts", std::chrono::seconds(10)};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("src", params), {}, {}));
  ASSERT_OK_AND_ASSIGN(auto got, ReadAllSorted(bound, 1));
  ASSERT_TRUE(got->Equals(*Rows(0, 600)->CombineChunks().ValueOrDie()));
  ASSERT_OK_AND_ASSIGN(auto out, RunTask(bound, 0, 1));
  ASSERT_EQ(out.watermarks.size(), 6u);  // ids rise with every row group
  EXPECT_EQ(out.watermarks.back(), 599 * 1000 - 10000);
  for (size_t i = 1; i < out.watermarks.size(); ++i) {
    EXPECT_GT(out.watermarks[i], out.watermarks[i - 1]);
  }
}

TEST_F(FileSourceTest, IpcFilesSplitByFile) {
  WriteIpc(Rows(0, 2500), Path("a.arrow"), 1000);
  WriteIpc(Rows(2500, 500), Path("b.arrow"), 128);
  WriteIpc(Rows(3000, 1), Path("c.arrow"), 128);
  FileSourceParams params;
  params.format = FileFormat::kIpc;
  params.paths = {dir_.string()};
  for (int32_t parallelism : {1, 2, 3, 7}) {
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("ipc", params, parallelism), {}, {}));
    ASSERT_OK_AND_ASSIGN(auto got, ReadAllSorted(bound, parallelism));
    ASSERT_TRUE(got->Equals(*Rows(0, 3001)->CombineChunks().ValueOrDie()));
  }
}

TEST_F(FileSourceTest, CsvWithHeaderAndDelimiter) {
  WriteText(Path("a.csv"), "id;value;name\n1;0.5;x\n2;1.5;\n");
  WriteText(Path("b.csv"), "id;value;name\n3;2.25;z\n");
  FileSourceParams params;
  params.format = FileFormat::kCsv;
  params.csv.delimiter = ';';
  params.paths = {Path("*.csv")};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("csv", params, 2), {}, {}));
  ASSERT_EQ(bound.output_schema->ToString(), "id: int64\nvalue: double\nname: string");
  ASSERT_OK_AND_ASSIGN(auto got, ReadAllSorted(bound, 2));
  ASSERT_EQ(got->num_rows(), 3);
  EXPECT_EQ(got->column(0)->ToString(), "[\n  [\n    1,\n    2,\n    3\n  ]\n]");
  EXPECT_EQ(got->column(1)->ToString(), "[\n  [\n    0.5,\n    1.5,\n    2.25\n  ]\n]");
  // An empty CSV field of a string column is an empty string (Arrow's default).
  EXPECT_EQ(got->column(2)->ToString(), "[\n  [\n    \"x\",\n    \"\",\n    \"z\"\n  ]\n]");

  WriteText(Path("raw.tsv"), "7\tseven\n8\teight\n");
  FileSourceParams headerless;
  headerless.format = FileFormat::kCsv;
  headerless.csv.delimiter = '\t';
  headerless.csv.has_header = false;
  headerless.paths = {Path("raw.tsv")};
  ASSERT_OK_AND_ASSIGN(auto raw, BindOperator(Spec("tsv", headerless), {}, {}));
  ASSERT_EQ(raw.output_schema->ToString(), "f0: int64\nf1: string");
  ASSERT_OK_AND_ASSIGN(auto out, RunTask(raw, 0, 1));
  ASSERT_EQ(out.batches.size(), 1u);
  EXPECT_EQ(out.batches[0]->num_rows(), 2);
}

TEST_F(FileSourceTest, LargeFilesAreReadABatchAtATime) {
  // 300000 CSV rows (about 5 MB) and a Parquet file of one 300000-row group: neither comes back
  // as one batch; no batch exceeds 64Ki rows.
  {
    std::ofstream out(Path("big.csv"));
    out << "id,value\n";
    for (int64_t i = 0; i < 300000; ++i) out << i << "," << i * 3 << "\n";
  }
  WriteParquet(Rows(0, 300000), Path("big.parquet"), 300000);
  for (FileFormat format : {FileFormat::kCsv, FileFormat::kParquet}) {
    FileSourceParams params;
    params.format = format;
    params.paths = {Path(format == FileFormat::kCsv ? "big.csv" : "big.parquet")};
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("big", params), {}, {}));
    ASSERT_OK_AND_ASSIGN(auto out, RunTask(bound, 0, 1));
    int64_t rows = 0;
    int64_t next_id = 0;
    for (const auto& batch : out.batches) {
      EXPECT_LE(batch->num_rows(), 64 * 1024);
      const auto& ids = static_cast<const arrow::Int64Array&>(*batch->column(0));
      for (int64_t r = 0; r < ids.length(); ++r) ASSERT_EQ(ids.Value(r), next_id++);
      rows += batch->num_rows();
    }
    EXPECT_EQ(rows, 300000);
    EXPECT_GE(out.batches.size(), 5u);
  }
}

TEST_F(FileSourceTest, MissingPathsAndBadColumnsNameTheOperator) {
  FileSourceParams params;
  params.paths = {Path("nope.parquet")};
  ASSERT_RAISES_WITH(IOError,
                     "operator 'src' (parquet_source): path '" + Path("nope.parquet") +
                         "' does not exist",
                     BindOperator(Spec("src", params), {}, {}));
  params.paths = {Path("*.parquet")};
  ASSERT_RAISES_WITH(IOError, "operator 'src' (parquet_source): glob",
                     BindOperator(Spec("src", params), {}, {}));
  ASSERT_RAISES_WITH(IOError, "matches no file", BindOperator(Spec("src", params), {}, {}));
  fs::create_directories(dir_ / "empty");
  params.paths = {Path("empty")};
  ASSERT_RAISES_WITH(IOError, "holds no file", BindOperator(Spec("src", params), {}, {}));
  WriteParquet(Rows(0, 10), Path("ok.parquet"), 10);
  params.paths = {Path("ok.parquet")};
  params.event_time = EventTimeSpec{"name", std::chrono::seconds(1)};
  ASSERT_RAISES_WITH(TypeError, "operator 'src' (parquet_source): event-time column 'name'",
                     BindOperator(Spec("src", params), {}, {}));
  WriteText(Path("bad.parquet"), "this is not parquet");
  params.event_time.reset();
  params.paths = {Path("bad.parquet")};
  ASSERT_RAISES_WITH(Invalid, "operator 'src' (parquet_source): reading the schemas",
                     BindOperator(Spec("src", params), {}, {}));
}

// Checkpoints: a restored NEW reader yields exactly the rest (state_testing.h).
std::function<arrow::Result<std::unique_ptr<SourceReader>>()> Maker(const BoundOperator& bound,
                                                                   int32_t subtask,
                                                                   int32_t parallelism) {
  return [&bound, subtask, parallelism]() {
    TaskContext ctx;
    ctx.subtask = subtask;
    ctx.parallelism = parallelism;
    return bound.make_source(ctx);
  };
}

TEST_F(FileSourceTest, EveryFormatRewindsToAFileRowGroupAndBatch) {
  // Parquet: a 200000-row row group (4 batches of at most 64Ki rows) then 3 small ones; IPC:
  // files of several record batches; CSV: a file of several blocks. Event-time watermarks on.
  WriteParquet(Rows(0, 200000), Path("a.parquet"), 200000);
  WriteParquet(Rows(200000, 3000), Path("b.parquet"), 1000);
  WriteIpc(Rows(0, 2500), Path("a.arrow"), 1000);
  WriteIpc(Rows(2500, 500), Path("b.arrow"), 128);
  {
    std::ofstream out(Path("big.csv"));
    out << "id,ts\n";
    for (int64_t i = 0; i < 300000; ++i) out << i << "," << i * 10 << "\n";
  }
  struct Case {
    FileFormat format;
    std::string glob;
    int32_t parallelism;
  };
  for (const Case& c : {Case{FileFormat::kParquet, "*.parquet", 1},
                        Case{FileFormat::kParquet, "*.parquet", 2},
                        Case{FileFormat::kIpc, "*.arrow", 1},
                        Case{FileFormat::kCsv, "*.csv", 1}}) {
    FileSourceParams params;
    params.format = c.format;
    params.paths = {Path(c.glob)};
    params.event_time = EventTimeSpec{"ts", std::chrono::milliseconds(0)};
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("src", params, c.parallelism), {}, {}));
    for (int32_t k = 0; k < c.parallelism; ++k) {
      ASSERT_OK_AND_ASSIGN(auto all, RunTask(bound, k, c.parallelism));
      const int64_t batches = static_cast<int64_t>(all.batches.size());
      ASSERT_GE(batches, 2) << FileFormatName(c.format);
      for (int64_t before = 0; before <= batches; ++before) {
        SCOPED_TRACE(std::string(FileFormatName(c.format)) + " task " + std::to_string(k) +
                     " after " + std::to_string(before) + " batches");
        ASSERT_OK_AND_ASSIGN(auto rest, testing::CheckSourceRewinds(Maker(bound, k, c.parallelism),
                                                                    before, batches + 1));
        EXPECT_TRUE(rest.ended);
        ASSERT_EQ(rest.batches(), batches - before);
        // The rest is the tail of the failure-free run's batches.
        int64_t i = before;
        for (const auto& step : rest.steps) {
          if (step.kind != SourceReader::Step::Kind::kBatch) continue;
          ASSERT_TRUE(step.batch->Equals(*all.batches[static_cast<size_t>(i++)]));
        }
      }
    }
  }
}

TEST_F(FileSourceTest, RestoreRefusesChangedFiles) {
  WriteParquet(Rows(0, 300), Path("b.parquet"), 100);
  FileSourceParams params;
  params.paths = {dir_.string()};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("src", params), {}, {}));
  ASSERT_OK_AND_ASSIGN(auto reader, Maker(bound, 0, 1)());
  ASSERT_OK_AND_ASSIGN(auto head, testing::ReadSourceSteps(reader.get(), 1));
  testing::MemoryState state;
  ASSERT_OK(reader->Snapshot(3, state.writer()));
  // A file sorted before the one being read appears: the units shift.
  WriteParquet(Rows(300, 100), Path("a.parquet"), 100);
  ASSERT_OK_AND_ASSIGN(auto rebound, BindOperator(Spec("src", params), {}, {}));
  ASSERT_OK_AND_ASSIGN(auto restarted, Maker(rebound, 0, 1)());
  ASSERT_RAISES_WITH(Invalid, "file source task 0 restoring checkpoint 3: the source's files changed",
                     restarted->Restore(3, state.reader()));
}

}  // namespace
}  // namespace sabot
