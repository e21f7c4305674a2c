#pragma once

// `sabot shuffle`: the main job. Generates a table, runs an NxM shuffle of it in local mode or,
// with --agents K, across K agent processes it starts on loopback, verifies that every row
// arrived exactly once at the right partition, and prints a summary (rows, bytes, throughput,
// per-partition sizes, spill, time blocked on backpressure). Shows progress on a terminal.

#include <CLI/CLI.hpp>

namespace sabot {

void AddShuffleCommand(CLI::App& app);

}  // namespace sabot
