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

// Both ends driven from one thread without ever waiting, as tasks stepped on a thread pool:
// TryNext answers "nothing yet" and arms the reader's callback, which the writer's push runs;
// the consumed block's credit returns at the next TryNext and runs the writer's callback; a
// waiting writer's backlog makes TryNext lend a floating credit.
TEST(InProcessTransportTest, TryNextAndTryWriteDriveAChannelFromOneThread) {
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  DataGeneratorOptions data;
  data.batch_rows = 10;
  auto floating = std::make_shared<FloatingCreditPool>(1);
  ChannelOptions options;
  options.exclusive_credits = 1;
  options.floating_credits = floating;
  const StreamKey key{"s", 0, 0, 0};
  ASSERT_OK_AND_ASSIGN(auto writer, transport->OpenWriter(key, GeneratedSchema(data), options));
  ASSERT_OK_AND_ASSIGN(auto reader, transport->OpenReader(key, options));
  auto writable = std::make_shared<std::atomic<int>>(0);
  auto readable = std::make_shared<std::atomic<int>>(0);
  writer->SetOnWritable([writable] { writable->fetch_add(1); });
  reader->SetOnReadable([readable] { readable->fetch_add(1); });
  auto block = [&](int64_t index) {
    SealedBlock out;
    out.batch = GenerateBatch(data, index).ValueOrDie();
    out.num_rows = out.batch->num_rows();
    return out;
  };

  std::shared_ptr<arrow::RecordBatch> batch;
  ASSERT_OK_AND_ASSIGN(bool taken, reader->TryNext(&batch));
  EXPECT_FALSE(taken);
  ASSERT_OK_AND_ASSIGN(bool sent, writer->TryWrite(block(0)));
  EXPECT_TRUE(sent);
  EXPECT_EQ(readable->load(), 1) << "the push wakes the reader that found nothing";
  ASSERT_OK_AND_ASSIGN(sent, writer->TryWrite(block(1)));
  EXPECT_FALSE(sent) << "one exclusive credit, used";
  EXPECT_EQ(writer->backlog(), 1);
  EXPECT_EQ(writable->load(), 0);
  // The reader sees the backlog first and lends the floating credit: the writer is woken.
  ASSERT_OK_AND_ASSIGN(taken, reader->TryNext(&batch));
  ASSERT_TRUE(taken);
  ASSERT_BATCHES_EQUAL(*block(0).batch, *batch);
  EXPECT_EQ(writable->load(), 1);
  EXPECT_EQ(floating->free(), 0);
  ASSERT_OK_AND_ASSIGN(sent, writer->TryWrite(block(1)));
  EXPECT_TRUE(sent);
  EXPECT_EQ(writer->backlog(), 0);
  ASSERT_OK_AND_ASSIGN(sent, writer->TryWrite(block(2)));
  EXPECT_FALSE(sent);
  // Block 0's exclusive credit comes back at this TryNext: the writer is woken again.
  ASSERT_OK_AND_ASSIGN(taken, reader->TryNext(&batch));
  ASSERT_TRUE(taken);
  ASSERT_BATCHES_EQUAL(*block(1).batch, *batch);
  EXPECT_EQ(writable->load(), 2);
  ASSERT_OK_AND_ASSIGN(sent, writer->TryWrite(block(2)));
  EXPECT_TRUE(sent);
  ASSERT_OK(writer->Finish());
  ASSERT_OK_AND_ASSIGN(taken, reader->TryNext(&batch));
  ASSERT_TRUE(taken);
  ASSERT_BATCHES_EQUAL(*block(2).batch, *batch);
  ASSERT_OK_AND_ASSIGN(taken, reader->TryNext(&batch));
  ASSERT_TRUE(taken);
  EXPECT_EQ(batch, nullptr) << "end of stream";
  reader.reset();
  EXPECT_EQ(floating->free(), 1) << "the lent floating credit went back to its pool";
}

}  // namespace
}  // namespace sabot::testing
