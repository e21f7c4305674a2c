#pragma once

// What the cluster commands (`sabot coordinator`, `agent --coordinator`, `submit`, `jobs`,
// `cancel`, `run --agents`) share: the configuration file and security options on the command
// line, and following a job to its end with the same progress, summary and exit status as
// `sabot run`.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <arrow/result.h>

#include "sabot/dataflow/job_file.h"
#include "sabot/runtime/cluster_config.h"
#include "sabot/runtime/cluster_state.h"
#include "sabot/runtime/coordinator.h"

namespace sabot {

// `--config FILE` and the security options. The command line overrides the file.
struct ClusterCommandOptions {
  std::string config_file;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  bool verify_clients = false;
  std::string token_file;
  // Client commands: the coordinator's address.
  std::string coordinator;
};

// Adds --config, --tls-cert, --tls-key, --tls-ca, --verify-clients and --token-file to
// `command`, into `options`.
void AddSecurityOptions(CLI::App* command, ClusterCommandOptions* options);

// The configuration file (empty when none was given) and the security material it and the
// command line name (the command line wins). Errors name the file or option.
struct ResolvedCluster {
  ClusterConfig config;  // config.security: the files used, the command line's overrides applied
  ClusterSecurity security;
};
arrow::Result<ResolvedCluster> ResolveCluster(const ClusterCommandOptions& options);

// The coordinator's address for a client command: --coordinator, else the configuration
// file's coordinator.address; Invalid when neither gives one.
arrow::Result<std::string> CoordinatorAddress(const ClusterCommandOptions& options,
                                              const ClusterConfig& config);

// SIGINT and SIGTERM set a flag while one of these lives (the handler only stores to
// lock-free atomics); a second signal ends the process at once (128 + the signal).
class SignalCancel {
 public:
  SignalCancel();
  ~SignalCancel();
  SignalCancel(const SignalCancel&) = delete;
  SignalCancel& operator=(const SignalCancel&) = delete;
  // The flag (for the local executor's `cancel`), and the signal that set it (0: none).
  static const std::atomic<bool>* flag();
  static int signal();
};

// A failure of a job with the place in the job file of the operator it names: binding errors
// and task errors begin with "operator '<name>' (<kind>)" (task errors go on with "task <i>").
// `text` is the error as printed ("IOError: ..."); returned as is when it names no operator of
// the file.
std::string Located(const JobFile& job, const std::string& text);
// "<code>: <message>" of a status, without its detail: the text Located takes.
std::string StatusText(const arrow::Status& status);

// How FollowJob reaches the job: `poll` returns its state, waiting up to the given time for a
// change first; `cancel` asks for its cancellation.
struct JobHandle {
  std::function<arrow::Result<JobInfo>(std::chrono::milliseconds wait)> poll;
  std::function<arrow::Status()> cancel;
};

// Follows a job until it ends, as `sabot run` shows a local one: progress on stderr (unless
// `progress` is false), then the summary on stdout. A signal (SignalCancel) cancels the job and
// waits for its end. The exit status: 0 finished, 1 failed or cancelled (the error on stderr,
// prefixed with `command`, located in `job` when given), 128 + the signal when a signal
// cancelled it.
int FollowJob(const JobHandle& handle, const std::string& command, const JobFile* job,
              bool progress);

// The job runner of `sabot coordinator` and `sabot run --agents`.
JobRunner DefaultJobRunner();

}  // namespace sabot
