#include "sabot/dataflow/logical_plan.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <unordered_map>
#include <utility>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/expression_parser.h"

namespace sabot {

namespace {

template <typename Enum, size_t N>
using NameTable = std::array<std::pair<Enum, std::string_view>, N>;

template <typename Enum, size_t N>
std::string_view NameOf(const NameTable<Enum, N>& table, Enum value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "?";
}

template <typename Enum, size_t N>
arrow::Result<Enum> ParseName(const NameTable<Enum, N>& table, std::string_view name,
                              std::string_view what) {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  std::string allowed;
  for (const auto& [v, n] : table) {
    if (!allowed.empty()) allowed += ", ";
    allowed += n;
  }
  return arrow::Status::Invalid("unknown ", what, " ", QuoteInput(name), " (expected one of: ",
                                allowed, ")");
}

constexpr NameTable<OperatorKind, 19> kKindNames{{
    {OperatorKind::kGeneratorSource, "generator_source"},
    {OperatorKind::kParquetSource, "parquet_source"},
    {OperatorKind::kIpcSource, "ipc_source"},
    {OperatorKind::kCsvSource, "csv_source"},
    {OperatorKind::kTableSource, "table_source"},
    {OperatorKind::kMap, "map"},
    {OperatorKind::kFilter, "filter"},
    {OperatorKind::kProject, "project"},
    {OperatorKind::kKeyBy, "key_by"},
    {OperatorKind::kWindow, "window"},
    {OperatorKind::kAggregate, "aggregate"},
    {OperatorKind::kJoin, "join"},
    {OperatorKind::kParquetSink, "parquet_sink"},
    {OperatorKind::kIpcSink, "ipc_sink"},
    {OperatorKind::kCsvSink, "csv_sink"},
    {OperatorKind::kConsoleSink, "console_sink"},
    {OperatorKind::kCollectSink, "collect_sink"},
    {OperatorKind::kVerifySink, "verify_sink"},
    {OperatorKind::kFunctionMap, "function_map"},
}};
constexpr NameTable<GeneratorTable, 2> kTableNames{{
    {GeneratorTable::kShuffle, "shuffle"},
    {GeneratorTable::kTransactions, "transactions"},
}};
constexpr NameTable<KeyDistributionKind, 2> kDistributionNames{{
    {KeyDistributionKind::kUniform, "uniform"},
    {KeyDistributionKind::kSkewed, "skewed"},
}};
constexpr NameTable<FileFormat, 3> kFormatNames{{
    {FileFormat::kParquet, "parquet"},
    {FileFormat::kIpc, "ipc"},
    {FileFormat::kCsv, "csv"},
}};
constexpr NameTable<WindowType, 3> kWindowNames{{
    {WindowType::kTumbling, "tumbling"},
    {WindowType::kSliding, "sliding"},
    {WindowType::kSession, "session"},
}};
constexpr NameTable<AggregateFunction, 9> kFunctionNames{{
    {AggregateFunction::kCount, "count"},
    {AggregateFunction::kSum, "sum"},
    {AggregateFunction::kMin, "min"},
    {AggregateFunction::kMax, "max"},
    {AggregateFunction::kMean, "mean"},
    {AggregateFunction::kCountDistinct, "count_distinct"},
    {AggregateFunction::kFirst, "first"},
    {AggregateFunction::kLast, "last"},
    {AggregateFunction::kApproxMedian, "approx_median"},
}};
constexpr NameTable<JoinType, 8> kJoinNames{{
    {JoinType::kInner, "inner"},
    {JoinType::kLeft, "left"},
    {JoinType::kRight, "right"},
    {JoinType::kFull, "full"},
    {JoinType::kSemi, "semi"},
    {JoinType::kAnti, "anti"},
    {JoinType::kRightSemi, "right_semi"},
    {JoinType::kRightAnti, "right_anti"},
}};
constexpr NameTable<JoinTime, 3> kJoinTimeNames{{
    {JoinTime::kNone, "none"},
    {JoinTime::kWindow, "window"},
    {JoinTime::kInterval, "interval"},
}};
constexpr NameTable<JoinBroadcast, 3> kJoinBroadcastNames{{
    {JoinBroadcast::kNone, "none"},
    {JoinBroadcast::kLeft, "left"},
    {JoinBroadcast::kRight, "right"},
}};
constexpr NameTable<TimeDomain, 2> kTimeDomainNames{{
    {TimeDomain::kEventTime, "event_time"},
    {TimeDomain::kProcessingTime, "processing_time"},
}};
constexpr NameTable<PartitioningKind, 6> kPartitioningNames{{
    {PartitioningKind::kNone, "none"},
    {PartitioningKind::kHash, "hash"},
    {PartitioningKind::kRebalance, "rebalance"},
    {PartitioningKind::kBroadcast, "broadcast"},
    {PartitioningKind::kRange, "range"},
    {PartitioningKind::kForward, "forward"},
}};

// Source and sink kinds per file format.
struct FileKinds {
  FileFormat format;
  OperatorKind source;
  OperatorKind sink;
};
constexpr std::array<FileKinds, 3> kFileKinds{{
    {FileFormat::kParquet, OperatorKind::kParquetSource, OperatorKind::kParquetSink},
    {FileFormat::kIpc, OperatorKind::kIpcSource, OperatorKind::kIpcSink},
    {FileFormat::kCsv, OperatorKind::kCsvSource, OperatorKind::kCsvSink},
}};

OperatorKind FileKind(FileFormat format, bool sink) {
  for (const FileKinds& k : kFileKinds) {
    if (k.format == format) return sink ? k.sink : k.source;
  }
  return sink ? OperatorKind::kParquetSink : OperatorKind::kParquetSource;
}

// "operator 'name' (id 3)": how every error names an operator.
std::string Label(const OperatorSpec& op) {
  return "operator " + QuoteInput(op.name) + " (id " + std::to_string(op.id) + ")";
}

std::string EdgeLabel(const EdgeSpec& edge, const OperatorSpec* from, const OperatorSpec* to) {
  std::string out = "edge ";
  out += from ? QuoteInput(from->name) : "id " + std::to_string(edge.from);
  out += " -> ";
  out += to ? QuoteInput(to->name) : "id " + std::to_string(edge.to);
  if (edge.input != 0) out += " (input " + std::to_string(edge.input) + ")";
  return out;
}

arrow::Status ParamError(const OperatorSpec& op, std::string_view param, const std::string& what) {
  return arrow::Status::Invalid(Label(op), ": parameter '", param, "': ", what)
      .WithDetail(std::make_shared<PlanErrorDetail>(std::nullopt, std::nullopt,
                                                    "params." + std::string(param)));
}

arrow::Status CheckName(const OperatorSpec& op) {
  const std::string& name = op.name;
  if (name.empty()) return arrow::Status::Invalid("operator with id ", op.id, " has an empty name");
  if (name.size() > kMaxOperatorNameLength) {
    return arrow::Status::Invalid(Label(op), ": name is ", name.size(),
                                  " characters long; at most ", kMaxOperatorNameLength,
                                  " are allowed");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (c == '-' && i > 0);
    if (!ok) {
      return arrow::Status::Invalid(Label(op), ": name has a character not allowed at position ",
                                    i, " (allowed: letters, digits, '_', and '-' after the first)");
    }
  }
  return arrow::Status::OK();
}

// Column lists: non-empty when `required`, names non-empty and distinct.
arrow::Status CheckColumns(const OperatorSpec& op, std::string_view param,
                           const std::vector<std::string>& columns, bool required) {
  if (required && columns.empty()) return ParamError(op, param, "must name at least one column");
  std::set<std::string_view> seen;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].empty()) {
      return ParamError(op, param, "column " + std::to_string(i) + " is empty");
    }
    if (!seen.insert(columns[i]).second) {
      return ParamError(op, param, "column " + QuoteInput(columns[i]) + " appears twice");
    }
  }
  return arrow::Status::OK();
}

arrow::Status CheckEventTime(const OperatorSpec& op, const std::optional<EventTimeSpec>& et) {
  if (!et) return arrow::Status::OK();
  if (et->column.empty()) return ParamError(op, "event_time.column", "must not be empty");
  if (et->max_out_of_orderness.count() < 0) {
    return ParamError(op, "event_time.max_out_of_orderness_ms",
                      "must be >= 0, got " + std::to_string(et->max_out_of_orderness.count()));
  }
  return arrow::Status::OK();
}

// `prefix` locates the options inside the parameters ("late_output." for a window's).
arrow::Status CheckCsv(const OperatorSpec& op, FileFormat format, const CsvFormatOptions& csv,
                       const std::string& prefix = "") {
  if (format != FileFormat::kCsv) {
    if (!(csv == CsvFormatOptions{})) {
      return ParamError(op, prefix + "csv", "CSV options are only allowed with the csv format");
    }
    return arrow::Status::OK();
  }
  char d = csv.delimiter;
  if (d == '\n' || d == '\r' || d == '"' || d == '\0' || static_cast<unsigned char>(d) >= 0x80) {
    return ParamError(op, prefix + "csv.delimiter",
                      "must be one ASCII character other than newline, carriage return, NUL "
                      "and '\"'");
  }
  return arrow::Status::OK();
}

arrow::Status CheckExpressions(const OperatorSpec& op, const std::vector<NamedExpression>& cols) {
  if (cols.empty()) return ParamError(op, "columns", "must hold at least one expression");
  std::set<std::string_view> seen;
  for (size_t i = 0; i < cols.size(); ++i) {
    std::string param = "columns[" + std::to_string(i) + "]";
    if (cols[i].name.empty()) return ParamError(op, param + ".name", "must not be empty");
    if (cols[i].expression.empty()) {
      return ParamError(op, param + ".expression", "must not be empty");
    }
    if (!seen.insert(cols[i].name).second) {
      return ParamError(op, param + ".name",
                        "output column " + QuoteInput(cols[i].name) + " appears twice");
    }
  }
  return arrow::Status::OK();
}

std::string Ms(std::chrono::milliseconds ms) { return std::to_string(ms.count()); }

// The keys a stateless single-input operator passes on from its input's `keys`: rows never move
// between tasks through a filter, map or project, so its output stays partitioned by the key
// columns as long as it keeps them unchanged. A filter keeps every column; a map keeps the keys
// unless it assigns one of them; a project keeps them only if each key column is output as a
// plain reference to itself under its own name (map_filter_project.h). Empty otherwise.
std::vector<std::string> KeysPassedOn(const OperatorSpec& op, std::vector<std::string> keys) {
  auto is_key = [&](const std::string& name) {
    return std::find(keys.begin(), keys.end(), name) != keys.end();
  };
  switch (op.kind()) {
    case OperatorKind::kFilter:
      return keys;
    case OperatorKind::kMap:
      for (const NamedExpression& column : std::get<MapParams>(op.params).columns) {
        if (is_key(column.name)) return {};
      }
      return keys;
    case OperatorKind::kProject: {
      const auto& columns = std::get<ProjectParams>(op.params).columns;
      for (const std::string& key : keys) {
        bool kept = false;
        for (const NamedExpression& column : columns) {
          if (column.name != key) continue;
          // An unparsable expression is reported when the operator is bound; here it keeps
          // nothing.
          auto parsed = ParseExpression(column.expression);
          if (parsed.ok() && (*parsed)->kind == ExprKind::kColumn && (*parsed)->text == key) {
            kept = true;
            break;
          }
        }
        if (!kept) return {};
      }
      return keys;
    }
    default:
      return {};
  }
}

arrow::Status CheckWindow(const OperatorSpec& op, const WindowParams& w) {
  auto positive = [&](std::string_view param, std::chrono::milliseconds v) -> arrow::Status {
    if (v.count() <= 0) return ParamError(op, param, "must be > 0, got " + Ms(v));
    return arrow::Status::OK();
  };
  auto unused = [&](std::string_view param, std::chrono::milliseconds v) -> arrow::Status {
    if (v.count() != 0) {
      return ParamError(op, param,
                        std::string("is not used by a ") + std::string(WindowTypeName(w.type)) +
                            " window and must be 0, got " + Ms(v));
    }
    return arrow::Status::OK();
  };
  switch (w.type) {
    case WindowType::kTumbling:
      ARROW_RETURN_NOT_OK(positive("size_ms", w.size));
      ARROW_RETURN_NOT_OK(unused("slide_ms", w.slide));
      ARROW_RETURN_NOT_OK(unused("gap_ms", w.gap));
      break;
    case WindowType::kSliding:
      ARROW_RETURN_NOT_OK(positive("size_ms", w.size));
      ARROW_RETURN_NOT_OK(positive("slide_ms", w.slide));
      if (w.slide > w.size) {
        return ParamError(op, "slide_ms",
                          "must be <= size_ms (" + Ms(w.size) + "), got " + Ms(w.slide));
      }
      if (const int64_t per_row = (w.size.count() - 1) / w.slide.count() + 1;
          per_row > kMaxWindowsPerRow) {
        const std::chrono::milliseconds least((w.size.count() - 1) / kMaxWindowsPerRow + 1);
        return ParamError(op, "slide_ms",
                          "size_ms " + Ms(w.size) + " / slide_ms " + Ms(w.slide) +
                              " puts each row into " + std::to_string(per_row) +
                              " windows; at most " + std::to_string(kMaxWindowsPerRow) +
                              " are allowed: use a slide of at least " + Ms(least) + " ms");
      }
      ARROW_RETURN_NOT_OK(unused("gap_ms", w.gap));
      break;
    case WindowType::kSession:
      ARROW_RETURN_NOT_OK(positive("gap_ms", w.gap));
      ARROW_RETURN_NOT_OK(unused("size_ms", w.size));
      ARROW_RETURN_NOT_OK(unused("slide_ms", w.slide));
      break;
    default:
      return ParamError(op, "type", "unknown window type");
  }
  if (w.allowed_lateness.count() < 0) {
    return ParamError(op, "allowed_lateness_ms", "must be >= 0, got " + Ms(w.allowed_lateness));
  }
  if (w.time == TimeDomain::kProcessingTime) {
    // Processing time has no late rows: a row belongs to the window open when it arrives.
    if (!w.time_column.empty()) {
      return ParamError(op, "time_column",
                        "is for event time; a processing-time window uses the wall clock");
    }
    if (w.allowed_lateness.count() != 0) {
      return ParamError(op, "allowed_lateness_ms",
                        "is for event time (a processing-time window has no late rows), got " +
                            Ms(w.allowed_lateness));
    }
    if (w.late_output.has_value()) {
      return ParamError(op, "late_output",
                        "is for event time (a processing-time window has no late rows)");
    }
  } else if (w.time != TimeDomain::kEventTime) {
    return ParamError(op, "time", "unknown time domain");
  }
  if (w.late_output.has_value()) {
    if (w.late_output->directory.empty()) {
      return ParamError(op, "late_output.directory", "must not be empty");
    }
    ARROW_RETURN_NOT_OK(CheckCsv(op, w.late_output->format, w.late_output->csv, "late_output."));
  }
  return arrow::Status::OK();
}

// The checks that need nothing but the operator itself.
arrow::Status CheckParams(const OperatorSpec& op) {
  return std::visit(
      [&](const auto& p) -> arrow::Status {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, GeneratorSourceParams>) {
          if (p.rows < 0) return ParamError(op, "rows", "must be >= 0, got " + std::to_string(p.rows));
          if (p.rows == 0 && !(p.rows_per_second > 0)) {
            return ParamError(op, "rows",
                              "0 (unbounded) needs a rate: set rows_per_second > 0");
          }
          if ((p.batch_rows < 1) || (p.batch_rows > (int64_t{1} << 24))) {
            return ParamError(op, "batch_rows",
                              "must be between 1 and 16777216, got " + std::to_string(p.batch_rows));
          }
          if (p.key_cardinality < 1) {
            return ParamError(op, "key_cardinality",
                              "must be >= 1, got " + std::to_string(p.key_cardinality));
          }
          if (!(p.hot_key_fraction >= 0 && p.hot_key_fraction <= 1)) {
            return ParamError(op, "hot_key_fraction", "must be between 0 and 1");
          }
          if ((p.payload_columns < 0) || (p.payload_columns > 64)) {
            return ParamError(op, "payload_columns",
                              "must be between 0 and 64, got " + std::to_string(p.payload_columns));
          }
          if (p.table == GeneratorTable::kTransactions &&
              (p.string_key || p.payload_columns != GeneratorSourceParams{}.payload_columns)) {
            return ParamError(op, p.string_key ? "string_key" : "payload_columns",
                              "only applies to the shuffle table");
          }
          if (!(std::isfinite(p.rows_per_second) && p.rows_per_second >= 0)) {
            return ParamError(op, "rows_per_second", "must be a finite number >= 0");
          }
          return CheckEventTime(op, p.event_time);
        } else if constexpr (std::is_same_v<P, FileSourceParams>) {
          if (p.paths.empty()) return ParamError(op, "paths", "must hold at least one path");
          for (size_t i = 0; i < p.paths.size(); ++i) {
            if (p.paths[i].empty()) {
              return ParamError(op, "paths", "path " + std::to_string(i) + " is empty");
            }
          }
          ARROW_RETURN_NOT_OK(CheckCsv(op, p.format, p.csv));
          return CheckEventTime(op, p.event_time);
        } else if constexpr (std::is_same_v<P, TableSourceParams>) {
          if (p.table.empty()) return ParamError(op, "table", "must name a table");
          if ((p.batch_rows < 1) || (p.batch_rows > (int64_t{1} << 24))) {
            return ParamError(op, "batch_rows",
                              "must be between 1 and 16777216, got " + std::to_string(p.batch_rows));
          }
          return CheckEventTime(op, p.event_time);
        } else if constexpr (std::is_same_v<P, MapParams> || std::is_same_v<P, ProjectParams>) {
          return CheckExpressions(op, p.columns);
        } else if constexpr (std::is_same_v<P, FilterParams>) {
          if (p.predicate.empty()) return ParamError(op, "predicate", "must not be empty");
          return arrow::Status::OK();
        } else if constexpr (std::is_same_v<P, KeyByParams>) {
          return CheckColumns(op, "keys", p.keys, /*required=*/true);
        } else if constexpr (std::is_same_v<P, WindowParams>) {
          return CheckWindow(op, p);
        } else if constexpr (std::is_same_v<P, AggregateParams>) {
          if (p.aggregates.empty()) {
            return ParamError(op, "aggregates", "must hold at least one aggregate");
          }
          std::set<std::string> outputs;
          for (size_t i = 0; i < p.aggregates.size(); ++i) {
            const AggregateSpec& a = p.aggregates[i];
            std::string param = "aggregates[" + std::to_string(i) + "]";
            if (a.column.empty() && a.function != AggregateFunction::kCount) {
              return ParamError(op, param + ".column",
                                std::string("must name a column for ") +
                                    std::string(AggregateFunctionName(a.function)));
            }
            std::string out = AggregateOutputName(a);
            if (!outputs.insert(out).second) {
              return ParamError(op, param + ".alias",
                                "output column " + QuoteInput(out) + " appears twice");
            }
          }
          return arrow::Status::OK();
        } else if constexpr (std::is_same_v<P, JoinParams>) {
          ARROW_RETURN_NOT_OK(CheckColumns(op, "left_keys", p.left_keys, true));
          ARROW_RETURN_NOT_OK(CheckColumns(op, "right_keys", p.right_keys, true));
          if (p.left_keys.size() != p.right_keys.size()) {
            return ParamError(op, "right_keys",
                              "has " + std::to_string(p.right_keys.size()) +
                                  " columns but left_keys has " +
                                  std::to_string(p.left_keys.size()));
          }
          if (p.time == JoinTime::kNone) {
            if (!p.left_time.empty() || !p.right_time.empty() || p.window.count() != 0 ||
                p.before.count() != 0 || p.after.count() != 0) {
              return ParamError(op, "time",
                                "left_time, right_time, window, before and after are for "
                                "window and interval joins; set time to window or interval");
            }
          } else {
            const std::string kind(JoinTimeName(p.time));
            if (p.left_time.empty() || p.right_time.empty()) {
              return ParamError(op, p.left_time.empty() ? "left_time" : "right_time",
                                "a " + kind + " join needs the event-time column of both inputs");
            }
            if (p.how != JoinType::kInner) {
              return ParamError(op, "how",
                                "a " + kind + " join is an inner join, got " +
                                    std::string(JoinTypeName(p.how)));
            }
            if (p.broadcast != JoinBroadcast::kNone) {
              return ParamError(op, "broadcast", "a " + kind + " join cannot broadcast an input");
            }
            if (p.time == JoinTime::kWindow &&
                (p.window.count() <= 0 || p.before.count() != 0 || p.after.count() != 0)) {
              return ParamError(op, "window",
                                "a window join needs window > 0 (and no before or after), got " +
                                    std::to_string(p.window.count()) + " ms");
            }
            if (p.time == JoinTime::kInterval &&
                (p.window.count() != 0 || p.before.count() < 0 || p.after.count() < 0)) {
              return ParamError(op, p.window.count() != 0 ? "window" : "before",
                                "an interval join needs before >= 0 and after >= 0 (and no "
                                "window)");
            }
          }
          if (!JoinMayBroadcast(p.how, p.broadcast)) {
            const bool right = p.broadcast == JoinBroadcast::kRight;
            return ParamError(
                op, "broadcast",
                "a " + std::string(JoinTypeName(p.how)) + " join cannot broadcast its " +
                    std::string(JoinBroadcastName(p.broadcast)) + " side: every task would " +
                    "see every " + std::string(JoinBroadcastName(p.broadcast)) +
                    " row and emit its unmatched or matched rows once per task; broadcast the " +
                    (right ? "left" : "right") + " side or none");
          }
          return arrow::Status::OK();
        } else if constexpr (std::is_same_v<P, FileSinkParams>) {
          if (p.directory.empty()) return ParamError(op, "directory", "must not be empty");
          return CheckCsv(op, p.format, p.csv);
        } else if constexpr (std::is_same_v<P, ConsoleSinkParams>) {
          if (p.max_rows < 0) {
            return ParamError(op, "max_rows", "must be >= 0, got " + std::to_string(p.max_rows));
          }
          return arrow::Status::OK();
        } else if constexpr (std::is_same_v<P, FunctionMapParams>) {
          if (p.function.empty()) return ParamError(op, "function", "must name a function");
          return arrow::Status::OK();
        } else {
          static_assert(std::is_same_v<P, CollectSinkParams> ||
                        std::is_same_v<P, VerifySinkParams>);
          return arrow::Status::OK();
        }
      },
      op.params);
}

// -1, 0, 1; Invalid when the two values are of different kinds.
arrow::Result<int> CompareBoundary(const BoundaryValue& a, const BoundaryValue& b) {
  if (a.index() != b.index()) {
    return arrow::Status::Invalid("boundary values of one key column mix types");
  }
  if (a < b) return -1;
  if (b < a) return 1;
  return 0;
}

arrow::Status CheckPartitioning(const EdgeSpec& edge, const OperatorSpec& from,
                                const OperatorSpec& to) {
  const PartitioningRequest& r = edge.partitioning;
  std::string where = EdgeLabel(edge, &from, &to);
  bool keyed = r.kind == PartitioningKind::kHash || r.kind == PartitioningKind::kRange;
  if (!keyed && !r.keys.empty()) {
    return arrow::Status::Invalid(where, ": ", PartitioningKindName(r.kind),
                                  " partitioning takes no keys");
  }
  if (r.kind != PartitioningKind::kRange && !r.boundaries.empty()) {
    return arrow::Status::Invalid(where, ": only range partitioning takes boundaries");
  }
  if (keyed) {
    if (r.keys.empty()) {
      return arrow::Status::Invalid(where, ": ", PartitioningKindName(r.kind),
                                    " partitioning needs at least one key column");
    }
    std::set<std::string_view> seen;
    for (const std::string& k : r.keys) {
      if (k.empty()) return arrow::Status::Invalid(where, ": a key column name is empty");
      if (!seen.insert(k).second) {
        return arrow::Status::Invalid(where, ": key column ", QuoteInput(k), " appears twice");
      }
    }
  }
  if (r.kind == PartitioningKind::kForward && from.parallelism != to.parallelism) {
    return arrow::Status::Invalid(where, ": forward partitioning needs equal parallelism, but ",
                                  QuoteInput(from.name), " has ", from.parallelism, " and ",
                                  QuoteInput(to.name), " has ", to.parallelism);
  }
  if (r.kind == PartitioningKind::kRange && !r.boundaries.empty()) {
    size_t expected = static_cast<size_t>(to.parallelism) - 1;
    if (r.boundaries.size() != expected) {
      return arrow::Status::Invalid(where, ": range partitioning into ", to.parallelism,
                                    " tasks needs ", expected, " boundaries, got ",
                                    r.boundaries.size());
    }
    for (size_t i = 0; i < r.boundaries.size(); ++i) {
      if (r.boundaries[i].size() != r.keys.size()) {
        return arrow::Status::Invalid(where, ": boundary ", i, " has ", r.boundaries[i].size(),
                                      " values for ", r.keys.size(), " key columns");
      }
      for (const BoundaryValue& v : r.boundaries[i]) {
        if (const double* d = std::get_if<double>(&v); d && !std::isfinite(*d)) {
          return arrow::Status::Invalid(where, ": boundary ", i, " holds a non-finite number");
        }
      }
      if (i == 0) continue;
      // Lexicographic, column by column; equal neighbours are allowed (an empty partition).
      int cmp = 0;
      for (size_t k = 0; k < r.keys.size() && cmp == 0; ++k) {
        auto c = CompareBoundary(r.boundaries[i - 1][k], r.boundaries[i][k]);
        if (!c.ok()) {
          return arrow::Status::Invalid(where, ": boundaries ", i - 1, " and ", i,
                                        " hold values of different types for key ",
                                        QuoteInput(r.keys[k]));
        }
        cmp = *c;
      }
      if (cmp > 0) {
        return arrow::Status::Invalid(where, ": boundaries are not sorted ascending (boundary ",
                                      i, " is smaller than boundary ", i - 1, ")");
      }
    }
  }
  return arrow::Status::OK();
}

// What the check under way is about; Analyze attaches it to the error it returns.
struct Location {
  std::optional<size_t> op;
  std::optional<size_t> edge;
  std::string field;
};

// What Make and Validate share: every check, plus what Make keeps.
struct Analysis {
  std::vector<OperatorId> topological_order;
  // Parallel to the operators.
  std::vector<std::vector<std::string>> output_keys;
  std::vector<std::vector<size_t>> inputs;   // sorted by input index, then plan order
  std::vector<std::vector<size_t>> outputs;  // plan order
};

arrow::Result<Analysis> AnalyzeAt(const std::vector<OperatorSpec>& ops,
                                  const std::vector<EdgeSpec>& edges, Location* loc) {
  if (ops.empty()) return arrow::Status::Invalid("the plan has no operators");
  if (ops.size() > static_cast<size_t>(kMaxPlanOperators)) {
    return arrow::Status::Invalid("the plan has ", ops.size(), " operators; at most ",
                                  kMaxPlanOperators, " are allowed");
  }
  if (edges.size() > static_cast<size_t>(kMaxPlanEdges)) {
    return arrow::Status::Invalid("the plan has ", edges.size(), " edges; at most ", kMaxPlanEdges,
                                  " are allowed");
  }
  std::unordered_map<OperatorId, size_t> index;  // id -> position in ops
  std::set<std::string_view> names;
  for (size_t i = 0; i < ops.size(); ++i) {
    const OperatorSpec& op = ops[i];
    *loc = {i, std::nullopt, "id"};
    if (op.id < 0) return arrow::Status::Invalid(Label(op), ": id must be >= 0");
    if (!index.emplace(op.id, i).second) {
      return arrow::Status::Invalid(Label(op), ": id ", op.id, " is also the id of operator ",
                                    QuoteInput(ops[index[op.id]].name));
    }
    loc->field = "name";
    ARROW_RETURN_NOT_OK(CheckName(op));
    if (!names.insert(op.name).second) {
      return arrow::Status::Invalid(Label(op), ": another operator has the same name");
    }
    loc->field = "parallelism";
    if (op.parallelism < 1 || op.parallelism > kMaxOperatorParallelism) {
      return arrow::Status::Invalid(Label(op), ": parallelism must be between 1 and ",
                                    kMaxOperatorParallelism, ", got ", op.parallelism);
    }
    loc->field = "params";
    ARROW_RETURN_NOT_OK(CheckParams(op));
  }

  std::vector<std::vector<size_t>> in(ops.size()), out(ops.size());
  for (size_t e = 0; e < edges.size(); ++e) {
    const EdgeSpec& edge = edges[e];
    *loc = {std::nullopt, e, ""};
    auto f = index.find(edge.from);
    auto t = index.find(edge.to);
    const OperatorSpec* from = f == index.end() ? nullptr : &ops[f->second];
    const OperatorSpec* to = t == index.end() ? nullptr : &ops[t->second];
    if (!from || !to) {
      loc->field = from ? "to" : "from";
      return arrow::Status::Invalid(EdgeLabel(edge, from, to), ": no operator has id ",
                                    from ? edge.to : edge.from);
    }
    if (edge.from == edge.to) {
      return arrow::Status::Invalid(EdgeLabel(edge, from, to), ": an operator cannot feed itself");
    }
    int32_t inputs = to->kind() == OperatorKind::kJoin ? 2 : 1;
    if (edge.input < 0 || edge.input >= inputs) {
      loc->field = "input";
      return arrow::Status::Invalid(EdgeLabel(edge, from, to), ": input ", edge.input,
                                    " does not exist; ", Label(*to), " has inputs 0 to ",
                                    inputs - 1);
    }
    for (size_t prev : out[f->second]) {
      if (edges[prev].to == edge.to && edges[prev].input == edge.input) {
        return arrow::Status::Invalid(EdgeLabel(edge, from, to), ": appears twice");
      }
    }
    loc->field = "partitioning";
    ARROW_RETURN_NOT_OK(CheckPartitioning(edge, *from, *to));
    out[f->second].push_back(e);
    in[t->second].push_back(e);
  }

  bool any_source = false, any_sink = false;
  for (size_t i = 0; i < ops.size(); ++i) {
    const OperatorSpec& op = ops[i];
    *loc = {i, std::nullopt, ""};
    OperatorKind kind = op.kind();
    if (IsSource(kind)) {
      any_source = true;
      if (!in[i].empty()) {
        return arrow::Status::Invalid(Label(op), ": a source has no inputs, but ",
                                      QuoteInput(ops[index[edges[in[i][0]].from]].name),
                                      " feeds it");
      }
    } else if (in[i].empty()) {
      return arrow::Status::Invalid(Label(op), ": has no inputs (", OperatorKindName(kind),
                                    " needs an operator feeding it)");
    }
    if (IsSink(kind)) {
      any_sink = true;
      if (!out[i].empty()) {
        return arrow::Status::Invalid(Label(op), ": a sink has no outputs, but it feeds ",
                                      QuoteInput(ops[index[edges[out[i][0]].to]].name));
      }
    } else if (out[i].empty()) {
      return arrow::Status::Invalid(Label(op),
                                    ": its output goes nowhere (feed it into another operator "
                                    "or a sink)");
    }
    if (kind == OperatorKind::kVerifySink) {
      const OperatorSpec* from =
          in[i].size() == 1 ? &ops[index[edges[in[i][0]].from]] : nullptr;
      const auto* generator =
          from != nullptr ? std::get_if<GeneratorSourceParams>(&from->params) : nullptr;
      if (generator == nullptr || generator->table != GeneratorTable::kShuffle) {
        return arrow::Status::Invalid(
            Label(op), ": a verify_sink checks a shuffle of the generated shuffle table: it needs "
            "exactly one input edge, straight from a generator_source with table: shuffle");
      }
    }
    if (kind == OperatorKind::kJoin) {
      for (int32_t input = 0; input < 2; ++input) {
        auto n = std::count_if(in[i].begin(), in[i].end(),
                               [&](size_t e) { return edges[e].input == input; });
        if (n != 1) {
          return arrow::Status::Invalid(Label(op), ": a join needs exactly one edge into input ",
                                        input, input == 0 ? " (left)" : " (right)", ", got ", n);
        }
      }
    }
  }
  *loc = {};
  if (!any_source) return arrow::Status::Invalid("the plan has no source");
  if (!any_sink) return arrow::Status::Invalid("the plan has no sink");

  // Topological order (Kahn; the ready operator that comes first in the plan goes first).
  std::vector<size_t> pending(ops.size());
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < ops.size(); ++i) {
    pending[i] = in[i].size();
    if (pending[i] == 0) ready.push(i);
  }
  Analysis analysis;
  std::vector<size_t> order;
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    order.push_back(i);
    for (size_t e : out[i]) {
      size_t t = index[edges[e].to];
      if (--pending[t] == 0) ready.push(t);
    }
  }
  if (order.size() != ops.size()) {
    // Every operator left has an unvisited input, so walking inputs backwards from one of them
    // must come back to an operator already on the walk: that stretch is a cycle.
    size_t start = 0;
    while (pending[start] == 0) ++start;
    std::vector<size_t> walk;
    std::vector<int> position(ops.size(), -1);
    size_t cur = start;
    while (position[cur] < 0) {
      position[cur] = static_cast<int>(walk.size());
      walk.push_back(cur);
      for (size_t e : in[cur]) {
        size_t f = index[edges[e].from];
        if (pending[f] != 0) {
          cur = f;
          break;
        }
      }
    }
    // walk[position[cur]..] goes against the edges; print it along them, the first
    // kMaxCycleNames operators of a longer one.
    constexpr size_t kMaxCycleNames = 16;
    size_t length = walk.size() - static_cast<size_t>(position[cur]);
    std::string cycle;
    size_t printed = 0;
    for (size_t k = walk.size(); k-- > static_cast<size_t>(position[cur]) &&
                                 printed < kMaxCycleNames;
         ++printed) {
      cycle += QuoteInput(ops[walk[k]].name) + " -> ";
    }
    if (length > kMaxCycleNames) {
      cycle += "... (" + std::to_string(length) + " operators in all)";
    } else {
      cycle += QuoteInput(ops[walk.back()].name);
    }
    return arrow::Status::Invalid("the plan has a cycle: ", cycle);
  }

  // Keys carried by each stream, in topological order.
  analysis.output_keys.resize(ops.size());
  analysis.outputs = out;
  analysis.inputs = in;
  for (std::vector<size_t>& list : analysis.inputs) {
    std::stable_sort(list.begin(), list.end(),
                     [&](size_t a, size_t b) { return edges[a].input < edges[b].input; });
  }
  auto edge_keys = [&](size_t e) -> std::vector<std::string> {
    const PartitioningRequest& r = edges[e].partitioning;
    switch (r.kind) {
      case PartitioningKind::kHash:
        return r.keys;
      case PartitioningKind::kNone:
      case PartitioningKind::kForward:
        return analysis.output_keys[index[edges[e].from]];
      default:
        return {};
    }
  };
  for (size_t i : order) {
    const OperatorSpec& op = ops[i];
    *loc = {i, std::nullopt, "parallelism"};
    analysis.topological_order.push_back(op.id);
    OperatorKind kind = op.kind();
    std::vector<std::string> input_keys;
    bool first = true;
    for (size_t e : in[i]) {
      std::vector<std::string> k = edge_keys(e);
      if (first) {
        input_keys = std::move(k);
        first = false;
      } else if (k != input_keys) {
        input_keys.clear();
      }
      if (input_keys.empty()) break;
    }
    if (kind == OperatorKind::kKeyBy) {
      const auto& keys = std::get<KeyByParams>(op.params).keys;
      for (size_t e : in[i]) {
        const OperatorSpec& from = ops[index[edges[e].from]];
        if (from.parallelism != op.parallelism) {
          return arrow::Status::Invalid(Label(op), ": a key_by has the parallelism of its input (",
                                        QuoteInput(from.name), ": ", from.parallelism, "), got ",
                                        op.parallelism);
        }
      }
      for (size_t e : out[i]) {
        const PartitioningRequest& r = edges[e].partitioning;
        *loc = {std::nullopt, e, "partitioning"};
        if (!(r.kind == PartitioningKind::kNone ||
              (r.kind == PartitioningKind::kHash && r.keys == keys))) {
          return arrow::Status::Invalid(
              EdgeLabel(edges[e], &op, &ops[index[edges[e].to]]),
              ": the edge leaving a key_by is HASH on its keys; it cannot ask for ",
              PartitioningKindName(r.kind), r.kind == PartitioningKind::kHash ? " on other keys" : "");
        }
      }
      analysis.output_keys[i] = keys;
    } else if (kind == OperatorKind::kFilter || kind == OperatorKind::kMap ||
               kind == OperatorKind::kProject) {
      analysis.output_keys[i] = KeysPassedOn(op, std::move(input_keys));
    } else if (kind == OperatorKind::kWindow || kind == OperatorKind::kAggregate) {
      // An edge asking to repartition a keyed stream is the likelier mistake: name it.
      for (size_t e : in[i]) {
        const PartitioningRequest& r = edges[e].partitioning;
        size_t from = index[edges[e].from];
        *loc = {std::nullopt, e, "partitioning"};
        if (!analysis.output_keys[from].empty() &&
            (r.kind == PartitioningKind::kRebalance || r.kind == PartitioningKind::kBroadcast ||
             r.kind == PartitioningKind::kRange)) {
          return arrow::Status::Invalid(EdgeLabel(edges[e], &ops[from], &op), ": ",
                                        PartitioningKindName(r.kind),
                                        " would break the key partitioning ",
                                        OperatorKindName(kind), " needs");
        }
      }
      *loc = {i, std::nullopt, "parallelism"};
      if (input_keys.empty()) {
        if (op.parallelism != 1) {
          return arrow::Status::Invalid(
              Label(op), ": its input is not keyed (put a key_by before it, or give it "
                         "parallelism 1), and its parallelism is ", op.parallelism);
        }
      } else {
        for (size_t e : in[i]) {
          const PartitioningRequest& r = edges[e].partitioning;
          *loc = {std::nullopt, e, "partitioning"};
          if (r.kind != PartitioningKind::kNone && r.kind != PartitioningKind::kForward &&
              !(r.kind == PartitioningKind::kHash && r.keys == input_keys)) {
            return arrow::Status::Invalid(EdgeLabel(edges[e], &ops[index[edges[e].from]], &op),
                                          ": ", PartitioningKindName(r.kind),
                                          " would break the key partitioning ",
                                          OperatorKindName(kind), " needs");
          }
        }
      }
      if (kind == OperatorKind::kWindow) {
        // A window only says how the aggregate after it groups rows by time: it is read by
        // aggregates, each of which reads nothing else.
        for (size_t e : out[i]) {
          const size_t to = index[edges[e].to];
          *loc = {std::nullopt, e, ""};
          if (ops[to].kind() != OperatorKind::kAggregate) {
            return arrow::Status::Invalid(
                EdgeLabel(edges[e], &op, &ops[to]), ": a window is read by an aggregate "
                "(window(...).aggregate(...)), not by a ", OperatorKindName(ops[to].kind()));
          }
          if (in[to].size() != 1) {
            return arrow::Status::Invalid(
                EdgeLabel(edges[e], &op, &ops[to]),
                ": an aggregate after a window reads only that window, and this one has ",
                in[to].size(), " inputs");
          }
        }
        analysis.output_keys[i] = input_keys;
      } else {
        const auto& aggs = std::get<AggregateParams>(op.params).aggregates;
        *loc = {i, std::nullopt, ""};
        for (size_t a = 0; a < aggs.size(); ++a) {
          std::string name = AggregateOutputName(aggs[a]);
          if (std::find(input_keys.begin(), input_keys.end(), name) != input_keys.end()) {
            return ParamError(op, "aggregates[" + std::to_string(a) + "].alias",
                              "output column " + QuoteInput(name) +
                                  " is also a key column; choose another alias");
          }
        }
      }
    } else if (kind == OperatorKind::kJoin) {
      const auto& join = std::get<JoinParams>(op.params);
      for (size_t e : in[i]) {
        const auto& keys = edges[e].input == 0 ? join.left_keys : join.right_keys;
        *loc = {std::nullopt, e, "partitioning"};
        const PartitioningRequest& r = edges[e].partitioning;
        const OperatorSpec& from = ops[index[edges[e].from]];
        if (join.broadcast != JoinBroadcast::kNone) {
          const bool broadcast_side =
              edges[e].input == (join.broadcast == JoinBroadcast::kLeft ? 0 : 1);
          if (broadcast_side) {
            // The broadcast input goes whole to every task: nothing may partition it.
            if (!(r.kind == PartitioningKind::kNone || r.kind == PartitioningKind::kBroadcast) ||
                from.kind() == OperatorKind::kKeyBy) {
              return arrow::Status::Invalid(
                  EdgeLabel(edges[e], &from, &op), ": the join broadcasts input ",
                  edges[e].input, "; the edge cannot ask for ",
                  from.kind() == OperatorKind::kKeyBy ? "hash (it comes from a key_by)"
                                                      : PartitioningKindName(r.kind));
            }
          } else if (r.kind == PartitioningKind::kBroadcast) {
            // Any partitioning of the other side is correct (each of its rows meets the whole
            // broadcast side once), but not sending it to every task too.
            return arrow::Status::Invalid(
                EdgeLabel(edges[e], &from, &op), ": the join broadcasts its ",
                JoinBroadcastName(join.broadcast),
                " input; the other input cannot be broadcast too");
          }
          continue;
        }
        if (!(r.kind == PartitioningKind::kNone ||
              (r.kind == PartitioningKind::kHash && r.keys == keys))) {
          return arrow::Status::Invalid(
              EdgeLabel(edges[e], &ops[index[edges[e].from]], &op),
              ": a join input is HASH on that side's join keys; the edge cannot ask for ",
              PartitioningKindName(r.kind), r.kind == PartitioningKind::kHash ? " on other keys" : "");
        }
        // A key_by feeding the join makes the edge HASH on its own keys: they must be the
        // join's, or rows with equal join keys would meet in different tasks.
        if (from.kind() == OperatorKind::kKeyBy &&
            std::get<KeyByParams>(from.params).keys != keys) {
          return arrow::Status::Invalid(
              EdgeLabel(edges[e], &from, &op), ": key_by ", QuoteInput(from.name),
              " partitions by other columns than the join keys of input ", edges[e].input,
              " (a join input is HASH on that side's join keys)");
        }
      }
    }
  }
  return analysis;
}

arrow::Result<Analysis> Analyze(const std::vector<OperatorSpec>& ops,
                                const std::vector<EdgeSpec>& edges) {
  Location loc;
  auto result = AnalyzeAt(ops, edges, &loc);
  if (result.ok() || (!loc.op && !loc.edge)) return result;
  // ParamError knows the parameter; the location knows the operator.
  std::string field = loc.field;
  if (const PlanErrorDetail* detail = PlanErrorDetail::FromStatus(result.status())) {
    field = detail->field();
  }
  return result.status().WithDetail(std::make_shared<PlanErrorDetail>(loc.op, loc.edge, field));
}

}  // namespace

std::string PlanErrorDetail::ToString() const {
  std::string out;
  if (operator_index_) out = "operators[" + std::to_string(*operator_index_) + "]";
  if (edge_index_) out = "edges[" + std::to_string(*edge_index_) + "]";
  if (!field_.empty()) out += (out.empty() ? "" : ".") + field_;
  return out;
}

const PlanErrorDetail* PlanErrorDetail::FromStatus(const arrow::Status& status) {
  const std::shared_ptr<arrow::StatusDetail>& detail = status.detail();
  if (!detail || std::string_view(detail->type_id()) != kTypeId) return nullptr;
  return static_cast<const PlanErrorDetail*>(detail.get());
}

OperatorKind OperatorKindOf(const OperatorParams& params) {
  return std::visit(
      [](const auto& p) -> OperatorKind {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, GeneratorSourceParams>) {
          return OperatorKind::kGeneratorSource;
        } else if constexpr (std::is_same_v<P, FileSourceParams>) {
          return FileKind(p.format, /*sink=*/false);
        } else if constexpr (std::is_same_v<P, TableSourceParams>) {
          return OperatorKind::kTableSource;
        } else if constexpr (std::is_same_v<P, MapParams>) {
          return OperatorKind::kMap;
        } else if constexpr (std::is_same_v<P, FilterParams>) {
          return OperatorKind::kFilter;
        } else if constexpr (std::is_same_v<P, ProjectParams>) {
          return OperatorKind::kProject;
        } else if constexpr (std::is_same_v<P, KeyByParams>) {
          return OperatorKind::kKeyBy;
        } else if constexpr (std::is_same_v<P, WindowParams>) {
          return OperatorKind::kWindow;
        } else if constexpr (std::is_same_v<P, AggregateParams>) {
          return OperatorKind::kAggregate;
        } else if constexpr (std::is_same_v<P, JoinParams>) {
          return OperatorKind::kJoin;
        } else if constexpr (std::is_same_v<P, FileSinkParams>) {
          return FileKind(p.format, /*sink=*/true);
        } else if constexpr (std::is_same_v<P, ConsoleSinkParams>) {
          return OperatorKind::kConsoleSink;
        } else if constexpr (std::is_same_v<P, CollectSinkParams>) {
          return OperatorKind::kCollectSink;
        } else if constexpr (std::is_same_v<P, FunctionMapParams>) {
          return OperatorKind::kFunctionMap;
        } else {
          static_assert(std::is_same_v<P, VerifySinkParams>);
          return OperatorKind::kVerifySink;
        }
      },
      params);
}

bool IsSource(OperatorKind kind) {
  return kind == OperatorKind::kGeneratorSource || kind == OperatorKind::kParquetSource ||
         kind == OperatorKind::kIpcSource || kind == OperatorKind::kCsvSource ||
         kind == OperatorKind::kTableSource;
}

bool IsSink(OperatorKind kind) {
  return kind == OperatorKind::kParquetSink || kind == OperatorKind::kIpcSink ||
         kind == OperatorKind::kCsvSink || kind == OperatorKind::kConsoleSink ||
         kind == OperatorKind::kCollectSink || kind == OperatorKind::kVerifySink;
}

std::optional<FileFormat> FileFormatOf(OperatorKind kind) {
  for (const FileKinds& k : kFileKinds) {
    if (k.source == kind || k.sink == kind) return k.format;
  }
  return std::nullopt;
}

std::string_view OperatorKindName(OperatorKind kind) { return NameOf(kKindNames, kind); }
arrow::Result<OperatorKind> ParseOperatorKind(std::string_view name) {
  return ParseName(kKindNames, name, "operator kind");
}
std::string_view GeneratorTableName(GeneratorTable table) { return NameOf(kTableNames, table); }
arrow::Result<GeneratorTable> ParseGeneratorTable(std::string_view name) {
  return ParseName(kTableNames, name, "generator table");
}
std::string_view KeyDistributionKindName(KeyDistributionKind kind) {
  return NameOf(kDistributionNames, kind);
}
arrow::Result<KeyDistributionKind> ParseKeyDistributionKind(std::string_view name) {
  return ParseName(kDistributionNames, name, "key distribution");
}
std::string_view FileFormatName(FileFormat format) { return NameOf(kFormatNames, format); }
arrow::Result<FileFormat> ParseFileFormat(std::string_view name) {
  return ParseName(kFormatNames, name, "file format");
}
std::string_view WindowTypeName(WindowType type) { return NameOf(kWindowNames, type); }
arrow::Result<WindowType> ParseWindowType(std::string_view name) {
  return ParseName(kWindowNames, name, "window type");
}
std::string_view AggregateFunctionName(AggregateFunction function) {
  return NameOf(kFunctionNames, function);
}
arrow::Result<AggregateFunction> ParseAggregateFunction(std::string_view name) {
  return ParseName(kFunctionNames, name, "aggregate function");
}
std::string_view TimeDomainName(TimeDomain domain) { return NameOf(kTimeDomainNames, domain); }
arrow::Result<TimeDomain> ParseTimeDomain(std::string_view name) {
  return ParseName(kTimeDomainNames, name, "time domain");
}
std::string_view JoinTypeName(JoinType type) { return NameOf(kJoinNames, type); }
arrow::Result<JoinType> ParseJoinType(std::string_view name) {
  return ParseName(kJoinNames, name, "join type");
}
std::string_view JoinBroadcastName(JoinBroadcast side) {
  return NameOf(kJoinBroadcastNames, side);
}
arrow::Result<JoinBroadcast> ParseJoinBroadcast(std::string_view name) {
  return ParseName(kJoinBroadcastNames, name, "join broadcast side");
}

std::string_view JoinTimeName(JoinTime time) { return NameOf(kJoinTimeNames, time); }
arrow::Result<JoinTime> ParseJoinTime(std::string_view name) {
  return ParseName(kJoinTimeNames, name, "join time kind");
}

bool JoinMayBroadcast(JoinType how, JoinBroadcast side) {
  switch (side) {
    case JoinBroadcast::kNone:
      return true;
    case JoinBroadcast::kRight:
      // Every task sees every right row: right rows must never be emitted on their own.
      return how == JoinType::kInner || how == JoinType::kLeft || how == JoinType::kSemi ||
             how == JoinType::kAnti;
    case JoinBroadcast::kLeft:
      return how == JoinType::kInner || how == JoinType::kRight ||
             how == JoinType::kRightSemi || how == JoinType::kRightAnti;
  }
  return false;
}
std::string_view PartitioningKindName(PartitioningKind kind) {
  return NameOf(kPartitioningNames, kind);
}
arrow::Result<PartitioningKind> ParsePartitioningKind(std::string_view name) {
  return ParseName(kPartitioningNames, name, "partitioning");
}

std::string AggregateOutputName(const AggregateSpec& spec) {
  if (!spec.alias.empty()) return spec.alias;
  if (spec.column.empty()) return std::string(AggregateFunctionName(spec.function));
  return std::string(AggregateFunctionName(spec.function)) + "_" + spec.column;
}

arrow::Result<LogicalPlan> LogicalPlan::Make(std::vector<OperatorSpec> operators,
                                             std::vector<EdgeSpec> edges, PlanOptions options) {
  if (options.idle_timeout.count() < 0) {
    return arrow::Status::Invalid("plan option idle_timeout must be >= 0 ms, got ",
                                  options.idle_timeout.count());
  }
  ARROW_ASSIGN_OR_RAISE(Analysis analysis, Analyze(operators, edges));
  LogicalPlan plan;
  plan.operators_ = std::move(operators);
  plan.edges_ = std::move(edges);
  plan.options_ = options;
  plan.topological_order_ = std::move(analysis.topological_order);
  plan.output_keys_ = std::move(analysis.output_keys);
  plan.inputs_ = std::move(analysis.inputs);
  plan.outputs_ = std::move(analysis.outputs);
  for (size_t i = 0; i < plan.operators_.size(); ++i) plan.position_[plan.operators_[i].id] = i;
  return plan;
}

arrow::Status LogicalPlan::Validate(const std::vector<OperatorSpec>& operators,
                                    const std::vector<EdgeSpec>& edges,
                                    const PlanOptions& options) {
  if (options.idle_timeout.count() < 0) {
    return arrow::Status::Invalid("plan option idle_timeout must be >= 0 ms, got ",
                                  options.idle_timeout.count());
  }
  return Analyze(operators, edges).status();
}

std::optional<size_t> LogicalPlan::PositionOf(OperatorId id) const {
  auto it = position_.find(id);
  if (it == position_.end()) return std::nullopt;
  return it->second;
}

const OperatorSpec* LogicalPlan::FindOperator(OperatorId id) const {
  std::optional<size_t> i = PositionOf(id);
  return i ? &operators_[*i] : nullptr;
}

const std::vector<size_t>& LogicalPlan::InputEdges(OperatorId id) const {
  static const std::vector<size_t> kNone;
  std::optional<size_t> i = PositionOf(id);
  return i ? inputs_[*i] : kNone;
}

const std::vector<size_t>& LogicalPlan::OutputEdges(OperatorId id) const {
  static const std::vector<size_t> kNone;
  std::optional<size_t> i = PositionOf(id);
  return i ? outputs_[*i] : kNone;
}

const std::vector<std::string>& LogicalPlan::OutputKeys(OperatorId id) const {
  static const std::vector<std::string> kNone;
  std::optional<size_t> i = PositionOf(id);
  return i ? output_keys_[*i] : kNone;
}

}  // namespace sabot
