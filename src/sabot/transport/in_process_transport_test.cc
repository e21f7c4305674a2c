#include "sabot/transport/in_process_transport.h"

#include "sabot/transport/transport_test_definitions.h"

namespace sabot::testing {
namespace {

class InProcessConformance : public TransportConformanceTest {
 protected:
  arrow::Result<std::unique_ptr<Transport>> MakeTransport() override {
    ARROW_ASSIGN_OR_RAISE(auto transport, InProcessTransport::Make());
    in_process_ = transport.get();
    return std::unique_ptr<Transport>(std::move(transport));
  }
  int64_t OpenChannels() override { return in_process_->num_open_channels(); }

  InProcessTransport* in_process_ = nullptr;
};

SABOT_TRANSPORT_CONFORMANCE_TESTS(InProcessConformance)

TEST(InProcessTransportTest, BatchesAreHandedOverNotCopied) {
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  DataGeneratorOptions data;
  data.batch_rows = 10;
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(data, 0));
  ChannelOptions options;
  ASSERT_OK_AND_ASSIGN(auto writer, transport->OpenWriter({"s", 0, 0, 0}, batch->schema(), options));
  ASSERT_OK_AND_ASSIGN(auto reader, transport->OpenReader({"s", 0, 0, 0}, options));
  SealedBlock block;
  block.batch = batch;
  block.num_rows = batch->num_rows();
  ASSERT_OK(writer->Write(block));
  ASSERT_OK_AND_ASSIGN(auto received, reader->Next());
  EXPECT_EQ(received.get(), batch.get());
}

TEST(InProcessTransportTest, RejectsBadKeysAndCredits) {
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  ChannelOptions options;
  auto bad_id = transport->OpenReader({"../x", 0, 0, 0}, options).status();
  ASSERT_TRUE(bad_id.IsInvalid()) << bad_id.ToString();
  EXPECT_NE(bad_id.message().find("shuffle id"), std::string::npos) << bad_id.ToString();
  options.exclusive_credits = 0;
  auto no_credit = transport->OpenReader({"s", 0, 0, 0}, options).status();
  ASSERT_TRUE(no_credit.IsInvalid()) << no_credit.ToString();
  EXPECT_NE(no_credit.message().find("exclusive_credits"), std::string::npos);
}

}  // namespace
}  // namespace sabot::testing
