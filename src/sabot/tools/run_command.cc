#include "sabot/tools/run_command.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/explain.h"
#include "sabot/dataflow/job_file.h"
#include "sabot/dataflow/job_report_format.h"
#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/tools/cluster_options.h"
#include "sabot/tools/loopback_cluster.h"

namespace sabot {

namespace {

struct CommandOptions {
  std::string job_file;
  bool explain = false;
  bool plan_json = false;
  int32_t threads = 0;
  int64_t memory_budget_mib = 0;
  std::string spill_dir;
  bool quiet = false;
  std::vector<std::string> sets;
  int32_t agents = 0;  // > 0: on a loopback cluster of that many agent processes
};

[[noreturn]] void Fail(const std::string& message, int exit_code) {
  std::cerr << "sabot run: " << message << "\n";
  throw CLI::RuntimeError(exit_code);
}

// `--set NAME.parallelism=N` values into overrides.
arrow::Result<JobFileOverrides> ParseSets(const std::vector<std::string>& sets) {
  JobFileOverrides overrides;
  constexpr std::string_view kSuffix = ".parallelism";
  for (const std::string& set : sets) {
    size_t eq = set.find('=');
    std::string_view key = std::string_view(set).substr(0, eq);
    if (eq == std::string::npos || key.size() <= kSuffix.size() ||
        key.substr(key.size() - kSuffix.size()) != kSuffix) {
      return arrow::Status::Invalid("--set takes OPERATOR.parallelism=N, got ", QuoteInput(set));
    }
    std::string name(key.substr(0, key.size() - kSuffix.size()));
    std::string_view value = std::string_view(set).substr(eq + 1);
    int32_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || value.empty()) {
      return arrow::Status::Invalid("--set ", QuoteInput(set), ": the parallelism must be an integer");
    }
    overrides.parallelism[name] = n;
  }
  return overrides;
}

// The job's id (shuffle ids and temporary file names carry it): its name with characters other
// than [A-Za-z0-9_-] replaced by '_', cut to kMaxJobIdLength, "job" when nothing is left.
std::string JobIdOf(const std::string& name) {
  std::string id;
  for (char c : name) {
    if (id.size() == kMaxJobIdLength) break;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    id += ok ? c : '_';
  }
  if (id.empty() || id[0] == '-') id.insert(0, "job");
  return id.substr(0, kMaxJobIdLength);
}

void Run(const CommandOptions& options) {
  auto overrides = ParseSets(options.sets);
  if (!overrides.ok()) Fail(overrides.status().message(), 2);
  if (options.threads < 0 || options.threads > 1024) {
    Fail("--threads must be between 1 and 1024 (0: the machine's cores), got " +
             std::to_string(options.threads), 2);
  }
  if (options.memory_budget_mib < 0 || options.memory_budget_mib > (int64_t{1} << 30)) {
    Fail("--memory-budget-mib must be between 1 and 1073741824, got " +
             std::to_string(options.memory_budget_mib), 2);
  }
  auto job = ReadJobFile(options.job_file, *overrides);
  if (!job.ok()) Fail(job.status().message(), 2);
  auto graph = ExecutionGraph::Make(job->plan);
  if (!graph.ok()) Fail(job->display_name + ": " + graph.status().message(), 2);
  if (options.plan_json) {
    auto json = PlanToJson(job->plan);
    if (!json.ok()) Fail(job->display_name + ": " + json.status().message(), 2);
    std::cout << *json << "\n";
    return;
  }
  if (options.explain) {
    std::cout << "job " << job->name << " (" << SanitizeMessage(job->display_name, 4096)
              << ")\n"
              << Explain(*graph);
    return;
  }

  if (options.agents != 0) {
    LoopbackClusterOptions cluster;
    cluster.agents = options.agents;
    if (options.memory_budget_mib > 0) {
      cluster.memory_budget = options.memory_budget_mib << 20;
    } else if (job->options.memory_budget_bytes) {
      cluster.memory_budget = *job->options.memory_budget_bytes;
    }
    cluster.spill_dir =
        !options.spill_dir.empty() ? options.spill_dir : job->options.spill_directory;
    cluster.state_budget_per_task = job->options.state_budget_bytes.value_or(0);
    cluster.progress = job->options.progress && !options.quiet;
    const int code = RunOnLoopbackCluster(*job, cluster);
    if (code != 0) throw CLI::RuntimeError(code);
    return;
  }

  LocalExecutorOptions executor;
  executor.job_id = JobIdOf(job->name);
  executor.threads = options.threads > 0 ? options.threads : job->options.threads.value_or(0);
  if (options.memory_budget_mib > 0) {
    executor.memory_budget = options.memory_budget_mib << 20;
  } else if (job->options.memory_budget_bytes) {
    executor.memory_budget = *job->options.memory_budget_bytes;
  }
  executor.spill_directory =
      !options.spill_dir.empty() ? options.spill_dir : job->options.spill_directory;
  executor.state_budget_per_task = job->options.state_budget_bytes.value_or(0);
  executor.console = &std::cout;
  executor.cancel = SignalCancel::flag();
  std::shared_ptr<ProgressRenderer> progress;
  // While a progress block is redrawn on the terminal, console sinks' rows would be drawn over:
  // they are kept and printed when the job ends, before the summary.
  std::ostringstream console_rows;
  if (job->options.progress && !options.quiet) {
    const bool terminal = isatty(STDERR_FILENO) != 0;
    if (terminal) executor.console = &console_rows;
    winsize size{};
    const int32_t width =
        terminal && ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 ? size.ws_col : 0;
    progress = std::make_shared<ProgressRenderer>(terminal, std::chrono::seconds(5), width);
    executor.on_progress = [progress](const JobProgress& snapshot) {
      std::string text = progress->Update(snapshot);
      if (!text.empty()) {
        std::fwrite(text.data(), 1, text.size(), stderr);
        std::fflush(stderr);
      }
    };
  }
  // Binding checks the job against real schemas and files: a failure there is a bad job (2),
  // located at its operator's line, before anything runs.
  auto bound = BindJob(job->plan, BindOptionsOf(executor), executor.shuffle);
  if (!bound.ok()) Fail(Located(*job, StatusText(bound.status())), 2);
  arrow::Result<JobReport> report;
  {
    SignalCancel signals;
    report = RunBoundJob(std::move(*bound), executor);
  }
  if (progress) {
    std::string clear = progress->Finish();
    std::fwrite(clear.data(), 1, clear.size(), stderr);
    std::fflush(stderr);
  }
  std::cout << console_rows.str();
  std::cout.flush();
  if (const int signal = SignalCancel::signal(); signal != 0) {
    // Under checkpoints a file sink keeps what complete checkpoints published (exactly once).
    const bool checkpointed = job->plan.options().checkpoint.enabled();
    std::cerr << "sabot run: stopped by " << (signal == SIGINT ? "SIGINT" : "SIGTERM")
              << (checkpointed ? ": the job was cancelled; the output of its complete "
                                 "checkpoints stays published (the next run removes the rest)\n"
                               : ": the job was cancelled and its partial output removed\n");
    throw CLI::RuntimeError(128 + signal);
  }
  if (!report.ok()) {
    Fail("job " + job->name + " failed: " + Located(*job, StatusText(report.status())), 1);
  }
  std::cout << FormatJobSummary(*report);
}

}  // namespace

void AddRunCommand(CLI::App& app) {
  auto options = std::make_shared<CommandOptions>();
  auto* command = app.add_subcommand(
      "run", "Run a job file (docs/job-file.md) in this process, or --explain its graph");
  command->add_option("job", options->job_file, "The job file (YAML)")->required();
  command->add_flag("--explain", options->explain,
                    "Print the operators, tasks, chains and every edge with its type and NxM, "
                    "then exit without running");
  command->add_flag("--plan-json", options->plan_json,
                    "Print the job's logical plan in its JSON form (docs/plan-format.md), with "
                    "every default and path resolved, then exit without running");
  command->add_option("--threads", options->threads,
                      "Worker threads (default: the job file's, else the machine's cores)");
  command->add_option("--memory-budget-mib", options->memory_budget_mib,
                      "Memory budget of the job's shuffles, MiB (default: the job file's, else "
                      "256)");
  command->add_option("--spill-dir", options->spill_dir,
                      "Directory for spill files (default: the job file's spill_directory, else "
                      "the system's temporary directory)");
  command->add_flag("--quiet", options->quiet, "Show no progress while the job runs");
  command->add_option("--agents", options->agents,
                      "Run on a cluster made for this job on loopback: a coordinator in this "
                      "process and this many `sabot agent` processes (docs/cluster.md); same "
                      "output and summary as the local run")
      ->check(CLI::Range(1, 64));
  command->add_option("--set", options->sets,
                      "OPERATOR.parallelism=N: run that operator with N tasks (repeatable)");
  command->callback([options] { Run(*options); });
}

}  // namespace sabot
