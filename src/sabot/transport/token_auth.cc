#include "sabot/transport/token_auth.h"

#include <arrow/flight/server.h>
#include <arrow/flight/types.h>

#include "sabot/transport/protocol.h"

namespace sabot {
namespace {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

std::string BearerHeaderValue(const std::string& token) { return "Bearer " + token; }

arrow::Status BearerTokenMiddlewareFactory::StartCall(
    const arrow::flight::CallInfo& info, const arrow::flight::ServerCallContext& context,
    std::shared_ptr<arrow::flight::ServerMiddleware>* middleware) {
  const auto& headers = context.incoming_headers();
  auto range = headers.equal_range(std::string(kAuthorizationHeader));
  if (range.first == range.second) {
    return arrow::flight::MakeFlightError(arrow::flight::FlightStatusCode::Unauthenticated,
                                          "missing bearer token (authorization header)");
  }
  const std::string expected = BearerHeaderValue(token_);
  for (auto it = range.first; it != range.second; ++it) {
    if (ConstantTimeEquals(it->second, expected)) return arrow::Status::OK();
  }
  return arrow::flight::MakeFlightError(arrow::flight::FlightStatusCode::Unauthenticated,
                                        "invalid bearer token");
}

}  // namespace sabot
