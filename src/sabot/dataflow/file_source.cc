#include "sabot/dataflow/file_source.h"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>

#include <arrow/array/util.h>
#include <arrow/builder.h>
#include <arrow/scalar.h>
#include <arrow/compute/cast.h>
#include <arrow/dataset/discovery.h>
#include <arrow/dataset/file_csv.h>
#include <arrow/dataset/file_ipc.h>
#include <arrow/dataset/file_parquet.h>
#include <arrow/dataset/scanner.h>
#include <arrow/filesystem/localfs.h>
#include <arrow/util/async_generator.h>
#include <arrow/util/checked_cast.h>
#include <parquet/metadata.h>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/state_row.h"
#include "sabot/dataflow/watermark_generator.h"

namespace sabot {

namespace ds = arrow::dataset;

namespace {

constexpr int64_t kBatchRows = 64 * 1024;
// Paths are quoted whole in messages up to this many bytes.
constexpr size_t kPathQuoteBytes = 512;

bool IsHidden(std::string_view name) {
  return !name.empty() && (name.front() == '.' || name.front() == '_');
}

bool HasGlob(std::string_view text) { return text.find_first_of("*?[") != std::string_view::npos; }

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

arrow::Result<std::string> AbsolutePath(const std::string& path) {
  if (path.empty()) return arrow::Status::Invalid("an empty path");
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  if (error) {
    return arrow::Status::IOError("cannot resolve path ", QuoteInput(path, kPathQuoteBytes),
                                  ": ", error.message());
  }
  std::string text = absolute.lexically_normal().string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return text;
}

// Every file under `dir`, recursively, skipping hidden names at any level below it.
arrow::Status AddDirectory(arrow::fs::FileSystem& filesystem, const std::string& dir,
                           std::vector<std::string>* files) {
  arrow::fs::FileSelector selector;
  selector.base_dir = dir;
  selector.recursive = true;
  ARROW_ASSIGN_OR_RAISE(auto infos, filesystem.GetFileInfo(selector));
  for (const auto& info : infos) {
    if (info.type() != arrow::fs::FileType::File) continue;
    std::string_view relative = info.path();
    relative.remove_prefix(std::min(relative.size(), dir.size() + 1));
    bool hidden = false;
    size_t start = 0;
    while (start <= relative.size()) {
      size_t end = relative.find('/', start);
      if (end == std::string_view::npos) end = relative.size();
      if (IsHidden(relative.substr(start, end - start))) hidden = true;
      start = end + 1;
    }
    if (!hidden) files->push_back(info.path());
  }
  return arrow::Status::OK();
}

arrow::Status AddPath(arrow::fs::FileSystem& filesystem, const std::string& given,
                      std::vector<std::string>* files) {
  ARROW_ASSIGN_OR_RAISE(std::string path, AbsolutePath(given));
  const size_t before = files->size();
  const std::string name = BaseName(path);
  if (HasGlob(name)) {
    const std::string parent = path.substr(0, path.size() - name.size() - 1);
    if (HasGlob(parent)) {
      return arrow::Status::Invalid("path ", QuoteInput(given, kPathQuoteBytes),
                                    ": a glob may only be in the last component");
    }
    ARROW_ASSIGN_OR_RAISE(auto parent_info, filesystem.GetFileInfo(parent.empty() ? "/" : parent));
    if (parent_info.type() != arrow::fs::FileType::Directory) {
      return arrow::Status::IOError("glob ", QuoteInput(given, kPathQuoteBytes), ": directory ",
                                    QuoteInput(parent, kPathQuoteBytes), " does not exist");
    }
    arrow::fs::FileSelector selector;
    selector.base_dir = parent.empty() ? "/" : parent;
    ARROW_ASSIGN_OR_RAISE(auto infos, filesystem.GetFileInfo(selector));
    for (const auto& info : infos) {
      const std::string entry = info.base_name();
      if (IsHidden(entry) || fnmatch(name.c_str(), entry.c_str(), 0) != 0) continue;
      if (info.type() == arrow::fs::FileType::File) {
        files->push_back(info.path());
      } else if (info.type() == arrow::fs::FileType::Directory) {
        ARROW_RETURN_NOT_OK(AddDirectory(filesystem, info.path(), files));
      }
    }
    if (files->size() == before) {
      return arrow::Status::IOError("glob ", QuoteInput(given, kPathQuoteBytes),
                                    " matches no file");
    }
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto info, filesystem.GetFileInfo(path));
  switch (info.type()) {
    case arrow::fs::FileType::File:
      files->push_back(path);
      return arrow::Status::OK();
    case arrow::fs::FileType::Directory:
      ARROW_RETURN_NOT_OK(AddDirectory(filesystem, path, files));
      if (files->size() == before) {
        return arrow::Status::IOError("directory ", QuoteInput(given, kPathQuoteBytes),
                                      " holds no file");
      }
      return arrow::Status::OK();
    default:
      return arrow::Status::IOError("path ", QuoteInput(given, kPathQuoteBytes), " does not exist");
  }
}

std::shared_ptr<ds::FileFormat> MakeFormat(const FileSourceParams& params) {
  switch (params.format) {
    case FileFormat::kParquet:
      return std::make_shared<ds::ParquetFileFormat>();
    case FileFormat::kIpc:
      return std::make_shared<ds::IpcFileFormat>();
    case FileFormat::kCsv:
      break;
  }
  auto format = std::make_shared<ds::CsvFileFormat>();
  format->parse_options.delimiter = params.csv.delimiter;
  auto scan_options = std::make_shared<ds::CsvFragmentScanOptions>();
  scan_options->parse_options = format->parse_options;
  scan_options->read_options.autogenerate_column_names = !params.csv.has_header;
  format->default_fragment_scan_options = std::move(scan_options);
  return format;
}

// What binding found; shared, immutable, by the source's readers.
struct FileSourcePlan {
  std::shared_ptr<arrow::fs::FileSystem> filesystem;
  std::shared_ptr<ds::FileFormat> format;
  std::shared_ptr<arrow::Schema> schema;
  std::vector<FileSourceUnit> units;
  std::optional<EventTimeSpec> event_time;
};

arrow::Result<std::shared_ptr<FileSourcePlan>> Discover(const FileSourceParams& params) {
  if (params.paths.empty()) return arrow::Status::Invalid("a file source needs paths");
  if (params.format != FileFormat::kCsv && !(params.csv == CsvFormatOptions{})) {
    return arrow::Status::Invalid("csv options are for csv sources only");
  }
  auto plan = std::make_shared<FileSourcePlan>();
  plan->filesystem = std::make_shared<arrow::fs::LocalFileSystem>();
  ARROW_ASSIGN_OR_RAISE(std::vector<std::string> files,
                        ExpandSourcePaths(plan->filesystem, params.paths));
  plan->format = MakeFormat(params);
  ARROW_ASSIGN_OR_RAISE(auto factory, ds::FileSystemDatasetFactory::Make(
                                          plan->filesystem, files, plan->format,
                                          ds::FileSystemFactoryOptions{}));
  ds::InspectOptions inspect;
  inspect.fragments = ds::InspectOptions::kInspectAllFragments;
  inspect.field_merge_options = arrow::Field::MergeOptions::Permissive();
  auto schema = factory->Inspect(inspect);
  if (!schema.ok()) {
    return schema.status().WithMessage("reading the schemas of ", files.size(), " ",
                                       FileFormatName(params.format),
                                       " file(s): ", schema.status().message());
  }
  plan->schema = *schema;
  if (plan->schema->num_fields() == 0) {
    return arrow::Status::Invalid("the files have no columns (first file ",
                                  QuoteInput(files[0], kPathQuoteBytes), ")");
  }
  for (const std::string& file : files) {
    if (params.format != FileFormat::kParquet) {
      plan->units.push_back({file, -1});
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto fragment,
                          plan->format->MakeFragment(ds::FileSource(file, plan->filesystem)));
    auto& parquet = arrow::internal::checked_cast<ds::ParquetFileFragment&>(*fragment);
    arrow::Status status = parquet.EnsureCompleteMetadata();
    if (!status.ok()) {
      return status.WithMessage("reading ", QuoteInput(file, kPathQuoteBytes), ": ",
                                status.message());
    }
    const int row_groups = parquet.metadata()->num_row_groups();
    for (int g = 0; g < row_groups; ++g) plan->units.push_back({file, g});
  }
  if (params.event_time.has_value()) {
    ARROW_RETURN_NOT_OK(ResolveEventTimeColumn(*plan->schema, *params.event_time).status());
    plan->event_time = params.event_time;
  }
  return plan;
}

// `batch` with exactly `schema`: columns by name, cast where the file's type differs, nulls for
// a column the file lacks.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> Conform(
    const std::shared_ptr<arrow::RecordBatch>& batch, const std::shared_ptr<arrow::Schema>& schema,
    arrow::MemoryPool* pool) {
  if (batch->schema()->Equals(*schema, /*check_metadata=*/false)) return batch;
  arrow::ArrayVector columns;
  columns.reserve(schema->num_fields());
  arrow::compute::ExecContext ctx(pool);
  for (const auto& field : schema->fields()) {
    const int index = batch->schema()->GetFieldIndex(field->name());
    if (index < 0) {
      ARROW_ASSIGN_OR_RAISE(auto nulls,
                            arrow::MakeArrayOfNull(field->type(), batch->num_rows(), pool));
      columns.push_back(std::move(nulls));
      continue;
    }
    std::shared_ptr<arrow::Array> column = batch->column(index);
    if (!column->type()->Equals(*field->type())) {
      ARROW_ASSIGN_OR_RAISE(column, arrow::compute::Cast(*column, field->type(),
                                                         arrow::compute::CastOptions::Safe(),
                                                         &ctx));
    }
    columns.push_back(std::move(column));
  }
  return arrow::RecordBatch::Make(schema, batch->num_rows(), std::move(columns));
}

std::string UnitName(const FileSourceUnit& unit) {
  std::string name = QuoteInput(unit.path, kPathQuoteBytes);
  if (unit.row_group >= 0) name += " row group " + std::to_string(unit.row_group);
  return name;
}

class FileSourceReader : public SourceReader {
 public:
  FileSourceReader(std::shared_ptr<const FileSourcePlan> plan, const TaskContext& ctx,
                   SourceWatermarks watermarks)
      : plan_(std::move(plan)),
        subtask_(ctx.subtask),
        parallelism_(ctx.parallelism),
        pool_(ctx.pool),
        next_unit_(ctx.subtask),
        watermarks_(std::move(watermarks)) {}

  arrow::Result<Step> Next() override {
    if (std::optional<Step> watermark = watermarks_.TakePending()) return *watermark;
    Step step;
    for (;;) {
      if (!generator_) {
        if (next_unit_ >= plan_->units.size()) {
          step.kind = Step::Kind::kEnd;
          return step;
        }
        ARROW_RETURN_NOT_OK(StartUnit(next_unit_));
      }
      ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::RecordBatch> batch, ReadFromUnit());
      if (arrow::IsIterationEnd(batch)) {
        generator_ = nullptr;
        continue;
      }
      if (batch->num_rows() == 0) continue;
      ARROW_ASSIGN_OR_RAISE(step.batch, Conform(batch, plan_->schema, pool_));
      rows_out_ += step.batch->num_rows();
      ARROW_RETURN_NOT_OK(watermarks_.Observe(*step.batch));
      step.kind = Step::Kind::kBatch;
      return step;
    }
  }

  void Abort() override {
    generator_ = nullptr;
    next_unit_ = plan_->units.size();
  }
  int64_t rows_out() const override { return rows_out_; }

  // The position: the unit being read (or the next one to open), the batches of it already
  // read (the scan of a unit is deterministic: one thread, a fixed batch size), the rows
  // emitted, the watermark state; the unit's path and row group are kept to check that the
  // restarted source found the same files.
  arrow::Status Snapshot(CheckpointId id, StateWriter* state) override {
    const bool in_unit = generator_ != nullptr;
    const size_t unit = in_unit ? current_ : next_unit_;
    StateRowValues values = {{"subtask", subtask_},
                             {"parallelism", parallelism_},
                             {"units", static_cast<int64_t>(plan_->units.size())},
                             {"unit", static_cast<int64_t>(unit)},
                             {"unit_batches", in_unit ? unit_batches_ : 0},
                             {"rows_out", rows_out_}};
    AppendWatermarkState(watermarks_.state(), &values);
    ARROW_ASSIGN_OR_RAISE(auto row, MakeStateRow(values));
    ARROW_RETURN_NOT_OK(state->Put("position", std::move(row)));
    // The unit's identity, so a restart over changed files fails instead of skipping rows.
    arrow::StringBuilder path;
    ARROW_RETURN_NOT_OK(path.Append(unit < plan_->units.size() ? plan_->units[unit].path : ""));
    arrow::Int64Builder row_group;
    ARROW_RETURN_NOT_OK(
        row_group.Append(unit < plan_->units.size() ? plan_->units[unit].row_group : -1));
    ARROW_ASSIGN_OR_RAISE(auto path_array, path.Finish());
    ARROW_ASSIGN_OR_RAISE(auto row_group_array, row_group.Finish());
    auto unit_table = arrow::Table::Make(
        arrow::schema({arrow::field("path", arrow::utf8()), arrow::field("row_group", arrow::int64())}),
        {path_array, row_group_array}, 1);
    return state->Put("unit", std::move(unit_table));
  }

  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    const std::string what = "file source task " + std::to_string(subtask_) +
                             " restoring checkpoint " + std::to_string(id);
    std::vector<std::string> names = {"subtask", "parallelism", "units", "unit", "unit_batches",
                                      "rows_out"};
    for (std::string& name : WatermarkStateNames()) names.push_back(std::move(name));
    ARROW_ASSIGN_OR_RAISE(auto part, state->Get("position"));
    ARROW_ASSIGN_OR_RAISE(auto values, ReadStateRow(part, "position", names, what));
    if (values["subtask"] != subtask_ || values["parallelism"] != parallelism_) {
      return arrow::Status::Invalid(what, ": the snapshot is of task ", values["subtask"], " of ",
                                    values["parallelism"], " (a source's parallelism cannot "
                                    "change across a restart)");
    }
    const int64_t unit = values["unit"];
    const int64_t skip = values["unit_batches"];
    if (values["units"] != static_cast<int64_t>(plan_->units.size())) {
      return arrow::Status::Invalid(what, ": the source's files changed since the checkpoint (",
                                    values["units"], " files and row groups then, ",
                                    plan_->units.size(), " now)");
    }
    if (unit < 0 || unit % parallelism_ != subtask_ ||
        unit > static_cast<int64_t>(plan_->units.size()) + parallelism_ || skip < 0 ||
        values["rows_out"] < 0) {
      return arrow::Status::Invalid(what, ": position unit ", unit, " batch ", skip,
                                    " is not one of this task's");
    }
    if (unit < static_cast<int64_t>(plan_->units.size())) {
      ARROW_ASSIGN_OR_RAISE(auto unit_part, state->Get("unit"));
      const FileSourceUnit& expected = plan_->units[static_cast<size_t>(unit)];
      bool same = false;
      if (unit_part != nullptr && unit_part->num_rows() == 1 && unit_part->num_columns() == 2) {
        ARROW_ASSIGN_OR_RAISE(auto path, unit_part->column(0)->GetScalar(0));
        ARROW_ASSIGN_OR_RAISE(auto row_group, unit_part->column(1)->GetScalar(0));
        same = path->Equals(arrow::StringScalar(expected.path)) &&
               row_group->Equals(arrow::Int64Scalar(expected.row_group));
      }
      if (!same) {
        return arrow::Status::Invalid(what, ": the source's files changed since the checkpoint ",
                                      "(unit ", unit, " is now ", UnitName(expected), ")");
      }
    }
    generator_ = nullptr;
    next_unit_ = static_cast<size_t>(unit);
    if (skip > 0) {
      // Reads again the batches of the unit the snapshot had read, and drops them.
      ARROW_RETURN_NOT_OK(StartUnit(next_unit_));
      while (unit_batches_ < skip) {
        ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::RecordBatch> batch, ReadFromUnit());
        if (arrow::IsIterationEnd(batch)) {
          return arrow::Status::Invalid(what, ": ", UnitName(plan_->units[current_]), " has ",
                                        unit_batches_ - 1, " batches now, the checkpoint had ",
                                        "read ", skip);
        }
      }
    }
    rows_out_ = values["rows_out"];
    watermarks_.Rewind(WatermarkStateOf(values));
    return arrow::Status::OK();
  }

 private:
  // Opens unit `unit` and moves next_unit_ past it.
  arrow::Status StartUnit(size_t unit) {
    current_ = unit;
    next_unit_ = unit + static_cast<size_t>(parallelism_);
    unit_batches_ = 0;
    arrow::Status opened = OpenUnit(plan_->units[current_]);
    if (!opened.ok()) {
      return opened.WithMessage("reading ", UnitName(plan_->units[current_]), ": ",
                                opened.message());
    }
    return arrow::Status::OK();
  }

  // The next batch of the open unit (empty ones included; the end: IterationEnd).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> ReadFromUnit() {
    auto next = generator_().result();
    if (!next.ok()) {
      generator_ = nullptr;
      return next.status().WithMessage("reading ", UnitName(plan_->units[current_]), ": ",
                                       next.status().message());
    }
    ++unit_batches_;
    return *next;
  }

  arrow::Status OpenUnit(const FileSourceUnit& unit) {
    ARROW_ASSIGN_OR_RAISE(
        std::shared_ptr<ds::FileFragment> file,
        plan_->format->MakeFragment(ds::FileSource(unit.path, plan_->filesystem)));
    std::shared_ptr<ds::Fragment> fragment = file;
    if (unit.row_group >= 0) {
      ARROW_ASSIGN_OR_RAISE(
          fragment,
          arrow::internal::checked_cast<ds::ParquetFileFragment&>(*file).Subset({unit.row_group}));
    }
    auto options = std::make_shared<ds::ScanOptions>();
    options->dataset_schema = plan_->schema;
    options->use_threads = false;
    options->batch_size = kBatchRows;
    options->pool = pool_;
    options->cache_metadata = false;
    ARROW_ASSIGN_OR_RAISE(auto projection,
                          ds::ProjectionDescr::FromNames(plan_->schema->field_names(),
                                                         *plan_->schema));
    ds::SetProjection(options.get(), std::move(projection));
    ARROW_ASSIGN_OR_RAISE(generator_, fragment->ScanBatchesAsync(options));
    return arrow::Status::OK();
  }

  std::shared_ptr<const FileSourcePlan> plan_;
  const int32_t subtask_;
  const int32_t parallelism_;
  arrow::MemoryPool* pool_;
  size_t next_unit_;
  size_t current_ = 0;
  int64_t unit_batches_ = 0;  // batches read of the current unit (the end included)
  arrow::AsyncGenerator<std::shared_ptr<arrow::RecordBatch>> generator_;
  SourceWatermarks watermarks_;
  int64_t rows_out_ = 0;
};

}  // namespace

arrow::Result<std::vector<std::string>> ExpandSourcePaths(
    const std::shared_ptr<arrow::fs::FileSystem>& filesystem,
    const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& path : paths) ARROW_RETURN_NOT_OK(AddPath(*filesystem, path, &files));
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

arrow::Result<std::vector<FileSourceUnit>> FileSourceUnits(const FileSourceParams& params) {
  ARROW_ASSIGN_OR_RAISE(auto plan, Discover(params));
  return plan->units;
}

arrow::Result<BoundOperator> BindFileSource(const OperatorSpec& spec,
                                            const FileSourceParams& params) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<const FileSourcePlan> plan, Discover(params));
  BoundOperator bound;
  bound.output_schema = plan->schema;
  bound.make_source =
      [plan](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<SourceReader>> {
    ARROW_ASSIGN_OR_RAISE(auto watermarks, SourceWatermarks::Make("file source", ctx, *plan->schema,
                                                                  plan->event_time));
    return std::make_unique<FileSourceReader>(plan, ctx, std::move(watermarks));
  };
  return bound;
}

}  // namespace sabot
