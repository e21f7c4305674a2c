#include "sabot/dataflow/checkpoint_storage.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/filesystem/path_util.h>
#include <arrow/io/interfaces.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/thread_pool.h>
#include <nlohmann/json.hpp>

#include "sabot/common/logging.h"
#include "sabot/memory/crc32c.h"

namespace sabot {

namespace {

constexpr char kManifestName[] = "MANIFEST.json";
constexpr char kManifestTemp[] = "MANIFEST.json.tmp";
constexpr int kManifestFormat = 1;

std::string Join(const std::string& base, const std::string& name) {
  if (base.empty()) return name;
  return arrow::fs::internal::ConcatAbstractPath(base, name);
}

std::string ChkName(CheckpointId id) {
  char name[32];
  std::snprintf(name, sizeof(name), "chk-%06lld", static_cast<long long>(id));
  return name;
}

// "chk-000012" -> 12; anything else -> 0.
CheckpointId ParseChkName(const std::string& name) {
  if (name.size() <= 4 || name.compare(0, 4, "chk-") != 0) return kNoCheckpoint;
  CheckpointId id = 0;
  for (size_t i = 4; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || id > (int64_t{1} << 55)) return kNoCheckpoint;
    id = id * 10 + (name[i] - '0');
  }
  return id;
}

bool ValidPartName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

int64_t TableBytes(const arrow::Table& table) {
  int64_t bytes = 0;
  for (const auto& column : table.columns()) {
    for (const auto& chunk : column->chunks()) {
      for (const auto& buffer : chunk->data()->buffers) {
        if (buffer != nullptr) bytes += buffer->size();
      }
    }
  }
  return bytes;
}

// An output stream that forwards to `base` and keeps the CRC-32C and count of what it wrote.
class ChecksumStream : public arrow::io::OutputStream {
 public:
  explicit ChecksumStream(std::shared_ptr<arrow::io::OutputStream> base) : base_(std::move(base)) {}
  arrow::Status Close() override { return base_->Close(); }
  bool closed() const override { return base_->closed(); }
  arrow::Result<int64_t> Tell() const override { return bytes_; }
  arrow::Status Write(const void* data, int64_t nbytes) override {
    ARROW_RETURN_NOT_OK(base_->Write(data, nbytes));
    crc_ = Crc32c(data, static_cast<size_t>(nbytes), crc_);
    bytes_ += nbytes;
    return arrow::Status::OK();
  }
  arrow::Status Flush() override { return base_->Flush(); }
  uint32_t crc() const { return crc_; }
  int64_t bytes() const { return bytes_; }

 private:
  std::shared_ptr<arrow::io::OutputStream> base_;
  uint32_t crc_ = 0;
  int64_t bytes_ = 0;
};

// One snapshot part's file, read back.
class FileStateReader : public StateReader {
 public:
  FileStateReader(std::shared_ptr<arrow::fs::FileSystem> fs, std::string chk_path,
                  std::string where, std::map<std::string, std::string> parts)
      : fs_(std::move(fs)),
        chk_path_(std::move(chk_path)),
        where_(std::move(where)),
        parts_(std::move(parts)) {}

  arrow::Result<std::shared_ptr<arrow::Table>> Get(const std::string& name) override {
    auto it = parts_.find(name);
    if (it == parts_.end()) return nullptr;
    const std::string path = Join(chk_path_, it->second);
    auto read = [&]() -> arrow::Result<std::shared_ptr<arrow::Table>> {
      ARROW_ASSIGN_OR_RAISE(auto file, fs_->OpenInputFile(path));
      ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
      std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
      for (int i = 0; i < reader->num_record_batches(); ++i) {
        ARROW_ASSIGN_OR_RAISE(auto batch, reader->ReadRecordBatch(i));
        batches.push_back(std::move(batch));
      }
      return arrow::Table::FromRecordBatches(reader->schema(), std::move(batches));
    };
    auto table = read();
    if (!table.ok()) {
      return table.status().WithMessage(where_, ": reading snapshot part '", name, "' (", path,
                                        "): ", table.status().message());
    }
    return table;
  }

 private:
  std::shared_ptr<arrow::fs::FileSystem> fs_;
  std::string chk_path_;
  std::string where_;
  std::map<std::string, std::string> parts_;  // part name -> path relative to chk_path_
};

}  // namespace

int64_t TaskSnapshot::bytes() const {
  int64_t total = 0;
  for (const SnapshotFile& file : files) total += file.bytes;
  return total;
}

int64_t CheckpointManifest::bytes() const {
  int64_t total = 0;
  for (const TaskSnapshot& task : tasks) total += task.bytes();
  return total;
}

const TaskSnapshot* CheckpointManifest::FindTask(int32_t chain, int32_t subtask) const {
  for (const TaskSnapshot& task : tasks) {
    if (task.chain == chain && task.subtask == subtask) return &task;
  }
  return nullptr;
}

std::string CheckpointManifest::ToJson() const {
  nlohmann::json tasks_json = nlohmann::json::array();
  for (const TaskSnapshot& task : tasks) {
    nlohmann::json files_json = nlohmann::json::array();
    for (const SnapshotFile& file : task.files) {
      files_json.push_back({{"path", file.path}, {"bytes", file.bytes}, {"crc32c", file.crc32c}});
    }
    tasks_json.push_back({{"chain", task.chain},
                          {"subtask", task.subtask},
                          {"finished", task.finished},
                          {"files", std::move(files_json)}});
  }
  nlohmann::json doc = {{"format", kManifestFormat},  {"job", job_name},
                        {"checkpoint", id},           {"created_unix_ms", created_unix_ms},
                        {"bytes", bytes()},           {"tasks", std::move(tasks_json)}};
  return doc.dump(1);
}

arrow::Result<CheckpointManifest> CheckpointManifest::FromJson(const std::string& text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return arrow::Status::Invalid("the manifest is not a JSON object");
  }
  auto field = [&](const nlohmann::json& object, const char* name,
                   nlohmann::json::value_t type) -> arrow::Result<const nlohmann::json*> {
    auto it = object.find(name);
    const bool number = type == nlohmann::json::value_t::number_integer;
    if (it == object.end() || (number ? !it->is_number_integer() : it->type() != type)) {
      return arrow::Status::Invalid("the manifest's field '", name, "' is missing or mistyped");
    }
    return &*it;
  };
  using T = nlohmann::json::value_t;
  CheckpointManifest manifest;
  ARROW_ASSIGN_OR_RAISE(auto format, field(doc, "format", T::number_integer));
  if (format->get<int64_t>() != kManifestFormat) {
    return arrow::Status::Invalid("the manifest's format ", format->get<int64_t>(),
                                  " is not supported (expected ", kManifestFormat, ")");
  }
  ARROW_ASSIGN_OR_RAISE(auto job, field(doc, "job", T::string));
  manifest.job_name = job->get<std::string>();
  ARROW_ASSIGN_OR_RAISE(auto id, field(doc, "checkpoint", T::number_integer));
  manifest.id = id->get<int64_t>();
  if (manifest.id <= 0) return arrow::Status::Invalid("the manifest's checkpoint id is not > 0");
  ARROW_ASSIGN_OR_RAISE(auto created, field(doc, "created_unix_ms", T::number_integer));
  manifest.created_unix_ms = created->get<int64_t>();
  ARROW_ASSIGN_OR_RAISE(auto tasks, field(doc, "tasks", T::array));
  for (const nlohmann::json& task_json : *tasks) {
    if (!task_json.is_object()) return arrow::Status::Invalid("a manifest task is not an object");
    TaskSnapshot task;
    task.id = manifest.id;
    ARROW_ASSIGN_OR_RAISE(auto chain, field(task_json, "chain", T::number_integer));
    ARROW_ASSIGN_OR_RAISE(auto subtask, field(task_json, "subtask", T::number_integer));
    ARROW_ASSIGN_OR_RAISE(auto finished, field(task_json, "finished", T::boolean));
    ARROW_ASSIGN_OR_RAISE(auto files, field(task_json, "files", T::array));
    task.chain = chain->get<int32_t>();
    task.subtask = subtask->get<int32_t>();
    task.finished = finished->get<bool>();
    for (const nlohmann::json& file_json : *files) {
      if (!file_json.is_object()) return arrow::Status::Invalid("a manifest file is not an object");
      SnapshotFile file;
      ARROW_ASSIGN_OR_RAISE(auto path, field(file_json, "path", T::string));
      ARROW_ASSIGN_OR_RAISE(auto bytes, field(file_json, "bytes", T::number_integer));
      ARROW_ASSIGN_OR_RAISE(auto crc, field(file_json, "crc32c", T::number_integer));
      file.path = path->get<std::string>();
      if (file.path.empty() || file.path.find("..") != std::string::npos || file.path[0] == '/') {
        return arrow::Status::Invalid("the manifest lists an invalid file path '", file.path, "'");
      }
      file.bytes = bytes->get<int64_t>();
      file.crc32c = crc->get<uint32_t>();
      task.files.push_back(std::move(file));
    }
    manifest.tasks.push_back(std::move(task));
  }
  return manifest;
}

// ---- TaskSnapshotWriter ----

class TaskSnapshotWriter::OperatorWriter : public StateWriter {
 public:
  arrow::Status Put(const std::string& name, std::shared_ptr<arrow::Table> table) override {
    if (!ValidPartName(name)) {
      return arrow::Status::Invalid("snapshot part name '", name,
                                    "' is not 1 to 128 letters, digits or '_'");
    }
    if (table == nullptr) return arrow::Status::Invalid("snapshot part '", name, "' is null");
    for (const auto& part : parts) {
      if (part.first == name) {
        return arrow::Status::Invalid("snapshot part '", name, "' was put twice");
      }
    }
    parts.emplace_back(name, std::move(table));
    return arrow::Status::OK();
  }
  std::vector<std::pair<std::string, std::shared_ptr<arrow::Table>>> parts;
};

TaskSnapshotWriter::TaskSnapshotWriter(std::shared_ptr<CheckpointStorage> storage,
                                       CheckpointId id, int32_t chain, int32_t subtask)
    : storage_(std::move(storage)), id_(id), chain_(chain), subtask_(subtask) {}

TaskSnapshotWriter::~TaskSnapshotWriter() = default;

StateWriter* TaskSnapshotWriter::ForOperator(OperatorId op) {
  auto& writer = operators_[op];
  if (writer == nullptr) writer = std::make_unique<OperatorWriter>();
  return writer.get();
}

int64_t TaskSnapshotWriter::pending_bytes() const {
  int64_t bytes = 0;
  for (const auto& [op, writer] : operators_) {
    for (const auto& part : writer->parts) bytes += TableBytes(*part.second);
  }
  return bytes;
}

void TaskSnapshotWriter::Commit(Callback done) {
  struct Job {
    std::shared_ptr<CheckpointStorage> storage;
    CheckpointId id;
    int32_t chain;
    int32_t subtask;
    std::vector<std::tuple<OperatorId, std::string, std::shared_ptr<arrow::Table>>> parts;
    Callback done;
  };
  auto job = std::make_shared<Job>();
  job->storage = storage_;
  job->id = id_;
  job->chain = chain_;
  job->subtask = subtask_;
  for (auto& [op, writer] : operators_) {
    for (auto& part : writer->parts) job->parts.emplace_back(op, part.first, std::move(part.second));
  }
  operators_.clear();
  job->done = std::move(done);
  auto run = [job]() {
    CheckpointStorage& storage = *job->storage;
    TaskSnapshot snapshot;
    snapshot.chain = job->chain;
    snapshot.subtask = job->subtask;
    snapshot.id = job->id;
    const std::string chk_path = storage.CheckpointPath(job->id);
    arrow::Status status;
    for (auto& [op, name, part_table] : job->parts) {
      // A plain reference for the lambdas below: clang before 16 refuses a lambda that captures
      // a structured binding.
      std::shared_ptr<arrow::Table>& table = part_table;
      const std::string relative = CheckpointStorage::PartPath(job->chain, job->subtask, op, name);
      const std::string path = Join(chk_path, relative);
      auto write = [&]() -> arrow::Result<SnapshotFile> {
        ARROW_RETURN_NOT_OK(storage.fs_->CreateDir(arrow::fs::internal::GetAbstractPathParent(path).first,
                                                   /*recursive=*/true));
        ARROW_ASSIGN_OR_RAISE(auto out, storage.fs_->OpenOutputStream(path));
        auto stream = std::make_shared<ChecksumStream>(out);
        auto written = [&]() -> arrow::Status {
          ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(stream, table->schema()));
          ARROW_RETURN_NOT_OK(writer->WriteTable(*table));
          return writer->Close();
        }();
        arrow::Status closed = stream->Close();
        ARROW_RETURN_NOT_OK(written);
        ARROW_RETURN_NOT_OK(closed);
        return SnapshotFile{relative, stream->bytes(), stream->crc()};
      };
      auto file = write();
      table.reset();  // the state's buffers are free once written
      if (!file.ok()) {
        status = file.status().WithMessage("checkpoint ", job->id, " task ", job->chain, "-",
                                           job->subtask, ": writing ", path, ": ",
                                           file.status().message());
        break;
      }
      snapshot.files.push_back(std::move(*file));
    }
    job->parts.clear();
    if (status.ok()) {
      job->done(job->id, std::move(snapshot));
    } else {
      job->done(job->id, status);
    }
  };
  auto spawned = arrow::io::default_io_context().executor()->Spawn(run);
  if (!spawned.ok()) run();  // the executor is shutting down: write on this thread
}

// ---- CheckpointStorage ----

CheckpointStorage::CheckpointStorage(std::shared_ptr<arrow::fs::FileSystem> fs,
                                     std::string job_name, std::string job_path, int32_t retained)
    : fs_(std::move(fs)),
      job_name_(std::move(job_name)),
      job_path_(std::move(job_path)),
      retained_(retained) {}

arrow::Result<std::shared_ptr<CheckpointStorage>> CheckpointStorage::Open(
    const std::string& directory_or_uri, const std::string& job_name, int32_t retained) {
  if (directory_or_uri.empty()) {
    return arrow::Status::Invalid("checkpoint directory is empty");
  }
  std::string path;
  auto fs = arrow::fs::FileSystemFromUriOrPath(directory_or_uri, &path);
  if (!fs.ok()) {
    return fs.status().WithMessage("checkpoint directory '", directory_or_uri,
                                   "': ", fs.status().message());
  }
  return Open(*fs, path, job_name, retained);
}

arrow::Result<std::shared_ptr<CheckpointStorage>> CheckpointStorage::Open(
    std::shared_ptr<arrow::fs::FileSystem> fs, const std::string& base_path,
    const std::string& job_name, int32_t retained) {
  if (retained < 1) {
    return arrow::Status::Invalid("checkpoint retained must be >= 1, got ", retained);
  }
  if (job_name.empty() || job_name.find('/') != std::string::npos || job_name == "." ||
      job_name == "..") {
    return arrow::Status::Invalid("checkpoint job name '", job_name,
                                  "' must be non-empty and contain no '/'");
  }
  const std::string job_path = Join(base_path, job_name);
  arrow::Status created = fs->CreateDir(job_path, /*recursive=*/true);
  if (!created.ok()) {
    return created.WithMessage("checkpoint directory '", job_path, "': ", created.message());
  }
  return std::shared_ptr<CheckpointStorage>(
      new CheckpointStorage(std::move(fs), job_name, job_path, retained));
}

std::string CheckpointStorage::CheckpointPath(CheckpointId id) const {
  return Join(job_path_, ChkName(id));
}

std::string CheckpointStorage::PartPath(int32_t chain, int32_t subtask, OperatorId op,
                                        const std::string& part) {
  return std::to_string(chain) + "-" + std::to_string(subtask) + "/" + std::to_string(op) + "-" +
         part + ".arrow";
}

std::unique_ptr<TaskSnapshotWriter> CheckpointStorage::BeginTask(CheckpointId id, int32_t chain,
                                                                 int32_t subtask) {
  return std::unique_ptr<TaskSnapshotWriter>(
      new TaskSnapshotWriter(shared_from_this(), id, chain, subtask));
}

arrow::Result<std::vector<CheckpointId>> CheckpointStorage::ListCheckpoints() {
  arrow::fs::FileSelector selector;
  selector.base_dir = job_path_;
  selector.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto infos, fs_->GetFileInfo(selector));
  std::vector<CheckpointId> ids;
  for (const auto& info : infos) {
    if (info.type() != arrow::fs::FileType::Directory) continue;
    const CheckpointId id = ParseChkName(info.base_name());
    if (id != kNoCheckpoint) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

arrow::Result<CheckpointId> CheckpointStorage::NextId() {
  ARROW_ASSIGN_OR_RAISE(auto ids, ListCheckpoints());
  return ids.empty() ? CheckpointId{1} : ids.back() + 1;
}

arrow::Result<CheckpointManifest> CheckpointStorage::Complete(CheckpointId id,
                                                              std::vector<TaskSnapshot> tasks) {
  CheckpointManifest manifest;
  manifest.job_name = job_name_;
  manifest.id = id;
  manifest.created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  std::sort(tasks.begin(), tasks.end(), [](const TaskSnapshot& a, const TaskSnapshot& b) {
    return std::make_pair(a.chain, a.subtask) < std::make_pair(b.chain, b.subtask);
  });
  for (TaskSnapshot& task : tasks) {
    if (task.id != id) {
      return arrow::Status::Invalid("checkpoint ", id, ": task ", task.chain, "-", task.subtask,
                                    " acked checkpoint ", task.id);
    }
  }
  manifest.tasks = std::move(tasks);
  const std::string chk_path = CheckpointPath(id);
  const std::string temp = Join(chk_path, kManifestTemp);
  auto write = [&]() -> arrow::Status {
    ARROW_RETURN_NOT_OK(fs_->CreateDir(chk_path, /*recursive=*/true));
    const std::string text = manifest.ToJson();
    ARROW_ASSIGN_OR_RAISE(auto out, fs_->OpenOutputStream(temp));
    arrow::Status written = out->Write(text.data(), static_cast<int64_t>(text.size()));
    arrow::Status closed = out->Close();
    ARROW_RETURN_NOT_OK(written);
    ARROW_RETURN_NOT_OK(closed);
    return fs_->Move(temp, Join(chk_path, kManifestName));
  }();
  if (!write.ok()) {
    return write.WithMessage("checkpoint ", id, ": committing the manifest ", temp, ": ",
                             write.message());
  }
  Prune(id);
  return manifest;
}

void CheckpointStorage::Prune(CheckpointId completed) {
  auto ids = ListCheckpoints();
  if (!ids.ok()) {
    SABOT_LOG(kWarning) << "checkpoint clean-up of " << job_path_ << ": "
                        << ids.status().ToString();
    return;
  }
  int32_t kept = 0;
  for (auto it = ids->rbegin(); it != ids->rend(); ++it) {
    const CheckpointId id = *it;
    if (id > completed) continue;  // a later checkpoint may be in flight
    auto info = fs_->GetFileInfo(Join(CheckpointPath(id), kManifestName));
    const bool complete = info.ok() && info->type() == arrow::fs::FileType::File;
    if (complete && kept < retained_) {
      ++kept;
      continue;
    }
    arrow::Status removed = fs_->DeleteDir(CheckpointPath(id));
    if (!removed.ok()) {
      SABOT_LOG(kWarning) << "checkpoint clean-up: removing " << CheckpointPath(id) << ": "
                          << removed.ToString();
    }
  }
}

arrow::Status CheckpointStorage::Abort(CheckpointId id) {
  const std::string chk_path = CheckpointPath(id);
  ARROW_ASSIGN_OR_RAISE(auto manifest, fs_->GetFileInfo(Join(chk_path, kManifestName)));
  if (manifest.type() == arrow::fs::FileType::File) {
    return arrow::Status::Invalid("checkpoint ", id, " is complete; Abort does not remove it");
  }
  ARROW_ASSIGN_OR_RAISE(auto info, fs_->GetFileInfo(chk_path));
  if (info.type() == arrow::fs::FileType::NotFound) return arrow::Status::OK();
  arrow::Status removed = fs_->DeleteDir(chk_path);
  if (!removed.ok()) {
    return removed.WithMessage("checkpoint ", id, ": removing ", chk_path, ": ",
                               removed.message());
  }
  return arrow::Status::OK();
}

arrow::Result<CheckpointManifest> CheckpointStorage::ReadManifest(CheckpointId id) {
  const std::string path = Join(CheckpointPath(id), kManifestName);
  auto read = [&]() -> arrow::Result<std::string> {
    ARROW_ASSIGN_OR_RAISE(auto file, fs_->OpenInputFile(path));
    ARROW_ASSIGN_OR_RAISE(int64_t size, file->GetSize());
    ARROW_ASSIGN_OR_RAISE(auto buffer, file->ReadAt(0, size));
    return buffer->ToString();
  };
  auto text = read();
  if (!text.ok()) {
    return text.status().WithMessage("checkpoint ", id, ": no readable manifest ", path, ": ",
                                     text.status().message());
  }
  auto manifest = CheckpointManifest::FromJson(*text);
  if (!manifest.ok()) {
    return manifest.status().WithMessage("checkpoint ", id, ": ", path, ": ",
                                         manifest.status().message());
  }
  if (manifest->id != id || manifest->job_name != job_name_) {
    return arrow::Status::Invalid("checkpoint ", id, ": ", path, " is the manifest of job '",
                                  manifest->job_name, "' checkpoint ", manifest->id);
  }
  return manifest;
}

arrow::Status CheckpointStorage::VerifyFiles(const CheckpointManifest& manifest) {
  const std::string chk_path = CheckpointPath(manifest.id);
  std::vector<uint8_t> chunk(1 << 20);
  for (const TaskSnapshot& task : manifest.tasks) {
    for (const SnapshotFile& file : task.files) {
      const std::string path = Join(chk_path, file.path);
      auto check = [&]() -> arrow::Status {
        ARROW_ASSIGN_OR_RAISE(auto in, fs_->OpenInputStream(path));
        uint32_t crc = 0;
        int64_t total = 0;
        while (true) {
          ARROW_ASSIGN_OR_RAISE(int64_t n,
                                in->Read(static_cast<int64_t>(chunk.size()), chunk.data()));
          if (n == 0) break;
          crc = Crc32c(chunk.data(), static_cast<size_t>(n), crc);
          total += n;
        }
        ARROW_RETURN_NOT_OK(in->Close());
        if (total != file.bytes) {
          return arrow::Status::IOError("size ", total, " bytes, the manifest says ", file.bytes,
                                        " (truncated or overwritten)");
        }
        if (crc != file.crc32c) {
          return arrow::Status::IOError("CRC-32C ", crc, " does not match the manifest's ",
                                        file.crc32c, " (corrupt)");
        }
        return arrow::Status::OK();
      }();
      if (!check.ok()) {
        return check.WithMessage("checkpoint ", manifest.id, ": file ", path, ": ",
                                 check.message());
      }
    }
  }
  return arrow::Status::OK();
}

arrow::Status CheckpointStorage::Verify(CheckpointId id) {
  ARROW_ASSIGN_OR_RAISE(auto manifest, ReadManifest(id));
  return VerifyFiles(manifest);
}

arrow::Result<std::optional<CheckpointManifest>> CheckpointStorage::LatestValid(
    CheckpointId at_least) {
  ARROW_ASSIGN_OR_RAISE(auto ids, ListCheckpoints());
  for (auto it = ids.rbegin(); it != ids.rend() && *it >= at_least; ++it) {
    auto info = fs_->GetFileInfo(Join(CheckpointPath(*it), kManifestName));
    if (info.ok() && info->type() == arrow::fs::FileType::NotFound) continue;  // never completed
    auto manifest = ReadManifest(*it);
    arrow::Status valid = manifest.ok() ? VerifyFiles(*manifest) : manifest.status();
    if (valid.ok()) return std::optional<CheckpointManifest>(std::move(*manifest));
    SABOT_LOG(kWarning) << "skipping checkpoint " << *it << " of job '" << job_name_
                        << "': " << valid.ToString();
  }
  return std::optional<CheckpointManifest>();
}

arrow::Result<std::unique_ptr<StateReader>> CheckpointStorage::OpenState(
    const CheckpointManifest& manifest, int32_t chain, int32_t subtask, OperatorId op) {
  const TaskSnapshot* task = manifest.FindTask(chain, subtask);
  const std::string where = "checkpoint " + std::to_string(manifest.id) + " task " +
                            std::to_string(chain) + "-" + std::to_string(subtask);
  if (task == nullptr) {
    return arrow::Status::Invalid(where, ": the checkpoint has no snapshot of this task (did the "
                                  "plan's chains or parallelism change since?)");
  }
  const std::string prefix = std::to_string(chain) + "-" + std::to_string(subtask) + "/" +
                             std::to_string(op) + "-";
  std::map<std::string, std::string> parts;
  for (const SnapshotFile& file : task->files) {
    if (file.path.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = file.path.substr(prefix.size());
    if (rest.size() <= 6 || rest.compare(rest.size() - 6, 6, ".arrow") != 0) continue;
    parts.emplace(rest.substr(0, rest.size() - 6), file.path);
  }
  return std::unique_ptr<StateReader>(
      new FileStateReader(fs_, CheckpointPath(manifest.id), where, std::move(parts)));
}

}  // namespace sabot
