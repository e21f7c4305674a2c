#pragma once

// `sabot partition-demo`: generates a table, partitions it as one writer task would, and prints
// per-partition row counts and the partitioning throughput. The main job until the shuffle
// service exists.

#include <CLI/CLI.hpp>

namespace sabot {

// Adds the subcommand to `app`. The subcommand's callback runs the demo; on bad options or a
// failure it prints "sabot partition-demo: <what>" to stderr and exits with status 2 (bad
// options) or 1 (failure) through CLI::RuntimeError.
void AddPartitionDemoCommand(CLI::App& app);

}  // namespace sabot
