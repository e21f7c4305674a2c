#include "sabot/memory/spill_manager.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
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

// Run in a child process by SweepRemovesOnlyStaleRoots (disabled otherwise): makes a spill file
// through a SpillManager, records its root, and dies by SIGKILL, as a killed agent does: its
// root stays behind, with a lock file no process holds any more.
TEST(SpillManagerKillHelper, DISABLED_SpillAndDie) {
  const char* dir = std::getenv("SABOT_SPILL_KILL_TEST_DIR");
  if (dir == nullptr) GTEST_SKIP() << "only run by SweepRemovesOnlyStaleRoots";
  static BudgetedMemoryPool* pool = BudgetedMemoryPool::Make(1000).ValueOrDie().release();
  SpillOptions options;
  options.directory = dir;
  static SpillManager* manager = SpillManager::Make(options, pool).ValueOrDie().release();
  auto schema = testing::TestSchema(testing::TestSchemaKind::kPrimitive);
  auto encoder = BlockEncoder::Make(schema, {}, arrow::default_memory_pool()).ValueOrDie();
  auto writer = manager->OpenWriter(StreamKey{"s", 0, 0, 0}, encoder->schema_message()).ValueOrDie();
  ASSERT_OK(writer->Close());
  {
    std::ofstream marker(std::string(dir) + "/killed-root.txt");
    marker << manager->root();
  }
  ::raise(SIGKILL);
}

// The root a child process left when it was killed (SpillManagerKillHelper).
std::string RootOfAKilledProcess(const std::filesystem::path& dir) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  ::setenv("SABOT_SPILL_KILL_TEST_DIR", dir.c_str(), 1);
  const std::string command = "'" + self +
                              "' --gtest_also_run_disabled_tests "
                              "--gtest_filter=SpillManagerKillHelper.DISABLED_SpillAndDie"
                              " > /dev/null 2>&1";
  (void)std::system(command.c_str());  // killed: its status says so
  ::unsetenv("SABOT_SPILL_KILL_TEST_DIR");
  std::ifstream in(dir / "killed-root.txt");
  std::string root;
  std::getline(in, root);
  return root;
}

// A lock file in `root`, opened and (when `lock`) locked by this process: for a root that
// stands for another live process's (flock locks of separate opens exclude each other, even
// within one process).
int MakeLockFile(const std::filesystem::path& root, bool lock) {
  std::filesystem::create_directories(root);
  int fd = ::open((root / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0 && lock) {
    EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  }
  return fd;
}

// The agent-start sweep removes exactly the roots no live spill manager uses: a killed
// process's (lock free), one whose pid now names an unrelated live process (lock free), and a
// dead process's without a lock file; it keeps this process's, a live process's (lock held),
// one being made (live pid, no lock file yet), and everything not named like a root.
TEST_F(SpillManagerTest, SweepRemovesOnlyStaleRoots) {
  const std::string killed = RootOfAKilledProcess(dir_);
  ASSERT_FALSE(killed.empty()) << "the child did not make its spill file";
  ASSERT_TRUE(std::filesystem::exists(killed + "/s/p0-w0-a0.arrows"));
  const std::string killed_pid =
      std::filesystem::path(killed).filename().string().substr(std::string("sabot-spill-").size());
  const pid_t dead = std::stoi(killed_pid.substr(0, killed_pid.find('-')));
  const std::string live = std::to_string(::getppid());  // alive while this test runs

  ASSERT_OK_AND_ASSIGN(auto own, SpillManager::Make(Options(0.8, 0.5), pool_.get()));
  const auto held = dir_ / ("sabot-spill-" + live + "-0");
  const int held_fd = MakeLockFile(held, /*lock=*/true);
  const auto reused = dir_ / ("sabot-spill-" + live + "-1");
  ::close(MakeLockFile(reused, /*lock=*/false));
  std::filesystem::create_directories(reused / "job");
  const auto being_made = dir_ / ("sabot-spill-" + live + "-2");
  std::filesystem::create_directories(being_made);
  const auto dead_unlocked = dir_ / ("sabot-spill-" + std::to_string(dead) + "-7");
  std::filesystem::create_directories(dead_unlocked / "job");
  const auto other = dir_ / "sabot-spill-notapid-0";
  std::filesystem::create_directories(other);

  ASSERT_OK_AND_ASSIGN(auto removed, SweepStaleSpillRoots(dir_.string()));
  std::sort(removed.begin(), removed.end());
  std::vector<std::string> expected = {killed, reused.string(), dead_unlocked.string()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(removed, expected);
  EXPECT_FALSE(std::filesystem::exists(killed));
  EXPECT_FALSE(std::filesystem::exists(reused));
  EXPECT_FALSE(std::filesystem::exists(dead_unlocked));
  EXPECT_TRUE(std::filesystem::exists(own->root() + "/lock"));
  EXPECT_TRUE(std::filesystem::exists(held));
  EXPECT_TRUE(std::filesystem::exists(being_made));
  EXPECT_TRUE(std::filesystem::exists(other));
  ::close(held_fd);
  // Once its holder lets go, the held root is stale too.
  ASSERT_OK_AND_ASSIGN(removed, SweepStaleSpillRoots(dir_.string()));
  EXPECT_EQ(removed, std::vector<std::string>{held.string()});
  // A directory that does not exist has nothing to sweep.
  ASSERT_OK_AND_ASSIGN(removed, SweepStaleSpillRoots((dir_ / "absent").string()));
  EXPECT_TRUE(removed.empty());
}

// The parent of a killed process removes that process's roots only.
TEST_F(SpillManagerTest, RemoveSpillRootsOfRemovesOneProcesssRoots) {
  const std::string killed = RootOfAKilledProcess(dir_);
  ASSERT_FALSE(killed.empty()) << "the child did not make its spill file";
  const std::string name = std::filesystem::path(killed).filename().string();
  const pid_t dead = std::stoi(name.substr(std::string("sabot-spill-").size()));
  const auto unrelated = dir_ / ("sabot-spill-" + std::to_string(::getppid()) + "-5");
  ::close(MakeLockFile(unrelated, /*lock=*/false));
  ASSERT_OK_AND_ASSIGN(auto removed, RemoveSpillRootsOf(dir_.string(), dead));
  EXPECT_EQ(removed, std::vector<std::string>{killed});
  EXPECT_FALSE(std::filesystem::exists(killed));
  EXPECT_TRUE(std::filesystem::exists(unrelated));
}

// A root is locked for its manager's life and removed with it.
TEST_F(SpillManagerTest, ARootIsLockedWhileItsManagerLives) {
  std::string root;
  {
    ASSERT_OK_AND_ASSIGN(auto manager, SpillManager::Make(Options(0.8, 0.5), pool_.get()));
    root = manager->root();
    int fd = ::open((root + "/lock").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0) << "the manager's lock is not held";
    ::close(fd);
  }
  EXPECT_FALSE(std::filesystem::exists(root));
}

}  // namespace
}  // namespace sabot
