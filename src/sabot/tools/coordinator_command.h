#pragma once

// `sabot coordinator`: runs the job manager of a cluster (runtime/coordinator.h) until SIGTERM
// or SIGINT: agents register with it (`sabot agent --coordinator URI`), jobs are submitted to it
// (`sabot submit`), listed (`sabot jobs`) and cancelled (`sabot cancel`). Prints
// "sabot coordinator listening on <location>" on stdout once it serves. docs/cluster.md.

#include <CLI/CLI.hpp>

namespace sabot {

void AddCoordinatorCommand(CLI::App& app);

}  // namespace sabot
