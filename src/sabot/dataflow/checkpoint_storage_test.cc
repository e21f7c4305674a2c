#include "sabot/dataflow/checkpoint_storage.h"

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <arrow/api.h>
#include <arrow/filesystem/localfs.h>
#include <gtest/gtest.h>

#include "sabot/memory/crc32c.h"
#include "sabot/memory/faulty_filesystem.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<arrow::Table> MakeTable(int64_t start, int64_t rows) {
  arrow::Int64Builder keys;
  arrow::StringBuilder names;
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_TRUE(keys.Append(start + i).ok());
    EXPECT_TRUE(names.Append("name_" + std::to_string(start + i)).ok());
  }
  auto schema = arrow::schema({arrow::field("key", arrow::int64()), arrow::field("name", arrow::utf8())});
  return arrow::Table::Make(schema, {keys.Finish().ValueOrDie(), names.Finish().ValueOrDie()});
}

class CheckpointStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sabot_chk_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes task (chain, subtask)'s snapshot of `id`: operator 3 puts part "rows" (rows
  // [start, start + rows)), operator 5 puts nothing; waits for the IO thread.
  arrow::Result<TaskSnapshot> WriteTask(CheckpointStorage& storage, CheckpointId id, int32_t chain,
                                        int32_t subtask, int64_t start, int64_t rows) {
    auto writer = storage.BeginTask(id, chain, subtask);
    ARROW_RETURN_NOT_OK(writer->ForOperator(3)->Put("rows", MakeTable(start, rows)));
    (void)writer->ForOperator(5);
    std::mutex mutex;
    std::condition_variable cv;
    std::optional<arrow::Result<TaskSnapshot>> result;
    writer->Commit([&](CheckpointId got, const arrow::Result<TaskSnapshot>& snapshot) {
      EXPECT_EQ(got, id);
      std::lock_guard<std::mutex> lock(mutex);
      result = snapshot;
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return result.has_value(); });
    return *result;
  }

  // A complete checkpoint `id` of two tasks.
  CheckpointManifest CompleteTwoTasks(CheckpointStorage& storage, CheckpointId id) {
    auto a = WriteTask(storage, id, 0, 0, id * 100, 10);
    auto b = WriteTask(storage, id, 0, 1, id * 100 + 50, 20);
    EXPECT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(b.ok()) << b.status();
    auto manifest = storage.Complete(id, {*b, *a});
    EXPECT_TRUE(manifest.ok()) << manifest.status();
    return *manifest;
  }

  fs::path dir_;
};

TEST_F(CheckpointStorageTest, WritesLayoutManifestAndReadsBack) {
  ASSERT_OK_AND_ASSIGN(auto storage, CheckpointStorage::Open(dir_.string(), "job1", 2));
  ASSERT_OK_AND_ASSIGN(CheckpointId first, storage->NextId());
  EXPECT_EQ(first, 1);
  CheckpointManifest manifest = CompleteTwoTasks(*storage, 1);
  const fs::path chk = dir_ / "job1" / "chk-000001";
  EXPECT_TRUE(fs::exists(chk / "MANIFEST.json"));
  EXPECT_FALSE(fs::exists(chk / "MANIFEST.json.tmp"));
  EXPECT_TRUE(fs::exists(chk / "0-0" / "3-rows.arrow"));
  EXPECT_TRUE(fs::exists(chk / "0-1" / "3-rows.arrow"));
  ASSERT_EQ(manifest.tasks.size(), 2u);
  EXPECT_EQ(manifest.tasks[0].subtask, 0);  // sorted
  // The manifest's sizes and checksums are those of the files on disk, computed independently.
  for (const TaskSnapshot& task : manifest.tasks) {
    ASSERT_EQ(task.files.size(), 1u);
    std::ifstream in(chk / task.files[0].path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(static_cast<int64_t>(bytes.size()), task.files[0].bytes);
    EXPECT_EQ(Crc32c(bytes.data(), bytes.size()), task.files[0].crc32c);
  }
  EXPECT_EQ(manifest.bytes(), manifest.tasks[0].files[0].bytes + manifest.tasks[1].files[0].bytes);

  ASSERT_OK_AND_ASSIGN(auto latest, storage->LatestValid());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(*latest, manifest);
  ASSERT_OK_AND_ASSIGN(auto state, storage->OpenState(*latest, 0, 1, 3));
  ASSERT_OK_AND_ASSIGN(auto table, state->Get("rows"));
  ASSERT_NE(table, nullptr);
  EXPECT_TRUE(table->Equals(*MakeTable(150, 20)));
  ASSERT_OK_AND_ASSIGN(auto absent, state->Get("other"));
  EXPECT_EQ(absent, nullptr);
  ASSERT_OK_AND_ASSIGN(auto empty_state, storage->OpenState(*latest, 0, 0, 5));
  ASSERT_OK_AND_ASSIGN(auto none, empty_state->Get("rows"));
  EXPECT_EQ(none, nullptr);
  // A task the checkpoint does not know (the plan's parallelism changed).
  auto missing = storage->OpenState(*latest, 0, 7, 3);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("task 0-7"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(CheckpointId next, storage->NextId());
  EXPECT_EQ(next, 2);
}

TEST_F(CheckpointStorageTest, ManifestJsonRoundTripsAndRejectsGarbage) {
  CheckpointManifest manifest;
  manifest.job_name = "j";
  manifest.id = 4;
  manifest.created_unix_ms = 123;
  manifest.tasks.push_back(TaskSnapshot{1, 2, 4, {{"1-2/7-x.arrow", 10, 0xFFFFFFFFu}}, false});
  manifest.tasks.push_back(TaskSnapshot{2, 0, 4, {}, true});
  ASSERT_OK_AND_ASSIGN(auto back, CheckpointManifest::FromJson(manifest.ToJson()));
  EXPECT_EQ(back, manifest);
  EXPECT_FALSE(CheckpointManifest::FromJson("").ok());
  EXPECT_FALSE(CheckpointManifest::FromJson("[1]").ok());
  EXPECT_FALSE(CheckpointManifest::FromJson(R"({"format":1,"job":"j","checkpoint":4})").ok());
  std::string escape = manifest.ToJson();
  escape.replace(escape.find("1-2/7-x.arrow"), 13, "../../etc/pwd");
  auto rejected = CheckpointManifest::FromJson(escape);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.status().message().find("invalid file path"), std::string::npos);
}

TEST_F(CheckpointStorageTest, RetainsTheNewestAndRemovesFailedOnes) {
  ASSERT_OK_AND_ASSIGN(auto storage, CheckpointStorage::Open(dir_.string(), "job", 2));
  CompleteTwoTasks(*storage, 1);
  // Checkpoint 2 fails: a task wrote, no manifest.
  ASSERT_TRUE(WriteTask(*storage, 2, 0, 0, 0, 5).ok());
  CompleteTwoTasks(*storage, 3);
  // In flight while 4 completes... no: 5 is in flight while 4 completes; it must survive.
  ASSERT_TRUE(WriteTask(*storage, 5, 0, 0, 0, 5).ok());
  CompleteTwoTasks(*storage, 4);
  ASSERT_OK_AND_ASSIGN(auto ids, storage->ListCheckpoints());
  EXPECT_EQ(ids, (std::vector<CheckpointId>{3, 4, 5}));
  ASSERT_OK(storage->Abort(5));
  ASSERT_OK_AND_ASSIGN(ids, storage->ListCheckpoints());
  EXPECT_EQ(ids, (std::vector<CheckpointId>{3, 4}));
  // Abort never removes a complete checkpoint.
  EXPECT_FALSE(storage->Abort(4).ok());
  ASSERT_OK_AND_ASSIGN(auto latest, storage->LatestValid());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->id, 4);
}

TEST_F(CheckpointStorageTest, CorruptOrTruncatedFileFallsBackToThePreviousCheckpoint) {
  ASSERT_OK_AND_ASSIGN(auto storage, CheckpointStorage::Open(dir_.string(), "job", 3));
  CompleteTwoTasks(*storage, 1);
  CompleteTwoTasks(*storage, 2);
  CompleteTwoTasks(*storage, 3);
  // Flip one byte of checkpoint 3's file: same size, checksum differs.
  const fs::path file3 = dir_ / "job" / "chk-000003" / "0-1" / "3-rows.arrow";
  {
    std::fstream f(file3, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(40);
    char c = 0;
    f.read(&c, 1);
    f.seekp(40);
    c = static_cast<char>(c ^ 0x5A);
    f.write(&c, 1);
  }
  auto verify3 = storage->Verify(3);
  ASSERT_FALSE(verify3.ok());
  EXPECT_NE(verify3.message().find("CRC-32C"), std::string::npos) << verify3;
  ASSERT_OK_AND_ASSIGN(auto latest, storage->LatestValid());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->id, 2);
  // Truncate checkpoint 2's file: falls back to 1.
  const fs::path file2 = dir_ / "job" / "chk-000002" / "0-0" / "3-rows.arrow";
  fs::resize_file(file2, fs::file_size(file2) / 2);
  auto verify2 = storage->Verify(2);
  ASSERT_FALSE(verify2.ok());
  EXPECT_NE(verify2.message().find("truncated"), std::string::npos) << verify2;
  ASSERT_OK_AND_ASSIGN(latest, storage->LatestValid());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->id, 1);
  // A garbled manifest: none left.
  std::ofstream(dir_ / "job" / "chk-000001" / "MANIFEST.json") << "{not json";
  ASSERT_OK_AND_ASSIGN(latest, storage->LatestValid());
  EXPECT_FALSE(latest.has_value());
}

TEST_F(CheckpointStorageTest, FullDiskFailsThatCheckpointOnly) {
  auto faulty = std::make_shared<testing::FaultyFileSystem>();
  ASSERT_OK_AND_ASSIGN(auto storage,
                       CheckpointStorage::Open(faulty, dir_.string(), "job", 2));
  CompleteTwoTasks(*storage, 1);
  faulty->SetDiskCapacity(faulty->bytes_written() + 100);
  auto failed = WriteTask(*storage, 2, 0, 0, 0, 1000);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("checkpoint 2 task 0-0"), std::string::npos)
      << failed.status();
  faulty->SetUnlimitedDisk();
  ASSERT_OK(storage->Abort(2));
  // The job runs on: the next checkpoint completes, and the previous stays valid meanwhile.
  ASSERT_OK_AND_ASSIGN(auto latest, storage->LatestValid());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->id, 1);
  CompleteTwoTasks(*storage, 3);
  ASSERT_OK_AND_ASSIGN(latest, storage->LatestValid());
  EXPECT_EQ(latest->id, 3);
  // A failing manifest write leaves the checkpoint incomplete.
  ASSERT_TRUE(WriteTask(*storage, 4, 0, 0, 0, 5).ok());
  faulty->SetFailWrites(true);
  auto manifest = storage->Complete(4, {});
  faulty->SetFailWrites(false);
  ASSERT_FALSE(manifest.ok());
  EXPECT_NE(manifest.status().message().find("checkpoint 4"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(latest, storage->LatestValid());
  EXPECT_EQ(latest->id, 3);
}

TEST_F(CheckpointStorageTest, OpensFileUrisAndRejectsBadArguments) {
  ASSERT_OK_AND_ASSIGN(auto storage,
                       CheckpointStorage::Open("file://" + dir_.string(), "uri_job", 1));
  CompleteTwoTasks(*storage, 1);
  CompleteTwoTasks(*storage, 2);
  EXPECT_FALSE(fs::exists(dir_ / "uri_job" / "chk-000001"));  // retained 1
  EXPECT_TRUE(fs::exists(dir_ / "uri_job" / "chk-000002" / "MANIFEST.json"));
  EXPECT_FALSE(CheckpointStorage::Open(dir_.string(), "job", 0).ok());
  EXPECT_FALSE(CheckpointStorage::Open(dir_.string(), "a/b", 1).ok());
  EXPECT_FALSE(CheckpointStorage::Open("", "job", 1).ok());
  auto writer = storage->BeginTask(3, 0, 0);
  EXPECT_FALSE(writer->ForOperator(1)->Put("bad name", MakeTable(0, 1)).ok());
  ASSERT_OK(writer->ForOperator(1)->Put("ok", MakeTable(0, 1)));
  EXPECT_FALSE(writer->ForOperator(1)->Put("ok", MakeTable(0, 1)).ok());
  EXPECT_GT(writer->pending_bytes(), 0);
}

}  // namespace
}  // namespace sabot
