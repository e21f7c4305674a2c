#pragma once

// Placing a job's tasks on agents, as Flink's slot sharing does: a job needs as many slots as its
// largest parallelism; slot k holds subtask k of every chain (so the tasks a FORWARD edge joins
// share a slot, and the operators of a chain are one task already); the job's slots go to the
// agents round-robin, each time to the agent with the most free slots left (ties: the agent
// listed first), which spreads a job across the agents instead of filling one.
//
// Pure functions of their arguments; safe for concurrent use.

#include <cstdint>
#include <string>
#include <vector>

#include <arrow/result.h>

#include "sabot/dataflow/execution_graph.h"

namespace sabot {

// An agent as placement sees it: its id and its free slots for this job.
struct PlacementAgent {
  std::string id;
  int32_t free_slots = 0;
};

struct TaskPlacement {
  // slot_agent[k]: the index (into the agents given) of the agent holding slot k.
  std::vector<int32_t> slot_agent;
  // task_agent[c][s]: the agent index of subtask s of chain c.
  std::vector<std::vector<int32_t>> task_agent;
  // Slots each agent takes for the job, parallel to the agents given.
  std::vector<int32_t> slots_used;
};

// The slots `graph` needs: its largest chain parallelism.
int32_t SlotsNeeded(const ExecutionGraph& graph);

// Places `graph`'s tasks on `agents` (see above). CapacityError naming the slots needed and the
// slots free (per agent) when the agents have too few; Invalid when no agent is given.
arrow::Result<TaskPlacement> PlaceTasks(const ExecutionGraph& graph,
                                        const std::vector<PlacementAgent>& agents);

}  // namespace sabot
