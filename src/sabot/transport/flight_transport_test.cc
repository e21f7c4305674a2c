#include "sabot/transport/flight_transport.h"

#include "sabot/transport/in_memory_partition_store.h"
#include "sabot/transport/transport_test_definitions.h"

namespace sabot::testing {
namespace {

// The conformance suite over Flight: one server on a free loopback port hosts the writers; the
// readers reach it through one pooled client connection.
class FlightConformance : public TransportConformanceTest {
 protected:
  arrow::Result<std::unique_ptr<Transport>> MakeTransport() override {
    ARROW_ASSIGN_OR_RAISE(auto store, InMemoryPartitionStore::Make());
    ShuffleServerOptions server_options;
    server_options.port = 0;
    ARROW_ASSIGN_OR_RAISE(server_, ShuffleServer::Make(server_options, store));
    ARROW_ASSIGN_OR_RAISE(client_, ShuffleClient::Make({}));
    std::string uri = server_->uri();
    return FlightTransport::Make(server_.get(), client_.get(),
                                 [uri](const StreamKey&) -> arrow::Result<std::string> { return uri; });
  }
  int64_t OpenChannels() override { return server_->stats().open_channels; }

  void TearDown() override {
    TransportConformanceTest::TearDown();
    if (client_) {
      EXPECT_LE(client_->num_connections(), 1);
    }
    client_.reset();
    server_.reset();
  }

  std::unique_ptr<ShuffleServer> server_;
  std::unique_ptr<ShuffleClient> client_;
};

SABOT_TRANSPORT_CONFORMANCE_TESTS(FlightConformance)

}  // namespace
}  // namespace sabot::testing
