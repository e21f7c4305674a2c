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
#include "sabot/dataflow/state_testing.h"
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
  // part-2-3: a part of an earlier run with checkpoints (exactly once).
  for (const std::string name : {"part-0.parquet", "part-1.parquet", "part-4.parquet",
                                 "part-2-3.parquet", "part-1.csv", "notes.txt",
                                 "part-x.parquet"}) {
    std::ofstream(out_dir() / name) << "old";
  }
  const auto schema = Rows(0, 0)->schema();
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec(FileFormat::kParquet), {schema}, {}));
  // Binding alone changes nothing.
  EXPECT_EQ(Listing(out_dir()).size(), 7u);
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

// Exactly once (the job takes checkpoints): pending files per checkpoint, published on
// completion, restored and cleaned after a crash.
class ExactlyOnceFileSinkTest : public FileSinkTest {
 protected:
  arrow::Result<BoundOperator> BindCheckpointed(FileFormat format, CsvFormatOptions csv = {}) {
    OperatorPlanContext context;
    context.checkpoints = true;
    return BindOperator(Spec(format, csv), {Rows(0, 0)->schema()}, {}, context);
  }
  arrow::Result<std::unique_ptr<Operator>> Task(const BoundOperator& bound, int32_t subtask,
                                                int32_t parallelism = 1) {
    TaskContext ctx;
    ctx.subtask = subtask;
    ctx.parallelism = parallelism;
    return bound.make_operator(ctx);
  }
  // The rows of the published part `name`, read with Arrow's readers.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Part(FileFormat format,
                                                          const std::string& name,
                                                          const CsvFormatOptions& csv = {}) {
    ARROW_ASSIGN_OR_RAISE(auto table, ReadBack(format, (out_dir() / name).string(), csv,
                                               Rows(0, 0)->schema()));
    return table->CombineChunksToBatch();
  }
  std::shared_ptr<arrow::RecordBatch> Expected(int64_t first, int64_t n) {
    return Rows(first, n);
  }
  NoOutput none_;
};

TEST_F(ExactlyOnceFileSinkTest, ACrashAfterACompleteCheckpointRestoresItsOutputExactly) {
  for (FileFormat format : {FileFormat::kParquet, FileFormat::kIpc, FileFormat::kCsv}) {
    fs::remove_all(dir_);
    const std::string ext(FileSinkExtension(format));
    ASSERT_OK_AND_ASSIGN(auto bound, BindCheckpointed(format));
    testing::MemoryState checkpoint1;
    testing::MemoryState checkpoint2;
    {
      ASSERT_OK_AND_ASSIGN(auto sink, Task(bound, 0));
      ASSERT_OK(sink->Process(0, Rows(0, 10), &none_));
      ASSERT_OK(sink->Process(0, Rows(10, 5), &none_));
      EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{".part-0-0." + ext + ".pending"}));
      ASSERT_OK(sink->Snapshot(1, checkpoint1.writer()));
      // Nothing is published before the checkpoint completes.
      EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{".part-0-0." + ext + ".pending"}));
      ASSERT_OK(sink->CheckpointComplete(1));
      EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"part-0-0." + ext}));
      ASSERT_OK(sink->Process(0, Rows(15, 7), &none_));
      ASSERT_OK(sink->Snapshot(2, checkpoint2.writer()));  // never completes
      ASSERT_OK(sink->Process(0, Rows(22, 4), &none_));
      EXPECT_EQ(Listing(out_dir()),
                (std::set<std::string>{"part-0-0." + ext, ".part-0-1." + ext + ".pending",
                                       ".part-0-2." + ext + ".pending"}));
      // The crash: the instance goes without Commit (dropping it closes the open file).
    }
    // A pending file of a task killed without any cleanup (kill -9) stays behind too.
    std::ofstream(out_dir() / (".part-0-2." + ext + ".pending")) << "torn";
    ASSERT_OK_AND_ASSIGN(auto restarted, Task(bound, 0));
    ASSERT_OK(restarted->Restore(1, checkpoint1.reader()));
    // Published: exactly the rows before checkpoint 1; no pending file is left.
    EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"part-0-0." + ext}));
    ASSERT_OK_AND_ASSIGN(auto part0, Part(format, "part-0-0." + ext));
    ASSERT_BATCHES_EQUAL(*Expected(0, 15), *part0);
    EXPECT_EQ(restarted->rows_in(), 15);
    // The replay writes the same rows again, under the same part numbers, and completes.
    ASSERT_OK(restarted->Process(0, Rows(15, 7), &none_));
    checkpoint2.Clear();  // checkpoint 2 is taken again
    ASSERT_OK(restarted->Snapshot(2, checkpoint2.writer()));
    ASSERT_OK(restarted->Process(0, Rows(22, 4), &none_));
    ASSERT_OK(restarted->Finish(&none_));
    ASSERT_OK(restarted->CheckpointComplete(2));
    ASSERT_OK(restarted->PrepareCommit());  // removes nothing of this run
    ASSERT_OK(restarted->Commit());
    EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"part-0-0." + ext, "part-0-1." + ext,
                                                          "part-0-2." + ext}));
    ASSERT_OK_AND_ASSIGN(part0, Part(format, "part-0-0." + ext));
    ASSERT_BATCHES_EQUAL(*Expected(0, 15), *part0);
    ASSERT_OK_AND_ASSIGN(auto part1, Part(format, "part-0-1." + ext));
    ASSERT_BATCHES_EQUAL(*Expected(15, 7), *part1);
    ASSERT_OK_AND_ASSIGN(auto part2, Part(format, "part-0-2." + ext));
    ASSERT_BATCHES_EQUAL(*Expected(22, 4), *part2);
    EXPECT_EQ(restarted->rows_out(), 26);
  }
}

TEST_F(ExactlyOnceFileSinkTest, RestorePublishesWhatACompleteCheckpointRecordedOnce) {
  ASSERT_OK_AND_ASSIGN(auto bound, BindCheckpointed(FileFormat::kIpc));
  testing::MemoryState checkpoint1;
  {
    ASSERT_OK_AND_ASSIGN(auto sink, Task(bound, 3, 4));
    ASSERT_OK(sink->Process(0, Rows(0, 8), &none_));
    ASSERT_OK(sink->Snapshot(1, checkpoint1.writer()));
    // The checkpoint completed, but the task failed before it heard so.
  }
  EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{".part-3-0.arrow.pending"}));
  for (int attempt = 0; attempt < 2; ++attempt) {  // a second restart finds it published
    ASSERT_OK_AND_ASSIGN(auto restarted, Task(bound, 3, 4));
    ASSERT_OK(restarted->Restore(1, checkpoint1.reader()));
    EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"part-3-0.arrow"}));
    ASSERT_OK_AND_ASSIGN(auto part, Part(FileFormat::kIpc, "part-3-0.arrow"));
    ASSERT_BATCHES_EQUAL(*Expected(0, 8), *part);
  }
  // Lost output is an error naming both names, never silently skipped.
  fs::remove(out_dir() / "part-3-0.arrow");
  ASSERT_OK_AND_ASSIGN(auto third, Task(bound, 3, 4));
  ASSERT_RAISES_WITH(IOError, "file sink task 3 restoring checkpoint 1: the output of the "
                              "checkpoint is gone",
                     third->Restore(1, checkpoint1.reader()));
  // Another task's snapshot is refused.
  ASSERT_OK_AND_ASSIGN(auto other, Task(bound, 2, 4));
  ASSERT_RAISES_WITH(Invalid, "the snapshot is of task 3", other->Restore(1, checkpoint1.reader()));
}

TEST_F(ExactlyOnceFileSinkTest, RestoreRemovesPartsOfANewerCheckpoint) {
  // A restart that goes back past a newer complete checkpoint (its files did not verify): the
  // parts published for it are written again by the replay, so they go.
  ASSERT_OK_AND_ASSIGN(auto bound, BindCheckpointed(FileFormat::kParquet));
  testing::MemoryState checkpoint1;
  testing::MemoryState checkpoint2;
  {
    ASSERT_OK_AND_ASSIGN(auto sink, Task(bound, 0));
    ASSERT_OK(sink->Process(0, Rows(0, 3), &none_));
    ASSERT_OK(sink->Snapshot(1, checkpoint1.writer()));
    ASSERT_OK(sink->Process(0, Rows(3, 3), &none_));
    ASSERT_OK(sink->Snapshot(2, checkpoint2.writer()));
    ASSERT_OK(sink->CheckpointComplete(2));  // publishes the parts of checkpoints 1 and 2
  }
  EXPECT_EQ(Listing(out_dir()),
            (std::set<std::string>{"part-0-0.parquet", "part-0-1.parquet"}));
  ASSERT_OK_AND_ASSIGN(auto restarted, Task(bound, 0));
  ASSERT_OK(restarted->Restore(1, checkpoint1.reader()));
  EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"part-0-0.parquet"}));
}

TEST_F(ExactlyOnceFileSinkTest, AFreshRestartRemovesWhatTheFailedAttemptPublished) {
  // A restart with no valid checkpoint to restore (the only complete one did not verify) starts
  // the tasks fresh, in the same run (same bound sink): the parts the failed attempt published
  // are written again by the replay, so they go, even if the replay cuts fewer parts.
  ASSERT_OK_AND_ASSIGN(auto bound, BindCheckpointed(FileFormat::kParquet));
  {
    ASSERT_OK_AND_ASSIGN(auto sink, Task(bound, 0));
    testing::MemoryState s1;
    testing::MemoryState s2;
    ASSERT_OK(sink->Process(0, Rows(0, 3), &none_));
    ASSERT_OK(sink->Snapshot(1, s1.writer()));
    ASSERT_OK(sink->Process(0, Rows(3, 3), &none_));
    ASSERT_OK(sink->Snapshot(2, s2.writer()));
    ASSERT_OK(sink->CheckpointComplete(2));
    sink->Abort();
  }
  EXPECT_EQ(Listing(out_dir()),
            (std::set<std::string>{"part-0-0.parquet", "part-0-1.parquet"}));
  ASSERT_OK_AND_ASSIGN(auto fresh, Task(bound, 0));
  ASSERT_OK(fresh->Process(0, Rows(0, 6), &none_));
  ASSERT_OK(fresh->Finish(&none_));
  ASSERT_OK(fresh->Commit());
  EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"part-0-0.parquet"}));
  ASSERT_OK_AND_ASSIGN(auto part, Part(FileFormat::kParquet, "part-0-0.parquet"));
  ASSERT_BATCHES_EQUAL(*Expected(0, 6), *part);
}

TEST_F(ExactlyOnceFileSinkTest, AFreshRunReplacesTheEarlierRunOnlyAndAbortKeepsPublishedParts) {
  fs::create_directories(out_dir());
  for (const std::string name : {"part-0.parquet", "part-1-7.parquet", ".part-0-5.parquet.pending",
                                 "notes.txt", "part-1.csv"}) {
    std::ofstream(out_dir() / name) << "old";
  }
  ASSERT_OK_AND_ASSIGN(auto bound, BindCheckpointed(FileFormat::kParquet));
  ASSERT_OK_AND_ASSIGN(auto task0, Task(bound, 0, 2));
  ASSERT_OK_AND_ASSIGN(auto task1, Task(bound, 1, 2));
  // Binding and making tasks change nothing; the first step of the run clears the earlier run.
  EXPECT_EQ(Listing(out_dir()).size(), 5u);
  ASSERT_OK(task0->Process(0, Rows(0, 4), &none_));
  EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"notes.txt", "part-1.csv",
                                                       ".part-0-0.parquet.pending"}));
  testing::MemoryState s0;
  testing::MemoryState s1;
  ASSERT_OK(task0->Snapshot(1, s0.writer()));
  ASSERT_OK(task1->Snapshot(1, s1.writer()));  // no rows: no part
  ASSERT_OK(task0->CheckpointComplete(1));
  ASSERT_OK(task1->CheckpointComplete(1));
  ASSERT_OK(task0->Process(0, Rows(4, 4), &none_));
  testing::MemoryState s2;
  ASSERT_OK(task0->Snapshot(2, s2.writer()));
  ASSERT_OK(task0->Process(0, Rows(8, 4), &none_));
  // The job fails: the published part stays, the pending file of snapshot 2 stays (a restart
  // from checkpoint 2 publishes it), the file being written goes.
  task0->Abort();
  task1->Abort();
  EXPECT_EQ(Listing(out_dir()),
            (std::set<std::string>{"notes.txt", "part-1.csv", "part-0-0.parquet",
                                   ".part-0-1.parquet.pending"}));
  ASSERT_OK_AND_ASSIGN(auto part, Part(FileFormat::kParquet, "part-0-0.parquet"));
  ASSERT_BATCHES_EQUAL(*Expected(0, 4), *part);
}

TEST_F(ExactlyOnceFileSinkTest, ABoundedJobPublishesEverythingAtCommitAndSinksWithoutCheckpointsRefuseThem) {
  ASSERT_OK_AND_ASSIGN(auto bound, BindCheckpointed(FileFormat::kCsv));
  ASSERT_OK_AND_ASSIGN(auto sink, Task(bound, 0));
  ASSERT_OK(sink->Process(0, Rows(0, 6), &none_));
  ASSERT_OK(sink->Finish(&none_));
  EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{".part-0-0.csv.pending"}));
  ASSERT_OK(sink->PrepareCommit());
  ASSERT_OK(sink->Commit());
  EXPECT_EQ(Listing(out_dir()), (std::set<std::string>{"part-0-0.csv"}));
  ASSERT_OK_AND_ASSIGN(auto part, Part(FileFormat::kCsv, "part-0-0.csv"));
  ASSERT_BATCHES_EQUAL(*Expected(0, 6), *part);

  ASSERT_OK_AND_ASSIGN(auto plain, BindOperator(Spec(FileFormat::kCsv), {Rows(0, 0)->schema()}, {}));
  ASSERT_OK_AND_ASSIGN(auto plain_sink, Task(plain, 0));
  testing::MemoryState state;
  ASSERT_RAISES_WITH(Invalid, "bound for a job without checkpoints",
                     plain_sink->Snapshot(1, state.writer()));
  plain_sink->Abort();
}

}  // namespace
}  // namespace sabot
