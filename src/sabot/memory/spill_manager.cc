#include "sabot/memory/spill_manager.h"

#include <unistd.h>

#include <atomic>
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

}  // namespace

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
  std::string directory = options.directory;
  if (directory.empty()) {
    std::error_code ec;
    directory = std::filesystem::temp_directory_path(ec).string();
    if (ec) return arrow::Status::IOError("no temporary directory for spill files: ", ec.message());
  }
  while (directory.size() > 1 && directory.back() == '/') directory.pop_back();
  manager->root_ = directory + "/sabot-spill-" + std::to_string(::getpid()) + "-" +
                   std::to_string(next_root.fetch_add(1));
  arrow::Status st = manager->filesystem_->CreateDir(manager->root_, /*recursive=*/true);
  if (!st.ok()) {
    return arrow::Status::IOError("cannot create spill directory ", manager->root_, ": ",
                                  StatusCause(st));
  }
  if (manager->filesystem_->type_name() == "local") {
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
