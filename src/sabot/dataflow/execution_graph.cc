#include "sabot/dataflow/execution_graph.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace sabot {

namespace {

// An edge w -> v of the graph before typing: its physical producer, the request it carries and
// the key_by folded into it.
struct ResolvedInput {
  OperatorId from;
  PartitioningRequest request;
  std::optional<OperatorId> key_by;
};

// The physical producers of plan edge `e` (into a non-key_by operator), walking back through
// key_by operators; the key_by nearest the consumer decides the keys. `*budget` is how many
// more graph edges may be made: folding multiplies edges (every input of a key_by times every
// output), so a lattice of key_bys could otherwise expand exponentially.
arrow::Status ResolveInput(const LogicalPlan& plan, size_t e, std::optional<OperatorId> key_by,
                           const PartitioningRequest& request, size_t* budget,
                           std::vector<ResolvedInput>* out) {
  const EdgeSpec& edge = plan.edges()[e];
  const OperatorSpec* from = plan.FindOperator(edge.from);
  if (from->kind() != OperatorKind::kKeyBy) {
    if (*budget == 0) {
      return arrow::Status::Invalid("the plan expands into more than ", kMaxGraphEdges,
                                    " edges once its key_by operators are folded (each input "
                                    "of a key_by times each output)");
    }
    --*budget;
    out->push_back({edge.from, request, key_by});
    return arrow::Status::OK();
  }
  PartitioningRequest hash = request;
  std::optional<OperatorId> folded = key_by;
  if (!key_by) {
    hash = PartitioningRequest::Hash(std::get<KeyByParams>(from->params).keys);
    folded = from->id;
  }
  for (size_t in : plan.InputEdges(from->id)) {
    ARROW_RETURN_NOT_OK(ResolveInput(plan, in, folded, hash, budget, out));
  }
  return arrow::Status::OK();
}

EdgeType TypeOf(PartitioningKind kind) {
  switch (kind) {
    case PartitioningKind::kHash:
      return EdgeType::kHash;
    case PartitioningKind::kRebalance:
      return EdgeType::kRebalance;
    case PartitioningKind::kBroadcast:
      return EdgeType::kBroadcast;
    case PartitioningKind::kRange:
      return EdgeType::kRange;
    case PartitioningKind::kForward:
    case PartitioningKind::kNone:
      break;
  }
  return EdgeType::kForward;
}

}  // namespace

arrow::Result<ExecutionGraph> ExecutionGraph::Make(const LogicalPlan& plan) {
  // A plan that exists is valid (LogicalPlan::Make); re-checking keeps this safe against a plan
  // object that was moved from.
  ARROW_RETURN_NOT_OK(plan.Validate());
  ExecutionGraph graph(plan);
  const std::vector<OperatorId>& order = plan.topological_order();
  std::map<OperatorId, size_t> position;  // topological position
  for (size_t i = 0; i < order.size(); ++i) position[order[i]] = i;

  // 1. Edges after key_by folding, typed.
  size_t budget = kMaxGraphEdges;
  for (OperatorId v_id : order) {
    const OperatorSpec& v = *plan.FindOperator(v_id);
    if (v.kind() == OperatorKind::kKeyBy) continue;
    for (size_t e : plan.InputEdges(v_id)) {
      std::vector<ResolvedInput> inputs;
      ARROW_RETURN_NOT_OK(
          ResolveInput(plan, e, std::nullopt, plan.edges()[e].partitioning, &budget, &inputs));
      for (const ResolvedInput& in : inputs) {
        const OperatorSpec& u = *plan.FindOperator(in.from);
        GraphEdge edge;
        edge.from_operator = u.id;
        edge.to_operator = v.id;
        edge.input = plan.edges()[e].input;
        edge.num_writers = u.parallelism;
        edge.num_partitions = v.parallelism;
        edge.mode = plan.options().shuffle_mode;
        edge.key_by = in.key_by;
        edge.plan_edge = e;
        bool equal = u.parallelism == v.parallelism;
        const PartitioningRequest& r = in.request;
        if (r.kind != PartitioningKind::kNone) {
          edge.type = TypeOf(r.kind);
          edge.keys = r.keys;
          edge.boundaries = r.boundaries;
        } else if (v.kind() == OperatorKind::kJoin) {
          const auto& join = std::get<JoinParams>(v.params);
          if (join.broadcast == JoinBroadcast::kNone) {
            edge.type = EdgeType::kHash;
            edge.keys = edge.input == 0 ? join.left_keys : join.right_keys;
          } else if (edge.input == (join.broadcast == JoinBroadcast::kLeft ? 0 : 1)) {
            edge.type = EdgeType::kBroadcast;
          } else {
            edge.type = equal ? EdgeType::kForward : EdgeType::kRebalance;
          }
        } else if ((v.kind() == OperatorKind::kWindow || v.kind() == OperatorKind::kAggregate) &&
                   !plan.OutputKeys(u.id).empty()) {
          edge.type = equal ? EdgeType::kForward : EdgeType::kHash;
          if (!equal) edge.keys = plan.OutputKeys(u.id);
        } else {
          edge.type = equal ? EdgeType::kForward : EdgeType::kRebalance;
        }
        graph.edges_.push_back(std::move(edge));
      }
    }
  }

  // 2. Chains: union of operators joined by chainable edges.
  std::map<OperatorId, int> in_degree, out_degree;
  for (const GraphEdge& edge : graph.edges_) {
    ++out_degree[edge.from_operator];
    ++in_degree[edge.to_operator];
  }
  std::map<OperatorId, OperatorId> next;  // chained successor
  std::map<OperatorId, OperatorId> prev;
  for (GraphEdge& edge : graph.edges_) {
    edge.chained = plan.options().chaining && edge.type == EdgeType::kForward &&
                   out_degree[edge.from_operator] == 1 && in_degree[edge.to_operator] == 1;
    if (edge.chained) {
      next[edge.from_operator] = edge.to_operator;
      prev[edge.to_operator] = edge.from_operator;
    }
  }
  std::map<OperatorId, int32_t> chain_of;
  for (OperatorId id : order) {
    const OperatorSpec& op = *plan.FindOperator(id);
    if (op.kind() == OperatorKind::kKeyBy || prev.count(id)) continue;
    ChainSpec chain;
    chain.id = static_cast<int32_t>(graph.chains_.size());
    chain.name = op.name;
    chain.parallelism = op.parallelism;
    for (OperatorId cur = id;;) {
      chain.operators.push_back(cur);
      chain_of[cur] = chain.id;
      auto it = next.find(cur);
      if (it == next.end()) break;
      cur = it->second;
    }
    for (TaskIndex t = 0; t < chain.parallelism; ++t) graph.tasks_.push_back({chain.id, t});
    graph.chains_.push_back(std::move(chain));
  }

  // 3. Shuffle ids, in edge order.
  for (size_t i = 0; i < graph.edges_.size(); ++i) {
    GraphEdge& edge = graph.edges_[i];
    edge.from_chain = chain_of.at(edge.from_operator);
    edge.to_chain = chain_of.at(edge.to_operator);
    if (edge.chained) continue;
    edge.shuffle_id = "s" + std::to_string(graph.shuffle_edges_.size()) + "." +
                      plan.FindOperator(edge.from_operator)->name + "." +
                      plan.FindOperator(edge.to_operator)->name;
    ARROW_RETURN_NOT_OK(ValidateId(edge.shuffle_id, "shuffle id"));
    graph.shuffle_edges_.push_back(i);
  }
  return graph;
}

std::optional<int32_t> ExecutionGraph::ChainOf(OperatorId id) const {
  for (const ChainSpec& chain : chains_) {
    if (std::find(chain.operators.begin(), chain.operators.end(), id) != chain.operators.end()) {
      return chain.id;
    }
  }
  return std::nullopt;
}

std::vector<size_t> ExecutionGraph::InputShuffles(int32_t chain) const {
  std::vector<size_t> result;
  for (size_t i : shuffle_edges_) {
    if (edges_[i].to_chain == chain) result.push_back(i);
  }
  return result;
}

std::vector<size_t> ExecutionGraph::OutputShuffles(int32_t chain) const {
  std::vector<size_t> result;
  for (size_t i : shuffle_edges_) {
    if (edges_[i].from_chain == chain) result.push_back(i);
  }
  return result;
}

}  // namespace sabot
