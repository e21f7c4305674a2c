#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <arrow/result.h>

namespace sabot::testing {

// A shuffle test agent (shuffle_test_agent_main.cc) running as a child process, for tests and
// benchmarks across processes. Start() waits (bounded) until it listens; the destructor stops it
// (SIGTERM, then SIGKILL after a bounded wait) and reaps it. Not thread-safe.
class AgentProcess {
 public:
  // Starts `agent_path` with `args` plus --port-file in a fresh temporary directory.
  static arrow::Result<std::unique_ptr<AgentProcess>> Start(const std::string& agent_path,
                                                            std::vector<std::string> args);
  ~AgentProcess();

  int port() const { return port_; }
  // "grpc+tcp://127.0.0.1:port" (or grpc+tls with `tls`).
  std::string uri(bool tls = false) const;
  // Kills it at once (no shutdown) and reaps it.
  void Kill();
  // Stops it gracefully; SIGKILL after `timeout_ms`.
  void Stop(int timeout_ms = 5'000);

 private:
  AgentProcess() = default;

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

}  // namespace sabot::testing
