#include "sabot/memory/spill_manager.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include <arrow/filesystem/localfs.h>

#include "sabot/common/error_detail.h"
#include "sabot/common/logging.h"

namespace sabot {

namespace {

// Local spill roots still present; removed when the process exits normally (an atexit
// handler), in case their SpillManager was never destroyed. Never destroyed itself, so a
// manager destroyed during static destruction can still unregister.
class ExitCleanup {
 public:
  static ExitCleanup& Instance() {
    static ExitCleanup* instance = [] {
      auto* cleanup = new ExitCleanup();
      std::atexit([] { Instance().RemoveAll(); });
      return cleanup;
    }();
    return *instance;
  }
  void Add(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    paths_.insert(path);
  }
  void Remove(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    paths_.erase(path);
  }

 private:
  void RemoveAll() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& path : paths_) {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
    paths_.clear();
  }

  std::mutex mutex_;
  std::set<std::string> paths_ SABOT_GUARDED_BY(mutex_);
};

std::atomic<int64_t> next_root{0};

constexpr std::string_view kRootPrefix = "sabot-spill-";
constexpr const char* kLockFile = "/lock";

// The pid in a spill root's name "sabot-spill-<pid>-<n>"; nullopt for any other name.
std::optional<pid_t> PidOfRoot(std::string_view name) {
  if (name.substr(0, kRootPrefix.size()) != kRootPrefix) return std::nullopt;
  name.remove_prefix(kRootPrefix.size());
  const size_t dash = name.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == name.size()) return std::nullopt;
  int64_t pid = 0, n = 0;
  auto [pid_end, pid_error] = std::from_chars(name.data(), name.data() + dash, pid);
  auto [n_end, n_error] = std::from_chars(name.data() + dash + 1, name.data() + name.size(), n);
  if (pid_error != std::errc() || pid_end != name.data() + dash || n_error != std::errc() ||
      n_end != name.data() + name.size() || pid <= 0 || pid > INT32_MAX || n < 0) {
    return std::nullopt;
  }
  return static_cast<pid_t>(pid);
}

// Creates and locks the new root's lock file, for the manager's life: the descriptor holding
// the lock. IOError (with the errno text) when it cannot; -1 and `swept` set when a sweeper
// removed the root between its creation and the lock (the caller makes another).
arrow::Result<int> LockRoot(const std::string& root, bool* swept) {
  const std::string path = root + kLockFile;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return arrow::Status::IOError("cannot create the lock file ", path, ": ",
                                  std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd);
    return arrow::Status::IOError("cannot lock ", path, ": ", std::strerror(error));
  }
  // A sweeper that took the lock between open() and flock() removed the root meanwhile: the file
  // locked is then no longer the one at `path`.
  struct stat locked {}, linked {};
  *swept = ::fstat(fd, &locked) != 0 || ::stat(path.c_str(), &linked) != 0 ||
           locked.st_ino != linked.st_ino || locked.st_dev != linked.st_dev;
  if (*swept) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// SweepStaleSpillRoots and RemoveSpillRootsOf: the stale roots in `directory`, of `only` when set.
arrow::Result<std::vector<std::string>> RemoveStaleRoots(const std::string& directory,
                                                         std::optional<pid_t> only) {
  ARROW_ASSIGN_OR_RAISE(std::string dir, ResolveSpillDirectory(directory));
  std::vector<std::string> removed;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return removed;
    return arrow::Status::IOError("cannot list spill directory ", dir, ": ", ec.message());
  }
  const pid_t self = ::getpid();
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    std::optional<pid_t> pid = PidOfRoot(name);
    if (!pid || *pid == self || (only && *pid != *only)) continue;
    std::error_code type_error;
    if (!entry.is_directory(type_error) || entry.is_symlink(type_error)) continue;
    const std::string root = entry.path().string();
    // Held across the removal, so no manager can take the root over meanwhile.
    int fd = ::open((root + kLockFile).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    bool stale;
    if (fd >= 0) {
      stale = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    } else {
      // No lock file: a root still being made (its process is alive) or one left by a process
      // killed before it locked it.
      stale = errno == ENOENT && ::kill(*pid, 0) != 0 && errno == ESRCH;
    }
    if (stale) {
      std::error_code remove_error;
      std::filesystem::remove_all(entry.path(), remove_error);
      if (remove_error) {
        // Someone else's folder (another user's, in a shared /tmp) must not keep this process
        // from starting: it is left, said once, and the sweep goes on.
        SABOT_LOG(kWarning) << "cannot remove the stale spill folder " << root << ": "
                            << remove_error.message();
      } else {
        removed.push_back(root);
      }
    }
    if (fd >= 0) ::close(fd);
  }
  return removed;
}

}  // namespace

arrow::Result<std::string> ResolveSpillDirectory(const std::string& directory) {
  std::string dir = directory;
  if (dir.empty()) {
    std::error_code ec;
    dir = std::filesystem::temp_directory_path(ec).string();
    if (ec) return arrow::Status::IOError("no temporary directory for spill files: ", ec.message());
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

arrow::Result<std::vector<std::string>> SweepStaleSpillRoots(const std::string& directory) {
  return RemoveStaleRoots(directory, std::nullopt);
}

arrow::Result<std::vector<std::string>> RemoveSpillRootsOf(const std::string& directory,
                                                           pid_t pid) {
  return RemoveStaleRoots(directory, pid);
}

arrow::Result<std::unique_ptr<SpillManager>> SpillManager::Make(SpillOptions options,
                                                                const BudgetedMemoryPool* pool) {
  if (pool == nullptr) return arrow::Status::Invalid("spill manager needs the budget pool");
  if (!(options.low_watermark >= 0 && options.low_watermark <= options.high_watermark &&
        options.high_watermark <= 1)) {
    return arrow::Status::Invalid("spill watermarks must satisfy 0 <= low <= high <= 1, got low ",
                                  options.low_watermark, " high ", options.high_watermark);
  }
  std::unique_ptr<SpillManager> manager(new SpillManager());
  manager->pool_ = pool;
  manager->filesystem_ = options.filesystem;
  if (manager->filesystem_ == nullptr) {
    manager->filesystem_ = std::make_shared<arrow::fs::LocalFileSystem>();
  }
  ARROW_ASSIGN_OR_RAISE(std::string directory, ResolveSpillDirectory(options.directory));
  const bool local = manager->filesystem_->type_name() == "local";
  for (int attempt = 0;; ++attempt) {
    manager->root_ = directory + "/" + std::string(kRootPrefix) + std::to_string(::getpid()) +
                     "-" + std::to_string(next_root.fetch_add(1));
    // A root of this name is left over from an earlier process with this pid: not ours.
    if (local) {
      std::error_code ec;
      std::filesystem::remove_all(manager->root_, ec);
    }
    arrow::Status st = manager->filesystem_->CreateDir(manager->root_, /*recursive=*/true);
    if (!st.ok()) {
      return arrow::Status::IOError("cannot create spill directory ", manager->root_, ": ",
                                    StatusCause(st));
    }
    if (!local) break;
    bool swept = false;
    ARROW_ASSIGN_OR_RAISE(manager->lock_fd_, LockRoot(manager->root_, &swept));
    if (!swept) break;
    if (attempt >= 8) {
      return arrow::Status::IOError("cannot keep a spill directory in ", directory,
                                    ": another process removes each one made");
    }
  }
  if (local) {
    ExitCleanup::Instance().Add(manager->root_);
    manager->registered_for_exit_ = true;
  }
  manager->options_ = std::move(options);
  return manager;
}

SpillManager::~SpillManager() {
  arrow::Status st = filesystem_->DeleteDir(root_);
  if (!st.ok()) {
    SABOT_LOG(kWarning) << "removing spill directory " << root_ << ": " << st.ToString();
  }
  if (registered_for_exit_) ExitCleanup::Instance().Remove(root_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

bool SpillManager::AboveHighWatermark() const {
  return static_cast<double>(pool_->bytes_allocated()) >
         options_.high_watermark * static_cast<double>(pool_->budget());
}

bool SpillManager::AtOrBelowLowWatermark() const {
  return static_cast<double>(pool_->bytes_allocated()) <=
         options_.low_watermark * static_cast<double>(pool_->budget());
}

arrow::Result<std::string> SpillManager::PathFor(const StreamKey& key) const {
  ARROW_RETURN_NOT_OK(ValidateId(key.shuffle_id, "shuffle id"));
  if (key.partition_id < 0 || key.writer_task < 0 || key.writer_attempt < 0) {
    return arrow::Status::Invalid("stream key of shuffle '", key.shuffle_id,
                                  "' has a negative partition, writer or attempt");
  }
  return root_ + "/" + key.shuffle_id + "/p" + std::to_string(key.partition_id) + "-w" +
         std::to_string(key.writer_task) + "-a" + std::to_string(key.writer_attempt) + ".arrows";
}

arrow::Result<std::unique_ptr<SpillFileWriter>> SpillManager::OpenWriter(
    const StreamKey& key, std::shared_ptr<arrow::Buffer> schema_message) {
  ARROW_ASSIGN_OR_RAISE(std::string path, PathFor(key));
  bool created;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    created = created_.count(key.shuffle_id) > 0;
  }
  if (!created) {
    std::string dir = root_ + "/" + key.shuffle_id;
    arrow::Status st = filesystem_->CreateDir(dir, /*recursive=*/true);
    if (!st.ok()) {
      return arrow::Status::IOError("cannot create spill directory ", dir, ": ", StatusCause(st));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    created_.insert(key.shuffle_id);
  }
  return SpillFileWriter::Open(filesystem_, std::move(path), std::move(schema_message));
}

arrow::Result<std::unique_ptr<SpillFileReader>> SpillManager::OpenReader(
    const StreamKey& key) const {
  ARROW_ASSIGN_OR_RAISE(std::string path, PathFor(key));
  return SpillFileReader::Open(filesystem_, std::move(path));
}

arrow::Status SpillManager::DeleteShuffle(const ShuffleId& shuffle_id) {
  ARROW_RETURN_NOT_OK(ValidateId(shuffle_id, "shuffle id"));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (created_.erase(shuffle_id) == 0) return arrow::Status::OK();
  }
  std::string dir = root_ + "/" + shuffle_id;
  arrow::Status st = filesystem_->DeleteDir(dir);
  if (!st.ok()) {
    return arrow::Status::IOError("cannot delete spill files of shuffle '", shuffle_id, "' in ",
                                  dir, ": ", StatusCause(st));
  }
  return arrow::Status::OK();
}

}  // namespace sabot
