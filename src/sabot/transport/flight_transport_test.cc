#include "sabot/transport/flight_transport.h"

#include <thread>

#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/array/array_dict.h>

#include "sabot/transport/ipc_block.h"

#include "sabot/transport/in_memory_partition_store.h"
#include "sabot/transport/transport_test_definitions.h"

namespace sabot::testing {
namespace {

// A shuffle server on a free loopback port (over an in-memory store) and a client.
struct Loopback {
  std::unique_ptr<ShuffleServer> server;
  std::unique_ptr<ShuffleClient> client;

  static arrow::Result<Loopback> Make() {
    ARROW_ASSIGN_OR_RAISE(auto store, InMemoryPartitionStore::Make());
    ShuffleServerOptions server_options;
    server_options.port = 0;
    Loopback loopback;
    ARROW_ASSIGN_OR_RAISE(loopback.server, ShuffleServer::Make(server_options, store));
    ARROW_ASSIGN_OR_RAISE(loopback.client, ShuffleClient::Make({}));
    return loopback;
  }
  // A transport whose every stream's writer is this server.
  arrow::Result<std::unique_ptr<FlightTransport>> MakeTransport(bool in_process) const {
    std::string uri = server->uri();
    return FlightTransport::Make(
        server.get(), client.get(),
        [uri](const StreamKey&) -> arrow::Result<std::string> { return uri; }, in_process);
  }
};

// The conformance suite over Flight: one server on a free loopback port hosts the writers; the
// readers reach it through one pooled client connection (DoExchange over loopback TCP, even
// though the server is this process's own: local_channels_in_process() is false).
class FlightConformance : public TransportConformanceTest {
 protected:
  virtual bool local_channels_in_process() const { return false; }

  arrow::Result<std::unique_ptr<Transport>> MakeTransport() override {
    ARROW_ASSIGN_OR_RAISE(Loopback loopback, Loopback::Make());
    ARROW_ASSIGN_OR_RAISE(auto transport, loopback.MakeTransport(local_channels_in_process()));
    server_ = std::move(loopback.server);
    client_ = std::move(loopback.client);
    return transport;
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

// The same suite for channels whose writer the transport's own server serves (a writer task on
// the reader's agent): read in process over the server's hub, no call made.
class FlightOwnServerConformance : public FlightConformance {
 protected:
  bool local_channels_in_process() const override { return true; }

  void TearDown() override {
    if (client_) {
      EXPECT_EQ(client_->num_connections(), 0) << "a channel of the own server went over Flight";
    }
    FlightConformance::TearDown();
  }
};

SABOT_TRANSPORT_CONFORMANCE_TESTS(FlightOwnServerConformance)

// Blocks cross DoExchange as IPC bodies when that copies nothing, and as DATA payloads otherwise
// (compressed blocks, streams with dictionaries): both arrive equal to what was written.
TEST(FlightTransportTest, DictionaryAndCompressedBlocksCrossAsPayloads) {
  ASSERT_OK_AND_ASSIGN(Loopback loopback, Loopback::Make());
  ASSERT_OK_AND_ASSIGN(auto transport, loopback.MakeTransport(/*in_process=*/false));
  arrow::StringBuilder words;
  ASSERT_OK(words.AppendValues({"a", "bb", "ccc"}));
  ASSERT_OK_AND_ASSIGN(auto dictionary, words.Finish());
  arrow::Int32Builder indices_builder;
  ASSERT_OK(indices_builder.AppendValues({0, 1, 0, 2}));
  ASSERT_OK_AND_ASSIGN(auto indices, indices_builder.Finish());
  const auto dictionary_type = arrow::dictionary(arrow::int32(), arrow::utf8());
  ASSERT_OK_AND_ASSIGN(auto encoded,
                       arrow::DictionaryArray::FromArrays(dictionary_type, indices, dictionary));
  auto dictionary_batch = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("w", dictionary_type)}), 4, {encoded});
  arrow::Int64Builder numbers;
  for (int64_t i = 0; i < 1000; ++i) ASSERT_OK(numbers.Append(i * 7));
  ASSERT_OK_AND_ASSIGN(auto column, numbers.Finish());
  auto number_batch =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("v", arrow::int64())}), 1000, {column});
  struct Case {
    std::string name;
    std::shared_ptr<arrow::RecordBatch> batch;
    Compression compression;
  };
  for (const Case& c : {Case{"dictionary", dictionary_batch, Compression::kNone},
                        Case{"lz4", number_batch, Compression::kLz4Frame},
                        Case{"plain", number_batch, Compression::kNone}}) {
    SCOPED_TRACE(c.name);
    const StreamKey key{c.name, 0, 0, 0};
    ASSERT_OK_AND_ASSIGN(auto reader, transport->OpenReader(key, ChannelOptions{}));
    ASSERT_OK_AND_ASSIGN(auto writer,
                         transport->OpenWriter(key, c.batch->schema(), ChannelOptions{}));
    std::thread produce([&] {
      for (int i = 0; i < 3; ++i) {
        auto block = EncodeIpcBlock(*c.batch, c.compression);
        if (!block.ok() || !writer->Write(*block).ok()) return;
      }
      ARROW_UNUSED(writer->Finish());
    });
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK_AND_ASSIGN(auto batch, reader->Next());
      ASSERT_NE(batch, nullptr);
      EXPECT_TRUE(batch->Equals(*c.batch)) << batch->ToString();
    }
    ASSERT_OK_AND_ASSIGN(auto end, reader->Next());
    EXPECT_EQ(end, nullptr);
    produce.join();
  }
}

// Readers of the network path cannot poll; readers of the own server's channels can.
TEST(FlightTransportTest, OwnServerChannelsArePollableOthersAreNot) {
  ASSERT_OK_AND_ASSIGN(Loopback loopback, Loopback::Make());
  for (bool in_process : {false, true}) {
    SCOPED_TRACE(in_process ? "in process" : "over DoExchange");
    ASSERT_OK_AND_ASSIGN(auto transport, loopback.MakeTransport(in_process));
    const StreamKey key{in_process ? "own" : "net", 0, 0, 0};
    auto schema = arrow::schema({arrow::field("v", arrow::int64())});
    ASSERT_OK_AND_ASSIGN(auto reader, transport->OpenReader(key, ChannelOptions{}));
    EXPECT_EQ(reader->pollable(), in_process);
    StreamItem item;
    if (in_process) {
      // Nothing written yet: the poll answers "not yet" instead of waiting.
      ASSERT_OK_AND_ASSIGN(bool taken, reader->TryNextItem(&item));
      EXPECT_FALSE(taken);
    } else {
      ASSERT_RAISES_WITH(NotImplemented, "cannot poll", reader->TryNextItem(&item).status());
    }
    ASSERT_OK_AND_ASSIGN(auto writer, transport->OpenWriter(key, schema, ChannelOptions{}));
    ASSERT_OK(writer->Finish());
    ASSERT_OK_AND_ASSIGN(auto batch, reader->Next());
    EXPECT_EQ(batch, nullptr);
  }
}

// The reader returns exclusive credits in groups of exclusive / 2: whatever the credits, every
// block (and event) arrives in order and no channel stalls on credits held back (a stall would
// end the test with the channel's timeout error).
TEST(FlightTransportTest, CreditsReturnedInGroupsNeverStallTheChannel) {
  ASSERT_OK_AND_ASSIGN(Loopback loopback, Loopback::Make());
  ASSERT_OK_AND_ASSIGN(auto transport, loopback.MakeTransport(/*in_process=*/false));
  const auto schema = arrow::schema({arrow::field("v", arrow::int64())});
  constexpr int kBlocks = 200;
  for (int32_t credits : {1, 2, 3, 4, 8, 17}) {
    SCOPED_TRACE("exclusive credits " + std::to_string(credits));
    const StreamKey key{"credit-groups", credits, 0, 0};
    ChannelOptions options;
    options.exclusive_credits = credits;
    options.timeout = std::chrono::milliseconds(20'000);
    ASSERT_OK_AND_ASSIGN(auto reader, transport->OpenReader(key, options));
    ASSERT_OK_AND_ASSIGN(auto writer, transport->OpenWriter(key, schema, options));
    arrow::Status written;
    std::thread produce([&] {
      written = [&]() -> arrow::Status {
        for (int i = 0; i < kBlocks; ++i) {
          if (i % 10 == 9) {
            SealedBlock event;
            event.event = arrow::Buffer::FromString("event " + std::to_string(i));
            ARROW_RETURN_NOT_OK(writer->Write(event));
            continue;
          }
          arrow::Int64Builder values;
          ARROW_RETURN_NOT_OK(values.AppendValues(std::vector<int64_t>(100 + i, i)));
          ARROW_ASSIGN_OR_RAISE(auto column, values.Finish());
          auto batch = arrow::RecordBatch::Make(schema, column->length(), {column});
          ARROW_ASSIGN_OR_RAISE(auto block, EncodeIpcBlock(*batch, Compression::kNone));
          ARROW_RETURN_NOT_OK(writer->Write(block));
        }
        return writer->Finish();
      }();
    });
    for (int i = 0; i < kBlocks; ++i) {
      ASSERT_OK_AND_ASSIGN(auto item, reader->NextItem());
      if (i % 10 == 9) {
        ASSERT_NE(item.event, nullptr) << "item " << i;
        EXPECT_EQ(item.event->ToString(), "event " + std::to_string(i));
        continue;
      }
      ASSERT_NE(item.batch, nullptr) << "item " << i;
      ASSERT_EQ(item.batch->num_rows(), 100 + i);
      auto values = std::static_pointer_cast<arrow::Int64Array>(item.batch->column(0));
      EXPECT_EQ(values->Value(0), i);
      EXPECT_EQ(values->Value(values->length() - 1), i);
    }
    ASSERT_OK_AND_ASSIGN(auto end, reader->NextItem());
    EXPECT_TRUE(end.is_end());
    produce.join();
    ASSERT_OK(written);
  }
}

// Pipelined channels and fetches to one agent use separate pooled connections (each with its own
// receive window); Evict drops both.
TEST(FlightTransportTest, ChannelsHaveAConnectionOfTheirOwn) {
  ASSERT_OK_AND_ASSIGN(Loopback loopback, Loopback::Make());
  auto& server = loopback.server;
  auto& client = loopback.client;
  ASSERT_OK_AND_ASSIGN(auto fetches, client->Connect(server->uri()));
  ASSERT_OK_AND_ASSIGN(auto channels, client->ConnectForChannels(server->uri()));
  EXPECT_NE(fetches, channels);
  ASSERT_OK_AND_ASSIGN(auto channels_again, client->ConnectForChannels(server->uri()));
  EXPECT_EQ(channels_again, channels);
  EXPECT_EQ(client->num_connections(), 2);
  ASSERT_OK_AND_ASSIGN(auto health, client->Action(server->uri(), "health"));
  EXPECT_EQ(health, "ok");
  client->Evict(server->uri());
  EXPECT_EQ(client->num_connections(), 0);
  ShuffleClientOptions too_wide;
  too_wide.channel_receive_window_bytes = int64_t{1} << 31;
  ASSERT_RAISES_WITH(Invalid, "receive window", ShuffleClient::Make(too_wide));
}

}  // namespace
}  // namespace sabot::testing
