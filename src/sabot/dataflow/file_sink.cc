#include "sabot/dataflow/file_sink.h"

#include <atomic>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include <arrow/builder.h>
#include <arrow/csv/options.h>
#include <arrow/csv/writer.h>
#include <arrow/filesystem/localfs.h>
#include <arrow/io/interfaces.h>
#include <arrow/ipc/writer.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/state_row.h"

namespace sabot {

namespace {

constexpr size_t kPathQuoteBytes = 512;

bool AllDigits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Whether `name` is "part-<digits>.<ext>" or "part-<digits>-<digits>.<ext>" (a part of a job
// without or with checkpoints).
bool IsPartFile(const std::string& name, std::string_view ext) {
  constexpr std::string_view kPrefix = "part-";
  if (name.size() <= kPrefix.size() + 1 + ext.size()) return false;
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  const size_t dot = name.size() - ext.size() - 1;
  if (name[dot] != '.' || name.compare(dot + 1, ext.size(), ext) != 0) return false;
  const std::string_view numbers = std::string_view(name).substr(kPrefix.size(),
                                                                 dot - kPrefix.size());
  const size_t dash = numbers.find('-');
  if (dash == std::string_view::npos) return AllDigits(numbers);
  return AllDigits(numbers.substr(0, dash)) && AllDigits(numbers.substr(dash + 1));
}

// The sequence number of `name` when it is "<prefix><digits><suffix>", else -1.
int64_t SequenceOf(const std::string& name, const std::string& prefix, const std::string& suffix) {
  if (name.size() <= prefix.size() + suffix.size()) return -1;
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return -1;
  const std::string_view digits =
      std::string_view(name).substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (!AllDigits(digits) || digits.size() > 18) return -1;
  return std::stoll(std::string(digits));
}

// What the tasks of one file sink share.
struct FileSinkState {
  // A job that never committed (it failed, was cancelled, or a later operator could not be
  // bound) takes back the directories binding created for it, when they are still empty.
  ~FileSinkState() {
    if (committed.load()) return;
    for (const std::string& created : created_directories) {
      std::error_code ignored;
      std::filesystem::remove(created, ignored);  // removes only an empty directory
    }
  }

  std::shared_ptr<arrow::fs::FileSystem> filesystem;
  FileSinkParams params;
  bool exactly_once = false;  // the job takes checkpoints
  std::string directory;  // absolute
  std::shared_ptr<arrow::Schema> schema;
  std::string job_id;
  // The directories binding created (the sink's and missing parents), the deepest first.
  std::vector<std::string> created_directories;
  std::atomic<bool> committed{false};

  std::once_flag cleanup_once;
  arrow::Status cleanup_status;

  // Removes the part files of an earlier run; see file_sink.h.
  arrow::Status RemoveEarlierParts() {
    std::call_once(cleanup_once, [this] {
      const std::string_view ext = FileSinkExtension(params.format);
      arrow::fs::FileSelector selector;
      selector.base_dir = directory;
      auto infos = filesystem->GetFileInfo(selector);
      if (!infos.ok()) {
        cleanup_status = infos.status();
        return;
      }
      for (const auto& info : *infos) {
        if (info.type() != arrow::fs::FileType::File || !IsPartFile(info.base_name(), ext)) {
          continue;
        }
        arrow::Status removed = filesystem->DeleteFile(info.path());
        if (!removed.ok()) {
          cleanup_status =
              removed.WithMessage("removing ", QuoteInput(info.path(), kPathQuoteBytes),
                                  " of an earlier run: ", removed.message());
          return;
        }
      }
    });
    return cleanup_status;
  }
};

class FileSink : public Operator {
 public:
  static arrow::Result<std::unique_ptr<FileSink>> Make(std::shared_ptr<FileSinkState> state,
                                                       const TaskContext& ctx) {
    std::unique_ptr<FileSink> sink(new FileSink(state, ctx.subtask, ctx.pool));
    // Exactly once: each pending file is opened when its first batch arrives.
    if (state->exactly_once) return sink;
    arrow::Status opened = sink->Open(sink->temp_path_);
    if (!opened.ok()) {
      sink->Abort();
      return opened.WithMessage("opening ", QuoteInput(sink->temp_path_, kPathQuoteBytes), ": ",
                                opened.message());
    }
    return sink;
  }

  ~FileSink() override {
    if (!committed_ && !aborted_) Abort();
  }

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    if (finished_ || aborted_) return arrow::Status::Invalid("file sink used after it ended");
    if (state_->exactly_once) {
      ARROW_RETURN_NOT_OK(Start());
      if (stream_ == nullptr) {
        const std::string path = PendingPath(next_sequence_);
        arrow::Status opened = Open(path);
        if (!opened.ok()) {
          CloseQuietly();
          return opened.WithMessage("opening ", QuoteInput(path, kPathQuoteBytes), ": ",
                                    opened.message());
        }
      }
    }
    arrow::Status written = parquet_ != nullptr ? parquet_->WriteRecordBatch(*batch)
                                                : writer_->WriteRecordBatch(*batch);
    if (!written.ok()) {
      return written.WithMessage("writing ", QuoteInput(open_path_, kPathQuoteBytes), ": ",
                                 written.message());
    }
    rows_ += batch->num_rows();
    return arrow::Status::OK();
  }

  arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) override {
    return arrow::Status::OK();
  }

  // Completes and closes the temporary file; nothing appears under the final name yet.
  arrow::Status Finish(OperatorOutput* out) override {
    if (finished_ || aborted_) return arrow::Status::Invalid("file sink finished twice");
    if (state_->exactly_once) {
      // The rows after the last checkpoint make one more pending file, published by Commit.
      ARROW_RETURN_NOT_OK(Start());
      ARROW_RETURN_NOT_OK(ClosePending(kNoCheckpoint));
      finished_ = true;
      return arrow::Status::OK();
    }
    arrow::Status status = Close();
    if (!status.ok()) {
      Abort();
      return status;
    }
    finished_ = true;
    return arrow::Status::OK();
  }

  // Every task finished: the earlier run's parts go (once per sink and process). Exactly once:
  // they went when the run started (Start), before any checkpoint could publish a part of it.
  arrow::Status PrepareCommit() override {
    if (state_->exactly_once) return arrow::Status::OK();
    return state_->RemoveEarlierParts();
  }

  // Checkpoint `id`'s barrier: the pending file with the rows before it is closed (when there
  // are rows) and, with every earlier one not yet published, recorded in the snapshot.
  arrow::Status Snapshot(CheckpointId id, StateWriter* state) override {
    if (!state_->exactly_once) {
      return arrow::Status::Invalid(
          "file sink task ", subtask_, " got checkpoint ", id,
          " but was bound for a job without checkpoints (OperatorPlanContext::checkpoints)");
    }
    if (aborted_) {
      return arrow::Status::Invalid("file sink task ", subtask_, " snapshotted after Abort");
    }
    ARROW_RETURN_NOT_OK(Start());
    ARROW_RETURN_NOT_OK(ClosePending(id));
    // A task that finished before this checkpoint: its last file is covered by it now.
    for (PendingFile& file : pending_) {
      if (file.checkpoint == kNoCheckpoint) file.checkpoint = id;
    }
    ARROW_ASSIGN_OR_RAISE(auto position,
                          MakeStateRow({{"subtask", subtask_},
                                        {"next_sequence", next_sequence_},
                                        {"rows", rows_}}));
    ARROW_RETURN_NOT_OK(state->Put("position", std::move(position)));
    arrow::Int64Builder sequences;
    arrow::Int64Builder checkpoints;
    for (const PendingFile& file : pending_) {
      ARROW_RETURN_NOT_OK(sequences.Append(file.sequence));
      ARROW_RETURN_NOT_OK(checkpoints.Append(file.checkpoint));
    }
    ARROW_ASSIGN_OR_RAISE(auto sequence_array, sequences.Finish());
    ARROW_ASSIGN_OR_RAISE(auto checkpoint_array, checkpoints.Finish());
    auto table = arrow::Table::Make(PendingSchema(), {sequence_array, checkpoint_array});
    return state->Put("pending", std::move(table));
  }

  // Checkpoint `id` is durable everywhere: the pending files of checkpoints <= id are published.
  arrow::Status CheckpointComplete(CheckpointId id) override {
    if (!state_->exactly_once || aborted_) return arrow::Status::OK();
    while (!pending_.empty() && pending_.front().checkpoint != kNoCheckpoint &&
           pending_.front().checkpoint <= id) {
      ARROW_RETURN_NOT_OK(Publish(pending_.front().sequence));
      pending_.erase(pending_.begin());
    }
    return arrow::Status::OK();
  }

  // The task restarts from checkpoint `id` (complete): the files its snapshot recorded are
  // published (already published is fine), and whatever this task wrote after the checkpoint
  // goes (pending files and parts numbered from the snapshot's next sequence on).
  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    const std::string what = "file sink task " + std::to_string(subtask_) +
                             " restoring checkpoint " + std::to_string(id);
    if (!state_->exactly_once) {
      return arrow::Status::Invalid(what, ": bound for a job without checkpoints");
    }
    if (started_ || stream_ != nullptr || finished_ || aborted_) {
      return arrow::Status::Invalid(what, ": Restore after the task started");
    }
    ARROW_ASSIGN_OR_RAISE(auto position_part, state->Get("position"));
    ARROW_ASSIGN_OR_RAISE(auto position,
                          ReadStateRow(position_part, "position",
                                       {"subtask", "next_sequence", "rows"}, what));
    if (position["subtask"] != subtask_ || position["next_sequence"] < 0 ||
        position["rows"] < 0) {
      return arrow::Status::Invalid(what, ": the snapshot is of task ", position["subtask"],
                                    " at part ", position["next_sequence"]);
    }
    ARROW_ASSIGN_OR_RAISE(auto pending, state->Get("pending"));
    if (pending == nullptr || !pending->schema()->Equals(*PendingSchema())) {
      return arrow::Status::Invalid(what, ": the snapshot has no part 'pending' of schema ",
                                    PendingSchema()->ToString());
    }
    ARROW_ASSIGN_OR_RAISE(pending, pending->CombineChunks());
    started_ = true;  // this run's earlier attempt removed the earlier run's parts
    next_sequence_ = position["next_sequence"];
    rows_ = position["rows"];
    if (pending->num_rows() > 0) {
      const auto& sequences = static_cast<const arrow::Int64Array&>(*pending->column(0)->chunk(0));
      for (int64_t i = 0; i < sequences.length(); ++i) {
        const int64_t sequence = sequences.Value(i);
        if (sequence < 0 || sequence >= next_sequence_) {
          return arrow::Status::Invalid(what, ": pending part ", sequence,
                                        " is not below the next part ", next_sequence_);
        }
        ARROW_ASSIGN_OR_RAISE(auto pending_info,
                              state_->filesystem->GetFileInfo(PendingPath(sequence)));
        if (pending_info.type() == arrow::fs::FileType::File) {
          ARROW_RETURN_NOT_OK(Publish(sequence));
          continue;
        }
        ARROW_ASSIGN_OR_RAISE(auto final_info,
                              state_->filesystem->GetFileInfo(FinalPath(sequence)));
        if (final_info.type() != arrow::fs::FileType::File) {
          return arrow::Status::IOError(
              what, ": the output of the checkpoint is gone: neither ",
              QuoteInput(PendingPath(sequence), kPathQuoteBytes), " nor ",
              QuoteInput(FinalPath(sequence), kPathQuoteBytes), " exists");
        }
        state_->committed.store(true);
      }
    }
    return RemoveOwnFilesFrom(next_sequence_, /*parts_too=*/true);
  }

  // The whole job succeeded: the earlier run's parts go (once per sink; PrepareCommit did it
  // already when the executor calls it), this part takes its final name.
  arrow::Status Commit() override {
    if (!finished_ || aborted_ || committed_) {
      return arrow::Status::Invalid("file sink committed before Finish, after Abort or twice");
    }
    if (state_->exactly_once) {
      for (const PendingFile& file : pending_) ARROW_RETURN_NOT_OK(Publish(file.sequence));
      pending_.clear();
      committed_ = true;
      return arrow::Status::OK();
    }
    ARROW_RETURN_NOT_OK(state_->RemoveEarlierParts());
    state_->committed.store(true);
    arrow::Status moved = state_->filesystem->Move(temp_path_, final_path_);
    if (!moved.ok()) {
      return moved.WithMessage("renaming ", QuoteInput(temp_path_, kPathQuoteBytes), " to ",
                               QuoteInput(final_path_, kPathQuoteBytes), ": ", moved.message());
    }
    committed_ = true;
    return arrow::Status::OK();
  }

  void Abort() override {
    if (aborted_) return;
    aborted_ = true;
    if (state_->exactly_once) {
      // Only the file being written goes: the closed pending files belong to snapshots, which
      // may be in a complete checkpoint the job restarts from (its Restore publishes or removes
      // them), and published parts are output of complete checkpoints.
      // The file Finish closed after the last checkpoint is in no snapshot: it goes too.
      const bool open = stream_ != nullptr;
      CloseQuietly();
      if (open) (void)state_->filesystem->DeleteFile(PendingPath(next_sequence_));
      for (const PendingFile& file : pending_) {
        if (file.checkpoint == kNoCheckpoint) {
          (void)state_->filesystem->DeleteFile(PendingPath(file.sequence));
        }
      }
      return;
    }
    CloseQuietly();
    (void)state_->filesystem->DeleteFile(temp_path_);
    // A commit of the job that failed part way (another part could not be renamed): the parts
    // already committed go too, so the job leaves nothing partial under a final name.
    if (committed_) (void)state_->filesystem->DeleteFile(final_path_);
  }

  int64_t rows_in() const override { return rows_; }
  int64_t rows_out() const override { return rows_; }

 private:
  // A closed pending file: part `sequence`, of the snapshot of `checkpoint` (kNoCheckpoint:
  // closed by Finish, published by Commit).
  struct PendingFile {
    int64_t sequence;
    CheckpointId checkpoint;
  };

  FileSink(std::shared_ptr<FileSinkState> state, int32_t subtask, arrow::MemoryPool* pool)
      : state_(std::move(state)), subtask_(subtask), pool_(pool) {
    const FileFormat format = state_->params.format;
    temp_path_ = state_->directory + "/" + FileSinkTempName(format, subtask, state_->job_id);
    final_path_ = state_->directory + "/" + FileSinkPartName(format, subtask);
  }

  static std::shared_ptr<arrow::Schema> PendingSchema() {
    return arrow::schema({arrow::field("sequence", arrow::int64(), /*nullable=*/false),
                          arrow::field("checkpoint", arrow::int64(), /*nullable=*/false)});
  }

  std::string PendingPath(int64_t sequence) const {
    return state_->directory + "/" +
           FileSinkPendingName(state_->params.format, subtask_, sequence);
  }
  std::string FinalPath(int64_t sequence) const {
    return state_->directory + "/" +
           FileSinkCheckpointPartName(state_->params.format, subtask_, sequence);
  }

  // Exactly once: the first step of a run that is not restored removes the earlier run's part
  // files (once per sink and process) and this task's pending files and parts (a restart of the
  // run that found no valid checkpoint starts fresh: what the failed attempt published goes).
  // Every task takes a step before the first checkpoint completes, so nothing this attempt
  // publishes is removed.
  arrow::Status Start() {
    if (started_) return arrow::Status::OK();
    started_ = true;
    ARROW_RETURN_NOT_OK(state_->RemoveEarlierParts());
    return RemoveOwnFilesFrom(0, /*parts_too=*/true);
  }

  // Removes this task's pending files numbered `first` and above, and with `parts_too` its
  // published parts numbered so (written after the checkpoint a restart goes back to).
  arrow::Status RemoveOwnFilesFrom(int64_t first, bool parts_too) {
    const FileFormat format = state_->params.format;
    const std::string ext(FileSinkExtension(format));
    const std::string part_prefix = "part-" + std::to_string(subtask_) + "-";
    const std::string pending_prefix = "." + part_prefix;
    const std::string pending_suffix = "." + ext + ".pending";
    arrow::fs::FileSelector selector;
    selector.base_dir = state_->directory;
    ARROW_ASSIGN_OR_RAISE(auto infos, state_->filesystem->GetFileInfo(selector));
    for (const auto& info : infos) {
      if (info.type() != arrow::fs::FileType::File) continue;
      const std::string name = info.base_name();
      int64_t sequence = SequenceOf(name, pending_prefix, pending_suffix);
      if (sequence < 0 && parts_too) sequence = SequenceOf(name, part_prefix, "." + ext);
      if (sequence < first) continue;
      arrow::Status removed = state_->filesystem->DeleteFile(info.path());
      if (!removed.ok()) {
        return removed.WithMessage("file sink task ", subtask_, ": removing ",
                                   QuoteInput(info.path(), kPathQuoteBytes),
                                   " (written after the checkpoint): ", removed.message());
      }
    }
    return arrow::Status::OK();
  }

  // Closes the pending file being written, if any, and records it for `checkpoint`.
  arrow::Status ClosePending(CheckpointId checkpoint) {
    if (stream_ == nullptr) return arrow::Status::OK();
    arrow::Status closed = Close();
    parquet_.reset();
    writer_.reset();
    stream_.reset();
    if (!closed.ok()) {
      (void)state_->filesystem->DeleteFile(PendingPath(next_sequence_));
      return closed;
    }
    pending_.push_back({next_sequence_, checkpoint});
    ++next_sequence_;
    return arrow::Status::OK();
  }

  // Renames pending part `sequence` to its final name.
  arrow::Status Publish(int64_t sequence) {
    state_->committed.store(true);
    const std::string from = PendingPath(sequence);
    const std::string to = FinalPath(sequence);
    arrow::Status moved = state_->filesystem->Move(from, to);
    if (!moved.ok()) {
      return moved.WithMessage("file sink task ", subtask_, ": publishing ",
                               QuoteInput(from, kPathQuoteBytes), " as ",
                               QuoteInput(to, kPathQuoteBytes), ": ", moved.message());
    }
    return arrow::Status::OK();
  }

  // Drops the writers and closes the stream without completing the file.
  void CloseQuietly() {
    parquet_.reset();
    writer_.reset();
    if (stream_ != nullptr && !stream_->closed()) (void)stream_->Close();
    stream_.reset();
  }

  arrow::Status Open(const std::string& path) {
    arrow::MemoryPool* pool = pool_;
    open_path_ = path;
    ARROW_ASSIGN_OR_RAISE(stream_, state_->filesystem->OpenOutputStream(path));
    switch (state_->params.format) {
      case FileFormat::kParquet: {
        auto properties = parquet::WriterProperties::Builder()
                              .compression(parquet::Compression::SNAPPY)
                              ->memory_pool(pool)
                              ->build();
        ARROW_ASSIGN_OR_RAISE(parquet_, parquet::arrow::FileWriter::Open(*state_->schema, pool,
                                                                         stream_, properties));
        return arrow::Status::OK();
      }
      case FileFormat::kIpc: {
        auto options = arrow::ipc::IpcWriteOptions::Defaults();
        options.memory_pool = pool;
        ARROW_ASSIGN_OR_RAISE(writer_,
                              arrow::ipc::MakeFileWriter(stream_, state_->schema, options));
        return arrow::Status::OK();
      }
      case FileFormat::kCsv: {
        auto options = arrow::csv::WriteOptions::Defaults();
        options.include_header = state_->params.csv.has_header;
        options.delimiter = state_->params.csv.delimiter;
        options.io_context = arrow::io::IOContext(pool);
        ARROW_ASSIGN_OR_RAISE(writer_,
                              arrow::csv::MakeCSVWriter(stream_, state_->schema, options));
        return arrow::Status::OK();
      }
    }
    return arrow::Status::Invalid("unknown file format");
  }

  arrow::Status Close() {
    arrow::Status closed = parquet_ != nullptr ? parquet_->Close() : writer_->Close();
    if (closed.ok()) closed = stream_->Close();
    if (!closed.ok()) {
      return closed.WithMessage("closing ", QuoteInput(open_path_, kPathQuoteBytes), ": ",
                                closed.message());
    }
    return arrow::Status::OK();
  }

  std::shared_ptr<FileSinkState> state_;
  const int32_t subtask_;
  arrow::MemoryPool* pool_;
  std::string temp_path_;
  std::string final_path_;
  std::string open_path_;  // the file stream_ writes
  std::shared_ptr<arrow::io::OutputStream> stream_;
  std::unique_ptr<parquet::arrow::FileWriter> parquet_;    // kParquet
  std::shared_ptr<arrow::ipc::RecordBatchWriter> writer_;  // kIpc, kCsv
  bool finished_ = false;   // the temporary file is complete and closed
  bool committed_ = false;  // it has its final name
  bool aborted_ = false;
  int64_t rows_ = 0;
  // Exactly once (the job takes checkpoints).
  bool started_ = false;         // Start() ran, or Restore
  int64_t next_sequence_ = 0;    // the part number of the next pending file
  std::vector<PendingFile> pending_;  // closed, not yet published, in sequence order
};

}  // namespace

std::string_view FileSinkExtension(FileFormat format) {
  switch (format) {
    case FileFormat::kParquet:
      return "parquet";
    case FileFormat::kIpc:
      return "arrow";
    case FileFormat::kCsv:
      return "csv";
  }
  return "bin";
}

std::string FileSinkPartName(FileFormat format, int32_t subtask) {
  return "part-" + std::to_string(subtask) + "." + std::string(FileSinkExtension(format));
}

std::string FileSinkCheckpointPartName(FileFormat format, int32_t subtask, int64_t sequence) {
  return "part-" + std::to_string(subtask) + "-" + std::to_string(sequence) + "." +
         std::string(FileSinkExtension(format));
}

std::string FileSinkPendingName(FileFormat format, int32_t subtask, int64_t sequence) {
  return "." + FileSinkCheckpointPartName(format, subtask, sequence) + ".pending";
}

std::string FileSinkTempName(FileFormat format, int32_t subtask, const std::string& job_id) {
  std::string job = job_id.empty() ? "job" : job_id;
  for (char& c : job) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return "." + FileSinkPartName(format, subtask) + "." + job + ".tmp";
}

arrow::Result<BoundOperator> BindFileSink(const OperatorSpec& spec, const FileSinkParams& params,
                                          const std::shared_ptr<arrow::Schema>& input,
                                          const BindOptions& options, bool exactly_once) {
  if (params.directory.empty()) return arrow::Status::Invalid("a file sink needs a directory");
  if (params.format != FileFormat::kCsv && !(params.csv == CsvFormatOptions{})) {
    return arrow::Status::Invalid("csv options are for csv sinks only");
  }
  auto state = std::make_shared<FileSinkState>();
  state->filesystem = std::make_shared<arrow::fs::LocalFileSystem>();
  state->params = params;
  state->exactly_once = exactly_once;
  state->schema = input;
  state->job_id = options.job_id;
  std::error_code error;
  std::string directory =
      std::filesystem::absolute(params.directory, error).lexically_normal().string();
  if (error) {
    return arrow::Status::IOError("cannot resolve directory ",
                                  QuoteInput(params.directory, kPathQuoteBytes), ": ",
                                  error.message());
  }
  while (directory.size() > 1 && directory.back() == '/') directory.pop_back();
  state->directory = directory;
  ARROW_ASSIGN_OR_RAISE(auto info, state->filesystem->GetFileInfo(directory));
  if (info.type() != arrow::fs::FileType::Directory) {
    if (info.type() != arrow::fs::FileType::NotFound) {
      return arrow::Status::IOError("sink directory ",
                                    QuoteInput(params.directory, kPathQuoteBytes),
                                    " exists and is not a directory");
    }
    for (std::filesystem::path missing(directory);
         !missing.empty() && missing != missing.root_path() && !std::filesystem::exists(missing);
         missing = missing.parent_path()) {
      state->created_directories.push_back(missing.string());
    }
    arrow::Status created = state->filesystem->CreateDir(directory, /*recursive=*/true);
    if (!created.ok()) {
      return arrow::Status::IOError("cannot create sink directory ",
                                    QuoteInput(params.directory, kPathQuoteBytes), ": ",
                                    created.message());
    }
  }
  BoundOperator bound;
  bound.make_operator =
      [state](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    ARROW_ASSIGN_OR_RAISE(auto sink, FileSink::Make(state, ctx));
    return std::unique_ptr<Operator>(std::move(sink));
  };
  return bound;
}

}  // namespace sabot
