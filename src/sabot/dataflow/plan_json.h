#pragma once

// The JSON form of a LogicalPlan, version 1 (docs/plan-format.md): what the coordinator ships to
// agents, what the Python API produces, and what `sabot run` reads after converting a job file.

#include <cstddef>
#include <string>
#include <string_view>

#include <arrow/result.h>

#include "sabot/dataflow/logical_plan.h"

namespace sabot {

// The "sabot_plan_version" this code writes and the only one it reads.
inline constexpr int kPlanFormatVersion = 1;
// Longest JSON text PlanFromJson accepts, and deepest nesting of arrays and objects.
inline constexpr size_t kMaxPlanJsonBytes = 16 << 20;
inline constexpr int kMaxPlanJsonDepth = 16;

// `plan` as JSON text: two-space indented, keys in the documented order, every field written
// (defaults included) except the optional ones that are absent (event_time, range boundaries).
// Deterministic: the same plan gives the same text. Invalid if a string of the plan is not
// valid UTF-8 (JSON cannot hold it). A pure function; safe for concurrent use.
arrow::Result<std::string> PlanToJson(const LogicalPlan& plan);

// Reads JSON text written by PlanToJson (or by hand, per docs/plan-format.md) and validates it
// whole: Invalid for text that is not JSON or is too large or too deep, a missing or unknown
// "sabot_plan_version", an unknown key anywhere, a key twice in one object, a value of the wrong type or out of range, and
// every rule of LogicalPlan::Validate. Errors name the JSON path ("$.operators[2].params.keys")
// and, inside an operator, the operator ("operator 'agg' (id 2)").
// A pure function; safe for concurrent use.
arrow::Result<LogicalPlan> PlanFromJson(std::string_view text);

}  // namespace sabot
