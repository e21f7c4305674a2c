#include "sabot/dataflow/file_sink.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/csv/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/table.h>
#include <arrow/type.h>
#include <parquet/arrow/reader.h>

#include "sabot/dataflow/operator_binding.h"
#include "sabot/dataflow/operator_testing.h"
#include "sabot/testing/assertions.h"

// What the sinks write is read back with Arrow's own readers (parquet::arrow, the IPC file
// reader, the CSV reader) and compared with the batches given to them.

namespace sabot {
namespace {

namespace fs = std::filesystem;

using testing::NoOutput;

std::shared_ptr<arrow::RecordBatch> Rows(int64_t first, int64_t n) {
  arrow::Int64Builder ids;
  arrow::DoubleBuilder values;
  arrow::StringBuilder names;
  for (int64_t i = first; i < first + n; ++i) {
    EXPECT_OK(ids.Append(i));
    if (i % 5 == 0) {
      EXPECT_OK(values.AppendNull());
    } else {
      EXPECT_OK(values.Append(static_cast<double>(i) / 4));
    }
    EXPECT_OK(names.Append("name " + std::to_string(i % 11)));
  }
  auto schema = arrow::schema({arrow::field("id", arrow::int64()),
                               arrow::field("value", arrow::float64()),
                               arrow::field("name", arrow::utf8())});
  return arrow::RecordBatch::Make(
      schema, n,
      {ids.Finish().ValueOrDie(), values.Finish().ValueOrDie(), names.Finish().ValueOrDie()});
}

std::set<std::string> Listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename());
  return names;
}

arrow::Result<std::shared_ptr<arrow::Table>> ReadBack(
    FileFormat format, const std::string& path, const CsvFormatOptions& csv,
    const std::shared_ptr<arrow::Schema>& schema) {
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path));
  switch (format) {
    case FileFormat::kParquet: {
      ARROW_ASSIGN_OR_RAISE(auto reader,
                            parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
      return reader->ReadTable();
    }
    case FileFormat::kIpc: {
      ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
      std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
      for (int i = 0; i < reader->num_record_batches(); ++i) {
        ARROW_ASSIGN_OR_RAISE(auto batch, reader->ReadRecordBatch(i));
        batches.push_back(batch);
      }
      return arrow::Table::FromRecordBatches(reader->schema(), batches);
    }
    case FileFormat::kCsv: {
      auto read = arrow::csv::ReadOptions::Defaults();
      if (!csv.has_header) read.column_names = schema->field_names();
      auto parse = arrow::csv::ParseOptions::Defaults();
      parse.delimiter = csv.delimiter;
      auto convert = arrow::csv::ConvertOptions::Defaults();
      for (const auto& field : schema->fields()) {
        convert.column_types[field->name()] = field->type();
      }
      convert.strings_can_be_null = false;
      ARROW_ASSIGN_OR_RAISE(auto reader,
                            arrow::csv::TableReader::Make(arrow::io::default_io_context(), file,
                                                          read, parse, convert));
      return reader->Read();
    }
  }
  return arrow::Status::Invalid("format");
}

class FileSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sabot_file_sink_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  OperatorSpec Spec(FileFormat format, CsvFormatOptions csv = {}) const {
    OperatorSpec spec;
    spec.name = "out";
    spec.params = FileSinkParams{format, (dir_ / "nested" / "out").string(), csv};
    return spec;
  }
  fs::path out_dir() const { return dir_ / "nested" / "out"; }

  fs::path dir_;
};

TEST_F(FileSinkTest, EachFormatCommitsAfterFinishAndReadsBackEqual) {
  struct Case {
    FileFormat format;
    CsvFormatOptions csv;
  };
  for (const Case& c : {Case{FileFormat::kParquet, {}}, Case{FileFormat::kIpc, {}},
                        Case{FileFormat::kCsv, {}}, Case{FileFormat::kCsv, {'|', false}}}) {
    fs::remove_all(dir_);
    const auto schema = Rows(0, 0)->schema();
    BindOptions options;
    options.job_id = "job/7";
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec(c.format, c.csv), {schema}, options));
    ASSERT_TRUE(fs::is_directory(out_dir()));  // created at bind time
    constexpr int32_t kTasks = 3;
    std::vector<std::unique_ptr<Operator>> tasks;
    for (int32_t k = 0; k < kTasks; ++k) {
      TaskContext ctx;
      ctx.subtask = k;
      ctx.parallelism = kTasks;
      ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(ctx));
      tasks.push_back(std::move(op));
    }
    NoOutput none;
    for (int32_t k = 0; k < kTasks; ++k) {
      for (int b = 0; b < 3; ++b) {
        ASSERT_OK(tasks[k]->Process(0, Rows(k * 1000 + b * 100, 100 - 30 * k), &none));
      }
      ASSERT_OK(tasks[k]->OnWatermark(10, &none));
    }
    const std::string ext(FileSinkExtension(c.format));
    // Before Finish only the temporary files exist.
    EXPECT_EQ(Listing(out_dir()),
              (std::set<std::string>{".part-0." + ext + ".job_7.tmp",
                                     ".part-1." + ext + ".job_7.tmp",
                                     ".part-2." + ext + ".job_7.tmp"}));
    for (int32_t k = 0; k < kTasks; ++k) {
      ASSERT_OK(tasks[k]->Finish(&none));
      EXPECT_EQ(tasks[k]->rows_out(), 3 * (100 - 30 * k));
    }
    // Finished, not committed: still nothing under a final name.
    EXPECT_EQ(Listing(out_dir()).count("part-0." + ext), 0u);
    for (int32_t k = 0; k < kTasks; ++k) ASSERT_OK(tasks[k]->Commit());
    EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"part-0." + ext, "part-1." + ext,
                                                          "part-2." + ext}));
    for (int32_t k = 0; k < kTasks; ++k) {
      std::vector<std::shared_ptr<arrow::RecordBatch>> written;
      for (int b = 0; b < 3; ++b) written.push_back(Rows(k * 1000 + b * 100, 100 - 30 * k));
      ASSERT_OK_AND_ASSIGN(auto expected, arrow::Table::FromRecordBatches(schema, written));
      const std::string part = (out_dir() / ("part-" + std::to_string(k) + "." + ext)).string();
      ASSERT_OK_AND_ASSIGN(auto got, ReadBack(c.format, part, c.csv, schema));
      ASSERT_OK_AND_ASSIGN(auto got_combined, got->CombineChunksToBatch());
      ASSERT_OK_AND_ASSIGN(auto expected_combined, expected->CombineChunksToBatch());
      ASSERT_BATCHES_EQUAL(*expected_combined, *got_combined);
    }
  }
}

TEST_F(FileSinkTest, CsvWritesTheDelimiterAndHeader) {
  const auto schema = Rows(0, 0)->schema();
  ASSERT_OK_AND_ASSIGN(auto bound,
                       BindOperator(Spec(FileFormat::kCsv, {';', true}), {schema}, {}));
  ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(TaskContext{}));
  NoOutput none;
  ASSERT_OK(op->Process(0, Rows(1, 2), &none));
  ASSERT_OK(op->Finish(&none));
  ASSERT_OK(op->Commit());
  std::ifstream in(out_dir() / "part-0.csv");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "\"id\";\"value\";\"name\"\n1;0.25;\"name 1\"\n2;0.5;\"name 2\"\n");
}

TEST_F(FileSinkTest, AbortLeavesNothingUnderAFinalName) {
  const auto schema = Rows(0, 0)->schema();
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec(FileFormat::kParquet), {schema}, {}));
  NoOutput none;
  {
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(TaskContext{}));
    ASSERT_OK(op->Process(0, Rows(0, 10), &none));
    op->Abort();
    EXPECT_TRUE(Listing(out_dir()).empty());
  }
  {
    // An instance dropped without Finish (a task that never ended) removes its file too.
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(TaskContext{}));
    ASSERT_OK(op->Process(0, Rows(0, 10), &none));
  }
  EXPECT_TRUE(Listing(out_dir()).empty());
  {
    // Abort after Finish (the job failed elsewhere later) removes the closed temporary file.
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(TaskContext{}));
    ASSERT_OK(op->Process(0, Rows(0, 10), &none));
    ASSERT_OK(op->Finish(&none));
    EXPECT_EQ(Listing(out_dir()).size(), 1u);
    op->Abort();
    EXPECT_TRUE(Listing(out_dir()).empty());
  }
  {
    // Abort after Commit (the job's commit failed part way) removes the committed part.
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(TaskContext{}));
    ASSERT_OK(op->Process(0, Rows(0, 10), &none));
    ASSERT_OK(op->Finish(&none));
    ASSERT_OK(op->Commit());
    EXPECT_EQ(Listing(out_dir()), std::set<std::string>{"part-0.parquet"});
    op->Abort();
    EXPECT_TRUE(Listing(out_dir()).empty());
  }
}

TEST_F(FileSinkTest, ARerunReplacesTheEarlierRunsParts) {
  fs::create_directories(out_dir());
  for (const std::string name : {"part-0.parquet", "part-1.parquet", "part-4.parquet",
                                 "part-1.csv", "notes.txt", "part-x.parquet"}) {
    std::ofstream(out_dir() / name) << "old";
  }
  const auto schema = Rows(0, 0)->schema();
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec(FileFormat::kParquet), {schema}, {}));
  // Binding alone changes nothing.
  EXPECT_EQ(Listing(out_dir()).size(), 6u);
  NoOutput none;
  std::vector<std::unique_ptr<Operator>> tasks;
  for (int32_t k = 0; k < 2; ++k) {
    TaskContext ctx;
    ctx.subtask = k;
    ctx.parallelism = 2;
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(ctx));
    ASSERT_OK(op->Process(0, Rows(k * 10, 10), &none));
    ASSERT_OK(op->Finish(&none));
    tasks.push_back(std::move(op));
  }
  // Until the job commits, the earlier run's output stays (a failed rerun keeps it).
  EXPECT_EQ(Listing(out_dir()).count("part-4.parquet"), 1u);
  for (auto& task : tasks) ASSERT_OK(task->Commit());
  EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"part-0.parquet", "part-1.parquet",
                                                       "part-1.csv", "notes.txt",
                                                       "part-x.parquet"}));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBack(FileFormat::kParquet,
                                          (out_dir() / "part-1.parquet").string(), {}, schema));
  EXPECT_EQ(got->num_rows(), 10);
}

TEST_F(FileSinkTest, AJobThatNeverCommitsTakesBackTheDirectoriesItCreated) {
  const auto schema = Rows(0, 0)->schema();
  {
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec(FileFormat::kParquet), {schema}, {}));
    ASSERT_TRUE(fs::is_directory(out_dir()));  // created at bind time, with its parent
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(TaskContext{}));
    NoOutput none;
    ASSERT_OK(op->Process(0, Rows(0, 10), &none));
    op->Abort();  // the job failed
  }
  EXPECT_FALSE(fs::exists(out_dir()));
  EXPECT_FALSE(fs::exists(out_dir().parent_path()));
  // A directory that existed before, or that holds something else, is left alone.
  fs::create_directories(out_dir());
  std::ofstream(out_dir() / "notes.txt") << "mine";
  {
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec(FileFormat::kParquet), {schema}, {}));
  }
  EXPECT_TRUE(fs::exists(out_dir() / "notes.txt"));
  // A committed job keeps its directory.
  fs::remove_all(dir_);
  {
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec(FileFormat::kParquet), {schema}, {}));
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(TaskContext{}));
    NoOutput none;
    ASSERT_OK(op->Process(0, Rows(0, 10), &none));
    ASSERT_OK(op->Finish(&none));
    ASSERT_OK(op->Commit());
  }
  EXPECT_TRUE(fs::exists(out_dir() / "part-0.parquet"));
}

TEST_F(FileSinkTest, BindErrorsNameTheOperator) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  OperatorSpec spec;
  spec.name = "out";
  spec.params = FileSinkParams{FileFormat::kIpc, (dir_ / "file").string(), {}};
  ASSERT_RAISES_WITH(IOError, "operator 'out' (ipc_sink): sink directory",
                     BindOperator(spec, {Rows(0, 0)->schema()}, {}));
  spec.params = FileSinkParams{FileFormat::kIpc, (dir_ / "file" / "below").string(), {}};
  ASSERT_RAISES_WITH(IOError, "operator 'out' (ipc_sink): cannot create sink directory",
                     BindOperator(spec, {Rows(0, 0)->schema()}, {}));
}

}  // namespace
}  // namespace sabot
