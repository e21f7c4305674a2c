#pragma once

#include <memory>
#include <string>

#include <arrow/flight/server_middleware.h>

namespace sabot {

// Bearer-token authentication for the shuffle server: a server middleware that admits a call
// only when its "authorization" header is "Bearer <token>", and rejects every other call with
// Flight's Unauthenticated status before any handler runs. The token is compared in constant
// time. Immutable after construction; safe for concurrent use by Flight's threads.
class BearerTokenMiddlewareFactory : public arrow::flight::ServerMiddlewareFactory {
 public:
  // The key the middleware is registered under.
  static constexpr const char* kName = "sabot-bearer-token";

  explicit BearerTokenMiddlewareFactory(std::string token) : token_(std::move(token)) {}

  arrow::Status StartCall(const arrow::flight::CallInfo& info,
                          const arrow::flight::ServerCallContext& context,
                          std::shared_ptr<arrow::flight::ServerMiddleware>* middleware) override;

 private:
  const std::string token_;
};

// The header value a client sends: "Bearer <token>".
std::string BearerHeaderValue(const std::string& token);

}  // namespace sabot
