#pragma once

// `sabot run JOB --agents K`: the job on a cluster made for it on loopback — a coordinator in
// this process and K `sabot agent` child processes registered with it — with the output, the
// progress, the summary and the exit status of the local run. docs/cluster.md.

#include <cstdint>
#include <string>

#include "sabot/dataflow/job_file.h"

namespace sabot {

struct LoopbackClusterOptions {
  int32_t agents = 3;
  int64_t memory_budget = int64_t{256} << 20;  // per agent
  int64_t state_budget_per_task = 0;
  std::string spill_dir;  // "" = the system's temporary directory
  bool progress = true;
};

// Runs `job` there and returns the exit status: 0 finished (the summary printed on stdout),
// 1 failed (the error on stderr, located in the job file), 2 refused by the coordinator,
// 128 + the signal when SIGINT or SIGTERM cancelled it. However it ends, the coordinator is
// stopped and every agent process stopped and reaped before it returns; what the agents'
// console sinks print is forwarded to stdout.
int RunOnLoopbackCluster(const JobFile& job, const LoopbackClusterOptions& options);

}  // namespace sabot
