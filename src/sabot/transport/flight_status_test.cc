#include "sabot/transport/flight_status.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include <arrow/flight/client.h>
#include <arrow/flight/server.h>
#include <arrow/flight/types.h>

#include "sabot/common/error_detail.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

namespace flight = arrow::flight;

// The Flight code a status carries, or nullopt for none.
std::optional<flight::FlightStatusCode> FlightCode(const arrow::Status& status) {
  auto detail = flight::FlightStatusDetail::UnwrapStatus(status);
  if (detail == nullptr) return std::nullopt;
  return detail->code();
}

arrow::Status Retryable(arrow::Status status) {
  ShuffleErrorContext context;
  context.shuffle_id = "s";
  context.retryable = true;
  return WithShuffleContext(status, context);
}

TEST(ToFlightStatusTest, MapsEveryCodeAsTheTableSays) {
  EXPECT_TRUE(ToFlightStatus(arrow::Status::OK()).ok());
  for (auto kept : {arrow::Status::Invalid("x"), arrow::Status::KeyError("x"),
                    arrow::Status::AlreadyExists("x"), arrow::Status::NotImplemented("x"),
                    arrow::Status::Cancelled("x")}) {
    auto mapped = ToFlightStatus(kept);
    EXPECT_EQ(mapped.code(), kept.code()) << kept.ToString();
    EXPECT_EQ(FlightCode(mapped), std::nullopt) << kept.ToString();
  }
  for (auto invalid : {arrow::Status::IndexError("partition 9 is out of range"),
                       arrow::Status::TypeError("x"), arrow::Status::CapacityError("x"),
                       arrow::Status::SerializationError("x")}) {
    auto mapped = ToFlightStatus(invalid);
    EXPECT_TRUE(mapped.IsInvalid()) << invalid.ToString();
    EXPECT_EQ(mapped.message(), invalid.message());
    EXPECT_EQ(FlightCode(mapped), std::nullopt);
  }
  auto transient = ToFlightStatus(Retryable(arrow::Status::IOError("timed out")));
  EXPECT_TRUE(transient.IsIOError());
  EXPECT_EQ(FlightCode(transient), flight::FlightStatusCode::Unavailable);
  auto memory = ToFlightStatus(arrow::Status::OutOfMemory("budget"));
  EXPECT_TRUE(memory.IsOutOfMemory());
  EXPECT_EQ(FlightCode(memory), flight::FlightStatusCode::Unavailable);
  for (auto internal : {arrow::Status::IOError("disk"), arrow::Status::UnknownError("x"),
                        arrow::Status::ExecutionError("x")}) {
    auto mapped = ToFlightStatus(internal);
    EXPECT_EQ(mapped.code(), internal.code());
    EXPECT_EQ(FlightCode(mapped), flight::FlightStatusCode::Internal) << internal.ToString();
  }
  auto auth = ToFlightStatus(
      flight::MakeFlightError(flight::FlightStatusCode::Unauthenticated, "bearer token"));
  EXPECT_EQ(FlightCode(auth), flight::FlightStatusCode::Unauthenticated);
}

TEST(ToFlightStatusTest, MessagesBecomePrintableAndBounded) {
  auto mapped = ToFlightStatus(arrow::Status::Invalid("bad \xff\x01 input"));
  EXPECT_EQ(mapped.message(), "bad \\xff\\x01 input");
  auto big = ToFlightStatus(arrow::Status::Invalid(std::string(1 << 20, 'x')));
  EXPECT_LE(big.message().size(), kMaxFlightMessageBytes + 32);
  EXPECT_NE(big.message().find("(1048576 bytes)"), std::string::npos);
}

// What real Flight clients see: a server whose DoAction fails with the Arrow status named by the
// action type, answered through ToFlightStatus; the C++ client (what pyarrow wraps) gets back
// the code of the table and never gRPC UNKNOWN (Flight code Failed).
class StatusServer : public flight::FlightServerBase {
 public:
  arrow::Status DoAction(const flight::ServerCallContext&, const flight::Action& action,
                         std::unique_ptr<flight::ResultStream>*) override {
    arrow::Status status;
    if (action.type == "index") status = arrow::Status::IndexError("partition 9 is out of range");
    if (action.type == "key") status = arrow::Status::KeyError("unknown shuffle 'x'");
    if (action.type == "io") status = arrow::Status::IOError("spill file unreadable");
    if (action.type == "retry") status = Retryable(arrow::Status::IOError("timed out"));
    if (action.type == "memory") status = arrow::Status::OutOfMemory("budget exceeded");
    if (action.type == "unknown") status = arrow::Status::UnknownError("surprise");
    if (action.type == "utf8") status = arrow::Status::Invalid("ticket '\xff\xfe'");
    return ToFlightStatus(status);
  }
};

TEST(ToFlightStatusTest, FlightClientsSeeTheDocumentedCodes) {
  StatusServer server;
  ASSERT_OK_AND_ASSIGN(auto location, flight::Location::ForGrpcTcp("127.0.0.1", 0));
  ASSERT_OK(server.Init(flight::FlightServerOptions(location)));
  ASSERT_OK_AND_ASSIGN(auto target, flight::Location::ForGrpcTcp("127.0.0.1", server.port()));
  ASSERT_OK_AND_ASSIGN(auto client, flight::FlightClient::Connect(target));
  struct Case {
    std::string action;
    arrow::StatusCode code;
    std::optional<flight::FlightStatusCode> flight_code;
    std::string message;
  };
  using arrow::StatusCode;
  using flight::FlightStatusCode;
  for (const Case& c : std::vector<Case>{
           {"index", StatusCode::Invalid, std::nullopt, "partition 9 is out of range"},
           {"key", StatusCode::KeyError, std::nullopt, "unknown shuffle 'x'"},
           {"io", StatusCode::IOError, FlightStatusCode::Internal, "spill file unreadable"},
           {"retry", StatusCode::IOError, FlightStatusCode::Unavailable, "timed out"},
           {"memory", StatusCode::OutOfMemory, FlightStatusCode::Unavailable, "budget"},
           {"unknown", StatusCode::UnknownError, FlightStatusCode::Internal, "surprise"},
           {"utf8", StatusCode::Invalid, std::nullopt, "ticket '\\xff\\xfe'"},
       }) {
    SCOPED_TRACE(c.action);
    auto results = client->DoAction(flight::Action{c.action, nullptr});
    arrow::Status status = results.status();
    if (status.ok()) status = (*results)->Next().status();  // the failure comes with the stream
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), c.code) << status.ToString();
    EXPECT_EQ(FlightCode(status), c.flight_code) << status.ToString();
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status.ToString();
  }
  ASSERT_OK(client->Close());
  ASSERT_OK(server.Shutdown());
}

}  // namespace
}  // namespace sabot
