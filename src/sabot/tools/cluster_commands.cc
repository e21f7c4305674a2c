#include "sabot/tools/cluster_commands.h"

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/job_file.h"
#include "sabot/dataflow/job_report_format.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/runtime/coordinator_client.h"
#include "sabot/tools/cluster_options.h"

namespace sabot {

namespace {

struct ClientOptions {
  ClusterCommandOptions cluster;
  std::string job_file;
  std::string name;
  bool wait = false;
  bool quiet = false;
  bool agents = false;
  std::string job_id;
};

[[noreturn]] void Fail(const std::string& command, const std::string& message, int exit_code) {
  std::cerr << "sabot " << command << ": " << message << "\n";
  throw CLI::RuntimeError(exit_code);
}

std::unique_ptr<CoordinatorClient> Connect(const std::string& command,
                                           const ClusterCommandOptions& options) {
  auto resolved = ResolveCluster(options);
  if (!resolved.ok()) Fail(command, resolved.status().message(), 2);
  auto address = CoordinatorAddress(options, resolved->config);
  if (!address.ok()) Fail(command, address.status().message(), 2);
  ShuffleClientOptions client;
  resolved->security.ApplyTo(&client);
  client.call_timeout = std::chrono::seconds(30);
  client.max_attempts = 1;
  auto made = CoordinatorClient::Make(*address, client);
  if (!made.ok()) Fail(command, made.status().message(), 2);
  return std::move(*made);
}

// A refusal of the coordinator (a bad request: gRPC INVALID_ARGUMENT or NOT_FOUND) exits 2;
// not reaching it, 1.
int ExitCodeOf(const arrow::Status& status) {
  return status.IsInvalid() || status.IsKeyError() || status.IsCapacityError() ? 2 : 1;
}

void Submit(const ClientOptions& options) {
  auto client = Connect("submit", options.cluster);
  JobSubmission submission;
  std::optional<JobFile> job;
  if (std::filesystem::path(options.job_file).extension() == ".json") {
    // A plan's JSON (docs/plan-format.md), as the Python package writes it: sent as it is, the
    // coordinator validates it.
    std::ifstream in(options.job_file, std::ios::binary);
    if (!in) Fail("submit", "cannot read the plan " + QuoteInput(options.job_file), 2);
    std::ostringstream text;
    text << in.rdbuf();
    submission.plan_json = text.str();
    submission.name = std::filesystem::path(options.job_file).stem().string();
  } else {
    auto read = ReadJobFile(options.job_file);
    if (!read.ok()) Fail("submit", read.status().message(), 2);
    job = std::move(*read);
    auto json = PlanToJson(job->plan);
    if (!json.ok()) Fail("submit", job->display_name + ": " + json.status().message(), 2);
    submission.plan_json = std::move(*json);
    submission.name = job->name;
    submission.memory_budget_bytes = job->options.memory_budget_bytes.value_or(0);
    submission.state_budget_bytes = job->options.state_budget_bytes.value_or(0);
  }
  if (!options.name.empty()) submission.name = options.name;
  auto id = client->Submit(submission);
  if (!id.ok()) {
    std::string text = CoordinatorErrorText(id.status());
    Fail("submit", job ? Located(*job, text) : text, ExitCodeOf(id.status()));
  }
  std::cout << *id << std::endl;
  if (!options.wait) return;
  SignalCancel signals;
  bool first = true;
  JobHandle handle;
  handle.poll = [&](std::chrono::milliseconds wait) {
    if (!first) std::this_thread::sleep_for(wait);
    first = false;
    return client->GetJob(*id);
  };
  handle.cancel = [&]() { return client->Cancel(*id).status(); };
  const bool progress = !options.quiet && (!job || job->options.progress);
  const int code = FollowJob(handle, "sabot submit", job ? &*job : nullptr, progress);
  if (code != 0) throw CLI::RuntimeError(code);
}

std::string Cut(std::string text, size_t max) {
  text = SanitizeMessage(text, 4 * max);
  if (text.size() > max) text = text.substr(0, max - 3) + "...";
  return text;
}

void Jobs(const ClientOptions& options) {
  auto client = Connect("jobs", options.cluster);
  if (options.agents) {
    auto agents = client->ListAgents();
    if (!agents.ok()) Fail("jobs", CoordinatorErrorText(agents.status()), 1);
    std::cout << std::left << std::setw(10) << "ID" << std::setw(28) << "LOCATION"
              << std::setw(8) << "STATE" << std::setw(7) << "SLOTS" << std::setw(7) << "USED"
              << "MEMORY\n";
    for (const auto& agent : *agents) {
      std::cout << std::left << std::setw(10) << agent.id << std::setw(28) << agent.location
                << std::setw(8) << (agent.lost ? "lost" : "live") << std::setw(7) << agent.slots
                << std::setw(7) << agent.slots_used << FormatBytes(agent.memory_used_bytes)
                << " / " << FormatBytes(agent.memory_budget_bytes) << "\n";
    }
    return;
  }
  auto jobs = client->ListJobs();
  if (!jobs.ok()) Fail("jobs", CoordinatorErrorText(jobs.status()), 1);
  std::cout << std::left << std::setw(9) << "ID" << std::setw(26) << "NAME" << std::setw(11)
            << "STATE" << std::setw(9) << "TASKS" << std::setw(11) << "ELAPSED" << "ERROR\n";
  for (const auto& job : *jobs) {
    int64_t finished = 0;
    for (const auto& task : job.tasks) finished += task.state == TaskState::kFinished ? 1 : 0;
    std::string tasks = job.tasks.empty() ? "-"
                                          : std::to_string(finished) + "/" +
                                                std::to_string(job.tasks.size());
    std::cout << std::left << std::setw(9) << job.id << std::setw(26) << Cut(job.name, 24)
              << std::setw(11) << JobStateName(job.state) << std::setw(9) << tasks
              << std::setw(11) << FormatSeconds(job.elapsed) << Cut(job.error, 160) << "\n";
  }
}

void Cancel(const ClientOptions& options) {
  auto client = Connect("cancel", options.cluster);
  auto state = client->Cancel(options.job_id);
  if (!state.ok()) Fail("cancel", CoordinatorErrorText(state.status()), ExitCodeOf(state.status()));
  std::cout << options.job_id << ": " << JobStateName(*state)
            << (IsFinal(*state) ? "" : " (cancelling)") << "\n";
}

void AddCoordinatorOption(CLI::App* command, ClientOptions* options) {
  command->add_option("--coordinator", options->cluster.coordinator,
                      "The coordinator's address, grpc+tcp://host:port or grpc+tls://host:port "
                      "(default: coordinator.address of --config)");
  AddSecurityOptions(command, &options->cluster);
}

}  // namespace

void AddClusterCommands(CLI::App& app) {
  auto submit = std::make_shared<ClientOptions>();
  auto* command = app.add_subcommand(
      "submit", "Submit a job file (or a plan's .json) to a cluster's coordinator; prints the "
                "job's id");
  command->add_option("job", submit->job_file, "The job file (YAML), or a plan (.json)")
      ->required();
  AddCoordinatorOption(command, submit.get());
  command->add_option("--name", submit->name, "The job's name (default: the job file's)");
  command->add_flag("--wait", submit->wait,
                    "Follow the job to its end: progress, then the summary, and the exit "
                    "status of `sabot run` (Ctrl-C cancels the job)");
  command->add_flag("--quiet", submit->quiet, "With --wait: show no progress");
  command->callback([submit] { Submit(*submit); });

  auto jobs = std::make_shared<ClientOptions>();
  command = app.add_subcommand("jobs", "List the jobs of a cluster (newest first)");
  AddCoordinatorOption(command, jobs.get());
  command->add_flag("--agents", jobs->agents, "List the cluster's agents instead");
  command->callback([jobs] { Jobs(*jobs); });

  auto cancel = std::make_shared<ClientOptions>();
  command = app.add_subcommand("cancel", "Cancel a job of a cluster");
  command->add_option("id", cancel->job_id, "The job's id (job-N)")->required();
  AddCoordinatorOption(command, cancel.get());
  command->callback([cancel] { Cancel(*cancel); });
}

}  // namespace sabot
