#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <arrow/filesystem/filesystem.h>

namespace sabot::testing {

// A filesystem for tests that delegates to `base` (the local one by default) and injects write
// faults, as LevelDB's fault-injection Env does:
//   - SetDiskCapacity(n): once n bytes in total were written through it, a write stores what
//     still fits (a short write) and fails as the local filesystem does on a full disk: IOError
//     "Error writing bytes to file" with the errno (ENOSPC) only in the status detail;
//   - SetFailWrites(true): every write and every open for writing fails with an I/O error.
// Reads are not faulted (tests damage the files on disk instead). Thread-safe.
class FaultyFileSystem : public arrow::fs::FileSystem {
 public:
  explicit FaultyFileSystem(std::shared_ptr<arrow::fs::FileSystem> base = nullptr);

  void SetDiskCapacity(int64_t bytes) { capacity_.store(bytes); }
  void SetUnlimitedDisk() { capacity_.store(-1); }
  void SetFailWrites(bool fail) { fail_writes_.store(fail); }
  int64_t bytes_written() const { return written_.load(); }

  std::string type_name() const override { return "faulty"; }
  bool Equals(const arrow::fs::FileSystem& other) const override { return &other == this; }
  arrow::Result<arrow::fs::FileInfo> GetFileInfo(const std::string& path) override;
  arrow::Result<arrow::fs::FileInfoVector> GetFileInfo(const arrow::fs::FileSelector& select) override;
  arrow::Status CreateDir(const std::string& path, bool recursive) override;
  arrow::Status DeleteDir(const std::string& path) override;
  arrow::Status DeleteDirContents(const std::string& path, bool missing_dir_ok) override;
  arrow::Status DeleteRootDirContents() override;
  arrow::Status DeleteFile(const std::string& path) override;
  arrow::Status Move(const std::string& src, const std::string& dest) override;
  arrow::Status CopyFile(const std::string& src, const std::string& dest) override;
  arrow::Result<std::shared_ptr<arrow::io::InputStream>> OpenInputStream(
      const std::string& path) override;
  arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> OpenInputFile(
      const std::string& path) override;
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> OpenOutputStream(
      const std::string& path,
      const std::shared_ptr<const arrow::KeyValueMetadata>& metadata) override;
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> OpenAppendStream(
      const std::string& path,
      const std::shared_ptr<const arrow::KeyValueMetadata>& metadata) override;

 private:
  class Stream;
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> Wrap(
      arrow::Result<std::shared_ptr<arrow::io::OutputStream>> opened);

  std::shared_ptr<arrow::fs::FileSystem> base_;
  std::atomic<int64_t> capacity_{-1};
  std::atomic<int64_t> written_{0};
  std::atomic<bool> fail_writes_{false};
};

}  // namespace sabot::testing
