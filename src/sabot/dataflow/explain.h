#pragma once

// A human-readable rendering of an execution graph: what `sabot run JOB --explain` prints.

#include <string>

#include "sabot/dataflow/execution_graph.h"

namespace sabot {

// The operators (name[parallelism], kind and main parameters), the chains with their task
// counts, and every edge with its type and N x M, one per line, e.g.
//
//   source[10] -> map[10]  FORWARD (chained)
//   map[10] -> aggregate[5]  HASH(user_id) 10x5  shuffle s0.map.aggregate (key_by 'key_by')
//
// Deterministic (ids and order as ExecutionGraph documents); ends with a newline. Expressions and
// paths are quoted and escaped (common/quoted_input.h), so the text is printable ASCII.
// A pure function of the graph; safe for concurrent use.
std::string Explain(const ExecutionGraph& graph);

}  // namespace sabot
