#include "sabot/dataflow/file_sink.h"

#include <atomic>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include <arrow/csv/options.h>
#include <arrow/csv/writer.h>
#include <arrow/filesystem/localfs.h>
#include <arrow/io/interfaces.h>
#include <arrow/ipc/writer.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

constexpr size_t kPathQuoteBytes = 512;

// Whether `name` is "part-<digits>.<ext>".
bool IsPartFile(const std::string& name, std::string_view ext) {
  constexpr std::string_view kPrefix = "part-";
  if (name.size() <= kPrefix.size() + 1 + ext.size()) return false;
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  const size_t dot = name.size() - ext.size() - 1;
  if (name[dot] != '.' || name.compare(dot + 1, ext.size(), ext) != 0) return false;
  for (size_t i = kPrefix.size(); i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  return dot > kPrefix.size();
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
    std::unique_ptr<FileSink> sink(new FileSink(state, ctx.subtask));
    arrow::Status opened = sink->Open(ctx.pool);
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
    arrow::Status written = parquet_ != nullptr ? parquet_->WriteRecordBatch(*batch)
                                                : writer_->WriteRecordBatch(*batch);
    if (!written.ok()) {
      return written.WithMessage("writing ", QuoteInput(temp_path_, kPathQuoteBytes), ": ",
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
    arrow::Status status = Close();
    if (!status.ok()) {
      Abort();
      return status;
    }
    finished_ = true;
    return arrow::Status::OK();
  }

  // Every task finished: the earlier run's parts go (once per sink and process).
  arrow::Status PrepareCommit() override { return state_->RemoveEarlierParts(); }

  // The whole job succeeded: the earlier run's parts go (once per sink; PrepareCommit did it
  // already when the executor calls it), this part takes its final name.
  arrow::Status Commit() override {
    if (!finished_ || aborted_ || committed_) {
      return arrow::Status::Invalid("file sink committed before Finish, after Abort or twice");
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
    parquet_.reset();
    writer_.reset();
    if (stream_ != nullptr && !stream_->closed()) (void)stream_->Close();
    stream_.reset();
    (void)state_->filesystem->DeleteFile(temp_path_);
    // A commit of the job that failed part way (another part could not be renamed): the parts
    // already committed go too, so the job leaves nothing partial under a final name.
    if (committed_) (void)state_->filesystem->DeleteFile(final_path_);
  }

  int64_t rows_in() const override { return rows_; }
  int64_t rows_out() const override { return rows_; }

 private:
  FileSink(std::shared_ptr<FileSinkState> state, int32_t subtask) : state_(std::move(state)) {
    const FileFormat format = state_->params.format;
    temp_path_ = state_->directory + "/" + FileSinkTempName(format, subtask, state_->job_id);
    final_path_ = state_->directory + "/" + FileSinkPartName(format, subtask);
  }

  arrow::Status Open(arrow::MemoryPool* pool) {
    ARROW_ASSIGN_OR_RAISE(stream_, state_->filesystem->OpenOutputStream(temp_path_));
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
      return closed.WithMessage("closing ", QuoteInput(temp_path_, kPathQuoteBytes), ": ",
                                closed.message());
    }
    return arrow::Status::OK();
  }

  std::shared_ptr<FileSinkState> state_;
  std::string temp_path_;
  std::string final_path_;
  std::shared_ptr<arrow::io::OutputStream> stream_;
  std::unique_ptr<parquet::arrow::FileWriter> parquet_;    // kParquet
  std::shared_ptr<arrow::ipc::RecordBatchWriter> writer_;  // kIpc, kCsv
  bool finished_ = false;   // the temporary file is complete and closed
  bool committed_ = false;  // it has its final name
  bool aborted_ = false;
  int64_t rows_ = 0;
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
                                          const BindOptions& options) {
  if (params.directory.empty()) return arrow::Status::Invalid("a file sink needs a directory");
  if (params.format != FileFormat::kCsv && !(params.csv == CsvFormatOptions{})) {
    return arrow::Status::Invalid("csv options are for csv sinks only");
  }
  auto state = std::make_shared<FileSinkState>();
  state->filesystem = std::make_shared<arrow::fs::LocalFileSystem>();
  state->params = params;
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
