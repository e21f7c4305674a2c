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
// The child never outlives its parent: Start() passes it `--lifeline-fd 3`, the reading end of
// a pipe whose writing end only this process holds. However this process ends (SIGKILL
// included), the kernel closes that end; the agent sees end of file and stops cleanly
// (cancels its tasks, deletes its spill files, exits). When Start() runs on the process's
// main thread it also passes `--parent-pid <pid>`, with which the agent asks the kernel for
// SIGTERM when that thread ends (prctl PR_SET_PDEATHSIG, which follows the starting *thread*,
// hence only from the main thread). The binary must accept both options, as `sabot agent` does.
//
// Lifecycle: Start(); the destructor (or Stop) asks the child to stop with SIGTERM, waits a
// moment, then kills it, and always reaps it, so no child outlives its AgentProcess.
// Thread safety: none needed; one owner.
class AgentProcess {
 public:
  // Runs `binary` with `args` (and the lifeline options above); IOError when it cannot start,
  // exits, or does not announce its location within `timeout` (the message quotes what it
  // printed).
  static arrow::Result<std::unique_ptr<AgentProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args,
      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~AgentProcess();

  const std::string& location() const { return location_; }
  pid_t pid() const { return pid_; }
  // The reading end of the child's stdout (after its announcement line), for a caller that
  // forwards what it prints; closed by the destructor. -1 once the child failed to start.
  int stdout_fd() const { return stdout_fd_; }
  // Asks the child to stop (SIGTERM, and closes its lifeline) without waiting.
  void Terminate();
  // Terminate(), waits up to `grace`, then SIGKILL; returns the exit status (as waitpid's).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // SIGKILL now (tests of failures).
  void Kill();
  // Reaps the child if it has exited, without waiting; true once it is reaped.
  bool TryReap();
  bool reaped() const { return reaped_; }
  // waitpid's status once reaped.
  int exit_status() const { return exit_status_; }

 private:
  AgentProcess() = default;
  void CloseLifeline();

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int lifeline_fd_ = -1;  // the writing end the child watches; closed when it should go
  std::string location_;
  bool reaped_ = false;
  int exit_status_ = 0;
};

// Stops every agent at once: SIGTERM to all, then waits until they exited or `grace` passed,
// then SIGKILL for the rest; every one is reaped on return.
void StopAgents(const std::vector<AgentProcess*>& agents,
                std::chrono::milliseconds grace = std::chrono::seconds(5));

// The path of the running executable (/proc/self/exe), to start agents from the same binary.
arrow::Result<std::string> CurrentExecutable();

}  // namespace sabot
