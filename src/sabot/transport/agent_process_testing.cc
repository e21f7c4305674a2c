#include "sabot/transport/agent_process_testing.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

extern char** environ;

namespace sabot::testing {

arrow::Result<std::unique_ptr<AgentProcess>> AgentProcess::Start(const std::string& agent_path,
                                                                 std::vector<std::string> args) {
  std::unique_ptr<AgentProcess> process(new AgentProcess());
  std::string pattern = (std::filesystem::temp_directory_path() / "sabot-agent-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return arrow::Status::IOError("mkdtemp failed");
  process->dir_ = pattern;
  const std::string port_file = process->dir_ + "/port";
  args.insert(args.begin(), agent_path);
  args.push_back("--port-file");
  args.push_back(port_file);
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, agent_path.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    return arrow::Status::IOError("cannot start ", agent_path);
  }
  process->pid_ = pid;
  for (int waited = 0; waited < 30'000; waited += 10) {
    std::ifstream in(port_file);
    if (in >> process->port_ && process->port_ > 0) return process;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      process->pid_ = -1;
      return arrow::Status::IOError("agent exited early with status ", status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return arrow::Status::IOError("agent did not report its port within 30 s");
}

AgentProcess::~AgentProcess() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::string AgentProcess::uri(bool tls) const {
  return std::string(tls ? "grpc+tls://" : "grpc+tcp://") + "127.0.0.1:" + std::to_string(port_);
}

void AgentProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void AgentProcess::Stop(int timeout_ms) {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
}

}  // namespace sabot::testing
