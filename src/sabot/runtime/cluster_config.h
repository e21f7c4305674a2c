#pragma once

// The configuration of a Sabot cluster: one YAML file that the coordinator, the agents and the
// client commands (`sabot submit`, `jobs`, `cancel`) can all read (`--config FILE`), with the
// coordinator's settings, the agents' settings and the security shared by all: TLS, mutual TLS
// and the bearer token. Every key is documented in docs/cluster.md (*The configuration file*);
// command-line options override the file. Pure functions (ReadClusterConfig and
// LoadClusterSecurity read files); safe for concurrent use.
//
//   coordinator: {host: 0.0.0.0, port: 8815, address: "grpc+tls://node1:8815",
//                 agent_timeout: 10s, heartbeat_interval: 1s, job_history: 100,
//                 memory_budget: 256MiB}
//   agent: {host: 127.0.0.1, port: 0, slots: 4, memory_budget: 512MiB, spill_dir: /tmp}
//   security: {tls_cert: node.pem, tls_key: node.key, tls_ca: ca.pem, verify_clients: true,
//              token_file: cluster.token}

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <arrow/result.h>

#include "sabot/transport/shuffle_client.h"
#include "sabot/transport/shuffle_server.h"

namespace sabot {

// The coordinator's port unless told otherwise (agents serve on kDefaultShufflePort).
inline constexpr int kDefaultCoordinatorPort = 8815;

// Where the security material lies (paths), as given.
struct ClusterSecurityFiles {
  std::string tls_cert;  // PEM certificate chain of this process's server (and client, mTLS)
  std::string tls_key;   // its PEM private key
  std::string tls_ca;    // PEM roots that sign the cluster's certificates
  bool verify_clients = false;  // mutual TLS: servers require client certificates from tls_ca
  std::string token_file;       // the cluster's bearer token (the file's first line)
};

// A configuration file read. Unset optionals leave the choice to the command line or the
// built-in default. Relative paths are resolved against the file's directory.
struct ClusterConfig {
  struct Coordinator {
    std::optional<std::string> host;
    std::optional<int> port;
    // How agents and commands reach the coordinator ("grpc+tcp://host:port" or grpc+tls).
    std::optional<std::string> address;
    std::optional<std::chrono::milliseconds> agent_timeout;
    std::optional<std::chrono::milliseconds> heartbeat_interval;
    std::optional<int32_t> job_history;
    std::optional<int64_t> memory_budget_bytes;  // per agent, for jobs that name none
    // The HTTP API and live view (docs/http-api.md); 0: any free port; unset: not served.
    std::optional<int> http_port;
  } coordinator;
  struct Agent {
    std::optional<std::string> host;
    std::optional<int> port;
    std::optional<int32_t> slots;
    std::optional<int64_t> memory_budget_bytes;
    std::optional<std::string> spill_dir;
  } agent;
  ClusterSecurityFiles security;
};

// Reads a configuration file's text. `display_name` names it in errors, which start with its
// place ("cluster.yaml:4:3: unknown key 'prot' in 'coordinator' (valid keys: ...)"); unknown
// keys, wrong types, bad durations and sizes are all refused so. `base_directory` resolves
// relative paths (empty: the current directory).
arrow::Result<ClusterConfig> ParseClusterConfig(std::string_view text,
                                                const std::string& display_name,
                                                const std::string& base_directory);
arrow::Result<ClusterConfig> ReadClusterConfig(const std::string& path);

// The security material loaded: PEM texts and the token.
struct ClusterSecurity {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_pem;
  bool verify_clients = false;
  std::string token;

  bool tls() const { return !cert_pem.empty(); }
  // A server's options: its certificate, mutual TLS, the token every call must carry.
  void ApplyTo(ShuffleServerOptions* server) const;
  // A client's: the roots it trusts, its certificate for mutual TLS, the token it sends.
  void ApplyTo(ShuffleClientOptions* client) const;
};

// Reads the files `files` names. IOError naming the file that cannot be read; Invalid for a
// certificate without its key (or the reverse), mutual TLS without a CA or certificate, an
// empty token file, or a token with characters other than printable ASCII.
arrow::Result<ClusterSecurity> LoadClusterSecurity(const ClusterSecurityFiles& files);

}  // namespace sabot
