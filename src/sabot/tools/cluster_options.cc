#include "sabot/tools/cluster_options.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "sabot/dataflow/job_report_format.h"
#include "sabot/runtime/cluster_actions.h"

namespace sabot {

void AddSecurityOptions(CLI::App* command, ClusterCommandOptions* options) {
  command->add_option("--config", options->config_file,
                      "The cluster's configuration file (YAML, docs/cluster.md); the command "
                      "line overrides it");
  command->add_option("--tls-cert", options->tls_cert,
                      "PEM certificate of this process (its server's, and its client's for "
                      "mutual TLS)");
  command->add_option("--tls-key", options->tls_key, "PEM private key of --tls-cert");
  command->add_option("--tls-ca", options->tls_ca,
                      "PEM roots that sign the cluster's certificates");
  command->add_flag("--verify-clients", options->verify_clients,
                    "Mutual TLS: servers require client certificates signed by --tls-ca, and "
                    "clients present --tls-cert");
  command->add_option("--token-file", options->token_file,
                      "File whose first line is the cluster's bearer token: every call must "
                      "carry it");
}

arrow::Result<ResolvedCluster> ResolveCluster(const ClusterCommandOptions& options) {
  ResolvedCluster resolved;
  if (!options.config_file.empty()) {
    ARROW_ASSIGN_OR_RAISE(resolved.config, ReadClusterConfig(options.config_file));
  }
  ClusterSecurityFiles files = resolved.config.security;
  if (!options.tls_cert.empty()) files.tls_cert = options.tls_cert;
  if (!options.tls_key.empty()) files.tls_key = options.tls_key;
  if (!options.tls_ca.empty()) files.tls_ca = options.tls_ca;
  if (options.verify_clients) files.verify_clients = true;
  if (!options.token_file.empty()) files.token_file = options.token_file;
  ARROW_ASSIGN_OR_RAISE(resolved.security, LoadClusterSecurity(files));
  resolved.config.security = files;  // what was loaded: the file's, overridden by the options
  return resolved;
}

arrow::Result<std::string> CoordinatorAddress(const ClusterCommandOptions& options,
                                              const ClusterConfig& config) {
  if (!options.coordinator.empty()) return options.coordinator;
  if (config.coordinator.address) return *config.coordinator.address;
  return arrow::Status::Invalid(
      "no coordinator: give --coordinator URI (e.g. grpc+tcp://127.0.0.1:8815) or "
      "coordinator.address in the --config file");
}

// --- Signals ------------------------------------------------------------------------------------

namespace {

std::atomic<bool> g_cancel{false};
std::atomic<int> g_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);
struct sigaction g_old_int {}, g_old_term {};

void OnSignal(int signal) {
  if (g_signal.exchange(signal) != 0) _exit(128 + signal);
  g_cancel.store(true);
}

}  // namespace

SignalCancel::SignalCancel() {
  struct sigaction action {};
  action.sa_handler = &OnSignal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &g_old_int);
  sigaction(SIGTERM, &action, &g_old_term);
}

SignalCancel::~SignalCancel() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

const std::atomic<bool>* SignalCancel::flag() { return &g_cancel; }
int SignalCancel::signal() { return g_signal.load(); }

// --- Errors and following a job ---------------------------------------------------------------

std::string Located(const JobFile& job, const std::string& text) {
  constexpr std::string_view kMarker = "operator '";
  size_t start = text.find(kMarker);
  if (start == std::string::npos) return text;
  start += kMarker.size();
  size_t end = text.find('\'', start);
  if (end == std::string::npos) return text;
  // An expression's error is placed at its position in the file, others at the operator.
  std::string place = job.PlaceOfExpressionError(text);
  if (place.empty()) place = job.PlaceOf(text.substr(start, end - start));
  return place == job.display_name ? text : place + ": " + text;
}

std::string StatusText(const arrow::Status& status) {
  return status.CodeAsString() + ": " + status.message();
}

int FollowJob(const JobHandle& handle, const std::string& command, const JobFile* job,
              bool progress) {
  const bool terminal = isatty(STDERR_FILENO) != 0;
  winsize size{};
  const int32_t width =
      terminal && ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 ? size.ws_col : 0;
  ProgressRenderer renderer(terminal, std::chrono::seconds(5), width);
  bool cancel_sent = false;
  JobInfo info;
  int failures = 0;
  int32_t restarts_told = 0;
  while (true) {
    if (SignalCancel::signal() != 0 && !cancel_sent) {
      cancel_sent = true;
      arrow::Status cancelled = handle.cancel();
      if (!cancelled.ok()) {
        std::cerr << command << ": cannot cancel the job: " << cancelled.message() << "\n";
      }
    }
    auto polled = handle.poll(std::chrono::milliseconds(500));
    if (!polled.ok()) {
      // A coordinator that restarts or a network hiccup: a few attempts before giving up.
      if (++failures >= 10) {
        std::cerr << command << ": lost track of the job: " << polled.status().message() << "\n";
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    failures = 0;
    info = std::move(*polled);
    if (info.recovery.restarts > restarts_told) {
      // A job with checkpoints restarted after a failure (docs/fault-tolerance.md).
      restarts_told = info.recovery.restarts;
      std::cerr << command << ": job " << info.id << " restarted (restart " << restarts_told
                << ") from "
                << (info.recovery.restored_checkpoint != 0
                        ? "checkpoint " + std::to_string(info.recovery.restored_checkpoint)
                        : std::string("the start"))
                << " after: " << info.recovery.last_failure << "\n";
    }
    if (IsFinal(info.state)) break;
    if (progress && info.state == JobState::kRunning) {
      std::string text = renderer.Update(ProgressOf(info));
      if (!text.empty()) {
        std::fwrite(text.data(), 1, text.size(), stderr);
        std::fflush(stderr);
      }
    }
  }
  if (progress) {
    std::string clear = renderer.Finish();
    std::fwrite(clear.data(), 1, clear.size(), stderr);
    std::fflush(stderr);
  }
  std::cout.flush();
  if (const int signal = SignalCancel::signal(); signal != 0) {
    std::cerr << command << ": stopped by " << (signal == SIGINT ? "SIGINT" : "SIGTERM")
              << ": the job was cancelled and its partial output removed\n";
    return 128 + signal;
  }
  if (info.recovery.checkpoints_completed > 0 || info.recovery.restarts > 0) {
    // On stderr: the summary on stdout stays that of a job without checkpoints.
    std::string times;
    for (auto time : info.recovery.recovery_times) {
      times += (times.empty() ? "" : " ") +
               std::to_string(std::chrono::duration<double>(time).count());
    }
    std::cerr << "recovery: " << info.recovery.restarts << " restarts, "
              << info.recovery.checkpoints_completed << " checkpoints completed, "
              << info.recovery.checkpoints_failed << " failed, last " << info.recovery.last_checkpoint
              << "; recovery seconds: " << (times.empty() ? "-" : times) << "\n";
  }
  if (info.state == JobState::kFinished) {
    std::cout << FormatJobSummary(ReportOf(info));
    std::cout.flush();
    return 0;
  }
  const std::string error = job != nullptr ? Located(*job, info.error) : info.error;
  if (info.state == JobState::kCancelled) {
    std::cerr << command << ": job " << info.id << " (" << info.name << ") was cancelled: "
              << error << "\n";
  } else {
    std::cerr << command << ": " << error << "\n";
  }
  return 1;
}

JobRunner DefaultJobRunner() { return RunDistributedJob; }

}  // namespace sabot
