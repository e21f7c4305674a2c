#pragma once

// The JSON bodies of the HTTP API (http_api.h, docs/http-api.md): agents, jobs and one job's
// graph and figures, rendered from the plain values of cluster_state.h. Pure functions of their
// arguments (the clock is passed in, so tests fix it); safe for concurrent use. Strings that are
// not valid UTF-8 (an error quoting hostile input) are rendered with U+FFFD in place of the bad
// bytes, never dropped and never an exception.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/runtime/cluster_state.h"

namespace sabot {

// {"agents": [{"id", "location", "state": "up"|"lost", "slots", "slots_used",
//   "registered_at", "last_heartbeat", "heartbeat_age_seconds", "memory_budget_bytes",
//   "memory_used_bytes"}, ...]}. Times are RFC 3339 UTC with milliseconds, null when unset.
std::string AgentsJson(const std::vector<AgentInfo>& agents,
                       std::chrono::system_clock::time_point now);

// {"jobs": [summary, ...]} in the order given; a summary is {"id", "name", "state", "error",
// "submitted_at", "finished_at", "elapsed_seconds", "task_states": {"total", "created", ...,
// "cancelled"}, "rows_out" (rows the job's sinks wrote so far)}.
std::string JobsJson(const std::vector<JobInfo>& jobs);

// One job's summary, as JobsJson lists it.
std::string JobSummaryJson(const JobInfo& job);

// One job whole: the summary's fields plus
//   "graph": {"chains": [...], "operators": [...], "edges": [...]} — the plan's execution graph
//     (execution_graph.h: key_by folded into its edge, FORWARD chains fused), each operator
//     with its parallelism and chain, each edge with its type, mode, keys and N x M;
//   "tasks": [{"chain", "subtask", "operator", "agent_id", "agent_location", "state", "error",
//     "rows_in", "rows_out"}];
//   "operators": the graph's operators with their figures (rows in/out, busy seconds, state
//     spilled bytes, watermark in ms since the epoch or null before one, whether every input
//     ended, watermark lag in seconds behind `now`, late rows);
//   "edges": every shuffle edge with its figures: "rows" and "bytes" (N x M matrices; "bytes"
//     empty when the runner does not know bytes per channel), "writer_blocked_seconds" (N
//     values, or empty), totals, spill, blocked seconds and skew;
//   "memory": {"peak_bytes", "budget_bytes"}, "explain" (text).
// The graph comes from the job's plan_json; when that is empty or unreadable, from its figures
// (job.operators and job.edges) alone.
std::string JobJson(const JobInfo& job, std::chrono::system_clock::time_point now);

// {"error": message}.
std::string ErrorJson(std::string_view message);

// {"id": id, "url": "/api/v1/jobs/<id>"}: the answer to a submitted job.
std::string SubmittedJobJson(const std::string& id);

// "2026-11-30T18:00:00.123Z": RFC 3339, UTC, milliseconds.
std::string FormatTimestamp(std::chrono::system_clock::time_point time);

}  // namespace sabot
