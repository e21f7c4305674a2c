#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <arrow/result.h>

namespace sabot {

// An agent started as a child process on this machine (`sabot agent ...`), for the job
// manager's loopback mode and for tests. The child prints "sabot agent listening on <location>"
// as its first line on stdout once its server is up; Start() waits for that line.
//
// Lifecycle: Start(); the destructor (or Stop) asks the child to stop with SIGTERM, waits a
// moment, then kills it, and always reaps it, so no child outlives its AgentProcess.
// Thread safety: none needed; one owner.
class AgentProcess {
 public:
  // Runs `binary` with `args`; IOError when it cannot start, exits, or does not announce its
  // location within `timeout` (the message quotes what it printed).
  static arrow::Result<std::unique_ptr<AgentProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args,
      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~AgentProcess();

  const std::string& location() const { return location_; }
  pid_t pid() const { return pid_; }
  // Sends SIGTERM, waits up to `grace`, then SIGKILL; returns the exit status (as waitpid's).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // SIGKILL now (tests of failures).
  void Kill();

 private:
  AgentProcess() = default;

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string location_;
  bool reaped_ = false;
  int exit_status_ = 0;
};

// The path of the running executable (/proc/self/exe), to start agents from the same binary.
arrow::Result<std::string> CurrentExecutable();

}  // namespace sabot
