#include "sabot/runtime/task_placement.h"

#include <algorithm>

namespace sabot {

int32_t SlotsNeeded(const ExecutionGraph& graph) {
  int32_t slots = 0;
  for (const ChainSpec& chain : graph.chains()) slots = std::max(slots, chain.parallelism);
  return slots;
}

arrow::Result<TaskPlacement> PlaceTasks(const ExecutionGraph& graph,
                                        const std::vector<PlacementAgent>& agents) {
  if (agents.empty()) return arrow::Status::Invalid("no agent to place the job's tasks on");
  const int32_t needed = SlotsNeeded(graph);
  int64_t free_total = 0;
  std::string per_agent;
  for (const PlacementAgent& agent : agents) {
    free_total += std::max(0, agent.free_slots);
    per_agent += (per_agent.empty() ? "" : ", ") + agent.id + ": " +
                 std::to_string(std::max(0, agent.free_slots));
  }
  if (free_total < needed) {
    return arrow::Status::CapacityError(
        "the job needs ", needed, " slots (its largest parallelism) but the ", agents.size(),
        " agents have ", free_total, " free (", per_agent,
        "): add agents or slots, or lower the parallelism");
  }
  TaskPlacement placement;
  std::vector<int32_t> free(agents.size());
  for (size_t a = 0; a < agents.size(); ++a) free[a] = std::max(0, agents[a].free_slots);
  placement.slots_used.assign(agents.size(), 0);
  for (int32_t slot = 0; slot < needed; ++slot) {
    // The agent with the most free slots left; the first listed among equals.
    size_t best = 0;
    for (size_t a = 1; a < agents.size(); ++a) {
      if (free[a] > free[best]) best = a;
    }
    --free[best];
    ++placement.slots_used[best];
    placement.slot_agent.push_back(static_cast<int32_t>(best));
  }
  for (const ChainSpec& chain : graph.chains()) {
    std::vector<int32_t> tasks;
    for (int32_t s = 0; s < chain.parallelism; ++s) tasks.push_back(placement.slot_agent[s]);
    placement.task_agent.push_back(std::move(tasks));
  }
  return placement;
}

}  // namespace sabot
