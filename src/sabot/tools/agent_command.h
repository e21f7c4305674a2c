#pragma once

// `sabot agent`: runs one agent of a distributed job: a Flight shuffle server with the agent's
// shuffle manager, driven by a job manager's control actions, until SIGTERM, SIGINT or the
// shutdown action. Prints "sabot agent listening on <location>" on stdout once it serves.

#include <CLI/CLI.hpp>

namespace sabot {

void AddAgentCommand(CLI::App& app);

}  // namespace sabot
