#pragma once

// The vocabulary of Sabot's expression language (docs/expressions.md): the allowlist of
// functions with their arity and the Arrow compute function each maps to, the type names of
// CAST and typed literals, and the units of interval literals. Nothing outside these tables can
// be called from an expression, so a job file cannot reach arbitrary Arrow functions.
//
// Everything here is immutable static data and pure functions; safe for concurrent use.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

namespace sabot {

// What an argument of a function must be, beyond "an expression".
enum class ArgRule : uint8_t {
  kAny,            // any expression
  kIntLiteral,     // an integer literal (it becomes an option of the Arrow kernel)
  kStringLiteral,  // a string literal (likewise)
};

struct FunctionSpec {
  // The name in expressions (lower case; matched case-insensitively).
  std::string_view name;
  // The Arrow compute function it binds to.
  std::string_view arrow_name;
  int min_args;
  // -1: any number >= min_args.
  int max_args;
  // Rules for arguments 0..3; arguments past the table are kAny.
  ArgRule rules[4];
  // One line for docs and error messages, e.g. "round(x [, digits])".
  std::string_view signature;
};

// The spec of `name` (case-insensitive), or nullptr when it is not in the allowlist.
const FunctionSpec* FindFunction(std::string_view name);

// The whole allowlist, sorted by name.
std::span<const FunctionSpec> AllFunctions();

// Every allowed function name, sorted, comma-separated (for error messages).
const std::string& AllowedFunctionNames();

// The rule for argument `index` of `spec`.
ArgRule ArgRuleAt(const FunctionSpec& spec, size_t index);

// The canonical spelling of a type name ("boolean" -> "bool", "double" -> "float64",
// "timestamp" -> "timestamp[us]", "utf8" -> "string", ...), given the base name and the
// optional bracketed unit, both case-insensitive; nullopt when not a known type.
std::optional<std::string> CanonicalTypeName(std::string_view base, std::string_view unit);

// True when `base` (case-insensitive) starts a type name that takes a bracketed unit
// (timestamp, duration).
bool TypeTakesUnit(std::string_view base);

// The Arrow type of a canonical type name; Invalid when `canonical` is not one.
arrow::Result<std::shared_ptr<arrow::DataType>> TypeFromCanonicalName(std::string_view canonical);

// Every accepted type name, comma-separated (for error messages).
const std::string& AllowedTypeNames();

// The canonical (plural, lower-case) spelling of an interval unit: "minute", "MINUTES" ->
// "minutes"; nullopt when not a unit.
std::optional<std::string> CanonicalIntervalUnit(std::string_view unit);

// The duration scalar for `count` `unit` (canonical): seconds, minutes, hours and days give a
// duration[s], milliseconds duration[ms], microseconds duration[us], nanoseconds duration[ns].
// Invalid when the product overflows int64.
arrow::Result<std::shared_ptr<arrow::Scalar>> IntervalScalar(int64_t count,
                                                             std::string_view unit);

// True when `word` (case-insensitive) is reserved: and, as, between, case, cast, else, end,
// false, in, is, not, null, or, then, true, when. A column with such a name must be backquoted.
bool IsReservedWord(std::string_view word);

}  // namespace sabot
