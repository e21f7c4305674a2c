#include "sabot/memory/spill_manager.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <arrow/buffer.h>

#include "sabot/memory/block_codec.h"
#include "sabot/memory/test_batches.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

class SpillManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sabot-spill-manager-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    pool_ = BudgetedMemoryPool::Make(1000).ValueOrDie();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  SpillOptions Options(double high, double low) {
    SpillOptions o;
    o.directory = dir_.string();
    o.high_watermark = high;
    o.low_watermark = low;
    return o;
  }

  std::filesystem::path dir_;
  std::unique_ptr<BudgetedMemoryPool> pool_;
};

TEST_F(SpillManagerTest, WatermarksFollowThePool) {
  ASSERT_OK_AND_ASSIGN(auto manager, SpillManager::Make(Options(0.8, 0.5), pool_.get()));
  EXPECT_FALSE(manager->AboveHighWatermark());
  EXPECT_TRUE(manager->AtOrBelowLowWatermark());
  ASSERT_OK_AND_ASSIGN(auto a, arrow::AllocateBuffer(600, pool_.get()));
  EXPECT_FALSE(manager->AboveHighWatermark());
  EXPECT_FALSE(manager->AtOrBelowLowWatermark());
  ASSERT_OK_AND_ASSIGN(auto b, arrow::AllocateBuffer(300, pool_.get()));
  EXPECT_TRUE(manager->AboveHighWatermark());
  a.reset();
  EXPECT_TRUE(manager->AtOrBelowLowWatermark());
  ASSERT_RAISES_WITH(Invalid, "watermarks", SpillManager::Make(Options(0.4, 0.5), pool_.get()).status());
  ASSERT_RAISES_WITH(Invalid, "watermarks", SpillManager::Make(Options(1.5, 0.5), pool_.get()).status());
}

TEST_F(SpillManagerTest, PathsAreOneFilePerStreamInsideItsOwnRoot) {
  ASSERT_OK_AND_ASSIGN(auto m1, SpillManager::Make(Options(0.8, 0.5), pool_.get()));
  ASSERT_OK_AND_ASSIGN(auto m2, SpillManager::Make(Options(0.8, 0.5), pool_.get()));
  EXPECT_NE(m1->root(), m2->root());
  EXPECT_EQ(std::filesystem::path(m1->root()).parent_path(), dir_);
  ASSERT_OK_AND_ASSIGN(auto path, m1->PathFor(StreamKey{"job-7.s_1", 12, 3, 2}));
  EXPECT_EQ(path, m1->root() + "/job-7.s_1/p12-w3-a2.arrows");
  for (const char* bad : {"..", "../x", "a/b", ".hidden", "", "a b"}) {
    ASSERT_RAISES_WITH(Invalid, "shuffle id", m1->PathFor(StreamKey{bad, 0, 0, 0}).status());
  }
  const std::string root = m1->root();
  m1.reset();
  EXPECT_FALSE(std::filesystem::exists(root));
}

TEST_F(SpillManagerTest, DeleteShuffleRemovesOnlyThatShuffle) {
  ASSERT_OK_AND_ASSIGN(auto manager, SpillManager::Make(Options(0.8, 0.5), pool_.get()));
  auto schema = testing::TestSchema(testing::TestSchemaKind::kPrimitive);
  auto encoder = BlockEncoder::Make(schema, {}, arrow::default_memory_pool()).ValueOrDie();
  for (const char* shuffle : {"s1", "s2"}) {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         manager->OpenWriter(StreamKey{shuffle, 0, 0, 0}, encoder->schema_message()));
    ASSERT_OK(writer->Close());
  }
  ASSERT_OK(manager->DeleteShuffle("s1"));
  EXPECT_FALSE(std::filesystem::exists(manager->root() + "/s1"));
  EXPECT_TRUE(std::filesystem::exists(manager->root() + "/s2/p0-w0-a0.arrows"));
  ASSERT_OK(manager->DeleteShuffle("never-spilled"));
}

// Run in a child process by NormalProcessExitRemovesSpillFiles (disabled otherwise): makes a
// spill file through a SpillManager that is never destroyed, then exits normally.
TEST(SpillManagerExitHelper, DISABLED_LeakAManagerAndExit) {
  const char* dir = std::getenv("SABOT_SPILL_EXIT_TEST_DIR");
  if (dir == nullptr) GTEST_SKIP() << "only run by NormalProcessExitRemovesSpillFiles";
  // Held by globals, so they stay reachable (leak checkers stay quiet) and are never destroyed.
  static BudgetedMemoryPool* pool = BudgetedMemoryPool::Make(1000).ValueOrDie().release();
  SpillOptions options;
  options.directory = dir;
  static SpillManager* manager = SpillManager::Make(options, pool).ValueOrDie().release();
  {
    auto schema = testing::TestSchema(testing::TestSchemaKind::kPrimitive);
    auto encoder = BlockEncoder::Make(schema, {}, arrow::default_memory_pool()).ValueOrDie();
    auto writer =
        manager->OpenWriter(StreamKey{"s", 0, 0, 0}, encoder->schema_message()).ValueOrDie();
    ASSERT_OK(writer->Close());
    std::ofstream marker(std::string(dir) + "/root.txt");
    marker << manager->root();
  }
  std::exit(0);
}

TEST_F(SpillManagerTest, NormalProcessExitRemovesSpillFiles) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  ASSERT_EQ(::setenv("SABOT_SPILL_EXIT_TEST_DIR", dir_.c_str(), 1), 0);
  const std::string command = "'" + self +
                              "' --gtest_also_run_disabled_tests "
                              "--gtest_filter=SpillManagerExitHelper.DISABLED_LeakAManagerAndExit"
                              " > /dev/null 2>&1";
  int rc = std::system(command.c_str());
  ::unsetenv("SABOT_SPILL_EXIT_TEST_DIR");
  ASSERT_EQ(rc, 0) << command;
  std::ifstream in(dir_ / "root.txt");
  std::string root;
  std::getline(in, root);
  ASSERT_FALSE(root.empty()) << "the child did not make its spill file";
  EXPECT_EQ(std::filesystem::path(root).parent_path(), dir_);
  EXPECT_FALSE(std::filesystem::exists(root)) << root << " survived the process's exit";
}

}  // namespace
}  // namespace sabot
