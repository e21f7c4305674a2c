#include "sabot/dataflow/job_file.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <set>
#include <sstream>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/expression_ast.h"
#include "sabot/dataflow/expression_parser.h"
#include "sabot/dataflow/expression_printer.h"

namespace sabot {

namespace {

using YAML::Node;

constexpr std::string_view kKindKeys[] = {
    "generator_source", "parquet_source", "ipc_source", "csv_source",   "map",
    "filter",           "project",        "key_by",     "window",       "aggregate",
    "join",             "parquet_sink",   "ipc_sink",   "csv_sink",     "console_sink",
    "collect_sink",     "verify_sink"};

// A table_source reads a table held in the memory of the program that runs the plan, which a
// file cannot hold: job files refuse the kind with this message (docs/job-file.md).
constexpr std::string_view kTableSourceKey = "table_source";
constexpr std::string_view kNoTableSource =
    "table_source reads an in-memory table that the program running the plan provides (the "
    "Python API, BindOptions::tables); a job file cannot provide one: read the data with "
    "parquet_source or ipc_source";

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r')) {
    --e;
  }
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const char* Describe(const Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsScalar()) return "a scalar";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "something else";
}

// Whether `node` was read from the file: a default-constructed Node (an entry's absent name,
// say) is a valid null node to yaml-cpp, but has no place.
bool Present(const Node& node) { return node.IsDefined() && !node.Mark().is_null(); }

bool ValidName(std::string_view name, size_t max_length) {
  if (name.empty() || name.size() > max_length) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (c == '-' && i > 0);
    if (!ok) return false;
  }
  return true;
}

// The job's name when the file gives none: the file's name without its extension, with
// characters other than [A-Za-z0-9_-] replaced by '_', cut to kMaxJobNameLength; "job" when
// that leaves nothing valid.
std::string DefaultJobName(const std::string& display_name) {
  std::string stem = std::filesystem::path(display_name).stem().string();
  for (char& c : stem) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) c = '_';
  }
  if (stem.size() > kMaxJobNameLength) stem.resize(kMaxJobNameLength);
  return ValidName(stem, kMaxJobNameLength) ? stem : "job";
}

// A key and its value in a YAML map.
struct Field {
  Node key;
  Node value;
};

// One `operators:` entry as read, before its parameters are converted.
struct Entry {
  Node node;      // the entry's map
  Node kind_key;  // the kind key node (where the entry is reported)
  Node body;      // the kind key's value: the parameters
  OperatorKind kind = OperatorKind::kMap;
  std::string name;
  Node name_node;
  std::optional<int32_t> parallelism;
  Node parallelism_node;
  struct InputRef {
    std::string name;
    Node node;      // the name's node; undefined for the implied previous entry
    int32_t input;  // 0, or 1 for a join's right
    size_t from = 0;  // resolved entry index
  };
  std::vector<InputRef> inputs;
  PartitioningRequest partitioning;
  Node partitioning_node;
  OperatorParams params;
  // Expressions by the label binding errors give them, where they are.
  std::vector<std::pair<std::string, ScalarGeometry>> expressions;
};

// Where a plan edge came from.
struct EdgeOrigin {
  size_t entry;
  size_t input_ref;
};

class Reader {
 public:
  Reader(std::string_view text, std::string display_name, std::string base_directory)
      : text_(text), display_(std::move(display_name)), base_(std::move(base_directory)) {}

  arrow::Result<JobFile> Read(const JobFileOverrides& overrides);

 private:
  // ---- errors ------------------------------------------------------------------------------
  std::string Place(int line0, int column0) const {
    if (line0 < 0) return display_;
    return display_ + ":" + std::to_string(line0 + 1) + ":" + std::to_string(column0 + 1);
  }
  std::string Place(const Node& node) const {
    if (!node.IsDefined()) return display_;
    YAML::Mark m = node.Mark();
    return m.is_null() ? display_ : Place(m.line, m.column);
  }
  JobFileLocation Location(const Node& node) const {
    if (!node.IsDefined() || node.Mark().is_null()) return {};
    return {node.Mark().line + 1, node.Mark().column + 1};
  }
  template <typename... Args>
  arrow::Status Fail(const Node& at, std::string_view who, Args&&... args) const {
    return arrow::Status::Invalid(Place(at), ": ", who, who.empty() ? "" : ": ",
                                  std::forward<Args>(args)...);
  }

  // ---- maps and scalars --------------------------------------------------------------------
  // The fields of `map`, checked against `valid` (unknown and repeated keys are errors).
  arrow::Result<std::vector<Field>> Fields(const Node& map, std::string_view who,
                                           std::string_view what,
                                           const std::vector<std::string_view>& valid) const {
    if (!map.IsMap()) {
      return Fail(map, who, what, " must be a map, got ", Describe(map));
    }
    std::vector<Field> fields;
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const Node key = kv.first;
      if (!key.IsScalar()) return Fail(key, who, "a key in ", what, " must be a plain word");
      const std::string& k = key.Scalar();
      if (std::find(valid.begin(), valid.end(), k) == valid.end()) {
        std::string list;
        for (std::string_view v : valid) list += (list.empty() ? "" : ", ") + std::string(v);
        return Fail(key, who, "unknown key ", QuoteInput(k), " in ", what, " (valid keys: ",
                    list.empty() ? "none" : list, ")");
      }
      if (!seen.insert(k).second) return Fail(key, who, "key ", QuoteInput(k), " appears twice");
      fields.push_back({key, kv.second});
    }
    return fields;
  }
  static const Field* Find(const std::vector<Field>& fields, std::string_view key) {
    for (const Field& f : fields) {
      if (f.key.Scalar() == key) return &f;
    }
    return nullptr;
  }

  arrow::Result<std::string> String(const Node& node, std::string_view who,
                                    std::string_view what) const {
    if (!node.IsScalar()) return Fail(node, who, what, " must be a string, got ", Describe(node));
    return node.Scalar();
  }
  arrow::Result<int64_t> Integer(const Node& node, std::string_view who, std::string_view what,
                                 int64_t min, int64_t max) const {
    if (!node.IsScalar()) {
      return Fail(node, who, what, " must be an integer, got ", Describe(node));
    }
    const std::string& s = node.Scalar();
    int64_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
      return Fail(node, who, what, " must be an integer, got ", QuoteInput(s));
    }
    if (value < min || value > max) {
      return Fail(node, who, what, " must be between ", min, " and ", max, ", got ", value);
    }
    return value;
  }
  arrow::Result<uint64_t> Unsigned(const Node& node, std::string_view who,
                                   std::string_view what) const {
    if (!node.IsScalar()) {
      return Fail(node, who, what, " must be a non-negative integer, got ", Describe(node));
    }
    const std::string& s = node.Scalar();
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
      return Fail(node, who, what, " must be a non-negative integer, got ", QuoteInput(s));
    }
    return value;
  }
  arrow::Result<double> Number(const Node& node, std::string_view who, std::string_view what,
                               double min, double max) const {
    if (!node.IsScalar()) return Fail(node, who, what, " must be a number, got ", Describe(node));
    const std::string& s = node.Scalar();
    double value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
      return Fail(node, who, what, " must be a number, got ", QuoteInput(s));
    }
    if (!(value >= min && value <= max)) {
      return Fail(node, who, what, " must be between ", min, " and ", max, ", got ", s);
    }
    return value;
  }
  arrow::Result<bool> Bool(const Node& node, std::string_view who, std::string_view what) const {
    if (node.IsScalar()) {
      std::string s = Lower(node.Scalar());
      if (s == "true" || s == "yes" || s == "on") return true;
      if (s == "false" || s == "no" || s == "off") return false;
    }
    return Fail(node, who, what, " must be true or false, got ",
                node.IsScalar() ? QuoteInput(node.Scalar()) : Describe(node));
  }
  arrow::Result<std::chrono::milliseconds> Duration(const Node& node, std::string_view who,
                                                    std::string_view what) const {
    if (!node.IsScalar()) {
      return Fail(node, who, what, " must be a duration such as 5s, 250ms or 5m, got ",
                  Describe(node));
    }
    auto d = ParseDuration(node.Scalar());
    if (!d.ok()) return Fail(node, who, what, ": ", d.status().message());
    return *d;
  }
  // A list of strings; a single string counts as a list of one.
  arrow::Result<std::vector<std::string>> Strings(const Node& node, std::string_view who,
                                                  std::string_view what) const {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      out.push_back(node.Scalar());
      return out;
    }
    if (!node.IsSequence()) {
      return Fail(node, who, what, " must be a list of strings, got ", Describe(node));
    }
    for (const Node& item : node) {
      if (!item.IsScalar()) {
        return Fail(item, who, "items of ", what, " must be strings, got ", Describe(item));
      }
      out.push_back(item.Scalar());
    }
    return out;
  }
  std::string ResolvePath(const std::string& path) const {
    std::filesystem::path p(path);
    if (!p.is_absolute()) {
      std::filesystem::path base = base_.empty() ? std::filesystem::current_path()
                                                 : std::filesystem::path(base_);
      p = base / p;
    }
    p = p.lexically_normal();
    if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
    return p.string();
  }

  // ---- expressions -------------------------------------------------------------------------
  // Where the text of scalar `node` lies in the file (job_file.h, ScalarGeometry).
  ScalarGeometry Geometry(const Node& node) const {
    ScalarGeometry g;
    YAML::Mark m = node.Mark();
    if (m.is_null() || m.pos < 0 || static_cast<size_t>(m.pos) >= text_.size()) return g;
    g.line = m.line + 1;
    g.column = m.column + 1;
    char first = text_[m.pos];
    if (first == '"' || first == '\'') {
      g.style = ScalarGeometry::kQuoted;
      g.column += 1;  // the text starts after the quote
    } else if (first == '|' || first == '>') {
      // A block scalar: its text starts on a following line, at the block's indentation.
      g.style = first == '|' ? ScalarGeometry::kLiteralBlock : ScalarGeometry::kFoldedBlock;
      size_t eol = text_.find('\n', m.pos);
      if (eol == std::string_view::npos) return ScalarGeometry{};
      size_t p = eol + 1;
      int line = g.line + 1;
      while (p < text_.size()) {  // blank lines before the first line of content
        size_t end = text_.find('\n', p);
        std::string_view l = text_.substr(p, end == std::string_view::npos ? end : end - p);
        if (l.find_first_not_of(" \t\r") != std::string_view::npos || end == std::string_view::npos) {
          break;
        }
        p = end + 1;
        ++line;
      }
      int indent = 0;
      while (p + indent < text_.size() && text_[p + indent] == ' ') ++indent;
      g.line = line;
      g.column = indent + 1;
    } else {
      g.style = ScalarGeometry::kPlain;
    }
    return g;
  }
  std::string ExpressionPlace(const Node& node, int line, int column) const {
    JobFileLocation at = Geometry(node).Locate(line, column);
    return at.line > 0 ? Place(at.line - 1, at.column - 1) : Place(node);
  }
  // An expression parse error of the text of `node`, placed in the file.
  arrow::Status ExpressionError(const Node& node, std::string_view who, std::string_view what,
                                const arrow::Status& status) const {
    std::string message = status.message();
    constexpr std::string_view kPrefix = "expression error at ";
    int line = 0, column = 0;
    if (message.rfind(kPrefix, 0) == 0 &&
        std::sscanf(message.c_str() + kPrefix.size(), "%d:%d", &line, &column) == 2) {
      size_t colon = message.find(": ", kPrefix.size());
      std::string rest = colon == std::string::npos ? message : message.substr(colon + 2);
      return arrow::Status::Invalid(ExpressionPlace(node, line, column), ": ", who, ": ", what,
                                    ": expression error: ", rest);
    }
    return Fail(node, who, what, ": ", message);
  }
  // The text of expression `what` of the operator `who` names, its syntax checked. Trailing
  // whitespace (a literal block's last newline) is dropped; leading whitespace is kept, so that
  // positions in the text stay positions in the file.
  arrow::Result<std::string> Expression(const Node& node, std::string_view who,
                                        std::string_view what) const {
    ARROW_ASSIGN_OR_RAISE(std::string text, String(node, who, what));
    auto parsed = ParseExpression(text);
    if (!parsed.ok()) return ExpressionError(node, who, what, parsed.status());
    while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r' ||
                             text.back() == '\t')) {
      text.pop_back();
    }
    return text;
  }

  // ---- parts of the file -------------------------------------------------------------------
  arrow::Status ReadOptions(const Node& node, JobRunOptions* run, PlanOptions* plan) const;
  arrow::Status ReadEntry(const Node& node, size_t index, Entry* entry) const;
  arrow::Status ReadParams(Entry* entry) const;
  arrow::Result<PartitioningRequest> ReadPartitioning(const Node& node,
                                                      std::string_view who) const;
  arrow::Result<std::optional<EventTimeSpec>> ReadEventTime(const Node& node,
                                                            std::string_view who) const;
  arrow::Result<CsvFormatOptions> ReadCsv(const Node& node, std::string_view who) const;
  // A window's late_output: {format: parquet|ipc|csv, directory: dir, csv: {...}}.
  arrow::Result<LateOutputSpec> ReadLateOutput(const Node& node, std::string_view who) const;
  arrow::Result<std::vector<NamedExpression>> ReadColumnMap(const Node& node,
                                                            std::string_view who,
                                                            Entry* entry) const;
  arrow::Result<AggregateSpec> ReadAggregate(const Node& node, std::string_view who) const;
  arrow::Status ReadCheckpoint(const Node& node, CheckpointOptions* checkpoint) const;
  arrow::Status PlanError(const arrow::Status& status, const std::vector<Entry>& entries,
                          const std::vector<EdgeOrigin>& origins) const;

  std::string_view text_;
  std::string display_;
  std::string base_;
};

std::string Who(const Entry& e) { return "operator " + QuoteInput(e.name); }

arrow::Status Reader::ReadOptions(const Node& node, JobRunOptions* run, PlanOptions* plan) const {
  if (node.IsNull()) return arrow::Status::OK();
  constexpr std::string_view who = "options";
  ARROW_ASSIGN_OR_RAISE(auto fields,
                        Fields(node, who, "options",
                               {"threads", "memory_budget", "shuffle_mode", "chaining",
                                "spill_directory", "progress", "state_budget",
                                "idle_timeout", "checkpoint", "lineage_recovery"}));
  for (const Field& f : fields) {
    const std::string& k = f.key.Scalar();
    if (k == "threads") {
      ARROW_ASSIGN_OR_RAISE(int64_t n, Integer(f.value, who, "threads", 1, 1024));
      run->threads = static_cast<int32_t>(n);
    } else if (k == "memory_budget") {
      if (!f.value.IsScalar()) {
        return Fail(f.value, who, "memory_budget must be a size such as 256MiB, got ",
                    Describe(f.value));
      }
      auto bytes = ParseByteSize(f.value.Scalar());
      if (!bytes.ok()) return Fail(f.value, who, "memory_budget: ", bytes.status().message());
      if (*bytes < (int64_t{1} << 20)) {
        return Fail(f.value, who, "memory_budget must be at least 1MiB, got ",
                    QuoteInput(f.value.Scalar()));
      }
      run->memory_budget_bytes = *bytes;
    } else if (k == "shuffle_mode") {
      ARROW_ASSIGN_OR_RAISE(std::string mode, String(f.value, who, "shuffle_mode"));
      if (mode == "pipelined") {
        plan->shuffle_mode = ShuffleMode::kPipelined;
      } else if (mode == "blocking") {
        plan->shuffle_mode = ShuffleMode::kBlocking;
      } else {
        return Fail(f.value, who, "shuffle_mode must be pipelined or blocking, got ",
                    QuoteInput(mode));
      }
    } else if (k == "chaining") {
      ARROW_ASSIGN_OR_RAISE(plan->chaining, Bool(f.value, who, "chaining"));
    } else if (k == "lineage_recovery") {
      ARROW_ASSIGN_OR_RAISE(plan->lineage_recovery, Bool(f.value, who, "lineage_recovery"));
    } else if (k == "spill_directory") {
      ARROW_ASSIGN_OR_RAISE(std::string dir, String(f.value, who, "spill_directory"));
      if (dir.empty()) return Fail(f.value, who, "spill_directory must not be empty");
      run->spill_directory = ResolvePath(dir);
    } else if (k == "progress") {
      ARROW_ASSIGN_OR_RAISE(run->progress, Bool(f.value, who, "progress"));
    } else if (k == "state_budget") {
      if (!f.value.IsScalar()) {
        return Fail(f.value, who, "state_budget must be a size such as 64MiB, got ",
                    Describe(f.value));
      }
      auto bytes = ParseByteSize(f.value.Scalar());
      if (!bytes.ok()) return Fail(f.value, who, "state_budget: ", bytes.status().message());
      if (*bytes < 1024) {
        return Fail(f.value, who, "state_budget must be at least 1KiB, got ",
                    QuoteInput(f.value.Scalar()));
      }
      run->state_budget_bytes = *bytes;
    } else if (k == "idle_timeout") {
      ARROW_ASSIGN_OR_RAISE(plan->idle_timeout, Duration(f.value, who, "idle_timeout"));
    } else if (k == "checkpoint") {
      ARROW_RETURN_NOT_OK(ReadCheckpoint(f.value, &plan->checkpoint));
    }
  }
  return arrow::Status::OK();
}

arrow::Status Reader::ReadCheckpoint(const Node& node, CheckpointOptions* checkpoint) const {
  // Checkpoints and the restart strategy (docs/fault-tolerance.md).
  constexpr std::string_view who = "options: checkpoint";
  if (!node.IsMap()) {
    return Fail(node, who, "must be a map (interval:, directory:, ...), got ", Describe(node));
  }
  ARROW_ASSIGN_OR_RAISE(auto fields,
                        Fields(node, who, "checkpoint",
                               {"interval", "directory", "retained", "max_restarts",
                                "restart_delay", "restart_backoff", "max_restart_delay"}));
  for (const Field& f : fields) {
    const std::string& k = f.key.Scalar();
    // The plan JSON's bound (2^40 ms, about 34 years): a larger one would not survive the
    // plan's JSON (distributed runs) and overflows the restart's clock arithmetic.
    auto bounded = [&](std::string_view field) -> arrow::Result<std::chrono::milliseconds> {
      ARROW_ASSIGN_OR_RAISE(auto duration, Duration(f.value, who, field));
      if (duration.count() > (int64_t{1} << 40)) {
        return Fail(f.value, who, field, " must be at most 2^40 ms (about 34 years), got ",
                    f.value.Scalar());
      }
      return duration;
    };
    if (k == "interval") {
      ARROW_ASSIGN_OR_RAISE(checkpoint->interval, bounded("interval"));
    } else if (k == "directory") {
      ARROW_ASSIGN_OR_RAISE(std::string dir, String(f.value, who, "directory"));
      if (dir.empty()) return Fail(f.value, who, "directory must not be empty");
      // A URI (s3://..., file://...) is kept as it is; a path is relative to the job file.
      checkpoint->directory = dir.find("://") != std::string::npos ? dir : ResolvePath(dir);
    } else if (k == "retained") {
      ARROW_ASSIGN_OR_RAISE(int64_t n, Integer(f.value, who, "retained", 1, 1000));
      checkpoint->retained = static_cast<int32_t>(n);
    } else if (k == "max_restarts") {
      ARROW_ASSIGN_OR_RAISE(int64_t n, Integer(f.value, who, "max_restarts", 0, 1'000'000));
      checkpoint->max_restarts = static_cast<int32_t>(n);
    } else if (k == "restart_delay") {
      ARROW_ASSIGN_OR_RAISE(checkpoint->restart_delay, bounded("restart_delay"));
    } else if (k == "restart_backoff") {
      ARROW_ASSIGN_OR_RAISE(
          checkpoint->restart_backoff,
          Number(f.value, who, "restart_backoff", -std::numeric_limits<double>::max(),
                 std::numeric_limits<double>::max()));
      if (!(checkpoint->restart_backoff >= 1.0 && checkpoint->restart_backoff <= 1000.0)) {
        return Fail(f.value, who, "restart_backoff must be between 1 and 1000, got ",
                    f.value.Scalar());
      }
    } else if (k == "max_restart_delay") {
      ARROW_ASSIGN_OR_RAISE(checkpoint->max_restart_delay, bounded("max_restart_delay"));
    }
  }
  if (checkpoint->enabled() && checkpoint->directory.empty()) {
    return Fail(node, who, "directory is required when interval is set");
  }
  return arrow::Status::OK();
}

arrow::Status Reader::ReadEntry(const Node& node, size_t index, Entry* entry) const {
  std::string who = "operators entry " + std::to_string(index + 1);
  if (!node.IsMap()) {
    return Fail(node, who, "an operator must be a map with one kind key (such as map: or "
                           "parquet_source:), got ", Describe(node));
  }
  entry->node = node;
  // Errors found before the entry is read name it by the name it gives, if any.
  if (const Node name = node["name"]; name.IsDefined() && name.IsScalar()) {
    who = "operator " + QuoteInput(name.Scalar()) + " (" + who + ")";
  }
  // The kind first, so that the other errors can name the operator's kind.
  std::vector<std::string_view> valid = {"name", "parallelism", "input", "left", "right",
                                         "partitioning"};
  for (std::string_view k : kKindKeys) valid.push_back(k);
  for (const auto& kv : node) {
    const Node key = kv.first;
    if (!key.IsScalar() || key.Scalar() == kTableSourceKey ||
        std::find(valid.begin(), valid.end(), key.Scalar()) != valid.end()) {
      continue;
    }
    std::string list;
    for (std::string_view v : valid) list += (list.empty() ? "" : ", ") + std::string(v);
    return Fail(key, who, "unknown key ", QuoteInput(key.Scalar()),
                " in an operator entry (valid keys: ", list,
                "); an operator's parameters go inside its kind's map, e.g. "
                "parquet_source: {paths: [in/], event_time: ts}");
  }
  valid.push_back(kTableSourceKey);
  ARROW_ASSIGN_OR_RAISE(auto fields, Fields(node, who, "an operator entry", valid));
  for (const Field& f : fields) {
    const std::string& k = f.key.Scalar();
    if (k == kTableSourceKey) return Fail(f.key, who, kNoTableSource);
    if (std::find(std::begin(kKindKeys), std::end(kKindKeys), k) == std::end(kKindKeys)) continue;
    if (Present(entry->kind_key)) {
      return Fail(f.key, who, "an operator has one kind, but this entry has both ",
                  QuoteInput(entry->kind_key.Scalar()), " and ", QuoteInput(k));
    }
    entry->kind_key = f.key;
    entry->body = f.value;
    ARROW_ASSIGN_OR_RAISE(entry->kind, ParseOperatorKind(k));
  }
  if (!Present(entry->kind_key)) {
    std::string kinds;
    for (std::string_view k : kKindKeys) kinds += (kinds.empty() ? "" : ", ") + std::string(k);
    return Fail(node, who, "the entry names no operator kind (one of: ", kinds, ")");
  }
  const bool join = entry->kind == OperatorKind::kJoin;
  for (const Field& f : fields) {
    const std::string& k = f.key.Scalar();
    if (k == "name") {
      ARROW_ASSIGN_OR_RAISE(entry->name, String(f.value, who, "name"));
      entry->name_node = f.value;
    } else if (k == "parallelism") {
      if (entry->kind == OperatorKind::kKeyBy) {
        return Fail(f.key, who,
                    "a key_by has no parallelism of its own (it takes its input's); remove it");
      }
      ARROW_ASSIGN_OR_RAISE(int64_t p,
                            Integer(f.value, who, "parallelism", 1, kMaxOperatorParallelism));
      entry->parallelism = static_cast<int32_t>(p);
      entry->parallelism_node = f.value;
    } else if (k == "input" || k == "left" || k == "right") {
      if (IsSource(entry->kind)) {
        return Fail(f.key, who, "a source reads no other operator; remove ", QuoteInput(k));
      }
      if (join != (k != "input")) {
        return Fail(f.key, who,
                    join ? "a join names its inputs with left: and right:, not input:"
                         : "left: and right: are for joins; name the input with input:");
      }
      int32_t input = k == "right" ? 1 : 0;
      if (f.value.IsScalar()) {
        entry->inputs.push_back({f.value.Scalar(), f.value, input});
      } else if (f.value.IsSequence() && !join && f.value.size() > 0) {
        for (const Node& item : f.value) {
          if (!item.IsScalar()) {
            return Fail(item, who, "input: items must be operator names, got ", Describe(item));
          }
          entry->inputs.push_back({item.Scalar(), item, 0});
        }
      } else {
        return Fail(f.value, who, k, join ? " must be an operator name"
                                          : " must be an operator name or a list of them "
                                            "(a union), got ",
                    join ? "" : Describe(f.value));
      }
    } else if (k == "partitioning") {
      entry->partitioning_node = f.value;
    }
  }
  if (join) {
    bool left = false, right = false;
    for (const auto& in : entry->inputs) (in.input == 0 ? left : right) = true;
    if (!left || !right) {
      return Fail(entry->kind_key, who, "a join needs both left: and right: (operator names)");
    }
    std::stable_sort(entry->inputs.begin(), entry->inputs.end(),
                     [](const auto& a, const auto& b) { return a.input < b.input; });
  }
  if (IsSource(entry->kind) && Present(entry->partitioning_node)) {
    return Fail(entry->partitioning_node, who,
                "partitioning: is about the edge into an operator; a source has none");
  }
  return arrow::Status::OK();
}

arrow::Result<PartitioningRequest> Reader::ReadPartitioning(const Node& node,
                                                            std::string_view who) const {
  constexpr std::string_view kForms =
      "rebalance, broadcast, forward, {hash: [keys]} or {range: {keys: [...], boundaries: "
      "[[...], ...]}}";
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (s == "rebalance") return PartitioningRequest::Rebalance();
    if (s == "broadcast") return PartitioningRequest::Broadcast();
    if (s == "forward") return PartitioningRequest::Forward();
    if (s == "hash" || s == "range") {
      return Fail(node, who, "partitioning ", s, " needs key columns: write {", s,
                  ": [column, ...]}");
    }
    return Fail(node, who, "unknown partitioning ", QuoteInput(s), " (expected ", kForms, ")");
  }
  if (!node.IsMap() || node.size() != 1) {
    return Fail(node, who, "partitioning must be one of ", kForms, ", got ", Describe(node));
  }
  ARROW_ASSIGN_OR_RAISE(auto fields, Fields(node, who, "partitioning", {"hash", "range"}));
  const Field& f = fields[0];
  if (f.key.Scalar() == "hash") {
    ARROW_ASSIGN_OR_RAISE(auto keys, Strings(f.value, who, "hash keys"));
    return PartitioningRequest::Hash(std::move(keys));
  }
  // range: a list of keys, or a map with keys and boundaries.
  if (f.value.IsScalar() || f.value.IsSequence()) {
    ARROW_ASSIGN_OR_RAISE(auto keys, Strings(f.value, who, "range keys"));
    return PartitioningRequest::Range(std::move(keys));
  }
  ARROW_ASSIGN_OR_RAISE(auto range, Fields(f.value, who, "range", {"keys", "boundaries"}));
  const Field* keys_field = Find(range, "keys");
  if (!keys_field) return Fail(f.value, who, "range needs keys: [column, ...]");
  ARROW_ASSIGN_OR_RAISE(auto keys, Strings(keys_field->value, who, "range keys"));
  std::vector<std::vector<BoundaryValue>> boundaries;
  if (const Field* b = Find(range, "boundaries")) {
    if (!b->value.IsSequence()) {
      return Fail(b->value, who, "boundaries must be a list, got ", Describe(b->value));
    }
    auto value_of = [&](const Node& v) -> arrow::Result<BoundaryValue> {
      if (!v.IsScalar()) {
        return Fail(v, who, "a boundary value must be a number or a string, got ", Describe(v));
      }
      const std::string& s = v.Scalar();
      if (v.Tag() != "!") {  // unquoted: a number when it reads as one
        int64_t i = 0;
        auto [e1, ec1] = std::from_chars(s.data(), s.data() + s.size(), i);
        if (ec1 == std::errc() && e1 == s.data() + s.size() && !s.empty()) return BoundaryValue(i);
        double d = 0;
        auto [e2, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec2 == std::errc() && e2 == s.data() + s.size() && !s.empty()) return BoundaryValue(d);
      }
      return BoundaryValue(s);
    };
    for (const Node& row : b->value) {
      std::vector<BoundaryValue> values;
      if (row.IsSequence()) {
        for (const Node& v : row) {
          ARROW_ASSIGN_OR_RAISE(BoundaryValue value, value_of(v));
          values.push_back(std::move(value));
        }
      } else {
        // One key column: a boundary may be written as its single value.
        ARROW_ASSIGN_OR_RAISE(BoundaryValue value, value_of(row));
        values.push_back(std::move(value));
      }
      boundaries.push_back(std::move(values));
    }
  }
  return PartitioningRequest::Range(std::move(keys), std::move(boundaries));
}

arrow::Result<LateOutputSpec> Reader::ReadLateOutput(const Node& node,
                                                     std::string_view who) const {
  ARROW_ASSIGN_OR_RAISE(auto fields,
                        Fields(node, who, "late_output", {"format", "directory", "csv"}));
  LateOutputSpec spec;
  if (const Field* f = Find(fields, "format")) {
    ARROW_ASSIGN_OR_RAISE(std::string name, String(f->value, who, "late_output format"));
    auto format = ParseFileFormat(name);
    if (!format.ok()) return Fail(f->value, who, "late_output: ", format.status().message());
    spec.format = *format;
  }
  const Field* directory = Find(fields, "directory");
  if (!directory) return Fail(node, who, "late_output needs directory: (where late rows go)");
  ARROW_ASSIGN_OR_RAISE(std::string dir, String(directory->value, who, "late_output directory"));
  if (dir.empty()) return Fail(directory->value, who, "late_output directory must not be empty");
  spec.directory = ResolvePath(dir);
  if (const Field* f = Find(fields, "csv")) {
    ARROW_ASSIGN_OR_RAISE(spec.csv, ReadCsv(f->value, who));
  }
  return spec;
}

arrow::Result<std::optional<EventTimeSpec>> Reader::ReadEventTime(const Node& node,
                                                                  std::string_view who) const {
  EventTimeSpec spec;
  if (node.IsScalar()) {
    spec.column = node.Scalar();
    return spec;
  }
  ARROW_ASSIGN_OR_RAISE(auto fields,
                        Fields(node, who, "event_time", {"column", "max_out_of_orderness"}));
  const Field* column = Find(fields, "column");
  if (!column) return Fail(node, who, "event_time needs column: (the event-time column)");
  ARROW_ASSIGN_OR_RAISE(spec.column, String(column->value, who, "event_time column"));
  if (const Field* f = Find(fields, "max_out_of_orderness")) {
    ARROW_ASSIGN_OR_RAISE(spec.max_out_of_orderness,
                          Duration(f->value, who, "max_out_of_orderness"));
  }
  return spec;
}

arrow::Result<CsvFormatOptions> Reader::ReadCsv(const Node& node, std::string_view who) const {
  CsvFormatOptions csv;
  ARROW_ASSIGN_OR_RAISE(auto fields, Fields(node, who, "csv", {"delimiter", "has_header"}));
  for (const Field& f : fields) {
    if (f.key.Scalar() == "delimiter") {
      ARROW_ASSIGN_OR_RAISE(std::string d, String(f.value, who, "delimiter"));
      if (d == "\\t") d = "\t";
      if (d.size() != 1) {
        return Fail(f.value, who, "delimiter must be one character, got ", QuoteInput(d));
      }
      csv.delimiter = d[0];
    } else {
      ARROW_ASSIGN_OR_RAISE(csv.has_header, Bool(f.value, who, "has_header"));
    }
  }
  return csv;
}

arrow::Result<std::vector<NamedExpression>> Reader::ReadColumnMap(const Node& node,
                                                                  std::string_view who,
                                                                  Entry* entry) const {
  std::vector<NamedExpression> columns;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const Node key = kv.first;
    const Node value = kv.second;
    if (!key.IsScalar()) {
      return Fail(key, who, "a column name must be a string, got ", Describe(key));
    }
    const std::string name = key.Scalar();
    if (!seen.insert(name).second) {
      return Fail(key, who, "column ", QuoteInput(name), " appears twice");
    }
    ARROW_ASSIGN_OR_RAISE(std::string expr,
                          Expression(value, who, "column " + QuoteInput(name)));
    entry->expressions.emplace_back("column " + QuoteInput(name), Geometry(value));
    columns.push_back({name, std::move(expr)});
  }
  if (columns.empty()) return Fail(node, who, "columns must name at least one column");
  return columns;
}

// "sum(amount)", "count(*)", "mean(amount) as avg_amount".
arrow::Result<AggregateSpec> Reader::ReadAggregate(const Node& node, std::string_view who) const {
  constexpr std::string_view kForm =
      "an aggregate is written function(column) [as alias], e.g. sum(amount) or count(*) as n";
  if (!node.IsScalar()) return Fail(node, who, kForm, "; got ", Describe(node));
  const std::string text = node.Scalar();
  size_t open = text.find('(');
  size_t close = text.find(')', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos) {
    return Fail(node, who, kForm, "; got ", QuoteInput(text));
  }
  AggregateSpec spec;
  std::string function = Lower(Trim(std::string_view(text).substr(0, open)));
  auto parsed = ParseAggregateFunction(function);
  if (!parsed.ok()) return Fail(node, who, parsed.status().message());
  spec.function = *parsed;
  std::string column = Trim(std::string_view(text).substr(open + 1, close - open - 1));
  if (column == "*" || column.empty()) {
    if (spec.function != AggregateFunction::kCount) {
      return Fail(node, who, function, " needs a column: ", function, "(column)");
    }
  } else {
    spec.column = column;
  }
  std::string rest = Trim(std::string_view(text).substr(close + 1));
  if (!rest.empty()) {
    if (Lower(rest.substr(0, 3)) != "as " || Trim(rest.substr(3)).empty()) {
      return Fail(node, who, kForm, "; got ", QuoteInput(text));
    }
    spec.alias = Trim(rest.substr(3));
  }
  return spec;
}

arrow::Status Reader::ReadParams(Entry* e) const {
  const std::string who = Who(*e);
  const Node& body = e->body;
  const std::string kind(OperatorKindName(e->kind));
  auto fields_of = [&](std::vector<std::string_view> valid) -> arrow::Result<std::vector<Field>> {
    if (body.IsNull()) return std::vector<Field>{};
    return Fields(body, who, "the parameters of " + kind, valid);
  };
  switch (e->kind) {
    case OperatorKind::kGeneratorSource: {
      GeneratorSourceParams p;
      ARROW_ASSIGN_OR_RAISE(
          auto fields,
          fields_of({"table", "rows", "batch_rows", "key_cardinality", "distribution",
                     "hot_key_fraction", "string_key", "payload_columns", "seed",
                     "rows_per_second", "event_time"}));
      for (const Field& f : fields) {
        const std::string& k = f.key.Scalar();
        if (k == "table") {
          ARROW_ASSIGN_OR_RAISE(std::string t, String(f.value, who, k));
          auto table = ParseGeneratorTable(t);
          if (!table.ok()) return Fail(f.value, who, table.status().message());
          p.table = *table;
        } else if (k == "rows") {
          ARROW_ASSIGN_OR_RAISE(p.rows, Integer(f.value, who, k, 0, INT64_MAX));
        } else if (k == "batch_rows") {
          ARROW_ASSIGN_OR_RAISE(p.batch_rows, Integer(f.value, who, k, 1, int64_t{1} << 24));
        } else if (k == "key_cardinality") {
          ARROW_ASSIGN_OR_RAISE(p.key_cardinality, Integer(f.value, who, k, 1, INT64_MAX));
        } else if (k == "distribution") {
          ARROW_ASSIGN_OR_RAISE(std::string d, String(f.value, who, k));
          auto dist = ParseKeyDistributionKind(d);
          if (!dist.ok()) return Fail(f.value, who, dist.status().message());
          p.distribution = *dist;
        } else if (k == "hot_key_fraction") {
          ARROW_ASSIGN_OR_RAISE(p.hot_key_fraction, Number(f.value, who, k, 0, 1));
        } else if (k == "string_key") {
          ARROW_ASSIGN_OR_RAISE(p.string_key, Bool(f.value, who, k));
        } else if (k == "payload_columns") {
          ARROW_ASSIGN_OR_RAISE(int64_t n, Integer(f.value, who, k, 0, 64));
          p.payload_columns = static_cast<int32_t>(n);
        } else if (k == "seed") {
          ARROW_ASSIGN_OR_RAISE(p.seed, Unsigned(f.value, who, k));
        } else if (k == "rows_per_second") {
          ARROW_ASSIGN_OR_RAISE(p.rows_per_second, Number(f.value, who, k, 0, 1e15));
        } else if (k == "event_time") {
          ARROW_ASSIGN_OR_RAISE(p.event_time, ReadEventTime(f.value, who));
        }
      }
      e->params = std::move(p);
      return arrow::Status::OK();
    }
    case OperatorKind::kTableSource:
      return Fail(e->kind_key, who, kNoTableSource);
    case OperatorKind::kParquetSource:
    case OperatorKind::kIpcSource:
    case OperatorKind::kCsvSource: {
      FileSourceParams p;
      p.format = *FileFormatOf(e->kind);
      std::vector<std::string> paths;
      if (body.IsScalar() || body.IsSequence()) {
        ARROW_ASSIGN_OR_RAISE(paths, Strings(body, who, "paths"));
      } else {
        std::vector<std::string_view> valid = {"paths", "event_time"};
        if (p.format == FileFormat::kCsv) valid.push_back("csv");
        if (body.IsNull()) return Fail(e->kind_key, who, kind, " needs paths: [file or directory]");
        ARROW_ASSIGN_OR_RAISE(auto fields, fields_of(valid));
        for (const Field& f : fields) {
          const std::string& k = f.key.Scalar();
          if (k == "paths") {
            ARROW_ASSIGN_OR_RAISE(paths, Strings(f.value, who, "paths"));
            if (paths.empty()) return Fail(f.value, who, "paths must name at least one path");
          } else if (k == "event_time") {
            ARROW_ASSIGN_OR_RAISE(p.event_time, ReadEventTime(f.value, who));
          } else if (k == "csv") {
            ARROW_ASSIGN_OR_RAISE(p.csv, ReadCsv(f.value, who));
          }
        }
        if (paths.empty()) return Fail(body, who, kind, " needs paths: [file or directory]");
      }
      for (const std::string& path : paths) {
        if (path.empty()) return Fail(body, who, "a path is empty");
        p.paths.push_back(ResolvePath(path));
      }
      e->params = std::move(p);
      return arrow::Status::OK();
    }
    case OperatorKind::kMap:
    case OperatorKind::kProject: {
      if (body.IsNull()) return Fail(e->kind_key, who, kind, " needs columns:");
      ARROW_ASSIGN_OR_RAISE(auto fields, fields_of({"columns"}));
      const Field* columns = Find(fields, "columns");
      if (!columns) return Fail(body, who, kind, " needs columns:");
      std::vector<NamedExpression> list;
      if (columns->value.IsMap()) {
        ARROW_ASSIGN_OR_RAISE(list, ReadColumnMap(columns->value, who, e));
      } else if (columns->value.IsSequence() && e->kind == OperatorKind::kProject) {
        // Items "expression [as alias]"; a bare column keeps its name.
        std::set<std::string> seen;
        for (const Node& item : columns->value) {
          if (!item.IsScalar()) {
            return Fail(item, who, "a project column must be a string such as "
                                   "'amount * 2 as doubled', got ", Describe(item));
          }
          auto parsed = ParseProjectionItem(item.Scalar());
          if (!parsed.ok()) return ExpressionError(item, who, "column", parsed.status());
          NamedExpression column;
          column.name = parsed->alias;
          if (column.name.empty()) {
            if (parsed->expr->kind != ExprKind::kColumn) {
              return Fail(item, who, "the computed column ", QuoteInput(item.Scalar()),
                          " needs a name: add 'as name'");
            }
            column.name = parsed->expr->text;
          }
          // The expression without its alias, in canonical text.
          column.expression = FormatExpression(*parsed->expr);
          if (!seen.insert(column.name).second) {
            return Fail(item, who, "column ", QuoteInput(column.name), " appears twice");
          }
          list.push_back(std::move(column));
        }
        if (list.empty()) return Fail(columns->value, who, "columns must name at least one column");
      } else {
        return Fail(columns->value, who, "columns must be a map of name: expression",
                    e->kind == OperatorKind::kProject ? " or a list of 'expression [as name]'" : "",
                    ", got ", Describe(columns->value));
      }
      if (e->kind == OperatorKind::kMap) {
        e->params = MapParams{std::move(list)};
      } else {
        e->params = ProjectParams{std::move(list)};
      }
      return arrow::Status::OK();
    }
    case OperatorKind::kFilter: {
      FilterParams p;
      if (body.IsScalar()) {
        ARROW_ASSIGN_OR_RAISE(p.predicate, Expression(body, who, "predicate"));
        e->expressions.emplace_back("predicate", Geometry(body));
      } else {
        if (body.IsNull()) return Fail(e->kind_key, who, "filter needs predicate:");
        ARROW_ASSIGN_OR_RAISE(auto fields, fields_of({"predicate"}));
        const Field* f = Find(fields, "predicate");
        if (!f) return Fail(body, who, "filter needs predicate:");
        ARROW_ASSIGN_OR_RAISE(p.predicate, Expression(f->value, who, "predicate"));
        e->expressions.emplace_back("predicate", Geometry(f->value));
      }
      e->params = std::move(p);
      return arrow::Status::OK();
    }
    case OperatorKind::kKeyBy: {
      KeyByParams p;
      if (body.IsScalar() || body.IsSequence()) {
        ARROW_ASSIGN_OR_RAISE(p.keys, Strings(body, who, "keys"));
      } else {
        if (body.IsNull()) return Fail(e->kind_key, who, "key_by needs key columns: key_by: [column]");
        ARROW_ASSIGN_OR_RAISE(auto fields, fields_of({"keys"}));
        const Field* f = Find(fields, "keys");
        if (!f) return Fail(body, who, "key_by needs keys:");
        ARROW_ASSIGN_OR_RAISE(p.keys, Strings(f->value, who, "keys"));
      }
      e->params = std::move(p);
      return arrow::Status::OK();
    }
    case OperatorKind::kWindow: {
      if (body.IsNull()) return Fail(e->kind_key, who, "window needs size:, slide: or gap:");
      ARROW_ASSIGN_OR_RAISE(auto fields,
                            fields_of({"type", "size", "slide", "gap", "time", "time_column",
                                       "allowed_lateness", "late_output"}));
      WindowParams p;
      const Field* type = Find(fields, "type");
      if (type) {
        ARROW_ASSIGN_OR_RAISE(std::string t, String(type->value, who, "type"));
        auto parsed = ParseWindowType(t);
        if (!parsed.ok()) return Fail(type->value, who, parsed.status().message());
        p.type = *parsed;
      } else if (Find(fields, "gap")) {
        p.type = WindowType::kSession;
      } else if (Find(fields, "slide")) {
        p.type = WindowType::kSliding;
      }
      for (const Field& f : fields) {
        const std::string& k = f.key.Scalar();
        if (k == "type") continue;
        if (k == "time") {
          ARROW_ASSIGN_OR_RAISE(std::string t, String(f.value, who, "time"));
          auto parsed = ParseTimeDomain(t);
          if (!parsed.ok()) return Fail(f.value, who, parsed.status().message());
          p.time = *parsed;
        } else if (k == "time_column") {
          ARROW_ASSIGN_OR_RAISE(p.time_column, String(f.value, who, "time_column"));
          if (p.time_column.empty()) return Fail(f.value, who, "time_column must not be empty");
        } else if (k == "late_output") {
          ARROW_ASSIGN_OR_RAISE(p.late_output, ReadLateOutput(f.value, who));
        } else {
          ARROW_ASSIGN_OR_RAISE(std::chrono::milliseconds d, Duration(f.value, who, k));
          (k == "size"    ? p.size
           : k == "slide" ? p.slide
           : k == "gap"   ? p.gap
                          : p.allowed_lateness) = d;
        }
      }
      e->params = p;
      return arrow::Status::OK();
    }
    case OperatorKind::kAggregate: {
      Node list = body;
      if (body.IsMap()) {
        ARROW_ASSIGN_OR_RAISE(auto fields, fields_of({"aggregates"}));
        const Field* f = Find(fields, "aggregates");
        if (!f) return Fail(body, who, "aggregate needs aggregates: [sum(column), count(*), ...]");
        list = f->value;
      }
      if (list.IsScalar()) {
        ARROW_ASSIGN_OR_RAISE(AggregateSpec spec, ReadAggregate(list, who));
        e->params = AggregateParams{{spec}};
        return arrow::Status::OK();
      }
      if (!list.IsSequence() || list.size() == 0) {
        return Fail(list.IsDefined() && !list.IsNull() ? list : e->kind_key, who,
                    "aggregate needs a list of aggregates such as [sum(amount), count(*)]");
      }
      AggregateParams p;
      for (const Node& item : list) {
        ARROW_ASSIGN_OR_RAISE(AggregateSpec spec, ReadAggregate(item, who));
        p.aggregates.push_back(std::move(spec));
      }
      e->params = std::move(p);
      return arrow::Status::OK();
    }
    case OperatorKind::kJoin: {
      if (body.IsNull()) return Fail(e->kind_key, who, "join needs on: [key, ...] (or left_keys: and right_keys:)");
      ARROW_ASSIGN_OR_RAISE(auto fields, fields_of({"on", "left_keys", "right_keys", "how", "broadcast",
                                                  "time", "left_time", "right_time", "window",
                                                  "interval"}));
      JoinParams p;
      const Field* on = Find(fields, "on");
      const Field* left = Find(fields, "left_keys");
      const Field* right = Find(fields, "right_keys");
      if (on && (left || right)) {
        return Fail((left ? left : right)->key, who,
                    "write either on: (same names on both sides) or left_keys: and right_keys:");
      }
      if (on) {
        ARROW_ASSIGN_OR_RAISE(p.left_keys, Strings(on->value, who, "on"));
        p.right_keys = p.left_keys;
      } else {
        if (!left || !right) {
          return Fail(body, who, "join needs on: [key, ...] or both left_keys: and right_keys:");
        }
        ARROW_ASSIGN_OR_RAISE(p.left_keys, Strings(left->value, who, "left_keys"));
        ARROW_ASSIGN_OR_RAISE(p.right_keys, Strings(right->value, who, "right_keys"));
      }
      if (const Field* how = Find(fields, "how")) {
        ARROW_ASSIGN_OR_RAISE(std::string h, String(how->value, who, "how"));
        auto parsed = ParseJoinType(h);
        if (!parsed.ok()) return Fail(how->value, who, parsed.status().message());
        p.how = *parsed;
      }
      if (const Field* broadcast = Find(fields, "broadcast")) {
        ARROW_ASSIGN_OR_RAISE(std::string b, String(broadcast->value, who, "broadcast"));
        auto parsed = ParseJoinBroadcast(b);
        if (!parsed.ok()) return Fail(broadcast->value, who, parsed.status().message());
        p.broadcast = *parsed;
      }
      // Event-time joins: `window: 5m` or `interval: {before: 1m, after: 2m}`, with `time: col`
      // (both sides) or `left_time:` and `right_time:`.
      const Field* window = Find(fields, "window");
      const Field* interval = Find(fields, "interval");
      if (window && interval) {
        return Fail(interval->key, who, "a join is a window join or an interval join, not both");
      }
      if (window) {
        p.time = JoinTime::kWindow;
        ARROW_ASSIGN_OR_RAISE(p.window, Duration(window->value, who, "window"));
      } else if (interval) {
        p.time = JoinTime::kInterval;
        ARROW_ASSIGN_OR_RAISE(auto bounds,
                              Fields(interval->value, who, "interval", {"before", "after"}));
        for (const Field& f : bounds) {
          ARROW_ASSIGN_OR_RAISE(std::chrono::milliseconds d,
                                Duration(f.value, who, f.key.Scalar()));
          (f.key.Scalar() == "before" ? p.before : p.after) = d;
        }
      }
      const Field* time = Find(fields, "time");
      const Field* left_time = Find(fields, "left_time");
      const Field* right_time = Find(fields, "right_time");
      if (time && (left_time || right_time)) {
        return Fail((left_time ? left_time : right_time)->key, who,
                    "write either time: (one name on both sides) or left_time: and right_time:");
      }
      if (time) {
        ARROW_ASSIGN_OR_RAISE(p.left_time, String(time->value, who, "time"));
        p.right_time = p.left_time;
      }
      if (left_time) {
        ARROW_ASSIGN_OR_RAISE(p.left_time, String(left_time->value, who, "left_time"));
      }
      if (right_time) {
        ARROW_ASSIGN_OR_RAISE(p.right_time, String(right_time->value, who, "right_time"));
      }
      e->params = std::move(p);
      return arrow::Status::OK();
    }
    case OperatorKind::kParquetSink:
    case OperatorKind::kIpcSink:
    case OperatorKind::kCsvSink: {
      FileSinkParams p;
      p.format = *FileFormatOf(e->kind);
      std::string directory;
      Node at = body;
      if (body.IsScalar()) {
        directory = body.Scalar();
      } else {
        if (body.IsNull()) return Fail(e->kind_key, who, kind, " needs directory:");
        std::vector<std::string_view> valid = {"directory"};
        if (p.format == FileFormat::kCsv) valid.push_back("csv");
        ARROW_ASSIGN_OR_RAISE(auto fields, fields_of(valid));
        for (const Field& f : fields) {
          if (f.key.Scalar() == "directory") {
            ARROW_ASSIGN_OR_RAISE(directory, String(f.value, who, "directory"));
            at = f.value;
          } else {
            ARROW_ASSIGN_OR_RAISE(p.csv, ReadCsv(f.value, who));
          }
        }
      }
      if (directory.empty()) return Fail(at, who, kind, " needs directory: (where files go)");
      p.directory = ResolvePath(directory);
      e->params = std::move(p);
      return arrow::Status::OK();
    }
    case OperatorKind::kConsoleSink: {
      ConsoleSinkParams p;
      ARROW_ASSIGN_OR_RAISE(auto fields, fields_of({"max_rows"}));
      if (const Field* f = Find(fields, "max_rows")) {
        ARROW_ASSIGN_OR_RAISE(p.max_rows, Integer(f->value, who, "max_rows", 0, INT64_MAX));
      }
      e->params = p;
      return arrow::Status::OK();
    }
    case OperatorKind::kCollectSink: {
      ARROW_RETURN_NOT_OK(fields_of({}).status());
      e->params = CollectSinkParams{};
      return arrow::Status::OK();
    }
    case OperatorKind::kVerifySink: {
      ARROW_RETURN_NOT_OK(fields_of({}).status());
      e->params = VerifySinkParams{};
      return arrow::Status::OK();
    }
    case OperatorKind::kFunctionMap:
      return Fail(e->kind_key, who,
                  "a function_map runs a function the process running the job provides (the "
                  "Python package's map of a Python function); a job file cannot carry one");
  }
  return Fail(e->kind_key, who, "unsupported kind");
}

// The YAML key of a plan parameter named in a PlanErrorDetail field ("params.size_ms" ->
// "size", "params.event_time.max_out_of_orderness_ms" -> "event_time").
std::string ParamKey(std::string_view field) {
  std::string_view f = field.substr(std::string_view("params.").size());
  size_t end = f.find_first_of(".[");
  std::string key(f.substr(0, end));
  if (key.size() > 3 && key.compare(key.size() - 3, 3, "_ms") == 0) key.resize(key.size() - 3);
  return key;
}

arrow::Status Reader::PlanError(const arrow::Status& status, const std::vector<Entry>& entries,
                                const std::vector<EdgeOrigin>& origins) const {
  const PlanErrorDetail* detail = PlanErrorDetail::FromStatus(status);
  Node at;
  if (detail && detail->operator_index() && *detail->operator_index() < entries.size()) {
    const Entry& e = entries[*detail->operator_index()];
    at = e.kind_key;
    const std::string& field = detail->field();
    if (field == "name" && Present(e.name_node)) {
      at = e.name_node;
    } else if (field == "parallelism" && Present(e.parallelism_node)) {
      at = e.parallelism_node;
    } else if (field.rfind("params.", 0) == 0 && e.body.IsMap()) {
      std::string key = ParamKey(field);
      for (const auto& kv : e.body) {
        if (kv.first.IsScalar() && kv.first.Scalar() == key) at = kv.second;
      }
      if (key == "left_keys" || key == "right_keys") {
        for (const auto& kv : e.body) {
          if (kv.first.IsScalar() && kv.first.Scalar() == "on") at = kv.second;
        }
      }
    } else if (field.rfind("params", 0) == 0 && e.body.IsDefined() && !e.body.IsNull()) {
      at = e.body;
    }
  } else if (detail && detail->edge_index() && *detail->edge_index() < origins.size()) {
    const EdgeOrigin& o = origins[*detail->edge_index()];
    const Entry& e = entries[o.entry];
    const Entry::InputRef& ref = e.inputs[o.input_ref];
    at = Present(ref.node) ? ref.node : e.kind_key;
    if (detail->field() == "partitioning" && Present(e.partitioning_node)) {
      at = e.partitioning_node;
    }
  }
  return arrow::Status::Invalid(Place(at), ": ", status.message());
}

arrow::Result<JobFile> Reader::Read(const JobFileOverrides& overrides) {
  if (text_.size() > static_cast<size_t>(kMaxJobFileBytes)) {
    return arrow::Status::Invalid(display_, ": the job file has ", text_.size(),
                                  " bytes; at most ", kMaxJobFileBytes, " are read");
  }
  Node root;
  try {
    root = YAML::Load(std::string(text_));
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(Place(e.mark.line, e.mark.column), ": YAML syntax error: ",
                                  e.msg);
  }
  if (!root.IsMap()) {
    return Fail(root, "", "a job file is a map with operators: (and optionally job: and "
                          "options:), got ", Describe(root));
  }
  ARROW_ASSIGN_OR_RAISE(auto top, Fields(root, "", "the job file", {"job", "options", "operators"}));
  std::string name = DefaultJobName(display_);
  JobRunOptions run;
  PlanOptions plan_options;
  if (const Field* job = Find(top, "job")) {
    ARROW_ASSIGN_OR_RAISE(name, String(job->value, "", "job"));
    if (!ValidName(name, kMaxJobNameLength)) {
      return Fail(job->value, "", "job: the name must be 1 to ", kMaxJobNameLength,
                  " letters, digits, '_' or '-' (not first), got ", QuoteInput(name));
    }
  }
  if (const Field* options = Find(top, "options")) {
    ARROW_RETURN_NOT_OK(ReadOptions(options->value, &run, &plan_options));
  }
  const Field* ops = Find(top, "operators");
  if (!ops) return Fail(root, "", "the job file has no operators: list");
  if (!ops->value.IsSequence() || ops->value.size() == 0) {
    return Fail(ops->value, "", "operators: must be a non-empty list, got ", Describe(ops->value));
  }
  if (ops->value.size() > static_cast<size_t>(kMaxPlanOperators)) {
    return Fail(ops->value, "", "operators: ", ops->value.size(), " entries; at most ",
                kMaxPlanOperators, " are allowed");
  }

  // Entries, names.
  std::vector<Entry> entries(ops->value.size());
  {
    size_t i = 0;
    for (const Node& node : ops->value) {
      ARROW_RETURN_NOT_OK(ReadEntry(node, i, &entries[i]));
      ++i;
    }
  }
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!Present(entries[i].name_node)) continue;
    auto [it, inserted] = by_name.emplace(entries[i].name, i);
    if (!inserted) {
      return Fail(entries[i].name_node, "", "operator name ", QuoteInput(entries[i].name),
                  " is also the name of the operator at ",
                  Place(entries[it->second].name_node));
    }
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (Present(entries[i].name_node)) continue;
    std::string base(OperatorKindName(entries[i].kind));
    std::string candidate = base;
    for (int n = 2; by_name.count(candidate); ++n) candidate = base + "_" + std::to_string(n);
    entries[i].name = candidate;
    by_name.emplace(candidate, i);
  }
  for (const auto& [op, parallelism] : overrides.parallelism) {
    auto it = by_name.find(op);
    if (it == by_name.end()) {
      std::vector<std::string> names;
      for (const Entry& e : entries) names.push_back(e.name);
      return arrow::Status::Invalid(display_, ": parallelism override for ", QuoteInput(op),
                                    ": the job has no such operator (operators: ",
                                    JoinNames(names), ")");
    }
    Entry& e = entries[it->second];
    if (e.kind == OperatorKind::kKeyBy) {
      return arrow::Status::Invalid(display_, ": parallelism override for ", QuoteInput(op),
                                    ": a key_by takes its input's parallelism");
    }
    if (parallelism < 1 || parallelism > kMaxOperatorParallelism) {
      return arrow::Status::Invalid(display_, ": parallelism override for ", QuoteInput(op),
                                    ": parallelism must be between 1 and ",
                                    kMaxOperatorParallelism, ", got ", parallelism);
    }
    e.parallelism = parallelism;
  }

  // Parameters and partitioning requests.
  for (Entry& e : entries) {
    ARROW_RETURN_NOT_OK(ReadParams(&e));
    if (Present(e.partitioning_node)) {
      ARROW_ASSIGN_OR_RAISE(e.partitioning, ReadPartitioning(e.partitioning_node, Who(e)));
    }
  }

  // Inputs: named, or the entry before.
  for (size_t i = 0; i < entries.size(); ++i) {
    Entry& e = entries[i];
    if (IsSource(e.kind)) continue;
    if (e.inputs.empty()) {
      if (i == 0) {
        return Fail(e.kind_key, Who(e), "the first operator must be a source (",
                    OperatorKindName(e.kind), " reads the output of another operator)");
      }
      if (IsSink(entries[i - 1].kind)) {
        return Fail(e.kind_key, Who(e), "the entry before it, ", QuoteInput(entries[i - 1].name),
                    ", is a sink and has no output; name this operator's input with input:");
      }
      e.inputs.push_back({entries[i - 1].name, Node(), 0, i - 1});
      continue;
    }
    for (auto& ref : e.inputs) {
      auto it = by_name.find(ref.name);
      if (it == by_name.end()) {
        std::vector<std::string> names;
        for (const Entry& other : entries) {
          if (&other != &e) names.push_back(other.name);
        }
        return Fail(ref.node, Who(e), "unknown input ", QuoteInput(ref.name), " (operators: ",
                    JoinNames(names), ")");
      }
      if (it->second == i) return Fail(ref.node, Who(e), "an operator cannot read itself");
      ref.from = it->second;
    }
  }

  // Cycles: a depth-first walk along inputs, in file order.
  {
    std::vector<int> state(entries.size(), 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::pair<size_t, size_t>> path;  // (entry, input ref taken)
    for (size_t start = 0; start < entries.size(); ++start) {
      if (state[start] != 0) continue;
      std::vector<std::pair<size_t, size_t>> stack = {{start, 0}};
      state[start] = 1;
      while (!stack.empty()) {
        auto& [cur, next] = stack.back();
        if (next == entries[cur].inputs.size()) {
          state[cur] = 2;
          stack.pop_back();
          continue;
        }
        size_t ref = next++;
        size_t from = entries[cur].inputs[ref].from;
        if (state[from] == 1) {
          // The stack from `from` to `cur` is a cycle (against the data flow).
          size_t k = 0;
          while (stack[k].first != from) ++k;
          // Each stack entry reads the next one: print the cycle along the data flow.
          std::vector<std::string> names;
          for (size_t j = k; j < stack.size(); ++j) names.push_back(entries[stack[j].first].name);
          std::string flow;
          for (size_t j = names.size(); j-- > 0;) flow += QuoteInput(names[j]) + " -> ";
          flow += QuoteInput(names.back());
          const Entry::InputRef& r = entries[cur].inputs[ref];
          return Fail(Present(r.node) ? r.node : entries[cur].kind_key, Who(entries[cur]),
                      "the job has a cycle: ", flow);
        }
        if (state[from] == 0) {
          state[from] = 1;
          stack.push_back({from, 0});
        }
      }
    }
  }

  // Parallelism, by the builder's rules, in an order where inputs come first.
  {
    std::vector<int32_t> resolved(entries.size(), 0);
    std::function<int32_t(size_t)> resolve = [&](size_t i) -> int32_t {
      if (resolved[i] != 0) return resolved[i];
      Entry& e = entries[i];
      int32_t p = 1;
      if (e.parallelism) {
        p = *e.parallelism;
      } else {
        std::vector<size_t> consumers;
        for (size_t j = 0; j < entries.size(); ++j) {
          for (const auto& ref : entries[j].inputs) {
            if (ref.from == i) consumers.push_back(j);
          }
        }
        if (e.kind == OperatorKind::kWindow && consumers.size() == 1 &&
            entries[consumers[0]].kind == OperatorKind::kAggregate &&
            entries[consumers[0]].parallelism) {
          p = *entries[consumers[0]].parallelism;
        } else if (!e.inputs.empty()) {
          p = resolve(e.inputs[0].from);
        }
      }
      resolved[i] = p;
      return p;
    };
    for (size_t i = 0; i < entries.size(); ++i) resolve(i);
    for (size_t i = 0; i < entries.size(); ++i) entries[i].parallelism = resolved[i];
  }

  std::vector<OperatorSpec> specs;
  std::vector<EdgeSpec> edges;
  std::vector<EdgeOrigin> origins;
  std::vector<JobFileLocation> locations;
  for (size_t i = 0; i < entries.size(); ++i) {
    Entry& e = entries[i];
    specs.push_back(OperatorSpec{static_cast<OperatorId>(i), e.name, *e.parallelism, e.params});
    locations.push_back(Location(e.kind_key));
    for (size_t r = 0; r < e.inputs.size(); ++r) {
      edges.push_back(EdgeSpec{static_cast<OperatorId>(e.inputs[r].from),
                               static_cast<OperatorId>(i), e.inputs[r].input, e.partitioning});
      origins.push_back({i, r});
    }
  }
  auto plan = LogicalPlan::Make(std::move(specs), std::move(edges), plan_options);
  if (!plan.ok()) return PlanError(plan.status(), entries, origins);
  std::vector<JobFileExpression> expressions;
  for (const Entry& e : entries) {
    for (const auto& [label, geometry] : e.expressions) expressions.push_back({e.name, label, geometry});
  }
  return JobFile{std::move(name), std::move(*plan), std::move(run), std::move(locations),
                 display_, std::move(expressions)};
}

// ---- writing -------------------------------------------------------------------------------

// A YAML double-quoted string.
std::string YamlString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string YamlList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + YamlString(items[i]);
  return out + "]";
}

std::string YamlNumber(double d) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", d);
  return buf;
}

std::string FormatByteSize(int64_t bytes) {
  constexpr std::pair<int64_t, const char*> kUnits[] = {
      {int64_t{1} << 30, "GiB"}, {int64_t{1} << 20, "MiB"}, {int64_t{1} << 10, "KiB"}};
  for (const auto& [size, unit] : kUnits) {
    if (bytes % size == 0) return std::to_string(bytes / size) + unit;
  }
  return std::to_string(bytes) + "B";
}

std::string Boundary(const BoundaryValue& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const double* d = std::get_if<double>(&v)) {
    std::string s = YamlNumber(*d);
    // Keep it a double when read back.
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
    return s;
  }
  return YamlString(std::get<std::string>(v));
}

std::string EventTimeYaml(const EventTimeSpec& et) {
  return "{column: " + YamlString(et.column) +
         ", max_out_of_orderness: " + FormatDuration(et.max_out_of_orderness) + "}";
}

std::string CsvYaml(const CsvFormatOptions& csv) {
  return std::string("{delimiter: ") + YamlString(std::string(1, csv.delimiter)) +
         ", has_header: " + (csv.has_header ? "true" : "false") + "}";
}

std::string ParamsYaml(const OperatorParams& params) {
  constexpr const char* kIndent = "      ";
  std::ostringstream out;
  std::visit(
      [&](const auto& p) {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, GeneratorSourceParams>) {
          out << kIndent << "table: " << GeneratorTableName(p.table) << "\n"
              << kIndent << "rows: " << p.rows << "\n"
              << kIndent << "batch_rows: " << p.batch_rows << "\n"
              << kIndent << "key_cardinality: " << p.key_cardinality << "\n"
              << kIndent << "distribution: " << KeyDistributionKindName(p.distribution) << "\n"
              << kIndent << "hot_key_fraction: " << YamlNumber(p.hot_key_fraction) << "\n"
              << kIndent << "string_key: " << (p.string_key ? "true" : "false") << "\n"
              << kIndent << "payload_columns: " << p.payload_columns << "\n"
              << kIndent << "seed: " << p.seed << "\n"
              << kIndent << "rows_per_second: " << YamlNumber(p.rows_per_second) << "\n";
          if (p.event_time) out << kIndent << "event_time: " << EventTimeYaml(*p.event_time) << "\n";
        } else if constexpr (std::is_same_v<P, FileSourceParams>) {
          out << kIndent << "paths: " << YamlList(p.paths) << "\n";
          if (p.format == FileFormat::kCsv) out << kIndent << "csv: " << CsvYaml(p.csv) << "\n";
          if (p.event_time) out << kIndent << "event_time: " << EventTimeYaml(*p.event_time) << "\n";
        } else if constexpr (std::is_same_v<P, MapParams> || std::is_same_v<P, ProjectParams>) {
          out << kIndent << "columns:\n";
          for (const NamedExpression& c : p.columns) {
            out << kIndent << "  " << YamlString(c.name) << ": " << YamlString(c.expression)
                << "\n";
          }
        } else if constexpr (std::is_same_v<P, FilterParams>) {
          out << kIndent << "predicate: " << YamlString(p.predicate) << "\n";
        } else if constexpr (std::is_same_v<P, KeyByParams>) {
          out << kIndent << "keys: " << YamlList(p.keys) << "\n";
        } else if constexpr (std::is_same_v<P, WindowParams>) {
          out << kIndent << "type: " << WindowTypeName(p.type) << "\n";
          if (p.size.count() != 0) out << kIndent << "size: " << FormatDuration(p.size) << "\n";
          if (p.slide.count() != 0) out << kIndent << "slide: " << FormatDuration(p.slide) << "\n";
          if (p.gap.count() != 0) out << kIndent << "gap: " << FormatDuration(p.gap) << "\n";
          if (p.time != TimeDomain::kEventTime) {
            out << kIndent << "time: " << TimeDomainName(p.time) << "\n";
          }
          if (!p.time_column.empty()) {
            out << kIndent << "time_column: " << YamlString(p.time_column) << "\n";
          }
          if (p.allowed_lateness.count() != 0) {
            out << kIndent << "allowed_lateness: " << FormatDuration(p.allowed_lateness) << "\n";
          }
          if (p.late_output) {
            out << kIndent << "late_output: {format: " << FileFormatName(p.late_output->format)
                << ", directory: " << YamlString(p.late_output->directory);
            if (p.late_output->format == FileFormat::kCsv) {
              out << ", csv: " << CsvYaml(p.late_output->csv);
            }
            out << "}\n";
          }
        } else if constexpr (std::is_same_v<P, AggregateParams>) {
          out << kIndent << "aggregates:\n";
          for (const AggregateSpec& a : p.aggregates) {
            std::string text = std::string(AggregateFunctionName(a.function)) + "(" +
                               (a.column.empty() ? "*" : a.column) + ")";
            if (!a.alias.empty()) text += " as " + a.alias;
            out << kIndent << "  - " << YamlString(text) << "\n";
          }
        } else if constexpr (std::is_same_v<P, JoinParams>) {
          out << kIndent << "left_keys: " << YamlList(p.left_keys) << "\n"
              << kIndent << "right_keys: " << YamlList(p.right_keys) << "\n"
              << kIndent << "how: " << JoinTypeName(p.how) << "\n";
          if (p.broadcast != JoinBroadcast::kNone) {
            out << kIndent << "broadcast: " << JoinBroadcastName(p.broadcast) << "\n";
          }
          if (p.time != JoinTime::kNone) {
            out << kIndent << "left_time: " << YamlString(p.left_time) << "\n"
                << kIndent << "right_time: " << YamlString(p.right_time) << "\n";
          }
          if (p.time == JoinTime::kWindow) {
            out << kIndent << "window: " << FormatDuration(p.window) << "\n";
          } else if (p.time == JoinTime::kInterval) {
            out << kIndent << "interval: {before: " << FormatDuration(p.before)
                << ", after: " << FormatDuration(p.after) << "}\n";
          }
        } else if constexpr (std::is_same_v<P, FileSinkParams>) {
          out << kIndent << "directory: " << YamlString(p.directory) << "\n";
          if (p.format == FileFormat::kCsv) out << kIndent << "csv: " << CsvYaml(p.csv) << "\n";
        } else if constexpr (std::is_same_v<P, ConsoleSinkParams>) {
          out << kIndent << "max_rows: " << p.max_rows << "\n";
        }
      },
      params);
  return out.str();
}

std::string PartitioningYaml(const PartitioningRequest& r) {
  switch (r.kind) {
    case PartitioningKind::kNone:
      return "";
    case PartitioningKind::kRebalance:
      return "rebalance";
    case PartitioningKind::kBroadcast:
      return "broadcast";
    case PartitioningKind::kForward:
      return "forward";
    case PartitioningKind::kHash:
      return "{hash: " + YamlList(r.keys) + "}";
    case PartitioningKind::kRange: {
      std::string out = "{range: {keys: " + YamlList(r.keys);
      if (!r.boundaries.empty()) {
        out += ", boundaries: [";
        for (size_t i = 0; i < r.boundaries.size(); ++i) {
          out += i ? ", [" : "[";
          for (size_t j = 0; j < r.boundaries[i].size(); ++j) {
            out += (j ? ", " : "") + Boundary(r.boundaries[i][j]);
          }
          out += "]";
        }
        out += "]";
      }
      return out + "}}";
    }
  }
  return "";
}

}  // namespace

std::string JobFile::PlaceOf(std::string_view operator_name) const {
  const auto& ops = plan.operators();
  for (size_t i = 0; i < ops.size() && i < operator_locations.size(); ++i) {
    if (ops[i].name == operator_name && operator_locations[i].line > 0) {
      return display_name + ":" + std::to_string(operator_locations[i].line) + ":" +
             std::to_string(operator_locations[i].column);
    }
  }
  return display_name;
}

JobFileLocation ScalarGeometry::Locate(int32_t text_line, int32_t text_column) const {
  if (text_line < 1 || text_column < 1) return {};
  switch (style) {
    case kPlain:
    case kQuoted:
      if (text_line == 1) return {line, column + text_column - 1};
      return {};
    case kLiteralBlock:
      return {line + text_line - 1, column + text_column - 1};
    case kFoldedBlock:
      return {line, column};
    case kUnknown:
      break;
  }
  return {};
}

std::string JobFile::PlaceOfExpressionError(std::string_view message) const {
  constexpr std::string_view kMarker = "operator '";
  size_t start = message.find(kMarker);
  if (start == std::string_view::npos) return "";
  start += kMarker.size();
  size_t end = message.find('\'', start);
  if (end == std::string_view::npos) return "";
  std::string_view op = message.substr(start, end - start);
  for (const JobFileExpression& e : expressions) {
    if (e.op != op) continue;
    size_t label = message.find(e.label + ": ", end);
    if (label == std::string_view::npos) continue;
    // The first " at L:C" after the label.
    for (size_t at = message.find(" at ", label); at != std::string_view::npos;
         at = message.find(" at ", at + 1)) {
      int line = 0, column = 0;
      std::string rest(message.substr(at + 4, 24));
      char after = 0;
      int n = std::sscanf(rest.c_str(), "%d:%d%c", &line, &column, &after);
      if (n < 2 || (n == 3 && after != ' ' && after != ';' && after != ',' && after != ':')) {
        continue;
      }
      JobFileLocation place = e.geometry.Locate(line, column);
      if (place.line == 0) return "";
      return display_name + ":" + std::to_string(place.line) + ":" + std::to_string(place.column);
    }
    return "";
  }
  return "";
}

arrow::Result<JobFile> ParseJobFile(std::string_view text, std::string display_name,
                                    std::string base_directory,
                                    const JobFileOverrides& overrides) {
  Reader reader(text, std::move(display_name), std::move(base_directory));
  return reader.Read(overrides);
}

arrow::Result<JobFile> ReadJobFile(const std::string& path, const JobFileOverrides& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return arrow::Status::IOError(path, ": is a directory, not a job file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return arrow::Status::IOError(path, ": cannot open the job file");
  std::string text;
  char buf[64 * 1024];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > static_cast<size_t>(kMaxJobFileBytes)) {
      return arrow::Status::Invalid(path, ": the job file is larger than ", kMaxJobFileBytes,
                                    " bytes");
    }
  }
  if (in.bad()) return arrow::Status::IOError(path, ": cannot read the job file");
  std::filesystem::path base = std::filesystem::absolute(path, ec).parent_path();
  return ParseJobFile(text, path, base.string(), overrides);
}

arrow::Result<std::string> FormatJobFile(std::string_view name, const LogicalPlan& plan,
                                         const JobRunOptions& options) {
  std::ostringstream out;
  out << "job: " << YamlString(name) << "\n";
  const PlanOptions& po = plan.options();
  std::ostringstream opts;
  if (po.shuffle_mode != ShuffleMode::kPipelined) opts << "  shuffle_mode: blocking\n";
  if (!po.chaining) opts << "  chaining: false\n";
  if (po.lineage_recovery) opts << "  lineage_recovery: true\n";
  if (po.idle_timeout.count() != 0) {
    opts << "  idle_timeout: " << FormatDuration(po.idle_timeout) << "\n";
  }
  if (po.checkpoint != CheckpointOptions{}) {
    const CheckpointOptions& c = po.checkpoint;
    char backoff[32];
    std::snprintf(backoff, sizeof(backoff), "%.17g", c.restart_backoff);
    opts << "  checkpoint:\n"
         << "    interval: " << FormatDuration(c.interval) << "\n"
         << "    directory: " << YamlString(c.directory) << "\n"
         << "    retained: " << c.retained << "\n"
         << "    max_restarts: " << c.max_restarts << "\n"
         << "    restart_delay: " << FormatDuration(c.restart_delay) << "\n"
         << "    restart_backoff: " << backoff << "\n"
         << "    max_restart_delay: " << FormatDuration(c.max_restart_delay) << "\n";
  }
  if (options.threads) opts << "  threads: " << *options.threads << "\n";
  if (options.memory_budget_bytes) {
    opts << "  memory_budget: " << FormatByteSize(*options.memory_budget_bytes) << "\n";
  }
  if (!options.spill_directory.empty()) {
    opts << "  spill_directory: " << YamlString(options.spill_directory) << "\n";
  }
  if (!options.progress) opts << "  progress: false\n";
  if (options.state_budget_bytes) {
    opts << "  state_budget: " << FormatByteSize(*options.state_budget_bytes) << "\n";
  }
  if (!opts.str().empty()) out << "options:\n" << opts.str();
  out << "operators:\n";
  for (const OperatorSpec& op : plan.operators()) {
    OperatorKind kind = op.kind();
    if (kind == OperatorKind::kTableSource) {
      return arrow::Status::Invalid("operator ", QuoteInput(op.name), ": ", kNoTableSource);
    }
    out << "  - name: " << YamlString(op.name) << "\n";
    if (kind != OperatorKind::kKeyBy) out << "    parallelism: " << op.parallelism << "\n";
    const std::vector<size_t>& in = plan.InputEdges(op.id);
    if (!in.empty()) {
      const PartitioningRequest& request = plan.edges()[in[0]].partitioning;
      for (size_t e : in) {
        if (!(plan.edges()[e].partitioning == request)) {
          return arrow::Status::Invalid(
              "operator ", QuoteInput(op.name),
              ": its input edges ask for different partitionings, which a job file cannot "
              "write (one partitioning: per operator)");
        }
      }
      // Quoted: a name such as "null" or "123" must stay a string.
      auto name_of = [&](size_t e) {
        return YamlString(plan.FindOperator(plan.edges()[e].from)->name);
      };
      if (kind == OperatorKind::kJoin) {
        for (size_t e : in) {
          out << "    " << (plan.edges()[e].input == 0 ? "left: " : "right: ") << name_of(e)
              << "\n";
        }
      } else if (in.size() == 1) {
        out << "    input: " << name_of(in[0]) << "\n";
      } else {
        out << "    input: [";
        for (size_t k = 0; k < in.size(); ++k) out << (k ? ", " : "") << name_of(in[k]);
        out << "]\n";
      }
      std::string p = PartitioningYaml(request);
      if (!p.empty()) out << "    partitioning: " << p << "\n";
    }
    std::string params = ParamsYaml(op.params);
    out << "    " << OperatorKindName(kind) << ":" << (params.empty() ? " {}\n" : "\n") << params;
  }
  return out.str();
}

arrow::Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  constexpr std::string_view kHelp = " (write a number and a unit: ms, s, m or h, e.g. 5s, 250ms, 1m30s)";
  std::string s = Trim(text);
  if (s.empty()) return arrow::Status::Invalid("empty duration", kHelp);
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return arrow::Status::Invalid("bad duration ", QuoteInput(s), kHelp);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(s.data() + start, s.data() + i, value);
    if (ec != std::errc()) return arrow::Status::Invalid("duration ", QuoteInput(s), " is too large");
    while (i < s.size() && s[i] == ' ') ++i;
    size_t unit_start = i;
    while (i < s.size() && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) ++i;
    std::string unit = Lower(std::string_view(s).substr(unit_start, i - unit_start));
    int64_t scale = 0;
    if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m" || unit == "min") scale = 60 * 1000;
    else if (unit == "h") scale = 3600 * 1000;
    while (i < s.size() && s[i] == ' ') ++i;
    if (scale == 0) {
      return arrow::Status::Invalid("bad duration ", QuoteInput(s),
                                    unit.empty() ? ": a number needs a unit" : ": unknown unit " + QuoteInput(unit),
                                    kHelp);
    }
    if (value > (INT64_MAX - total) / scale) {
      return arrow::Status::Invalid("duration ", QuoteInput(s), " is too large");
    }
    total += value * scale;
  }
  return std::chrono::milliseconds(total);
}

arrow::Result<int64_t> ParseByteSize(std::string_view text) {
  constexpr std::string_view kHelp = " (write a number and a unit: B, KiB, MiB or GiB, e.g. 256MiB)";
  std::string s = Trim(text);
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0) return arrow::Status::Invalid("bad size ", QuoteInput(s), kHelp);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + i, value);
  if (ec != std::errc()) return arrow::Status::Invalid("size ", QuoteInput(s), " is too large");
  std::string unit = Trim(std::string_view(s).substr(i));
  int64_t scale = 0;
  if (unit == "B") scale = 1;
  else if (unit == "KiB") scale = int64_t{1} << 10;
  else if (unit == "MiB") scale = int64_t{1} << 20;
  else if (unit == "GiB") scale = int64_t{1} << 30;
  if (scale == 0) {
    return arrow::Status::Invalid("bad size ", QuoteInput(s),
                                  unit.empty() ? ": a number needs a unit" : ": unknown unit " + QuoteInput(unit),
                                  kHelp);
  }
  if (value > INT64_MAX / scale) return arrow::Status::Invalid("size ", QuoteInput(s), " is too large");
  return value * scale;
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count();
  if (ms == 0) return "0ms";
  std::string out;
  if (ms < 0) return std::to_string(ms) + "ms";  // never read back: durations are >= 0
  constexpr std::pair<int64_t, const char*> kUnits[] = {
      {3600 * 1000, "h"}, {60 * 1000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& [size, unit] : kUnits) {
    if (ms >= size) {
      out += std::to_string(ms / size) + unit;
      ms %= size;
    }
  }
  return out;
}

}  // namespace sabot
