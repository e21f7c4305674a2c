#include "sabot/runtime/agent_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <arrow/status.h>

extern char** environ;

namespace sabot {

namespace {

constexpr std::string_view kAnnouncement = "sabot agent listening on ";

}  // namespace

arrow::Result<std::string> CurrentExecutable() {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return arrow::Status::IOError("cannot read /proc/self/exe: ", std::strerror(errno));
  return std::string(path, static_cast<size_t>(n));
}

arrow::Result<std::unique_ptr<AgentProcess>> AgentProcess::Start(
    const std::string& binary, const std::vector<std::string>& args,
    std::chrono::milliseconds timeout) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return arrow::Status::IOError("cannot create a pipe: ", std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::unique_ptr<AgentProcess> process(new AgentProcess());
  int rc = posix_spawn(&process->pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    process->reaped_ = true;
    return arrow::Status::IOError("cannot start agent '", binary, "': ", std::strerror(rc));
  }
  process->stdout_fd_ = pipe_fds[0];

  // Read the announcement line, bounded by the timeout.
  std::string printed;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (printed.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return arrow::Status::IOError("agent '", binary, "' did not announce its location within ",
                                    timeout.count(), " ms; it printed: '", printed, "'");
    }
    pollfd fd{process->stdout_fd_, POLLIN, 0};
    int ready = poll(&fd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char chunk[512];
    ssize_t n = read(process->stdout_fd_, chunk, sizeof(chunk));
    if (n <= 0) {
      return arrow::Status::IOError("agent '", binary, "' exited before announcing its location; ",
                                    "it printed: '", printed, "'");
    }
    printed.append(chunk, static_cast<size_t>(n));
  }
  std::string line = printed.substr(0, printed.find('\n'));
  if (line.rfind(kAnnouncement, 0) != 0) {
    return arrow::Status::IOError("agent '", binary, "' printed '", line,
                                  "' instead of its location");
  }
  process->location_ = line.substr(kAnnouncement.size());
  return process;
}

AgentProcess::~AgentProcess() {
  Stop();
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

int AgentProcess::Stop(std::chrono::milliseconds grace) {
  if (reaped_ || pid_ <= 0) return exit_status_;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t done = waitpid(pid_, &exit_status_, WNOHANG);
    if (done == pid_) {
      reaped_ = true;
      return exit_status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &exit_status_, 0);
  reaped_ = true;
  return exit_status_;
}

void AgentProcess::Kill() {
  if (reaped_ || pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, &exit_status_, 0);
  reaped_ = true;
}

}  // namespace sabot
