#include "sabot/runtime/cluster_config.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/job_file.h"

namespace sabot {

namespace {

constexpr int64_t kMaxConfigBytes = 1 << 20;
constexpr int64_t kMaxSecurityFileBytes = 1 << 20;

// Reading one file: errors start with the place of the node at fault.
class ConfigReader {
 public:
  ConfigReader(std::string display_name, std::string base)
      : display_name_(std::move(display_name)), base_(std::move(base)) {}

  arrow::Status Error(const YAML::Node& node, const std::string& message) const {
    std::string place = display_name_;
    if (node.IsDefined() && !node.Mark().is_null()) {
      place += ":" + std::to_string(node.Mark().line + 1) + ":" +
               std::to_string(node.Mark().column + 1);
    }
    return arrow::Status::Invalid(place, ": ", message);
  }

  // Refuses keys of `map` other than `valid`; `section` names the map in messages.
  arrow::Status CheckKeys(const YAML::Node& map, std::string_view section,
                          const std::vector<std::string>& valid) const {
    if (!map.IsMap()) return Error(map, std::string(section) + " must be a mapping of keys");
    for (const auto& item : map) {
      const std::string key = item.first.Scalar();
      bool known = false;
      for (const auto& v : valid) known = known || v == key;
      if (!known) {
        std::string list;
        for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
        return Error(item.first, "unknown key " + QuoteInput(key) + " in " + std::string(section) +
                                     " (valid keys: " + list + ")");
      }
    }
    return arrow::Status::OK();
  }

  arrow::Result<std::string> String(const YAML::Node& node, std::string_view key) const {
    if (!node.IsScalar()) return Error(node, std::string(key) + " must be a string");
    return node.Scalar();
  }
  arrow::Result<std::string> Path(const YAML::Node& node, std::string_view key) const {
    ARROW_ASSIGN_OR_RAISE(auto text, String(node, key));
    if (text.empty()) return Error(node, std::string(key) + " must not be empty");
    std::filesystem::path path(text);
    if (path.is_relative() && !base_.empty()) path = std::filesystem::path(base_) / path;
    return path.lexically_normal().string();
  }
  arrow::Result<int64_t> Int(const YAML::Node& node, std::string_view key, int64_t min,
                             int64_t max) const {
    int64_t value = 0;
    if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, value)) {
      return Error(node, std::string(key) + " must be an integer");
    }
    if (value < min || value > max) {
      return Error(node, std::string(key) + " must be between " + std::to_string(min) + " and " +
                             std::to_string(max) + ", got " + std::to_string(value));
    }
    return value;
  }
  arrow::Result<bool> Bool(const YAML::Node& node, std::string_view key) const {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      return Error(node, std::string(key) + " must be true or false");
    }
    return value;
  }
  arrow::Result<std::chrono::milliseconds> Duration(const YAML::Node& node,
                                                    std::string_view key) const {
    ARROW_ASSIGN_OR_RAISE(auto text, String(node, key));
    auto duration = ParseDuration(text);
    if (!duration.ok()) return Error(node, std::string(key) + ": " + duration.status().message());
    if (duration->count() <= 0) return Error(node, std::string(key) + " must be positive");
    return *duration;
  }
  arrow::Result<int64_t> Bytes(const YAML::Node& node, std::string_view key) const {
    ARROW_ASSIGN_OR_RAISE(auto text, String(node, key));
    auto bytes = ParseByteSize(text);
    if (!bytes.ok()) return Error(node, std::string(key) + ": " + bytes.status().message());
    if (*bytes < (int64_t{1} << 20)) return Error(node, std::string(key) + " must be >= 1MiB");
    return *bytes;
  }

 private:
  std::string display_name_;
  std::string base_;
};

arrow::Status ReadCoordinator(const ConfigReader& r, const YAML::Node& node,
                              ClusterConfig::Coordinator* out) {
  ARROW_RETURN_NOT_OK(r.CheckKeys(node, "coordinator",
                                  {"host", "port", "address", "agent_timeout",
                                   "heartbeat_interval", "job_history", "memory_budget",
                                   "http_port"}));
  if (node["host"]) {
    ARROW_ASSIGN_OR_RAISE(out->host, r.String(node["host"], "host"));
  }
  if (node["port"]) {
    ARROW_ASSIGN_OR_RAISE(out->port, r.Int(node["port"], "port", 0, 65535));
  }
  if (node["address"]) {
    ARROW_ASSIGN_OR_RAISE(out->address, r.String(node["address"], "address"));
  }
  if (node["agent_timeout"]) {
    ARROW_ASSIGN_OR_RAISE(out->agent_timeout, r.Duration(node["agent_timeout"], "agent_timeout"));
  }
  if (node["heartbeat_interval"]) {
    ARROW_ASSIGN_OR_RAISE(out->heartbeat_interval,
                          r.Duration(node["heartbeat_interval"], "heartbeat_interval"));
  }
  if (node["http_port"]) {
    ARROW_ASSIGN_OR_RAISE(out->http_port, r.Int(node["http_port"], "http_port", 0, 65535));
  }
  if (node["job_history"]) {
    ARROW_ASSIGN_OR_RAISE(out->job_history,
                          r.Int(node["job_history"], "job_history", 1, 1'000'000));
  }
  if (node["memory_budget"]) {
    ARROW_ASSIGN_OR_RAISE(out->memory_budget_bytes,
                          r.Bytes(node["memory_budget"], "memory_budget"));
  }
  return arrow::Status::OK();
}

arrow::Status ReadAgent(const ConfigReader& r, const YAML::Node& node,
                        ClusterConfig::Agent* out) {
  ARROW_RETURN_NOT_OK(
      r.CheckKeys(node, "agent", {"host", "port", "slots", "memory_budget", "spill_dir"}));
  if (node["host"]) {
    ARROW_ASSIGN_OR_RAISE(out->host, r.String(node["host"], "host"));
  }
  if (node["port"]) {
    ARROW_ASSIGN_OR_RAISE(out->port, r.Int(node["port"], "port", 0, 65535));
  }
  if (node["slots"]) {
    ARROW_ASSIGN_OR_RAISE(out->slots, r.Int(node["slots"], "slots", 1, 4096));
  }
  if (node["memory_budget"]) {
    ARROW_ASSIGN_OR_RAISE(out->memory_budget_bytes,
                          r.Bytes(node["memory_budget"], "memory_budget"));
  }
  if (node["spill_dir"]) {
    ARROW_ASSIGN_OR_RAISE(out->spill_dir, r.Path(node["spill_dir"], "spill_dir"));
  }
  return arrow::Status::OK();
}

arrow::Status ReadSecurity(const ConfigReader& r, const YAML::Node& node,
                           ClusterSecurityFiles* out) {
  ARROW_RETURN_NOT_OK(r.CheckKeys(
      node, "security", {"tls_cert", "tls_key", "tls_ca", "verify_clients", "token_file"}));
  if (node["tls_cert"]) {
    ARROW_ASSIGN_OR_RAISE(out->tls_cert, r.Path(node["tls_cert"], "tls_cert"));
  }
  if (node["tls_key"]) {
    ARROW_ASSIGN_OR_RAISE(out->tls_key, r.Path(node["tls_key"], "tls_key"));
  }
  if (node["tls_ca"]) {
    ARROW_ASSIGN_OR_RAISE(out->tls_ca, r.Path(node["tls_ca"], "tls_ca"));
  }
  if (node["verify_clients"]) {
    ARROW_ASSIGN_OR_RAISE(out->verify_clients, r.Bool(node["verify_clients"], "verify_clients"));
  }
  if (node["token_file"]) {
    ARROW_ASSIGN_OR_RAISE(out->token_file, r.Path(node["token_file"], "token_file"));
  }
  return arrow::Status::OK();
}

arrow::Result<std::string> ReadSmallFile(const std::string& path, std::string_view what,
                                         int64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return arrow::Status::IOError("cannot read the ", what, " ", QuoteInput(path));
  std::ostringstream text;
  text << in.rdbuf();
  std::string out = text.str();
  if (static_cast<int64_t>(out.size()) > max_bytes) {
    return arrow::Status::Invalid("the ", what, " ", QuoteInput(path), " has more than ",
                                  max_bytes, " bytes");
  }
  return out;
}

}  // namespace

arrow::Result<ClusterConfig> ParseClusterConfig(std::string_view text,
                                                const std::string& display_name,
                                                const std::string& base_directory) {
  ConfigReader reader(display_name, base_directory);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(display_name, ":", e.mark.line + 1, ":", e.mark.column + 1,
                                  ": ", e.msg);
  }
  ClusterConfig config;
  if (root.IsNull()) return config;  // an empty file: every default
  try {
    ARROW_RETURN_NOT_OK(reader.CheckKeys(root, "the configuration",
                                         {"coordinator", "agent", "security"}));
    if (root["coordinator"]) {
      ARROW_RETURN_NOT_OK(ReadCoordinator(reader, root["coordinator"], &config.coordinator));
    }
    if (root["agent"]) ARROW_RETURN_NOT_OK(ReadAgent(reader, root["agent"], &config.agent));
    if (root["security"]) {
      ARROW_RETURN_NOT_OK(ReadSecurity(reader, root["security"], &config.security));
    }
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(display_name, ":", e.mark.line + 1, ":", e.mark.column + 1,
                                  ": ", e.msg);
  }
  return config;
}

arrow::Result<ClusterConfig> ReadClusterConfig(const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto text, ReadSmallFile(path, "configuration file", kMaxConfigBytes));
  std::string base = std::filesystem::path(path).parent_path().string();
  return ParseClusterConfig(text, path, base);
}

arrow::Result<ClusterSecurity> LoadClusterSecurity(const ClusterSecurityFiles& files) {
  ClusterSecurity security;
  if (files.tls_cert.empty() != files.tls_key.empty()) {
    return arrow::Status::Invalid("TLS needs both a certificate (--tls-cert, tls_cert) and its "
                                  "private key (--tls-key, tls_key)");
  }
  if (files.verify_clients && (files.tls_ca.empty() || files.tls_cert.empty())) {
    return arrow::Status::Invalid("mutual TLS (verify_clients) needs a CA (--tls-ca, tls_ca) and "
                                  "a certificate with its key");
  }
  if (!files.tls_cert.empty()) {
    ARROW_ASSIGN_OR_RAISE(security.cert_pem,
                          ReadSmallFile(files.tls_cert, "TLS certificate", kMaxSecurityFileBytes));
    ARROW_ASSIGN_OR_RAISE(security.key_pem,
                          ReadSmallFile(files.tls_key, "TLS private key", kMaxSecurityFileBytes));
  }
  if (!files.tls_ca.empty()) {
    ARROW_ASSIGN_OR_RAISE(security.ca_pem,
                          ReadSmallFile(files.tls_ca, "TLS CA", kMaxSecurityFileBytes));
  }
  security.verify_clients = files.verify_clients;
  if (!files.token_file.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto text,
                          ReadSmallFile(files.token_file, "token file", kMaxSecurityFileBytes));
    std::string token = text.substr(0, text.find('\n'));
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) {
      return arrow::Status::Invalid("the token file ", QuoteInput(files.token_file),
                                    " is empty: its first line is the cluster's token");
    }
    for (char c : token) {
      if (c < 0x21 || c > 0x7e) {
        return arrow::Status::Invalid("the token in ", QuoteInput(files.token_file),
                                      " has a character other than printable ASCII");
      }
    }
    security.token = std::move(token);
  }
  return security;
}

void ClusterSecurity::ApplyTo(ShuffleServerOptions* server) const {
  server->tls_cert_pem = cert_pem;
  server->tls_key_pem = key_pem;
  server->verify_client = verify_clients;
  server->client_root_pem = verify_clients ? ca_pem : "";
  server->auth_token = token;
}

void ClusterSecurity::ApplyTo(ShuffleClientOptions* client) const {
  client->tls_root_certs = ca_pem;
  if (verify_clients) {
    client->tls_cert_chain = cert_pem;
    client->tls_private_key = key_pem;
  }
  client->auth_token = token;
}

}  // namespace sabot
