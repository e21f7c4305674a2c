#include "sabot/dataflow/plan_json.h"

#include <exception>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

// Keys keep the order they are written in, so the text follows docs/plan-format.md.
using Json = nlohmann::ordered_json;

// ---------------------------------------------------------------------------------------------
// Writing.

Json EventTimeJson(const EventTimeSpec& et) {
  Json j = Json::object();
  j["column"] = et.column;
  j["max_out_of_orderness_ms"] = et.max_out_of_orderness.count();
  return j;
}

Json CsvJson(const CsvFormatOptions& csv) {
  Json j = Json::object();
  j["delimiter"] = std::string(1, csv.delimiter);
  j["has_header"] = csv.has_header;
  return j;
}

Json NamedExpressionsJson(const std::vector<NamedExpression>& columns) {
  Json j = Json::array();
  for (const NamedExpression& c : columns) {
    Json e = Json::object();
    e["name"] = c.name;
    e["expression"] = c.expression;
    j.push_back(std::move(e));
  }
  return j;
}

Json ParamsJson(const OperatorParams& params) {
  return std::visit(
      [](const auto& p) -> Json {
        using P = std::decay_t<decltype(p)>;
        Json j = Json::object();
        if constexpr (std::is_same_v<P, GeneratorSourceParams>) {
          j["table"] = GeneratorTableName(p.table);
          j["rows"] = p.rows;
          j["batch_rows"] = p.batch_rows;
          j["key_cardinality"] = p.key_cardinality;
          j["distribution"] = KeyDistributionKindName(p.distribution);
          j["hot_key_fraction"] = p.hot_key_fraction;
          j["string_key"] = p.string_key;
          j["payload_columns"] = p.payload_columns;
          j["seed"] = p.seed;
          j["rows_per_second"] = p.rows_per_second;
          if (p.event_time) j["event_time"] = EventTimeJson(*p.event_time);
        } else if constexpr (std::is_same_v<P, FileSourceParams>) {
          j["paths"] = p.paths;
          if (p.format == FileFormat::kCsv) j["csv"] = CsvJson(p.csv);
          if (p.event_time) j["event_time"] = EventTimeJson(*p.event_time);
        } else if constexpr (std::is_same_v<P, TableSourceParams>) {
          j["table"] = p.table;
          j["batch_rows"] = p.batch_rows;
          if (p.event_time) j["event_time"] = EventTimeJson(*p.event_time);
        } else if constexpr (std::is_same_v<P, MapParams> || std::is_same_v<P, ProjectParams>) {
          j["columns"] = NamedExpressionsJson(p.columns);
        } else if constexpr (std::is_same_v<P, FilterParams>) {
          j["predicate"] = p.predicate;
        } else if constexpr (std::is_same_v<P, KeyByParams>) {
          j["keys"] = p.keys;
        } else if constexpr (std::is_same_v<P, WindowParams>) {
          j["type"] = WindowTypeName(p.type);
          if (p.type != WindowType::kSession) j["size_ms"] = p.size.count();
          if (p.type == WindowType::kSliding) j["slide_ms"] = p.slide.count();
          if (p.type == WindowType::kSession) j["gap_ms"] = p.gap.count();
          // The time fields are written when they differ from their defaults.
          if (p.time != TimeDomain::kEventTime) j["time"] = TimeDomainName(p.time);
          if (!p.time_column.empty()) j["time_column"] = p.time_column;
          if (p.allowed_lateness.count() != 0) {
            j["allowed_lateness_ms"] = p.allowed_lateness.count();
          }
          if (p.late_output) {
            Json late = Json::object();
            late["format"] = FileFormatName(p.late_output->format);
            late["directory"] = p.late_output->directory;
            if (p.late_output->format == FileFormat::kCsv) late["csv"] = CsvJson(p.late_output->csv);
            j["late_output"] = std::move(late);
          }
        } else if constexpr (std::is_same_v<P, AggregateParams>) {
          Json aggs = Json::array();
          for (const AggregateSpec& a : p.aggregates) {
            Json e = Json::object();
            e["function"] = AggregateFunctionName(a.function);
            e["column"] = a.column;
            e["alias"] = a.alias;
            aggs.push_back(std::move(e));
          }
          j["aggregates"] = std::move(aggs);
        } else if constexpr (std::is_same_v<P, JoinParams>) {
          j["left_keys"] = p.left_keys;
          j["right_keys"] = p.right_keys;
          j["how"] = JoinTypeName(p.how);
          if (p.broadcast != JoinBroadcast::kNone) j["broadcast"] = JoinBroadcastName(p.broadcast);
          if (p.time != JoinTime::kNone) {
            j["time"] = JoinTimeName(p.time);
            j["left_time"] = p.left_time;
            j["right_time"] = p.right_time;
            if (p.time == JoinTime::kWindow) j["window_ms"] = p.window.count();
            if (p.time == JoinTime::kInterval) {
              j["before_ms"] = p.before.count();
              j["after_ms"] = p.after.count();
            }
          }
        } else if constexpr (std::is_same_v<P, FileSinkParams>) {
          j["directory"] = p.directory;
          if (p.format == FileFormat::kCsv) j["csv"] = CsvJson(p.csv);
        } else if constexpr (std::is_same_v<P, ConsoleSinkParams>) {
          j["max_rows"] = p.max_rows;
        } else if constexpr (std::is_same_v<P, FunctionMapParams>) {
          j["function"] = p.function;
        }
        return j;
      },
      params);
}

Json PartitioningJson(const PartitioningRequest& r) {
  Json j = Json::object();
  j["type"] = PartitioningKindName(r.kind);
  if (r.kind == PartitioningKind::kHash || r.kind == PartitioningKind::kRange) j["keys"] = r.keys;
  if (r.kind == PartitioningKind::kRange && !r.boundaries.empty()) {
    Json rows = Json::array();
    for (const auto& row : r.boundaries) {
      Json values = Json::array();
      for (const BoundaryValue& v : row) {
        std::visit([&](const auto& x) { values.push_back(x); }, v);
      }
      rows.push_back(std::move(values));
    }
    j["boundaries"] = std::move(rows);
  }
  return j;
}

// ---------------------------------------------------------------------------------------------
// Reading.

std::string Describe(const Json& j) {
  if (j.is_number_integer()) return "an integer";
  if (j.is_number_float()) return "a number with a fraction";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_null()) return "null";
  if (j.is_array()) return "an array";
  return "an object";
}

// One JSON object at `path`: typed getters that record which keys were read, and Done, which
// rejects the rest. `context` names the operator being read, or is empty.
class ObjectReader {
 public:
  ObjectReader(const Json* j, std::string path, std::string context)
      : j_(j), path_(std::move(path)), context_(std::move(context)) {}

  static arrow::Result<ObjectReader> Make(const Json& j, std::string path, std::string context) {
    ObjectReader reader(&j, std::move(path), std::move(context));
    if (!j.is_object()) return reader.Error(reader.path_, "expected an object, got " + Describe(j));
    return reader;
  }

  const std::string& path() const { return path_; }
  std::string Path(std::string_view key) const { return path_ + "." + std::string(key); }
  void set_context(std::string context) { context_ = std::move(context); }

  arrow::Status Error(const std::string& path, const std::string& what) const {
    if (context_.empty()) return arrow::Status::Invalid("plan JSON at ", path, ": ", what);
    return arrow::Status::Invalid("plan JSON: ", context_, ": at ", path, ": ", what);
  }

  // The value of `key`; nullptr when absent and not required.
  arrow::Result<const Json*> Get(std::string_view key, bool required) {
    read_.insert(std::string(key));
    auto it = j_->find(key);
    if (it == j_->end()) {
      if (required) return Error(Path(key), "missing");
      return nullptr;
    }
    return &*it;
  }

  arrow::Result<int64_t> Int(std::string_view key, std::optional<int64_t> fallback, int64_t min,
                             int64_t max) {
    ARROW_ASSIGN_OR_RAISE(const Json* v, Get(key, !fallback));
    if (!v) return *fallback;
    if (!v->is_number_integer()) {
      return Error(Path(key), "expected an integer, got " + Describe(*v));
    }
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max)) {
      return Error(Path(key), "must be between " + std::to_string(min) + " and " +
                                  std::to_string(max) + ", got " +
                                  std::to_string(v->get<uint64_t>()));
    }
    int64_t x = v->get<int64_t>();
    if (x < min || x > max) {
      return Error(Path(key), "must be between " + std::to_string(min) + " and " +
                                  std::to_string(max) + ", got " + std::to_string(x));
    }
    return x;
  }

  arrow::Result<uint64_t> UInt(std::string_view key, uint64_t fallback) {
    ARROW_ASSIGN_OR_RAISE(const Json* v, Get(key, false));
    if (!v) return fallback;
    if (!v->is_number_unsigned()) {
      return Error(Path(key), "expected an integer >= 0, got " + Describe(*v));
    }
    return v->get<uint64_t>();
  }

  arrow::Result<double> Double(std::string_view key, double fallback) {
    ARROW_ASSIGN_OR_RAISE(const Json* v, Get(key, false));
    if (!v) return fallback;
    if (!v->is_number()) return Error(Path(key), "expected a number, got " + Describe(*v));
    return v->get<double>();
  }

  arrow::Result<bool> Bool(std::string_view key, bool fallback) {
    ARROW_ASSIGN_OR_RAISE(const Json* v, Get(key, false));
    if (!v) return fallback;
    if (!v->is_boolean()) return Error(Path(key), "expected a boolean, got " + Describe(*v));
    return v->get<bool>();
  }

  // Required when `fallback` is nullopt.
  arrow::Result<std::string> String(std::string_view key,
                                    std::optional<std::string> fallback = std::nullopt) {
    ARROW_ASSIGN_OR_RAISE(const Json* v, Get(key, !fallback));
    if (!v) return *fallback;
    if (!v->is_string()) return Error(Path(key), "expected a string, got " + Describe(*v));
    return v->get<std::string>();
  }

  arrow::Result<std::vector<std::string>> Strings(std::string_view key, bool required) {
    ARROW_ASSIGN_OR_RAISE(const Json* v, Get(key, required));
    std::vector<std::string> out;
    if (!v) return out;
    if (!v->is_array()) return Error(Path(key), "expected an array of strings, got " + Describe(*v));
    for (size_t i = 0; i < v->size(); ++i) {
      const Json& item = (*v)[i];
      if (!item.is_string()) {
        return Error(Path(key) + "[" + std::to_string(i) + "]",
                     "expected a string, got " + Describe(item));
      }
      out.push_back(item.get<std::string>());
    }
    return out;
  }

  // An enum spelled by name, parsed by `parse`.
  template <typename Parse>
  auto Enum(std::string_view key, Parse parse, std::optional<std::string> fallback = std::nullopt)
      -> decltype(parse(std::string_view())) {
    ARROW_ASSIGN_OR_RAISE(std::string name, String(key, std::move(fallback)));
    auto parsed = parse(name);
    // The parser may quote the input as it is (ParseShuffleMode does): escape and cap it.
    if (!parsed.ok()) return Error(Path(key), SanitizeMessage(parsed.status().message(), 300));
    return parsed;
  }

  arrow::Status Done() const {
    for (auto it = j_->begin(); it != j_->end(); ++it) {
      if (!read_.count(it.key())) {
        return Error(path_, "unknown key " + QuoteInput(it.key()));
      }
    }
    return arrow::Status::OK();
  }

 private:
  const Json* j_;
  std::string path_;
  std::string context_;
  std::set<std::string, std::less<>> read_;
};

arrow::Result<CsvFormatOptions> ReadCsv(ObjectReader& r) {
  CsvFormatOptions csv;
  ARROW_ASSIGN_OR_RAISE(std::string delimiter, r.String("delimiter", ","));
  if (delimiter.size() != 1) {
    return r.Error(r.Path("delimiter"), "expected one character, got " + QuoteInput(delimiter));
  }
  csv.delimiter = delimiter[0];
  ARROW_ASSIGN_OR_RAISE(csv.has_header, r.Bool("has_header", true));
  ARROW_RETURN_NOT_OK(r.Done());
  return csv;
}

arrow::Result<std::vector<NamedExpression>> ReadNamedExpressions(ObjectReader& params,
                                                                 const std::string& context) {
  ARROW_ASSIGN_OR_RAISE(const Json* v, params.Get("columns", true));
  if (!v->is_array()) {
    return params.Error(params.Path("columns"), "expected an array, got " + Describe(*v));
  }
  std::vector<NamedExpression> out;
  for (size_t i = 0; i < v->size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(
        ObjectReader r,
        ObjectReader::Make((*v)[i], params.Path("columns") + "[" + std::to_string(i) + "]",
                           context));
    NamedExpression e;
    ARROW_ASSIGN_OR_RAISE(e.name, r.String("name"));
    ARROW_ASSIGN_OR_RAISE(e.expression, r.String("expression"));
    ARROW_RETURN_NOT_OK(r.Done());
    out.push_back(std::move(e));
  }
  return out;
}

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

arrow::Result<OperatorParams> ReadParams(OperatorKind kind, const Json* j, const std::string& path,
                                         const std::string& context) {
  static const Json kEmpty = Json::object();
  ARROW_ASSIGN_OR_RAISE(ObjectReader r, ObjectReader::Make(j ? *j : kEmpty, path, context));
  auto event_time = [&]() -> arrow::Result<std::optional<EventTimeSpec>> {
    ARROW_ASSIGN_OR_RAISE(const Json* v, r.Get("event_time", false));
    if (!v) return std::nullopt;
    ARROW_ASSIGN_OR_RAISE(ObjectReader e, ObjectReader::Make(*v, r.Path("event_time"), context));
    EventTimeSpec et;
    ARROW_ASSIGN_OR_RAISE(et.column, e.String("column"));
    ARROW_ASSIGN_OR_RAISE(int64_t ms, e.Int("max_out_of_orderness_ms", 0, 0, kMaxInt64));
    et.max_out_of_orderness = std::chrono::milliseconds(ms);
    ARROW_RETURN_NOT_OK(e.Done());
    return et;
  };
  auto csv = [&]() -> arrow::Result<CsvFormatOptions> {
    ARROW_ASSIGN_OR_RAISE(const Json* v, r.Get("csv", false));
    if (!v) return CsvFormatOptions{};
    ARROW_ASSIGN_OR_RAISE(ObjectReader c, ObjectReader::Make(*v, r.Path("csv"), context));
    return ReadCsv(c);
  };
  auto ms = [&](std::string_view key) -> arrow::Result<std::chrono::milliseconds> {
    ARROW_ASSIGN_OR_RAISE(int64_t v, r.Int(key, 0, 0, kMaxInt64));
    return std::chrono::milliseconds(v);
  };

  OperatorParams params;
  switch (kind) {
    case OperatorKind::kGeneratorSource: {
      GeneratorSourceParams p;
      const GeneratorSourceParams d;
      ARROW_ASSIGN_OR_RAISE(p.table, r.Enum("table", ParseGeneratorTable, "shuffle"));
      ARROW_ASSIGN_OR_RAISE(p.rows, r.Int("rows", d.rows, 0, kMaxInt64));
      ARROW_ASSIGN_OR_RAISE(p.batch_rows, r.Int("batch_rows", d.batch_rows, 1, kMaxInt64));
      ARROW_ASSIGN_OR_RAISE(p.key_cardinality,
                            r.Int("key_cardinality", d.key_cardinality, 1, kMaxInt64));
      ARROW_ASSIGN_OR_RAISE(p.distribution,
                            r.Enum("distribution", ParseKeyDistributionKind, "uniform"));
      ARROW_ASSIGN_OR_RAISE(p.hot_key_fraction, r.Double("hot_key_fraction", d.hot_key_fraction));
      ARROW_ASSIGN_OR_RAISE(p.string_key, r.Bool("string_key", d.string_key));
      ARROW_ASSIGN_OR_RAISE(int64_t payload,
                            r.Int("payload_columns", d.payload_columns, 0, 64));
      p.payload_columns = static_cast<int32_t>(payload);
      ARROW_ASSIGN_OR_RAISE(p.seed, r.UInt("seed", d.seed));
      ARROW_ASSIGN_OR_RAISE(p.rows_per_second, r.Double("rows_per_second", d.rows_per_second));
      ARROW_ASSIGN_OR_RAISE(p.event_time, event_time());
      params = std::move(p);
      break;
    }
    case OperatorKind::kParquetSource:
    case OperatorKind::kIpcSource:
    case OperatorKind::kCsvSource: {
      FileSourceParams p;
      p.format = *FileFormatOf(kind);
      ARROW_ASSIGN_OR_RAISE(p.paths, r.Strings("paths", true));
      if (p.format == FileFormat::kCsv) {
        ARROW_ASSIGN_OR_RAISE(p.csv, csv());
      }
      ARROW_ASSIGN_OR_RAISE(p.event_time, event_time());
      params = std::move(p);
      break;
    }
    case OperatorKind::kTableSource: {
      TableSourceParams p;
      ARROW_ASSIGN_OR_RAISE(p.table, r.String("table"));
      ARROW_ASSIGN_OR_RAISE(p.batch_rows, r.Int("batch_rows", p.batch_rows, 1, kMaxInt64));
      ARROW_ASSIGN_OR_RAISE(p.event_time, event_time());
      params = std::move(p);
      break;
    }
    case OperatorKind::kMap: {
      ARROW_ASSIGN_OR_RAISE(auto columns, ReadNamedExpressions(r, context));
      params = MapParams{std::move(columns)};
      break;
    }
    case OperatorKind::kProject: {
      ARROW_ASSIGN_OR_RAISE(auto columns, ReadNamedExpressions(r, context));
      params = ProjectParams{std::move(columns)};
      break;
    }
    case OperatorKind::kFilter: {
      ARROW_ASSIGN_OR_RAISE(std::string predicate, r.String("predicate"));
      params = FilterParams{std::move(predicate)};
      break;
    }
    case OperatorKind::kKeyBy: {
      ARROW_ASSIGN_OR_RAISE(auto keys, r.Strings("keys", true));
      params = KeyByParams{std::move(keys)};
      break;
    }
    case OperatorKind::kWindow: {
      WindowParams p;
      ARROW_ASSIGN_OR_RAISE(p.type, r.Enum("type", ParseWindowType));
      ARROW_ASSIGN_OR_RAISE(p.size, ms("size_ms"));
      ARROW_ASSIGN_OR_RAISE(p.slide, ms("slide_ms"));
      ARROW_ASSIGN_OR_RAISE(p.gap, ms("gap_ms"));
      ARROW_ASSIGN_OR_RAISE(p.time, r.Enum("time", ParseTimeDomain, "event_time"));
      ARROW_ASSIGN_OR_RAISE(p.time_column, r.String("time_column", ""));
      ARROW_ASSIGN_OR_RAISE(p.allowed_lateness, ms("allowed_lateness_ms"));
      ARROW_ASSIGN_OR_RAISE(const Json* late, r.Get("late_output", false));
      if (late) {
        ARROW_ASSIGN_OR_RAISE(ObjectReader l,
                              ObjectReader::Make(*late, r.Path("late_output"), context));
        LateOutputSpec spec;
        ARROW_ASSIGN_OR_RAISE(spec.format, l.Enum("format", ParseFileFormat, "parquet"));
        ARROW_ASSIGN_OR_RAISE(spec.directory, l.String("directory"));
        ARROW_ASSIGN_OR_RAISE(const Json* csv_json, l.Get("csv", false));
        if (csv_json) {
          ARROW_ASSIGN_OR_RAISE(ObjectReader c,
                                ObjectReader::Make(*csv_json, l.Path("csv"), context));
          ARROW_ASSIGN_OR_RAISE(spec.csv, ReadCsv(c));
        }
        ARROW_RETURN_NOT_OK(l.Done());
        p.late_output = std::move(spec);
      }
      params = p;
      break;
    }
    case OperatorKind::kAggregate: {
      ARROW_ASSIGN_OR_RAISE(const Json* v, r.Get("aggregates", true));
      if (!v->is_array()) {
        return r.Error(r.Path("aggregates"), "expected an array, got " + Describe(*v));
      }
      AggregateParams p;
      for (size_t i = 0; i < v->size(); ++i) {
        ARROW_ASSIGN_OR_RAISE(
            ObjectReader a,
            ObjectReader::Make((*v)[i], r.Path("aggregates") + "[" + std::to_string(i) + "]",
                               context));
        AggregateSpec spec;
        ARROW_ASSIGN_OR_RAISE(spec.function, a.Enum("function", ParseAggregateFunction));
        ARROW_ASSIGN_OR_RAISE(spec.column, a.String("column", ""));
        ARROW_ASSIGN_OR_RAISE(spec.alias, a.String("alias", ""));
        ARROW_RETURN_NOT_OK(a.Done());
        p.aggregates.push_back(std::move(spec));
      }
      params = std::move(p);
      break;
    }
    case OperatorKind::kJoin: {
      JoinParams p;
      ARROW_ASSIGN_OR_RAISE(p.left_keys, r.Strings("left_keys", true));
      ARROW_ASSIGN_OR_RAISE(p.right_keys, r.Strings("right_keys", true));
      ARROW_ASSIGN_OR_RAISE(p.how, r.Enum("how", ParseJoinType, "inner"));
      ARROW_ASSIGN_OR_RAISE(p.broadcast, r.Enum("broadcast", ParseJoinBroadcast, "none"));
      ARROW_ASSIGN_OR_RAISE(p.time, r.Enum("time", ParseJoinTime, "none"));
      ARROW_ASSIGN_OR_RAISE(p.left_time, r.String("left_time", ""));
      ARROW_ASSIGN_OR_RAISE(p.right_time, r.String("right_time", ""));
      ARROW_ASSIGN_OR_RAISE(p.window, ms("window_ms"));
      ARROW_ASSIGN_OR_RAISE(p.before, ms("before_ms"));
      ARROW_ASSIGN_OR_RAISE(p.after, ms("after_ms"));
      params = std::move(p);
      break;
    }
    case OperatorKind::kParquetSink:
    case OperatorKind::kIpcSink:
    case OperatorKind::kCsvSink: {
      FileSinkParams p;
      p.format = *FileFormatOf(kind);
      ARROW_ASSIGN_OR_RAISE(p.directory, r.String("directory"));
      if (p.format == FileFormat::kCsv) {
        ARROW_ASSIGN_OR_RAISE(p.csv, csv());
      }
      params = std::move(p);
      break;
    }
    case OperatorKind::kConsoleSink: {
      ConsoleSinkParams p;
      ARROW_ASSIGN_OR_RAISE(p.max_rows, r.Int("max_rows", p.max_rows, 0, kMaxInt64));
      params = p;
      break;
    }
    case OperatorKind::kCollectSink:
      params = CollectSinkParams{};
      break;
    case OperatorKind::kVerifySink:
      params = VerifySinkParams{};
      break;
    case OperatorKind::kFunctionMap: {
      ARROW_ASSIGN_OR_RAISE(std::string function, r.String("function"));
      params = FunctionMapParams{std::move(function)};
      break;
    }
  }
  ARROW_RETURN_NOT_OK(r.Done());
  return params;
}

arrow::Result<PartitioningRequest> ReadPartitioning(const Json* j, const std::string& path,
                                                    const std::string& context) {
  if (!j) return PartitioningRequest{};
  ARROW_ASSIGN_OR_RAISE(ObjectReader r, ObjectReader::Make(*j, path, context));
  PartitioningRequest req;
  ARROW_ASSIGN_OR_RAISE(req.kind, r.Enum("type", ParsePartitioningKind));
  bool keyed = req.kind == PartitioningKind::kHash || req.kind == PartitioningKind::kRange;
  if (keyed) {
    ARROW_ASSIGN_OR_RAISE(req.keys, r.Strings("keys", true));
  }
  if (req.kind == PartitioningKind::kRange) {
    ARROW_ASSIGN_OR_RAISE(const Json* rows, r.Get("boundaries", false));
    if (rows) {
      std::string rows_path = r.Path("boundaries");
      if (!rows->is_array()) {
        return r.Error(rows_path, "expected an array of arrays, got " + Describe(*rows));
      }
      for (size_t i = 0; i < rows->size(); ++i) {
        const Json& row = (*rows)[i];
        std::string row_path = rows_path + "[" + std::to_string(i) + "]";
        if (!row.is_array()) return r.Error(row_path, "expected an array, got " + Describe(row));
        std::vector<BoundaryValue> values;
        for (size_t k = 0; k < row.size(); ++k) {
          const Json& v = row[k];
          if (v.is_number_integer() && !(v.is_number_unsigned() &&
                                         v.get<uint64_t>() > static_cast<uint64_t>(kMaxInt64))) {
            values.emplace_back(v.get<int64_t>());
          } else if (v.is_number_float()) {
            values.emplace_back(v.get<double>());
          } else if (v.is_string()) {
            values.emplace_back(v.get<std::string>());
          } else {
            return r.Error(row_path + "[" + std::to_string(k) + "]",
                           "expected an integer, a number or a string, got " + Describe(v));
          }
        }
        req.boundaries.push_back(std::move(values));
      }
    }
  }
  ARROW_RETURN_NOT_OK(r.Done());
  return req;
}

// Thrown by the parser callback; caught in ParseJson.
struct TooDeep {};
struct DuplicateKey {
  std::string key;
};

arrow::Result<Json> ParseJson(std::string_view text) {
  if (text.size() > kMaxPlanJsonBytes) {
    return arrow::Status::Invalid("plan JSON is ", text.size(), " bytes; at most ",
                                  kMaxPlanJsonBytes, " are allowed");
  }
  // The keys seen in each object being parsed, innermost last: a key twice in one object is
  // ambiguous (the parser would keep the last), so it is an error.
  std::vector<std::set<std::string, std::less<>>> keys;
  try {
    Json::parser_callback_t check = [&keys](int depth, nlohmann::json::parse_event_t event,
                                            Json& parsed) -> bool {
      using Event = nlohmann::json::parse_event_t;
      if (depth > kMaxPlanJsonDepth) throw TooDeep{};
      if (event == Event::object_start) keys.emplace_back();
      if (event == Event::object_end && !keys.empty()) keys.pop_back();
      if (event == Event::key && !keys.empty() &&
          !keys.back().insert(parsed.get<std::string>()).second) {
        throw DuplicateKey{parsed.get<std::string>()};
      }
      return true;
    };
    return Json::parse(text.begin(), text.end(), check);
  } catch (const TooDeep&) {
    return arrow::Status::Invalid("plan JSON nests arrays and objects deeper than ",
                                  kMaxPlanJsonDepth, " levels");
  } catch (const DuplicateKey& e) {
    return arrow::Status::Invalid("plan JSON has the key ", QuoteInput(e.key),
                                  " twice in one object");
  } catch (const nlohmann::json::exception& e) {
    return arrow::Status::Invalid("plan JSON is not valid JSON: ",
                                  SanitizeMessage(e.what(), 300));
  }
}

}  // namespace

arrow::Result<std::string> PlanToJson(const LogicalPlan& plan) {
  Json root = Json::object();
  root["sabot_plan_version"] = kPlanFormatVersion;
  Json options = Json::object();
  options["shuffle_mode"] = ShuffleModeName(plan.options().shuffle_mode);
  options["chaining"] = plan.options().chaining;
  if (plan.options().lineage_recovery) options["lineage_recovery"] = true;
  if (plan.options().idle_timeout.count() != 0) {
    options["idle_timeout_ms"] = plan.options().idle_timeout.count();
  }
  const CheckpointOptions& checkpoint = plan.options().checkpoint;
  if (checkpoint != CheckpointOptions{}) {
    Json c = Json::object();
    c["interval_ms"] = checkpoint.interval.count();
    c["directory"] = checkpoint.directory;
    c["retained"] = checkpoint.retained;
    c["max_restarts"] = checkpoint.max_restarts;
    c["restart_delay_ms"] = checkpoint.restart_delay.count();
    c["restart_backoff"] = checkpoint.restart_backoff;
    c["max_restart_delay_ms"] = checkpoint.max_restart_delay.count();
    options["checkpoint"] = std::move(c);
  }
  root["options"] = std::move(options);
  Json ops = Json::array();
  for (const OperatorSpec& op : plan.operators()) {
    Json j = Json::object();
    j["id"] = op.id;
    j["name"] = op.name;
    j["kind"] = OperatorKindName(op.kind());
    j["parallelism"] = op.parallelism;
    j["params"] = ParamsJson(op.params);
    ops.push_back(std::move(j));
  }
  root["operators"] = std::move(ops);
  Json edges = Json::array();
  for (const EdgeSpec& edge : plan.edges()) {
    Json j = Json::object();
    j["from"] = edge.from;
    j["to"] = edge.to;
    j["input"] = edge.input;
    j["partitioning"] = PartitioningJson(edge.partitioning);
    edges.push_back(std::move(j));
  }
  root["edges"] = std::move(edges);
  try {
    return root.dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {
    return arrow::Status::Invalid("plan cannot be written as JSON: ",
                                  SanitizeMessage(e.what(), 300));
  }
}

arrow::Result<LogicalPlan> PlanFromJson(std::string_view text) {
  ARROW_ASSIGN_OR_RAISE(Json root, ParseJson(text));
  ARROW_ASSIGN_OR_RAISE(ObjectReader r, ObjectReader::Make(root, "$", ""));
  {
    ARROW_ASSIGN_OR_RAISE(const Json* v, r.Get("sabot_plan_version", true));
    if (!v->is_number_integer()) {
      return r.Error("$.sabot_plan_version", "expected an integer, got " + Describe(*v));
    }
    if (!(v->is_number_unsigned() ? v->get<uint64_t>() == kPlanFormatVersion
                                  : v->get<int64_t>() == kPlanFormatVersion)) {
      return r.Error("$.sabot_plan_version",
                     "unsupported version " + SanitizeMessage(v->dump(), 40) +
                         " (this Sabot reads version " + std::to_string(kPlanFormatVersion) + ")");
    }
  }

  PlanOptions options;
  ARROW_ASSIGN_OR_RAISE(const Json* options_json, r.Get("options", false));
  if (options_json) {
    ARROW_ASSIGN_OR_RAISE(ObjectReader o, ObjectReader::Make(*options_json, "$.options", ""));
    ARROW_ASSIGN_OR_RAISE(options.shuffle_mode,
                          o.Enum("shuffle_mode", ParseShuffleMode, "pipelined"));
    ARROW_ASSIGN_OR_RAISE(options.chaining, o.Bool("chaining", true));
    ARROW_ASSIGN_OR_RAISE(options.lineage_recovery, o.Bool("lineage_recovery", false));
    ARROW_ASSIGN_OR_RAISE(int64_t idle_ms, o.Int("idle_timeout_ms", 0, 0, kMaxInt64));
    options.idle_timeout = std::chrono::milliseconds(idle_ms);
    ARROW_ASSIGN_OR_RAISE(const Json* checkpoint_json, o.Get("checkpoint", false));
    if (checkpoint_json) {
      // Checkpoints and the restart strategy (docs/fault-tolerance.md).
      ARROW_ASSIGN_OR_RAISE(ObjectReader c,
                            ObjectReader::Make(*checkpoint_json, o.Path("checkpoint"), ""));
      CheckpointOptions& checkpoint = options.checkpoint;
      constexpr int64_t kMaxMs = int64_t{1} << 40;
      ARROW_ASSIGN_OR_RAISE(int64_t interval, c.Int("interval_ms", 0, 0, kMaxMs));
      checkpoint.interval = std::chrono::milliseconds(interval);
      ARROW_ASSIGN_OR_RAISE(checkpoint.directory, c.String("directory", ""));
      if (interval > 0 && checkpoint.directory.empty()) {
        return c.Error(c.Path("directory"), "required (non-empty) when interval_ms > 0");
      }
      ARROW_ASSIGN_OR_RAISE(int64_t retained, c.Int("retained", 2, 1, 1000));
      checkpoint.retained = static_cast<int32_t>(retained);
      ARROW_ASSIGN_OR_RAISE(int64_t restarts, c.Int("max_restarts", 3, 0, 1'000'000));
      checkpoint.max_restarts = static_cast<int32_t>(restarts);
      ARROW_ASSIGN_OR_RAISE(int64_t delay, c.Int("restart_delay_ms", 500, 0, kMaxMs));
      checkpoint.restart_delay = std::chrono::milliseconds(delay);
      ARROW_ASSIGN_OR_RAISE(checkpoint.restart_backoff, c.Double("restart_backoff", 2.0));
      if (!(checkpoint.restart_backoff >= 1.0 && checkpoint.restart_backoff <= 1000.0)) {
        return c.Error(c.Path("restart_backoff"), "must be between 1 and 1000");
      }
      ARROW_ASSIGN_OR_RAISE(int64_t max_delay, c.Int("max_restart_delay_ms", 30'000, 0, kMaxMs));
      checkpoint.max_restart_delay = std::chrono::milliseconds(max_delay);
      ARROW_RETURN_NOT_OK(c.Done());
    }
    ARROW_RETURN_NOT_OK(o.Done());
  }

  std::vector<OperatorSpec> operators;
  ARROW_ASSIGN_OR_RAISE(const Json* ops, r.Get("operators", true));
  if (!ops->is_array()) return r.Error("$.operators", "expected an array, got " + Describe(*ops));
  if (ops->size() > static_cast<size_t>(kMaxPlanOperators)) {
    return r.Error("$.operators", "holds " + std::to_string(ops->size()) +
                                      " operators; at most " +
                                      std::to_string(kMaxPlanOperators) + " are allowed");
  }
  for (size_t i = 0; i < ops->size(); ++i) {
    std::string path = "$.operators[" + std::to_string(i) + "]";
    ARROW_ASSIGN_OR_RAISE(ObjectReader o, ObjectReader::Make((*ops)[i], path, ""));
    OperatorSpec op;
    ARROW_ASSIGN_OR_RAISE(int64_t id, o.Int("id", std::nullopt, 0,
                                            std::numeric_limits<OperatorId>::max()));
    op.id = static_cast<OperatorId>(id);
    ARROW_ASSIGN_OR_RAISE(op.name, o.String("name"));
    std::string context = "operator " + QuoteInput(op.name) + " (id " + std::to_string(id) + ")";
    o.set_context(context);
    ARROW_ASSIGN_OR_RAISE(OperatorKind kind, o.Enum("kind", ParseOperatorKind));
    ARROW_ASSIGN_OR_RAISE(int64_t parallelism,
                          o.Int("parallelism", std::nullopt, 1, kMaxOperatorParallelism));
    op.parallelism = static_cast<int32_t>(parallelism);
    ARROW_ASSIGN_OR_RAISE(const Json* params, o.Get("params", false));
    ARROW_ASSIGN_OR_RAISE(op.params, ReadParams(kind, params, o.Path("params"), context));
    ARROW_RETURN_NOT_OK(o.Done());
    operators.push_back(std::move(op));
  }

  std::vector<EdgeSpec> edges;
  ARROW_ASSIGN_OR_RAISE(const Json* es, r.Get("edges", true));
  if (!es->is_array()) return r.Error("$.edges", "expected an array, got " + Describe(*es));
  if (es->size() > static_cast<size_t>(kMaxPlanEdges)) {
    return r.Error("$.edges", "holds " + std::to_string(es->size()) + " edges; at most " +
                                  std::to_string(kMaxPlanEdges) + " are allowed");
  }
  for (size_t i = 0; i < es->size(); ++i) {
    std::string path = "$.edges[" + std::to_string(i) + "]";
    ARROW_ASSIGN_OR_RAISE(ObjectReader o, ObjectReader::Make((*es)[i], path, ""));
    EdgeSpec edge;
    constexpr int64_t kMaxId = std::numeric_limits<OperatorId>::max();
    ARROW_ASSIGN_OR_RAISE(int64_t from, o.Int("from", std::nullopt, 0, kMaxId));
    ARROW_ASSIGN_OR_RAISE(int64_t to, o.Int("to", std::nullopt, 0, kMaxId));
    ARROW_ASSIGN_OR_RAISE(int64_t input, o.Int("input", 0, 0, 1));
    edge.from = static_cast<OperatorId>(from);
    edge.to = static_cast<OperatorId>(to);
    edge.input = static_cast<int32_t>(input);
    ARROW_ASSIGN_OR_RAISE(const Json* partitioning, o.Get("partitioning", false));
    ARROW_ASSIGN_OR_RAISE(edge.partitioning,
                          ReadPartitioning(partitioning, o.Path("partitioning"), ""));
    ARROW_RETURN_NOT_OK(o.Done());
    edges.push_back(std::move(edge));
  }
  ARROW_RETURN_NOT_OK(r.Done());

  auto plan = LogicalPlan::Make(std::move(operators), std::move(edges), options);
  if (!plan.ok()) {
    // Point at the JSON text of the operator or edge the rule is about: the JSON arrays and the
    // vectors given to Make have the same order, and fields have the same names.
    const PlanErrorDetail* where = PlanErrorDetail::FromStatus(plan.status());
    if (!where || where->ToString().empty()) {
      return arrow::Status::Invalid("plan JSON: ", plan.status().message());
    }
    return arrow::Status::Invalid("plan JSON: ", plan.status().message(), " (at $.",
                                  where->ToString(), ")");
  }
  return plan;
}

}  // namespace sabot
