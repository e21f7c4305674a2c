#include "sabot/runtime/engine.h"

#include "sabot/common/arrow_init.h"
#include "sabot/transport/flight_transport.h"
#include "sabot/transport/in_process_transport.h"

namespace sabot {

std::string_view EngineModeName(EngineMode mode) {
  return mode == EngineMode::kLocal ? "local" : "distributed";
}

arrow::Result<EngineMode> ParseEngineMode(std::string_view name) {
  if (name == "local") return EngineMode::kLocal;
  if (name == "distributed") return EngineMode::kDistributed;
  return arrow::Status::Invalid("unknown engine mode '", name,
                                "' (expected 'local' or 'distributed')");
}

arrow::Result<std::unique_ptr<Engine>> Engine::Make(EngineOptions options) {
  ARROW_RETURN_NOT_OK(InitializeArrow());
  std::unique_ptr<Engine> engine(new Engine());
  engine->options_ = options;
  if (options.mode == EngineMode::kLocal) {
    ARROW_ASSIGN_OR_RAISE(auto transport, InProcessTransport::Make());
    engine->transport_ = std::move(transport);
    ARROW_ASSIGN_OR_RAISE(engine->manager_,
                          ShuffleManager::Make(options.manager, engine->transport_.get()));
  } else {
    // The server serves the manager's store, and the transport needs the server: make the
    // manager first, then attach the transport to it.
    ARROW_ASSIGN_OR_RAISE(engine->manager_, ShuffleManager::Make(options.manager, nullptr));
    ARROW_ASSIGN_OR_RAISE(engine->client_, ShuffleClient::Make(options.client));
    ARROW_ASSIGN_OR_RAISE(engine->server_,
                          ShuffleServer::Make(options.server, engine->manager_->partition_store()));
    engine->location_ = engine->server_->uri();
    ShuffleManager* manager = engine->manager_.get();
    ARROW_ASSIGN_OR_RAISE(
        auto transport,
        FlightTransport::Make(engine->server_.get(), engine->client_.get(),
                              [manager](const StreamKey& key) { return manager->LocateWriter(key); }));
    engine->transport_ = std::move(transport);
    ARROW_RETURN_NOT_OK(engine->manager_->AttachTransport(
        engine->transport_.get(), engine->client_.get(), engine->location_));
  }
  engine->service_ = std::make_unique<ShuffleService>(engine->manager_.get(), engine->location_);
  return engine;
}

Engine::~Engine() { (void)Shutdown(); }

arrow::Status Engine::Shutdown() {
  if (shut_down_) return arrow::Status::OK();
  shut_down_ = true;
  arrow::Status status = service_ ? service_->Shutdown() : arrow::Status::OK();
  // Order matters. The manager's writers hold channels of the transport (and, in distributed
  // mode, of the server's hub); blocks still waiting in those channels hold network segments of
  // the manager's pool. So: drop every writer, stop serving, destroy the channels (returning
  // their segments), and only then the manager with its pool and store.
  if (manager_) manager_->ReleaseAll();
  if (server_) {
    arrow::Status stopped = server_->Shutdown();
    if (status.ok()) status = stopped;
  }
  transport_.reset();
  server_.reset();
  manager_.reset();
  return status;
}

}  // namespace sabot
