// The file sources reading files pyarrow wrote, and the file sinks writing files pyarrow reads
// back, with tests/reference/operator_files.py as the other side: pyarrow writes the reference
// table (and the data files), and checks the sinks' part files against it.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/compute/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/table.h>

#include "sabot/dataflow/operator_binding.h"
#include "sabot/dataflow/operator_testing.h"
#include "sabot/dataflow/state_testing.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;

using testing::NoOutput;

// Runs the reference script; its exit status (or -1 when it could not run).
int RunScript(const std::string& arguments) {
  const std::string command = std::string("'") + SABOT_PYTHON + "' '" +
                              SABOT_OPERATOR_FILES_SCRIPT + "' " + arguments;
  const int status = std::system(command.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

arrow::Result<std::shared_ptr<arrow::Table>> SortById(const std::shared_ptr<arrow::Table>& table) {
  ARROW_ASSIGN_OR_RAISE(auto indices,
                        arrow::compute::SortIndices(arrow::Datum(table),
                                                    arrow::compute::SortOptions(
                                                        {arrow::compute::SortKey("id")})));
  ARROW_ASSIGN_OR_RAISE(auto sorted, arrow::compute::Take(table, indices));
  return sorted.table()->CombineChunks();
}

arrow::Result<std::shared_ptr<arrow::Table>> ReadSource(const FileSourceParams& params,
                                                        int32_t parallelism) {
  OperatorSpec spec;
  spec.name = "src";
  spec.parallelism = parallelism;
  spec.params = params;
  ARROW_ASSIGN_OR_RAISE(auto bound, BindOperator(spec, {}, {}));
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int32_t k = 0; k < parallelism; ++k) {
    TaskContext ctx;
    ctx.subtask = k;
    ctx.parallelism = parallelism;
    ARROW_ASSIGN_OR_RAISE(auto reader, bound.make_source(ctx));
    for (;;) {
      ARROW_ASSIGN_OR_RAISE(auto step, reader->Next());
      if (step.kind == SourceReader::Step::Kind::kEnd) break;
      if (step.kind == SourceReader::Step::Kind::kBatch) batches.push_back(step.batch);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(bound.output_schema, batches));
  return SortById(table);
}

class FilePyarrowTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("sabot_file_pyarrow_test_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    ASSERT_EQ(RunScript("write '" + dir_->string() + "'"), 0);
    auto file = arrow::io::ReadableFile::Open((*dir_ / "expected.arrows").string()).ValueOrDie();
    auto reader = arrow::ipc::RecordBatchStreamReader::Open(file).ValueOrDie();
    expected_ = new std::shared_ptr<arrow::Table>(
        reader->ToTable().ValueOrDie()->CombineChunks().ValueOrDie());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete expected_;
  }

  static fs::path* dir_;
  static std::shared_ptr<arrow::Table>* expected_;
};

fs::path* FilePyarrowTest::dir_ = nullptr;
std::shared_ptr<arrow::Table>* FilePyarrowTest::expected_ = nullptr;

TEST_F(FilePyarrowTest, SourcesReadWhatPyarrowWrote) {
  const auto& expected = *expected_;
  FileSourceParams parquet;
  parquet.paths = {(*dir_ / "parquet").string()};
  for (int32_t parallelism : {1, 2, 3, 7}) {
    ASSERT_OK_AND_ASSIGN(auto got, ReadSource(parquet, parallelism));
    ASSERT_TRUE(got->Equals(*expected)) << "parquet, parallelism " << parallelism << "\n"
                                        << got->schema()->ToString();
  }
  FileSourceParams ipc;
  ipc.format = FileFormat::kIpc;
  ipc.paths = {(*dir_ / "ipc" / "*.arrow").string()};
  ASSERT_OK_AND_ASSIGN(auto got_ipc, ReadSource(ipc, 2));
  ASSERT_TRUE(got_ipc->Equals(*expected));
  FileSourceParams csv;
  csv.format = FileFormat::kCsv;
  csv.csv.delimiter = ';';
  csv.paths = {(*dir_ / "csv" / "a.csv").string()};
  ASSERT_OK_AND_ASSIGN(auto got_csv, ReadSource(csv, 1));
  ASSERT_OK_AND_ASSIGN(auto expected_csv, expected->SelectColumns({0, 1, 2}));
  ASSERT_TRUE(got_csv->Equals(*expected_csv)) << got_csv->schema()->ToString();
}

TEST_F(FilePyarrowTest, PyarrowReadsWhatTheSinksWrote) {
  const auto& expected = *expected_;
  struct Case {
    FileFormat format;
    const char* name;
  };
  for (const Case& c : {Case{FileFormat::kParquet, "parquet"}, Case{FileFormat::kIpc, "ipc"},
                        Case{FileFormat::kCsv, "csv"}}) {
    const fs::path out = *dir_ / (std::string("out_") + c.name);
    OperatorSpec spec;
    spec.name = "sink";
    spec.parallelism = 3;
    spec.params = FileSinkParams{c.format, out.string(), {}};
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(spec, {expected->schema()}, {}));
    arrow::TableBatchReader batches(*expected);
    batches.set_chunksize(700);
    std::vector<std::unique_ptr<Operator>> tasks;
    for (int32_t k = 0; k < 3; ++k) {
      TaskContext ctx;
      ctx.subtask = k;
      ctx.parallelism = 3;
      ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(ctx));
      tasks.push_back(std::move(op));
    }
    NoOutput none;
    int i = 0;
    for (;;) {
      ASSERT_OK_AND_ASSIGN(auto batch, batches.Next());
      if (batch == nullptr) break;
      ASSERT_OK(tasks[i++ % 3]->Process(0, batch, &none));
    }
    for (auto& task : tasks) ASSERT_OK(task->Finish(&none));
    for (auto& task : tasks) ASSERT_OK(task->Commit());
    EXPECT_EQ(RunScript("check '" + out.string() + "' " + c.name + " '" +
                        (*dir_ / "expected.arrows").string() + "'"),
              0)
        << c.name;
  }
}

TEST_F(FilePyarrowTest, PyarrowReadsExactlyOnceOutputAfterACrash) {
  // Exactly-once sinks (the job takes checkpoints): 3 tasks, a checkpoint after every 3
  // batches; checkpoint 1 completes, 2 is snapshotted but never completes, then every task
  // crashes with rows written after it. Restarted tasks restore checkpoint 1 and the batches
  // after it are replayed: pyarrow reads every row once.
  const auto& expected = *expected_;
  struct Case {
    FileFormat format;
    const char* name;
  };
  for (const Case& c : {Case{FileFormat::kParquet, "parquet"}, Case{FileFormat::kIpc, "ipc"},
                        Case{FileFormat::kCsv, "csv"}}) {
    const fs::path out = *dir_ / (std::string("exactly_once_") + c.name);
    OperatorSpec spec;
    spec.name = "sink";
    spec.parallelism = 3;
    spec.params = FileSinkParams{c.format, out.string(), {}};
    OperatorPlanContext context;
    context.checkpoints = true;
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(spec, {expected->schema()}, {}, context));
    arrow::TableBatchReader reader(*expected);
    reader.set_chunksize(300);
    ASSERT_OK_AND_ASSIGN(auto batches, reader.ToRecordBatches());
    ASSERT_GE(batches.size(), 9u);
    auto make_tasks = [&]() {
      std::vector<std::unique_ptr<Operator>> tasks;
      for (int32_t k = 0; k < 3; ++k) {
        TaskContext ctx;
        ctx.subtask = k;
        ctx.parallelism = 3;
        tasks.push_back(bound.make_operator(ctx).ValueOrDie());
      }
      return tasks;
    };
    NoOutput none;
    std::vector<testing::MemoryState> checkpoint1(3);
    std::vector<testing::MemoryState> checkpoint2(3);
    const size_t cut1 = 3;  // batches before checkpoint 1's barrier
    const size_t cut2 = 6;
    {
      auto tasks = make_tasks();
      for (size_t i = 0; i < batches.size(); ++i) {
        if (i == cut1) {
          for (int k = 0; k < 3; ++k) ASSERT_OK(tasks[k]->Snapshot(1, checkpoint1[k].writer()));
          for (int k = 0; k < 3; ++k) ASSERT_OK(tasks[k]->CheckpointComplete(1));
        }
        if (i == cut2) {
          for (int k = 0; k < 3; ++k) ASSERT_OK(tasks[k]->Snapshot(2, checkpoint2[k].writer()));
        }
        ASSERT_OK(tasks[i % 3]->Process(0, batches[i], &none));
      }
      // The crash: no Finish, no Commit.
    }
    auto tasks = make_tasks();
    for (int k = 0; k < 3; ++k) ASSERT_OK(tasks[k]->Restore(1, checkpoint1[k].reader()));
    for (auto& state : checkpoint2) state.Clear();  // checkpoint 2 is taken again
    for (size_t i = cut1; i < batches.size(); ++i) {
      if (i == cut2) {
        for (int k = 0; k < 3; ++k) ASSERT_OK(tasks[k]->Snapshot(2, checkpoint2[k].writer()));
      }
      ASSERT_OK(tasks[i % 3]->Process(0, batches[i], &none));
    }
    for (auto& task : tasks) ASSERT_OK(task->Finish(&none));
    for (auto& task : tasks) ASSERT_OK(task->CheckpointComplete(2));
    for (auto& task : tasks) ASSERT_OK(task->PrepareCommit());
    for (auto& task : tasks) ASSERT_OK(task->Commit());
    EXPECT_EQ(RunScript("check '" + out.string() + "' " + c.name + " '" +
                        (*dir_ / "expected.arrows").string() + "'"),
              0)
        << c.name;
  }
}

}  // namespace
}  // namespace sabot
