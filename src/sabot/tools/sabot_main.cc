// The `sabot` command-line program: one subcommand per job (see `sabot --help`).

#include <iostream>

#include <CLI/CLI.hpp>
#include <arrow/config.h>

#include "sabot/common/arrow_init.h"
#include "sabot/common/process_memory.h"
#include "sabot/tools/agent_command.h"
#include "sabot/tools/cluster_commands.h"
#include "sabot/tools/coordinator_command.h"
#include "sabot/tools/partition_demo_command.h"
#include "sabot/tools/run_command.h"
#include "sabot/tools/shuffle_command.h"

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer (sanitizer builds): the OpenSSL bundled (hidden) inside libarrow_flight keeps
// allocations of TLS handshakes in process-wide state that it never frees; they are not ours to
// free. Without this, every TLS client or server of the cluster would end with a leak report.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:CRYPTO_malloc\nleak:CRYPTO_realloc\n";
}
#endif

int main(int argc, char** argv) {
  // First of all (it may execute the program again): resident memory then follows what is held.
  sabot::ReturnFreedMemoryPromptly(argv);
  CLI::App app{"Sabot: an Arrow-native shuffle engine"};
  app.require_subcommand(1);

  auto* version = app.add_subcommand("version", "Print the versions of Sabot and Arrow");
  version->callback([] {
    std::cout << "sabot 0.1.0, Arrow " << arrow::GetBuildInfo().version_string << "\n";
  });

  sabot::AddShuffleCommand(app);
  sabot::AddRunCommand(app);
  sabot::AddAgentCommand(app);
  sabot::AddPartitionDemoCommand(app);
  sabot::AddCoordinatorCommand(app);
  sabot::AddClusterCommands(app);

  arrow::Status status = sabot::InitializeArrow();
  if (!status.ok()) {
    std::cerr << "sabot: cannot initialize Arrow: " << status.ToString() << "\n";
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return app.exit(e);  // a command's own status: 1 failed, 2 bad input, 128 + signal
  } catch (const CLI::ParseError& e) {
    // Usage errors of the command line itself (a missing argument, an unknown option, a value
    // of the wrong type) exit 2 like the commands' own checks of their options; --help is 0.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return 0;
}
