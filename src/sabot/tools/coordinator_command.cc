#include "sabot/tools/coordinator_command.h"

#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "sabot/dataflow/job_file.h"
#include "sabot/runtime/coordinator.h"
#include "sabot/runtime/http_api.h"
#include "sabot/tools/cluster_options.h"

namespace sabot {

namespace {

struct CoordinatorCommandOptions {
  ClusterCommandOptions cluster;
  std::string host;
  int port = -1;
  int http_port = -1;  // -1: the config file's, else no HTTP API
  std::string agent_timeout;
  std::string heartbeat_interval;
  int32_t job_history = 0;
  std::string memory_budget;
};

[[noreturn]] void Fail(const std::string& message, int exit_code) {
  std::cerr << "sabot coordinator: " << message << "\n";
  throw CLI::RuntimeError(exit_code);
}

void Run(const CoordinatorCommandOptions& options) {
  auto resolved = ResolveCluster(options.cluster);
  if (!resolved.ok()) Fail(resolved.status().message(), 2);
  const ClusterConfig::Coordinator& file = resolved->config.coordinator;
  CoordinatorOptions coordinator;
  coordinator.server.host = !options.host.empty() ? options.host : file.host.value_or("127.0.0.1");
  coordinator.server.port = options.port >= 0 ? options.port : file.port.value_or(kDefaultCoordinatorPort);
  if (coordinator.server.port > 65535) {
    Fail("--port must be between 0 and 65535, got " + std::to_string(coordinator.server.port), 2);
  }
  if (!options.agent_timeout.empty()) {
    auto timeout = ParseDuration(options.agent_timeout);
    if (!timeout.ok()) Fail("--agent-timeout: " + timeout.status().message(), 2);
    coordinator.agent_timeout = *timeout;
  } else if (file.agent_timeout) {
    coordinator.agent_timeout = *file.agent_timeout;
  }
  if (!options.heartbeat_interval.empty()) {
    auto interval = ParseDuration(options.heartbeat_interval);
    if (!interval.ok()) Fail("--heartbeat-interval: " + interval.status().message(), 2);
    coordinator.heartbeat_interval = *interval;
  } else if (file.heartbeat_interval) {
    coordinator.heartbeat_interval = *file.heartbeat_interval;
  } else {
    // A tenth of the timeout, at most a second: an agent misses several before it is lost.
    coordinator.heartbeat_interval =
        std::min(std::chrono::milliseconds(1000), std::max(std::chrono::milliseconds(10),
                                                           coordinator.agent_timeout / 10));
  }
  if (options.job_history != 0) {
    coordinator.job_history = options.job_history;
  } else if (file.job_history) {
    coordinator.job_history = *file.job_history;
  }
  if (!options.memory_budget.empty()) {
    auto bytes = ParseByteSize(options.memory_budget);
    if (!bytes.ok()) Fail("--memory-budget: " + bytes.status().message(), 2);
    coordinator.default_memory_budget = *bytes;
  } else if (file.memory_budget_bytes) {
    coordinator.default_memory_budget = *file.memory_budget_bytes;
  }
  // The HTTP API listens on the coordinator's host, with its certificate and token.
  const int http_port = options.http_port >= 0 ? options.http_port : file.http_port.value_or(-1);
  if (http_port > 65535) {
    Fail("--http-port must be between 0 and 65535, got " + std::to_string(http_port), 2);
  }
  HttpApiOptions http;
  http.host = coordinator.server.host;
  http.port = http_port;
  http.token = resolved->security.token;
  http.tls_cert_file = resolved->config.security.tls_cert;
  http.tls_key_file = resolved->config.security.tls_key;
  // Mutual TLS holds for every server of the cluster, the HTTP API's too.
  if (resolved->config.security.verify_clients) {
    http.tls_client_ca_file = resolved->config.security.tls_ca;
  }
  resolved->security.ApplyTo(&coordinator.server);
  resolved->security.ApplyTo(&coordinator.client);
  coordinator.runner = DefaultJobRunner();

  // Signals are taken by one thread (sigwait) so that Flight's threads never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto made = Coordinator::Make(std::move(coordinator));
  if (!made.ok()) {
    Fail(made.status().ToString(), made.status().IsInvalid() ? 2 : 1);
  }
  std::unique_ptr<Coordinator> running = std::move(*made);
  std::unique_ptr<HttpApi> api;
  if (http_port >= 0) {
    auto started = HttpApi::Start(running.get(), http);
    if (!started.ok()) {
      (void)running->Shutdown();
      Fail("--http-port: " + started.status().ToString(), 1);
    }
    api = std::move(*started);
  }
  std::printf("sabot coordinator listening on %s\n", running->location().c_str());
  if (api) std::printf("sabot coordinator HTTP API and live view on %s/\n", api->url().c_str());
  std::fflush(stdout);
  int signal = 0;
  sigwait(&signals, &signal);
  std::cerr << "sabot coordinator: received " << (signal == SIGINT ? "SIGINT" : "SIGTERM")
            << "; cancelling the jobs that have not ended and stopping\n";
  // The API first: it reads the coordinator until it stops.
  if (api) api->Stop();
  api.reset();
  arrow::Status stopped = running->Shutdown();
  running.reset();
  if (!stopped.ok()) Fail("stopping: " + stopped.ToString(), 1);
  throw CLI::RuntimeError(128 + signal);
}

}  // namespace

void AddCoordinatorCommand(CLI::App& app) {
  auto options = std::make_shared<CoordinatorCommandOptions>();
  auto* command = app.add_subcommand(
      "coordinator", "Run a cluster's coordinator: agents register with it, jobs are submitted "
                     "to it (docs/cluster.md)");
  command->add_option("--host", options->host,
                      "Address to listen on (default: the config file's, else 127.0.0.1)");
  command->add_option("--port", options->port,
                      "Port to listen on, 0: any free port (default: the config file's, else "
                      "8815)")
      ->check(CLI::Range(0, 65535));
  command->add_option("--http-port", options->http_port,
                      "Serve the HTTP API and the live view on this port, 0: any free port "
                      "(default: the config file's http_port, else not served; docs/http-api.md)")
      ->check(CLI::Range(0, 65535));
  command->add_option("--agent-timeout", options->agent_timeout,
                      "An agent silent this long is lost and fails its jobs: 10s, 500ms, ... "
                      "(default: the config file's, else 10s)");
  command->add_option("--heartbeat-interval", options->heartbeat_interval,
                      "How often agents heartbeat (default: the config file's, else a tenth of "
                      "the agent timeout, at most 1s)");
  command->add_option("--job-history", options->job_history,
                      "Ended jobs kept for `sabot jobs` (default: the config file's, else 100)");
  command->add_option("--memory-budget", options->memory_budget,
                      "Memory per agent for a job that names none: 256MiB, 1GiB, ... (default: "
                      "the config file's, else each agent's own --memory-budget-mib)");
  AddSecurityOptions(command, &options->cluster);
  command->callback([options] { Run(*options); });
}

}  // namespace sabot
