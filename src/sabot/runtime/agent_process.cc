#include "sabot/runtime/agent_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
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
// The child's descriptor for the reading end of its lifeline pipe.
constexpr int kLifelineFd = 3;

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
  // The lifeline: the child gets the reading end as descriptor 3; the writing end stays here,
  // close-on-exec, so no other child inherits it and only this process's end closes it. The
  // reading end is first moved above 3, so that the dup2 below always makes a fresh descriptor
  // (which clears close-on-exec) whatever numbers the pipes got.
  int lifeline[2];
  if (pipe2(lifeline, O_CLOEXEC) != 0) {
    const int error = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return arrow::Status::IOError("cannot create a pipe: ", std::strerror(error));
  }
  const int lifeline_read = fcntl(lifeline[0], F_DUPFD_CLOEXEC, kLifelineFd + 1);
  const int dup_error = errno;
  close(lifeline[0]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, lifeline_read, kLifelineFd);
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  argv_strings.push_back("--lifeline-fd");
  argv_strings.push_back(std::to_string(kLifelineFd));
  // PR_SET_PDEATHSIG follows the thread that started the child: only the main thread lives as
  // long as the process.
  if (static_cast<pid_t>(syscall(SYS_gettid)) == getpid()) {
    argv_strings.push_back("--parent-pid");
    argv_strings.push_back(std::to_string(getpid()));
  }
  std::vector<char*> argv;
  for (auto& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::unique_ptr<AgentProcess> process(new AgentProcess());
  int rc = lifeline_read < 0 ? dup_error
                             : posix_spawn(&process->pid_, binary.c_str(), &actions, nullptr,
                                           argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (lifeline_read >= 0) close(lifeline_read);
  process->lifeline_fd_ = lifeline[1];
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
    if (n < 0 && errno == EINTR) continue;
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
  CloseLifeline();
}

void AgentProcess::CloseLifeline() {
  if (lifeline_fd_ >= 0) close(lifeline_fd_);
  lifeline_fd_ = -1;
}

void AgentProcess::Terminate() {
  if (reaped_ || pid_ <= 0) return;
  kill(pid_, SIGTERM);
  CloseLifeline();
}

bool AgentProcess::TryReap() {
  if (reaped_ || pid_ <= 0) return true;
  if (waitpid(pid_, &exit_status_, WNOHANG) == pid_) reaped_ = true;
  return reaped_;
}

int AgentProcess::Stop(std::chrono::milliseconds grace) {
  StopAgents({this}, grace);
  return exit_status_;
}

void AgentProcess::Kill() {
  if (reaped_ || pid_ <= 0) return;
  kill(pid_, SIGKILL);
  // Reaped only when waitpid says so: a wait a signal interrupts is retried, so no zombie is
  // left and the agent's spill folder is not removed while it may still hold its lock.
  pid_t waited;
  do {
    waited = waitpid(pid_, &exit_status_, 0);
  } while (waited < 0 && errno == EINTR);
  reaped_ = waited == pid_ || (waited < 0 && errno == ECHILD);
  CloseLifeline();
}

void StopAgents(const std::vector<AgentProcess*>& agents, std::chrono::milliseconds grace) {
  for (AgentProcess* agent : agents) agent->Terminate();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (true) {
    bool all = true;
    for (AgentProcess* agent : agents) all = agent->TryReap() && all;
    if (all) return;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (AgentProcess* agent : agents) agent->Kill();
}

}  // namespace sabot
