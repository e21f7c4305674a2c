#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <arrow/result.h>

#include "sabot/shuffle/shuffle_manager.h"
#include "sabot/shuffle/shuffle_service.h"
#include "sabot/transport/shuffle_client.h"
#include "sabot/transport/shuffle_server.h"

namespace sabot {

class Transport;

enum class EngineMode {
  // One process; every task on threads; the in-process transport; no server.
  kLocal,
  // This process is one agent of several: its Flight shuffle server runs and shuffles cross
  // processes over Arrow Flight.
  kDistributed,
};

std::string_view EngineModeName(EngineMode mode);  // "local" or "distributed"
arrow::Result<EngineMode> ParseEngineMode(std::string_view name);

struct EngineOptions {
  EngineMode mode = EngineMode::kLocal;
  ShuffleManagerOptions manager;
  // Distributed mode only.
  ShuffleServerOptions server;
  ShuffleClientOptions client;
};

// The Sabot engine of one process (the seeds' `Sabot(mode=...)`): owns the agent's shuffle
// manager, its transport and, in distributed mode, its Flight server and client, wired together,
// and the ShuffleService facade every caller shuffles through. The same shuffle gives the same
// result in both modes.
//
// Lifecycle: Make() starts everything (in distributed mode the server listens when it returns);
// Shutdown() or the destructor stops the server and releases every shuffle.
// Thread safety: the accessors may be used from any thread.
class Engine {
 public:
  static arrow::Result<std::unique_ptr<Engine>> Make(EngineOptions options = {});
  ~Engine();

  EngineMode mode() const { return options_.mode; }
  ShuffleManager* shuffle_manager() { return manager_.get(); }
  ShuffleService* shuffle_service() { return service_.get(); }
  // Distributed mode: the server and client; null in local mode.
  ShuffleServer* server() { return server_.get(); }
  ShuffleClient* client() { return client_.get(); }
  // How other agents reach this one ("grpc+tcp://127.0.0.1:8816"); empty in local mode.
  const std::string& location() const { return location_; }

  arrow::Status Shutdown();

 private:
  Engine() = default;

  EngineOptions options_;
  std::unique_ptr<ShuffleClient> client_;
  std::unique_ptr<ShuffleServer> server_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<ShuffleManager> manager_;
  std::unique_ptr<ShuffleService> service_;
  std::string location_;
  bool shut_down_ = false;
};

}  // namespace sabot
