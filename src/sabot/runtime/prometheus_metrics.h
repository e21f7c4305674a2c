#pragma once

// The `GET /metrics` body of the HTTP API (http_api.h): a cluster's agents and jobs in the
// Prometheus text exposition format, version 0.0.4. Names and units follow Prometheus' naming
// conventions (a `sabot_` prefix, base units — seconds, bytes —, `_total` on counters); every
// family has its HELP and TYPE lines and its samples together. docs/http-api.md lists the
// metrics. Pure functions of their arguments (the clock is passed in); safe for concurrent use.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/runtime/cluster_state.h"

namespace sabot {

// The Content-Type of the body RenderPrometheusMetrics writes.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// Every metric of `agents` and `jobs` (all of them, in the order given). Per shuffle edge, rows
// are per channel (writer task, partition); bytes per channel and blocked time per writer when
// the runner reported them (EdgeReport::channel_bytes, writer_blocked), otherwise one sample
// for the edge.
std::string RenderPrometheusMetrics(const std::vector<AgentInfo>& agents,
                                    const std::vector<JobInfo>& jobs,
                                    std::chrono::system_clock::time_point now);

// A label value as the exposition format writes it between double quotes: backslash, double
// quote and line feed escaped as \\, \" and \n.
std::string EscapeLabelValue(std::string_view value);

// A sample value: integers exactly, other numbers in the shortest form that reads back the same,
// "NaN", "+Inf", "-Inf".
std::string FormatSampleValue(double value);

}  // namespace sabot
