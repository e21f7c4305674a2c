#include "sabot/memory/faulty_filesystem.h"

#include <algorithm>
#include <cerrno>

#include <arrow/filesystem/localfs.h>
#include <arrow/io/interfaces.h>
#include <arrow/util/io_util.h>

namespace sabot::testing {

class FaultyFileSystem::Stream : public arrow::io::OutputStream {
 public:
  Stream(FaultyFileSystem* fs, std::shared_ptr<arrow::io::OutputStream> base)
      : fs_(fs), base_(std::move(base)) {}

  arrow::Status Close() override { return base_->Close(); }
  bool closed() const override { return base_->closed(); }
  arrow::Result<int64_t> Tell() const override { return base_->Tell(); }
  arrow::Status Flush() override { return base_->Flush(); }

  arrow::Status Write(const void* data, int64_t nbytes) override {
    if (fs_->fail_writes_.load()) return arrow::Status::IOError("injected I/O error on write");
    const int64_t capacity = fs_->capacity_.load();
    int64_t allowed = nbytes;
    if (capacity >= 0) {
      allowed = std::clamp<int64_t>(capacity - fs_->written_.load(), 0, nbytes);
    }
    if (allowed > 0) {
      ARROW_RETURN_NOT_OK(base_->Write(data, allowed));
      fs_->written_.fetch_add(allowed);
    }
    if (allowed < nbytes) {
      // The way arrow::fs::LocalFileSystem reports a full disk: a generic message, the cause
      // only in the errno detail.
      return arrow::internal::IOErrorFromErrno(ENOSPC, "Error writing bytes to file");
    }
    return arrow::Status::OK();
  }

 private:
  FaultyFileSystem* fs_;
  std::shared_ptr<arrow::io::OutputStream> base_;
};

FaultyFileSystem::FaultyFileSystem(std::shared_ptr<arrow::fs::FileSystem> base)
    : base_(base ? std::move(base) : std::make_shared<arrow::fs::LocalFileSystem>()) {}

arrow::Result<arrow::fs::FileInfo> FaultyFileSystem::GetFileInfo(const std::string& path) {
  return base_->GetFileInfo(path);
}
arrow::Result<arrow::fs::FileInfoVector> FaultyFileSystem::GetFileInfo(
    const arrow::fs::FileSelector& select) {
  return base_->GetFileInfo(select);
}
arrow::Status FaultyFileSystem::CreateDir(const std::string& path, bool recursive) {
  return base_->CreateDir(path, recursive);
}
arrow::Status FaultyFileSystem::DeleteDir(const std::string& path) {
  return base_->DeleteDir(path);
}
arrow::Status FaultyFileSystem::DeleteDirContents(const std::string& path, bool missing_dir_ok) {
  return base_->DeleteDirContents(path, missing_dir_ok);
}
arrow::Status FaultyFileSystem::DeleteRootDirContents() {
  return arrow::Status::Invalid("FaultyFileSystem refuses to delete the root directory");
}
arrow::Status FaultyFileSystem::DeleteFile(const std::string& path) {
  return base_->DeleteFile(path);
}
arrow::Status FaultyFileSystem::Move(const std::string& src, const std::string& dest) {
  return base_->Move(src, dest);
}
arrow::Status FaultyFileSystem::CopyFile(const std::string& src, const std::string& dest) {
  return base_->CopyFile(src, dest);
}
arrow::Result<std::shared_ptr<arrow::io::InputStream>> FaultyFileSystem::OpenInputStream(
    const std::string& path) {
  return base_->OpenInputStream(path);
}
arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> FaultyFileSystem::OpenInputFile(
    const std::string& path) {
  return base_->OpenInputFile(path);
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>> FaultyFileSystem::Wrap(
    arrow::Result<std::shared_ptr<arrow::io::OutputStream>> opened) {
  ARROW_ASSIGN_OR_RAISE(auto stream, std::move(opened));
  return std::make_shared<Stream>(this, std::move(stream));
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>> FaultyFileSystem::OpenOutputStream(
    const std::string& path, const std::shared_ptr<const arrow::KeyValueMetadata>& metadata) {
  if (fail_writes_.load()) return arrow::Status::IOError("injected I/O error opening ", path);
  return Wrap(base_->OpenOutputStream(path, metadata));
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>> FaultyFileSystem::OpenAppendStream(
    const std::string& path, const std::shared_ptr<const arrow::KeyValueMetadata>& metadata) {
  if (fail_writes_.load()) return arrow::Status::IOError("injected I/O error opening ", path);
  return Wrap(base_->OpenAppendStream(path, metadata));
}

}  // namespace sabot::testing
