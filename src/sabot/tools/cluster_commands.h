#pragma once

// The client commands of a cluster (docs/cluster.md): `sabot submit JOB --coordinator URI
// [--wait]` sends a job file (or a plan's JSON) to a coordinator and prints the job's id, or
// with --wait follows it as `sabot run` does (progress, summary, exit status 0/1/2);
// `sabot jobs` lists the jobs (or --agents the agents); `sabot cancel ID` cancels a job.

#include <CLI/CLI.hpp>

namespace sabot {

void AddClusterCommands(CLI::App& app);

}  // namespace sabot
