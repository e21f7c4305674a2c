#pragma once

// The execution graph: a LogicalPlan expanded into chains of operators, the tasks that run them
// and the shuffle edges between chains. It decides every edge's type; the local executor and the
// coordinator (which ships chains and shuffle descriptors to agents) both start from it.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <arrow/result.h>

#include "sabot/common/ids.h"
#include "sabot/dataflow/logical_plan.h"
#include "sabot/partition/partition_spec.h"
#include "sabot/shuffle/shuffle_options.h"

namespace sabot {

// The most edges a graph may have after key_by folding (as many as a plan may have).
inline constexpr size_t kMaxGraphEdges = kMaxPlanEdges;

// Consecutive operators that run in one task, handing batches from one to the next by a function
// call (no shuffle, no copy), as Flink's operator chaining does. The operators are in data-flow
// order: operators.front() is the head (the only one with inputs from other chains: shuffle
// edges), operators.back() the tail (the only one with outputs to other chains). Every operator
// of a chain has the chain's parallelism.
struct ChainSpec {
  int32_t id = 0;            // index in ExecutionGraph::chains()
  std::string name;          // the head operator's name
  std::vector<OperatorId> operators;
  int32_t parallelism = 1;
};

// One task: subtask `subtask` (0 .. parallelism - 1) of chain `chain`.
struct TaskSpec {
  int32_t chain = 0;
  TaskIndex subtask = 0;
};

// A data-flow edge between two operators of the graph after key_by folding.
//
// A chained edge (`chained`) lies inside a chain: FORWARD, no shuffle; `shuffle_id` is empty and
// from_chain == to_chain. Any other edge is an N x M shuffle from every task of `from_chain`
// (whose tail is `from_operator`) to every task of `to_chain` (whose head is `to_operator`).
struct GraphEdge {
  std::string shuffle_id;  // "s<k>.<from operator>.<to operator>"; a valid ShuffleId; "" if chained
  OperatorId from_operator = 0;
  OperatorId to_operator = 0;
  int32_t input = 0;       // the input of to_operator it feeds (join: 0 left, 1 right)
  int32_t from_chain = 0;
  int32_t to_chain = 0;
  EdgeType type = EdgeType::kForward;
  std::vector<std::string> keys;                         // HASH and RANGE
  std::vector<std::vector<BoundaryValue>> boundaries;    // RANGE, when the plan gives them
  int32_t num_writers = 1;     // N: from_operator's parallelism
  int32_t num_partitions = 1;  // M: to_operator's parallelism
  ShuffleMode mode = ShuffleMode::kPipelined;            // the plan's shuffle_mode
  bool chained = false;
  // The key_by operator folded into this edge, if any (it made the edge HASH).
  std::optional<OperatorId> key_by;
  // The index in LogicalPlan::edges() of the edge this one comes from (the edge into the
  // consuming operator, after key_by folding).
  size_t plan_edge = 0;
};

// The physical form of a LogicalPlan.
//
// Rules, applied to each edge u -> v after folding key_by (below), in this order:
//   1. the edge asks for HASH(keys) (explicitly, or because u is a key_by): HASH on those keys,
//      whatever the parallelism — so key_by never degrades to FORWARD at equal parallelism;
//   2. it asks for REBALANCE, BROADCAST, RANGE or FORWARD: that type (FORWARD needs equal
//      parallelism; LogicalPlan validated it);
//   3. v is a join: HASH on the join keys of the input the edge feeds; a broadcast join
//      (JoinParams::broadcast): BROADCAST into its broadcast input, and into the other input
//      FORWARD at equal parallelism, REBALANCE where it changes;
//   4. v is a window or aggregate reading u's keyed stream (LogicalPlan::OutputKeys(u) not
//      empty): FORWARD at equal parallelism (the rows are already where their keys belong),
//      otherwise HASH on those keys;
//   5. otherwise FORWARD at equal parallelism, REBALANCE where it changes.
//
// key_by folding: a key_by operator does not appear in the graph (no chain, no task). Each path
// w -> key_by -> v (through any number of key_bys) becomes one edge w -> v asking for HASH on the
// keys of the key_by next to v. This is what Flink does: keyBy is a partitioning, not an
// operator.
//
// Chaining (when PlanOptions::chaining): u -> v are in one chain when the edge is FORWARD, u has
// no other outgoing edge and v no other incoming edge. Fan-out, fan-in (unions, joins) and every
// other edge type end a chain; an unchained FORWARD edge is a shuffle whose writer i sends to
// partition i.
//
// Ids are deterministic: chains are numbered in topological order of their heads (the order of
// LogicalPlan::topological_order()), edges are listed consumer by consumer in that order (inputs
// in input-index then plan order), and shuffles are numbered s0, s1, ... in edge order. Shuffle
// ids are at most 103 characters of [A-Za-z0-9_.-], so an executor may prefix them with a job id
// of up to 24 such characters and a separator and still have a valid ShuffleId (common/ids.h).
//
// Immutable after Make; safe to share and read from any thread. It keeps a copy of the plan.
class ExecutionGraph {
 public:
  // Invalid when folding key_bys would give more than kMaxGraphEdges edges.
  static arrow::Result<ExecutionGraph> Make(const LogicalPlan& plan);

  const LogicalPlan& plan() const { return plan_; }
  const std::vector<ChainSpec>& chains() const { return chains_; }
  // Every task, chain by chain, subtasks in order.
  const std::vector<TaskSpec>& tasks() const { return tasks_; }
  // Every edge, chained or not, in the order described above.
  const std::vector<GraphEdge>& edges() const { return edges_; }
  // Indexes into edges() of the shuffle (not chained) edges, in shuffle-id order.
  const std::vector<size_t>& shuffle_edges() const { return shuffle_edges_; }

  // The chain holding operator `id`; nullopt for key_by operators (folded) and unknown ids.
  std::optional<int32_t> ChainOf(OperatorId id) const;
  // Indexes into edges() of the shuffles into / out of chain `chain`.
  std::vector<size_t> InputShuffles(int32_t chain) const;
  std::vector<size_t> OutputShuffles(int32_t chain) const;

 private:
  explicit ExecutionGraph(LogicalPlan plan) : plan_(std::move(plan)) {}

  LogicalPlan plan_;
  std::vector<ChainSpec> chains_;
  std::vector<TaskSpec> tasks_;
  std::vector<GraphEdge> edges_;
  std::vector<size_t> shuffle_edges_;
};

}  // namespace sabot
