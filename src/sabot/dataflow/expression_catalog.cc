#include "sabot/dataflow/expression_catalog.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <iterator>

#include <arrow/scalar.h>
#include <arrow/status.h>
#include <arrow/type.h>
#include <arrow/util/int_util_overflow.h>

namespace sabot {

namespace {

constexpr ArgRule kA = ArgRule::kAny;
constexpr ArgRule kI = ArgRule::kIntLiteral;
constexpr ArgRule kS = ArgRule::kStringLiteral;

// Sorted by name (FindFunction relies on it; a test checks).
constexpr FunctionSpec kFunctions[] = {
    {"abs", "abs_checked", 1, 1, {kA, kA, kA, kA}, "abs(x)"},
    {"ceil", "ceil", 1, 1, {kA, kA, kA, kA}, "ceil(x)"},
    {"coalesce", "coalesce", 1, -1, {kA, kA, kA, kA}, "coalesce(x, ...)"},
    {"concat", "binary_join_element_wise", 1, -1, {kA, kA, kA, kA}, "concat(s, ...)"},
    {"contains", "match_substring", 2, 2, {kA, kS, kA, kA}, "contains(s, 'literal')"},
    {"day", "day", 1, 1, {kA, kA, kA, kA}, "day(t)"},
    {"ends_with", "ends_with", 2, 2, {kA, kS, kA, kA}, "ends_with(s, 'literal')"},
    {"floor", "floor", 1, 1, {kA, kA, kA, kA}, "floor(x)"},
    {"hour", "hour", 1, 1, {kA, kA, kA, kA}, "hour(t)"},
    {"if", "case_when", 3, 3, {kA, kA, kA, kA}, "if(condition, then, else)"},
    {"length", "utf8_length", 1, 1, {kA, kA, kA, kA}, "length(s)"},
    {"lower", "utf8_lower", 1, 1, {kA, kA, kA, kA}, "lower(s)"},
    {"minute", "minute", 1, 1, {kA, kA, kA, kA}, "minute(t)"},
    {"month", "month", 1, 1, {kA, kA, kA, kA}, "month(t)"},
    {"power", "power_checked", 2, 2, {kA, kA, kA, kA}, "power(x, y)"},
    {"round", "round", 1, 2, {kA, kI, kA, kA}, "round(x [, digits])"},
    {"second", "second", 1, 1, {kA, kA, kA, kA}, "second(t)"},
    {"sign", "sign", 1, 1, {kA, kA, kA, kA}, "sign(x)"},
    {"sqrt", "sqrt_checked", 1, 1, {kA, kA, kA, kA}, "sqrt(x)"},
    {"starts_with", "starts_with", 2, 2, {kA, kS, kA, kA}, "starts_with(s, 'literal')"},
    {"substr", "utf8_slice_codeunits", 2, 3, {kA, kI, kI, kA}, "substr(s, start [, length])"},
    {"trim", "utf8_trim_whitespace", 1, 1, {kA, kA, kA, kA}, "trim(s)"},
    {"upper", "utf8_upper", 1, 1, {kA, kA, kA, kA}, "upper(s)"},
    {"year", "year", 1, 1, {kA, kA, kA, kA}, "year(t)"},
};

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct TypeAlias {
  std::string_view spelling;
  std::string_view canonical;
};

constexpr std::array<TypeAlias, 19> kTypeAliases = {{
    {"bool", "bool"},       {"boolean", "bool"},     {"int8", "int8"},
    {"int16", "int16"},     {"int32", "int32"},      {"int64", "int64"},
    {"uint8", "uint8"},     {"uint16", "uint16"},    {"uint32", "uint32"},
    {"uint64", "uint64"},   {"float32", "float32"},  {"float", "float32"},
    {"float64", "float64"}, {"double", "float64"},   {"string", "string"},
    {"utf8", "string"},     {"date32", "date32"},    {"date", "date32"},
    {"timestamp", "timestamp[us]"},
}};

// The types without parameters, by canonical name.
struct SimpleType {
  std::string_view canonical;
  const std::shared_ptr<arrow::DataType>& (*make)();
};

const SimpleType kSimpleTypes[] = {
    {"bool", arrow::boolean},   {"int8", arrow::int8},       {"int16", arrow::int16},
    {"int32", arrow::int32},    {"int64", arrow::int64},     {"uint8", arrow::uint8},
    {"uint16", arrow::uint16},  {"uint32", arrow::uint32},   {"uint64", arrow::uint64},
    {"float32", arrow::float32}, {"float64", arrow::float64}, {"string", arrow::utf8},
    {"date32", arrow::date32},
};

constexpr std::array<std::string_view, 16> kReserved = {
    "and", "as", "between", "case", "cast", "else", "end", "false",
    "in",  "is", "not",     "null", "or",   "then", "true", "when"};

struct IntervalUnit {
  std::string_view canonical;
  arrow::TimeUnit::type arrow_unit;
  int64_t multiplier;
};

constexpr std::array<IntervalUnit, 7> kIntervalUnits = {{
    {"nanoseconds", arrow::TimeUnit::NANO, 1},
    {"microseconds", arrow::TimeUnit::MICRO, 1},
    {"milliseconds", arrow::TimeUnit::MILLI, 1},
    {"seconds", arrow::TimeUnit::SECOND, 1},
    {"minutes", arrow::TimeUnit::SECOND, 60},
    {"hours", arrow::TimeUnit::SECOND, 3600},
    {"days", arrow::TimeUnit::SECOND, 86400},
}};

std::optional<arrow::TimeUnit::type> ParseTimeUnit(std::string_view unit) {
  if (unit == "s") return arrow::TimeUnit::SECOND;
  if (unit == "ms") return arrow::TimeUnit::MILLI;
  if (unit == "us") return arrow::TimeUnit::MICRO;
  if (unit == "ns") return arrow::TimeUnit::NANO;
  return std::nullopt;
}

}  // namespace

const FunctionSpec* FindFunction(std::string_view name) {
  const std::string lower = Lower(name);
  const auto* end = std::end(kFunctions);
  const auto* it = std::lower_bound(std::begin(kFunctions), end, lower,
                             [](const FunctionSpec& spec, const std::string& key) {
                               return spec.name < std::string_view(key);
                             });
  if (it == end || it->name != lower) return nullptr;
  return &*it;
}

std::span<const FunctionSpec> AllFunctions() { return kFunctions; }

const std::string& AllowedFunctionNames() {
  static const std::string names = [] {
    std::string out;
    for (const auto& spec : kFunctions) {
      if (!out.empty()) out += ", ";
      out += spec.name;
    }
    return out;
  }();
  return names;
}

ArgRule ArgRuleAt(const FunctionSpec& spec, size_t index) {
  return index < 4 ? spec.rules[index] : ArgRule::kAny;
}

bool TypeTakesUnit(std::string_view base) {
  const std::string lower = Lower(base);
  return lower == "timestamp" || lower == "duration";
}

std::optional<std::string> CanonicalTypeName(std::string_view base, std::string_view unit) {
  const std::string lower = Lower(base);
  if (!unit.empty()) {
    if (!TypeTakesUnit(lower)) return std::nullopt;
    const std::string lower_unit = Lower(unit);
    if (!ParseTimeUnit(lower_unit)) return std::nullopt;
    return lower + "[" + lower_unit + "]";
  }
  if (lower == "duration") return std::string("duration[us]");
  for (const auto& alias : kTypeAliases) {
    if (alias.spelling == lower) return std::string(alias.canonical);
  }
  return std::nullopt;
}

arrow::Result<std::shared_ptr<arrow::DataType>> TypeFromCanonicalName(
    std::string_view canonical) {
  for (const auto& entry : kSimpleTypes) {
    if (entry.canonical == canonical) return entry.make();
  }
  for (std::string_view base : {"timestamp", "duration"}) {
    if (canonical.size() > base.size() + 2 && canonical.substr(0, base.size()) == base &&
        canonical[base.size()] == '[' && canonical.back() == ']') {
      auto unit = ParseTimeUnit(canonical.substr(base.size() + 1,
                                                 canonical.size() - base.size() - 2));
      if (unit) {
        return base == "timestamp" ? arrow::timestamp(*unit) : arrow::duration(*unit);
      }
    }
  }
  return arrow::Status::Invalid("not a canonical type name: '", std::string(canonical), "'");
}

const std::string& AllowedTypeNames() {
  static const std::string names =
      "bool (boolean), int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32 "
      "(float), float64 (double), string (utf8), date32 (date), timestamp[s|ms|us|ns] "
      "(timestamp = timestamp[us]), duration[s|ms|us|ns] (duration = duration[us])";
  return names;
}

std::optional<std::string> CanonicalIntervalUnit(std::string_view unit) {
  std::string lower = Lower(unit);
  if (!lower.empty() && lower.back() != 's') lower.push_back('s');
  for (const auto& entry : kIntervalUnits) {
    if (entry.canonical == lower) return lower;
  }
  return std::nullopt;
}

arrow::Result<std::shared_ptr<arrow::Scalar>> IntervalScalar(int64_t count,
                                                             std::string_view unit) {
  for (const auto& entry : kIntervalUnits) {
    if (entry.canonical != unit) continue;
    int64_t value = 0;
    if (arrow::internal::MultiplyWithOverflow(count, entry.multiplier, &value)) {
      return arrow::Status::Invalid("interval ", count, " ", std::string(unit),
                                    " overflows a 64-bit duration");
    }
    return std::make_shared<arrow::DurationScalar>(value, entry.arrow_unit);
  }
  return arrow::Status::Invalid("not an interval unit: '", std::string(unit), "'");
}

bool IsReservedWord(std::string_view word) {
  const std::string lower = Lower(word);
  return std::find(kReserved.begin(), kReserved.end(), lower) != kReserved.end();
}

}  // namespace sabot
