#include "sabot/runtime/cluster_config.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

TEST(ClusterConfigTest, ReadsEverySection) {
  ASSERT_OK_AND_ASSIGN(auto config, ParseClusterConfig(R"(
coordinator:
  host: 0.0.0.0
  port: 9815
  address: grpc+tls://node1:9815
  agent_timeout: 4s
  heartbeat_interval: 500ms
  job_history: 7
  memory_budget: 64MiB
agent:
  host: 127.0.0.1
  port: 0
  slots: 3
  memory_budget: 1GiB
  spill_dir: spill
security:
  tls_cert: certs/node.pem
  tls_key: certs/node.key
  tls_ca: /etc/ca.pem
  verify_clients: true
  token_file: token
)",
                                                       "c.yaml", "/srv/cluster"));
  EXPECT_EQ(config.coordinator.host, "0.0.0.0");
  EXPECT_EQ(config.coordinator.port, 9815);
  EXPECT_EQ(config.coordinator.address, "grpc+tls://node1:9815");
  EXPECT_EQ(config.coordinator.agent_timeout, std::chrono::seconds(4));
  EXPECT_EQ(config.coordinator.heartbeat_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(config.coordinator.job_history, 7);
  EXPECT_EQ(config.coordinator.memory_budget_bytes, 64 << 20);
  EXPECT_EQ(config.agent.slots, 3);
  EXPECT_EQ(config.agent.port, 0);
  EXPECT_EQ(config.agent.memory_budget_bytes, int64_t{1} << 30);
  EXPECT_EQ(config.agent.spill_dir, "/srv/cluster/spill");
  EXPECT_EQ(config.security.tls_cert, "/srv/cluster/certs/node.pem");
  EXPECT_EQ(config.security.tls_ca, "/etc/ca.pem");
  EXPECT_TRUE(config.security.verify_clients);
  EXPECT_EQ(config.security.token_file, "/srv/cluster/token");
  ASSERT_OK_AND_ASSIGN(auto empty, ParseClusterConfig("", "e.yaml", ""));
  EXPECT_FALSE(empty.coordinator.port.has_value());
}

TEST(ClusterConfigTest, UnknownKeysAndBadValuesAreRefusedWithTheirPlace) {
  ASSERT_RAISES_WITH(Invalid, "c.yaml:3:3: unknown key 'prot' in coordinator (valid keys: host",
                     ParseClusterConfig("coordinator:\n  host: x\n  prot: 1\n", "c.yaml", ""));
  ASSERT_RAISES_WITH(Invalid, "c.yaml:1:1: unknown key 'agents' in the configuration",
                     ParseClusterConfig("agents: {}\n", "c.yaml", ""));
  ASSERT_RAISES_WITH(Invalid, "c.yaml:2:11: port must be between 0 and 65535, got 70000",
                     ParseClusterConfig("agent:\n  port:   70000\n", "c.yaml", ""));
  ASSERT_RAISES_WITH(Invalid, "c.yaml:2:18: agent_timeout",
                     ParseClusterConfig("coordinator:\n  agent_timeout: soon\n", "c.yaml", ""));
  ASSERT_RAISES_WITH(Invalid, "verify_clients must be true or false",
                     ParseClusterConfig("security:\n  verify_clients: maybe\n", "c.yaml", ""));
  ASSERT_RAISES_WITH(Invalid, "c.yaml:3:1: end of sequence flow not found",
                     ParseClusterConfig("agent:\n  slots: [1\n", "c.yaml", ""));
}

TEST(ClusterConfigTest, SecurityFilesAreLoadedAndChecked) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sabot_cluster_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  ClusterSecurityFiles files;
  files.token_file = write("token", "abc123\n");
  files.tls_cert = write("cert.pem", "CERT");
  files.tls_key = write("key.pem", "KEY");
  files.tls_ca = write("ca.pem", "CA");
  files.verify_clients = true;
  ASSERT_OK_AND_ASSIGN(auto security, LoadClusterSecurity(files));
  EXPECT_EQ(security.token, "abc123");
  ShuffleServerOptions server;
  security.ApplyTo(&server);
  EXPECT_EQ(server.tls_cert_pem, "CERT");
  EXPECT_TRUE(server.verify_client);
  EXPECT_EQ(server.client_root_pem, "CA");
  EXPECT_EQ(server.auth_token, "abc123");
  ShuffleClientOptions client;
  security.ApplyTo(&client);
  EXPECT_EQ(client.tls_root_certs, "CA");
  EXPECT_EQ(client.tls_private_key, "KEY");
  EXPECT_EQ(client.auth_token, "abc123");

  ClusterSecurityFiles half = files;
  half.tls_key.clear();
  ASSERT_RAISES_WITH(Invalid, "both a certificate", LoadClusterSecurity(half));
  ClusterSecurityFiles no_ca = files;
  no_ca.tls_ca.clear();
  ASSERT_RAISES_WITH(Invalid, "mutual TLS", LoadClusterSecurity(no_ca));
  ClusterSecurityFiles empty_token = files;
  empty_token.token_file = write("empty", "\n");
  ASSERT_RAISES_WITH(Invalid, "is empty", LoadClusterSecurity(empty_token));
  ClusterSecurityFiles missing = files;
  missing.token_file = (dir / "nope").string();
  ASSERT_RAISES_WITH(IOError, "cannot read the token file", LoadClusterSecurity(missing));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sabot
