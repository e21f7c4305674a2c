#include "sabot/transport/shuffle_server.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include <arrow/flight/client.h>
#include <arrow/flight/types.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/memory_pool.h>
#include <arrow/table.h>
#include <arrow/type.h>

#include "sabot/common/data_generator.h"
#include "sabot/common/error_detail.h"
#include "sabot/testing/assertions.h"
#include "sabot/transport/flight_transport.h"
#include "sabot/transport/ipc_block.h"
#include "sabot/transport/in_memory_partition_store.h"
#include "sabot/transport/shuffle_client.h"

// LeakSanitizer: the OpenSSL bundled (hidden) inside libarrow_flight keeps allocations of the
// TLS handshakes in process-wide state that it never frees; they are not ours to free.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:CRYPTO_malloc\nleak:CRYPTO_realloc\n";
}

namespace sabot::testing {
namespace {

namespace flight = arrow::flight;

constexpr int kPartitions = 3;

DataGeneratorOptions Data() {
  DataGeneratorOptions data;
  data.batch_rows = 500;
  return data;
}

// A server on a free loopback port over a store holding shuffle "s": partition p gets batches
// from writers 0 and 1 (writer w, block b = generated batch 10 * p + 2 * w + b).
class ShuffleServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartServer(ShuffleServerOptions{})); }

  void StartServer(ShuffleServerOptions options) {
    ASSERT_OK_AND_ASSIGN(store_, InMemoryPartitionStore::Make());
    ASSERT_OK(store_->RegisterShuffle("s", GeneratedSchema(Data()), kPartitions,
                                      Compression::kLz4Frame));
    for (int p = 0; p < kPartitions; ++p) {
      for (int w = 0; w < 2; ++w) {
        std::vector<SealedBlock> blocks;
        for (int b = 0; b < 2; ++b) {
          ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(Data(), Index(p, w, b)));
          ASSERT_OK_AND_ASSIGN(auto block, EncodeIpcBlock(*batch, Compression::kLz4Frame));
          blocks.push_back(block);
        }
        ASSERT_OK(store_->Append({"s", p, w, 0}, *GeneratedSchema(Data()), blocks));
      }
    }
    options.port = 0;
    ASSERT_OK_AND_ASSIGN(server_, ShuffleServer::Make(options, store_));
  }

  static int64_t Index(int p, int w, int b) { return 10 * p + 2 * w + b; }

  std::unique_ptr<ShuffleClient> Client(ShuffleClientOptions options = {}) {
    options.max_attempts = 1;
    auto client = ShuffleClient::Make(options);
    return client.ok() ? std::move(*client) : nullptr;
  }

  // The server still serves, holds the same blocks, and nothing is left open or allocated.
  void ExpectHealthy(int64_t blocks_before, int64_t pool_before) {
    auto client = Client();
    ASSERT_OK_AND_ASSIGN(auto health, client->Action(server_->uri(), kActionHealth));
    EXPECT_EQ(health, "ok");
    ASSERT_OK_AND_ASSIGN(auto batches,
                         client->FetchAll(server_->uri(), PartitionPath::Parse("/shuffle/s/partition/0").ValueOrDie()));
    EXPECT_EQ(batches.size(), 4u);
    batches.clear();
    client.reset();
    EXPECT_EQ(store_->num_blocks(), blocks_before);
    bool settled = false;
    for (int i = 0; i < 500 && !settled; ++i) {
      settled = server_->stats().active_calls == 0 && server_->stats().open_channels == 0 &&
                arrow::default_memory_pool()->bytes_allocated() == pool_before;
      if (!settled) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(server_->stats().active_calls, 0);
    EXPECT_EQ(server_->stats().open_channels, 0);
    EXPECT_EQ(arrow::default_memory_pool()->bytes_allocated(), pool_before);
  }

  std::shared_ptr<InMemoryPartitionStore> store_;
  std::unique_ptr<ShuffleServer> server_;
};

TEST_F(ShuffleServerTest, PortZeroPicksAFreePortAndDefaultIs8816) {
  EXPECT_EQ(ShuffleServerOptions{}.port, 8816);
  EXPECT_GT(server_->port(), 0);
  EXPECT_EQ(server_->uri(), "grpc+tcp://127.0.0.1:" + std::to_string(server_->port()));
}

TEST_F(ShuffleServerTest, DoGetServesAPartitionOrAWritersStreamInOrder) {
  auto client = Client();
  ASSERT_OK_AND_ASSIGN(auto all, client->FetchAll(server_->uri(), {"s", 1, std::nullopt, std::nullopt}));
  ASSERT_EQ(all.size(), 4u);
  for (int w = 0, i = 0; w < 2; ++w) {
    for (int b = 0; b < 2; ++b, ++i) {
      ASSERT_OK_AND_ASSIGN(auto expected, GenerateBatch(Data(), Index(1, w, b)));
      ASSERT_BATCHES_EQUAL(*expected, *all[i]);
    }
  }
  ASSERT_OK_AND_ASSIGN(auto one, client->FetchAll(server_->uri(), {"s", 2, 1, 0}));
  ASSERT_EQ(one.size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto expected, GenerateBatch(Data(), Index(2, 1, 0)));
  ASSERT_BATCHES_EQUAL(*expected, *one[0]);
  EXPECT_EQ(server_->stats().blocks_sent, 6);
}

// A stored stream with events, fetched over DoGet: Sabot's client gets the events in their
// places (FetchItems) or skips them (FetchAll); a plain Flight client, knowing nothing of
// events, reads every row and sees each event as an empty batch with EVENT app_metadata.
TEST_F(ShuffleServerTest, DoGetCarriesEventsInOrderAndPlainClientsStillReadTheRows) {
  auto schema = GeneratedSchema(Data());
  ASSERT_OK(store_->RegisterShuffle("ev", schema, 1, Compression::kLz4Frame));
  auto event = [](const std::string& text) {
    return MakeEventBlock(arrow::Buffer::FromString(text)).ValueOrDie();
  };
  ASSERT_OK_AND_ASSIGN(auto batch0, GenerateBatch(Data(), 0));
  ASSERT_OK_AND_ASSIGN(auto batch1, GenerateBatch(Data(), 1));
  ASSERT_OK_AND_ASSIGN(auto encoded0, EncodeIpcBlock(*batch0, Compression::kLz4Frame));
  SealedBlock bare1;  // an unencoded block: the server encodes it as it serves it
  bare1.batch = batch1;
  bare1.num_rows = batch1->num_rows();
  const std::string binary("\0wm\xff", 4);
  ASSERT_OK(store_->Append({"ev", 0, 0, 0}, *schema,
                           {event("first"), encoded0, event(""), event(binary), bare1,
                            event("last")}));
  ASSERT_OK(store_->Append({"ev", 0, 1, 0}, *schema, {event("only")}));

  auto client = Client();
  std::vector<std::string> got;
  ASSERT_OK(client->FetchItems(server_->uri(), {"ev", 0, std::nullopt, std::nullopt},
                               [&](StreamItem item) {
                                 if (item.is_event()) {
                                   got.push_back("e:" + item.event->ToString());
                                 } else if (item.batch->Equals(*batch0)) {
                                   got.push_back("b0");
                                 } else if (item.batch->Equals(*batch1)) {
                                   got.push_back("b1");
                                 } else {
                                   got.push_back("unknown batch");
                                 }
                                 return arrow::Status::OK();
                               }));
  EXPECT_EQ(got, (std::vector<std::string>{"e:first", "b0", "e:", "e:" + binary, "b1", "e:last",
                                           "e:only"}));
  ASSERT_OK_AND_ASSIGN(auto batches, client->FetchAll(server_->uri(), {"ev", 0, 0, 0}));
  ASSERT_EQ(batches.size(), 2u);
  ASSERT_BATCHES_EQUAL(*batch0, *batches[0]);
  ASSERT_BATCHES_EQUAL(*batch1, *batches[1]);

  // A plain Flight client.
  ASSERT_OK_AND_ASSIGN(auto location, flight::Location::Parse(server_->uri()));
  ASSERT_OK_AND_ASSIGN(auto plain, flight::FlightClient::Connect(location));
  ASSERT_OK_AND_ASSIGN(auto stream, plain->DoGet(flight::Ticket{"/shuffle/ev/partition/0"}));
  int64_t rows = 0;
  std::vector<std::string> events;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto chunk, stream->Next());
    if (chunk.data == nullptr) break;
    rows += chunk.data->num_rows();
    if (chunk.app_metadata != nullptr) {
      EXPECT_EQ(chunk.data->num_rows(), 0);
      ASSERT_GE(chunk.app_metadata->size(), kChannelHeaderBytes);
      int32_t kind = 0;
      std::memcpy(&kind, chunk.app_metadata->data(), 4);
      EXPECT_EQ(kind, 7);
      events.push_back(arrow::SliceBuffer(chunk.app_metadata, kChannelHeaderBytes)->ToString());
    }
  }
  EXPECT_EQ(rows, batch0->num_rows() + batch1->num_rows());
  EXPECT_EQ(events, (std::vector<std::string>{"first", "", binary, "last", "only"}));
  // And as a table (what pyarrow's read_all() builds): every row, events as empty chunks.
  ASSERT_OK_AND_ASSIGN(auto again, plain->DoGet(flight::Ticket{"/shuffle/ev/partition/0"}));
  ASSERT_OK_AND_ASSIGN(auto table, again->ToTable());
  EXPECT_EQ(table->num_rows(), batch0->num_rows() + batch1->num_rows());
  ASSERT_OK(plain->Close());
}

TEST_F(ShuffleServerTest, FlightInfoAndListingDescribeSizes) {
  auto client = Client();
  ASSERT_OK_AND_ASSIGN(auto info, client->GetInfo(server_->uri(), {"shuffle", "s"}));
  EXPECT_EQ(info->endpoints().size(), static_cast<size_t>(kPartitions));
  EXPECT_EQ(info->total_records(), kPartitions * 4 * Data().batch_rows);
  EXPECT_EQ(info->total_bytes(), store_->num_bytes());
  EXPECT_NE(info->app_metadata().find("\"compression\":\"lz4_frame\""), std::string::npos);
  EXPECT_EQ(info->endpoints()[1].ticket.ticket, "/shuffle/s/partition/1");
  ASSERT_OK_AND_ASSIGN(auto schema, info->GetSchema(nullptr));
  EXPECT_TRUE(schema->Equals(*GeneratedSchema(Data())));

  ASSERT_OK_AND_ASSIGN(auto one, client->GetInfo(server_->uri(), {"shuffle", "s", "partition", "2"}));
  ASSERT_EQ(one->endpoints().size(), 1u);
  EXPECT_EQ(one->total_records(), 4 * Data().batch_rows);

  ASSERT_OK_AND_ASSIGN(auto flight_client, client->Connect(server_->uri()));
  ASSERT_OK_AND_ASSIGN(auto listing, flight_client->ListFlights());
  ASSERT_OK_AND_ASSIGN(auto first, listing->Next());
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->descriptor().path, (std::vector<std::string>{"shuffle", "s"}));
}

TEST_F(ShuffleServerTest, ActionsReleaseStatsHealth) {
  auto client = Client();
  ASSERT_OK_AND_ASSIGN(auto health, client->Action(server_->uri(), kActionHealth));
  EXPECT_EQ(health, "ok");
  ASSERT_OK_AND_ASSIGN(auto stats, client->Action(server_->uri(), kActionStats));
  EXPECT_NE(stats.find("\"blocks_sent\":"), std::string::npos) << stats;
  ASSERT_OK(client->Action(server_->uri(), kActionReleaseShuffle, "s").status());
  EXPECT_EQ(store_->num_blocks(), 0);
  auto gone = client->FetchAll(server_->uri(), {"s", 0, std::nullopt, std::nullopt});
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("unknown shuffle 's'"), std::string::npos)
      << gone.status().ToString();
  auto unknown = client->Action(server_->uri(), "explode");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown action"), std::string::npos);
}

TEST_F(ShuffleServerTest, BadTicketsGetClearErrorsAndServerKeepsServing) {
  const int64_t blocks = store_->num_blocks();
  const int64_t pool = arrow::default_memory_pool()->bytes_allocated();
  ASSERT_OK_AND_ASSIGN(auto location, flight::Location::Parse(server_->uri()));
  ASSERT_OK_AND_ASSIGN(auto raw, flight::FlightClient::Connect(location));
  struct Case {
    std::string ticket;
    std::string message;
    // What the client sees: the Arrow code of docs/wire-protocol.md's table (never UNKNOWN).
    arrow::StatusCode code;
  };
  using arrow::StatusCode;
  const std::vector<Case> cases = {
      {"", "must start with '/'", StatusCode::Invalid},
      {"/shuffle", "wrong number of components", StatusCode::Invalid},
      {"/shuffle/s/partition/abc", "partition id 'abc'", StatusCode::Invalid},
      {"/shuffle/s/partition/-1", "partition id '-1'", StatusCode::Invalid},
      {"/shuffle/s/partition/-0", "partition id '-0'", StatusCode::Invalid},
      {"/shuffle/s/partition/01", "partition id '01'", StatusCode::Invalid},
      {"/shuffle/../partition/1", "shuffle id", StatusCode::Invalid},
      {"/shuffle/s/partition/1/writer/0", "wrong number of components", StatusCode::Invalid},
      {"/shuffle/s/part/1", "unknown keyword", StatusCode::Invalid},
      {"/shuffle/nope/partition/0", "unknown shuffle 'nope'", StatusCode::KeyError},
      {"/shuffle/s/partition/3", "partition 3 is out of range", StatusCode::Invalid},
      {"/shuffle/s/partition/99999999999", "partition id", StatusCode::Invalid},
      {"/shuffle/s/partition/0/writer/7/attempt/0", "unknown stream", StatusCode::KeyError},
      // Not UTF-8: quoted escaped, so the status stays decodable by every gRPC client.
      {"/shuffle/\xff\xfe/partition/0", "'/shuffle/\\xff\\xfe/partition/0'", StatusCode::Invalid},
      // 1 MiB: refused on its size with a short message, not gRPC's metadata limit.
      {"/shuffle/s/partition/" + std::string(1 << 20, '7'), "1048597 bytes", StatusCode::Invalid},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.ticket.substr(0, 64));
    auto reader = raw->DoGet(flight::Ticket{c.ticket});
    arrow::Status status = reader.status();
    if (status.ok()) status = (*reader)->ToTable().status();
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), c.code) << status.ToString().substr(0, 1000);
    EXPECT_NE(status.message().find(c.message), std::string::npos)
        << status.ToString().substr(0, 1000);
    // No Flight detail: the gRPC code was one that carries the Arrow code (INVALID_ARGUMENT,
    // NOT_FOUND), not UNKNOWN, which pyarrow raises as FlightServerError.
    EXPECT_EQ(flight::FlightStatusDetail::UnwrapStatus(status), nullptr) << status.ToString();
    EXPECT_LT(status.message().size(), 4096u);
    for (char ch : status.message()) {
      ASSERT_TRUE(static_cast<unsigned char>(ch) >= 0x20 && static_cast<unsigned char>(ch) < 0x7f)
          << "non-printable byte in " << status.message();
    }
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy(blocks, pool));
  }
}

TEST_F(ShuffleServerTest, GetSchemaServesTheShufflesSchema) {
  ASSERT_OK_AND_ASSIGN(auto location, flight::Location::Parse(server_->uri()));
  ASSERT_OK_AND_ASSIGN(auto raw, flight::FlightClient::Connect(location));
  for (const auto& path : std::vector<std::vector<std::string>>{
           {"shuffle", "s"}, {"shuffle", "s", "partition", "2"}}) {
    ASSERT_OK_AND_ASSIGN(auto result, raw->GetSchema(flight::FlightDescriptor::Path(path)));
    arrow::ipc::DictionaryMemo memo;
    ASSERT_OK_AND_ASSIGN(auto schema, result->GetSchema(&memo));
    EXPECT_TRUE(schema->Equals(*GeneratedSchema(Data()))) << schema->ToString();
  }
  ASSERT_RAISES_WITH(KeyError, "unknown shuffle 'nope'",
                     raw->GetSchema(flight::FlightDescriptor::Path({"shuffle", "nope"})).status());
  ASSERT_RAISES_WITH(
      Invalid, "partition 5 is out of range",
      raw->GetSchema(flight::FlightDescriptor::Path({"shuffle", "s", "partition", "5"})).status());
  ASSERT_RAISES_WITH(Invalid, "path descriptor",
                     raw->GetSchema(flight::FlightDescriptor::Command("x")).status());
}

// A reader that sends what no reader may (found by UBSan: CREDIT(2^31 - 1) then CREDIT(10^6)
// overflowed the channel's credit count) gets its channel ended with Invalid; the server serves on.
TEST_F(ShuffleServerTest, HostileDoExchangeFramesEndTheChannelOnly) {
  const int64_t blocks = store_->num_blocks();
  ASSERT_OK_AND_ASSIGN(auto location, flight::Location::Parse(server_->uri()));
  auto credit = [](int32_t value) {
    return EncodeChannelMessage(ChannelMessageKind::kCredit, value, nullptr).ValueOrDie();
  };
  const std::vector<std::vector<std::shared_ptr<arrow::Buffer>>> frames = {
      {credit(2147483647), credit(1000000)},
      {credit(1), credit(-7)},
      {arrow::Buffer::FromString("junk")},
      {EncodeChannelMessage(ChannelMessageKind::kEnd, 0, nullptr).ValueOrDie()},
  };
  const int64_t pool = arrow::default_memory_pool()->bytes_allocated();
  for (size_t i = 0; i < frames.size(); ++i) {
    SCOPED_TRACE(i);
    ASSERT_OK_AND_ASSIGN(auto raw, flight::FlightClient::Connect(location));
    ASSERT_OK_AND_ASSIGN(auto exchange,
                         raw->DoExchange(flight::FlightDescriptor::Path(
                             {"shuffle", "s", "partition", "0", "writer", "5", "attempt", "0"})));
    // The server may end the call on the first bad frame before the next one is written: then
    // the write fails with the server's error, which is what the test checks.
    arrow::Status status;
    for (const auto& frame : frames[i]) {
      status = exchange.writer->WriteMetadata(frame);
      if (!status.ok()) break;
    }
    while (status.ok()) {
      auto chunk = exchange.reader->Next();
      status = chunk.status();
      if (status.ok() && chunk->data == nullptr && chunk->app_metadata == nullptr) break;
    }
    ARROW_UNUSED(exchange.writer->DoneWriting());
    arrow::Status closed = exchange.writer->Close();
    if (status.ok()) status = closed;
    EXPECT_EQ(status.code(), arrow::StatusCode::Invalid) << status.ToString();
    EXPECT_NE(status.message().find("broke the channel protocol"), std::string::npos)
        << status.ToString();
    ARROW_UNUSED(raw->Close());
  }
  ASSERT_NO_FATAL_FAILURE(ExpectHealthy(blocks, pool));
}

TEST_F(ShuffleServerTest, DoPutAppendsWholeOrRejectsClearly) {
  auto client = Client();
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(Data(), 100));
  const int64_t pool = arrow::default_memory_pool()->bytes_allocated();
  ASSERT_OK(client->Push(server_->uri(), {"s", 0, 5, 0}, batch->schema(), {batch, batch},
                         Compression::kZstd));
  EXPECT_EQ(store_->num_blocks(), kPartitions * 4 + 2);
  ASSERT_OK_AND_ASSIGN(auto pushed, client->FetchAll(server_->uri(), {"s", 0, 5, 0}));
  ASSERT_EQ(pushed.size(), 2u);
  ASSERT_BATCHES_EQUAL(*batch, *pushed[1]);
  pushed.clear();
  ASSERT_OK(client->Action(server_->uri(), kActionReleaseShuffle, "s").status());
  ASSERT_NO_FATAL_FAILURE(StartServer(ShuffleServerOptions{}));
  client = Client();
  const int64_t blocks = store_->num_blocks();

  // A schema that does not match.
  auto other = arrow::schema({arrow::field("x", arrow::int32())});
  ASSERT_OK_AND_ASSIGN(auto other_batch, arrow::RecordBatch::MakeEmpty(other));
  auto mismatch = client->Push(server_->uri(), {"s", 0, 5, 0}, other, {other_batch});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.message().find("schema mismatch"), std::string::npos) << mismatch.ToString();
  ASSERT_NO_FATAL_FAILURE(ExpectHealthy(blocks, pool));

  // No writer named; out of range; unknown shuffle.
  auto no_writer = client->Push(server_->uri(), {"s", 0, std::nullopt, std::nullopt},
                                batch->schema(), {batch});
  EXPECT_FALSE(no_writer.ok());
  auto out_of_range = client->Push(server_->uri(), {"s", 7, 0, 0}, batch->schema(), {batch});
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.message().find("out of range"), std::string::npos);
  auto unknown = client->Push(server_->uri(), {"zz", 0, 0, 0}, batch->schema(), {batch});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("unknown shuffle"), std::string::npos);
  ASSERT_NO_FATAL_FAILURE(ExpectHealthy(blocks, pool));
}

// A host that does not resolve: Make fails naming it (it crashed destroying the server that
// never started).
TEST(ShuffleServerLimitsTest, UnresolvableHostFailsNamingIt) {
  ASSERT_OK_AND_ASSIGN(auto store, InMemoryPartitionStore::Make());
  ShuffleServerOptions options;
  options.host = "999.1.1.1";
  options.port = 0;
  auto server = ShuffleServer::Make(options, store);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("cannot listen on 999.1.1.1:0"), std::string::npos)
      << server.status().ToString();
}

TEST(ShuffleServerLimitsTest, OversizedBlockIsRejectedWhole) {
  ASSERT_OK_AND_ASSIGN(auto store, InMemoryPartitionStore::Make());
  ASSERT_OK(store->RegisterShuffle("s", GeneratedSchema(Data()), 1));
  ShuffleServerOptions options;
  options.port = 0;
  options.max_block_bytes = 10'000;
  ASSERT_OK_AND_ASSIGN(auto server, ShuffleServer::Make(options, store));
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make({}));
  ASSERT_OK_AND_ASSIGN(auto small, GenerateBatch(Data(), 0));
  auto big_options = Data();
  big_options.batch_rows = 10'000;
  ASSERT_OK_AND_ASSIGN(auto big, GenerateBatch(big_options, 0));
  auto status = client->Push(server->uri(), {"s", 0, 0, 0}, small->schema(),
                             {small->Slice(0, 10), big});
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("oversized block"), std::string::npos) << status.ToString();
  EXPECT_EQ(store->num_blocks(), 0) << "a rejected push must leave nothing behind";
  ASSERT_OK_AND_ASSIGN(auto health, client->Action(server->uri(), kActionHealth));
  EXPECT_EQ(health, "ok");
}

TEST_F(ShuffleServerTest, ClientDisconnectingMidStreamLeavesNothing) {
  const int64_t blocks = store_->num_blocks();
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(Data(), 100));
  const int64_t pool = arrow::default_memory_pool()->bytes_allocated();
  {
    // A push that goes away before finishing: the server appends nothing.
    ASSERT_OK_AND_ASSIGN(auto location, flight::Location::Parse(server_->uri()));
    ASSERT_OK_AND_ASSIGN(auto raw, flight::FlightClient::Connect(location));
    // The call's deadline expires mid-stream: gRPC tears the call down under the server's
    // handler, as when a client process dies.
    flight::FlightCallOptions call;
    call.timeout = flight::TimeoutDuration(0.3);
    ASSERT_OK_AND_ASSIGN(auto put,
                         raw->DoPut(call,
                                    flight::FlightDescriptor::Path({"shuffle", "s", "partition",
                                                                    "0", "writer", "9", "attempt",
                                                                    "0"}),
                                    batch->schema()));
    ASSERT_OK(put.writer->WriteRecordBatch(*batch));
    ASSERT_OK(put.writer->WriteRecordBatch(*batch));
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    // Torn down: whatever Close reports, the server must not have appended anything.
    ARROW_UNUSED(put.writer->Close());
    ARROW_UNUSED(raw->Close());
  }
  {
    // A fetch that goes away after the first batch.
    ASSERT_OK_AND_ASSIGN(auto location, flight::Location::Parse(server_->uri()));
    ASSERT_OK_AND_ASSIGN(auto raw, flight::FlightClient::Connect(location));
    ASSERT_OK_AND_ASSIGN(auto reader, raw->DoGet(flight::Ticket{"/shuffle/s/partition/0"}));
    ASSERT_OK_AND_ASSIGN(auto chunk, reader->Next());
    ASSERT_NE(chunk.data, nullptr);
    reader->Cancel();
    ASSERT_OK(raw->Close());
  }
  ASSERT_NO_FATAL_FAILURE(ExpectHealthy(blocks, pool));
}

TEST(ShuffleServerShutdownTest, EndsPipelinedChannelsWaitingForTheirWriter) {
  ASSERT_OK_AND_ASSIGN(auto store, InMemoryPartitionStore::Make());
  ShuffleServerOptions options;
  options.port = 0;
  ASSERT_OK_AND_ASSIGN(auto server, ShuffleServer::Make(options, store));
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make({}));
  const std::string uri = server->uri();
  ASSERT_OK_AND_ASSIGN(auto transport,
                       FlightTransport::Make(server.get(), client.get(),
                                             [uri](const StreamKey&) -> arrow::Result<std::string> {
                                               return uri;
                                             },
                                             /*local_channels_in_process=*/false));
  // A reader waiting in Next() for a writer that never opens: the server's handler waits too.
  ASSERT_OK_AND_ASSIGN(auto reader, transport->OpenReader({"s", 0, 0, 0}, ChannelOptions{}));
  arrow::Status next_status;
  std::thread waiting([&] { next_status = reader->Next().status(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK(server->Shutdown());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  waiting.join();
  ASSERT_FALSE(next_status.ok());
  EXPECT_NE(next_status.message().find("shutting down"), std::string::npos)
      << next_status.ToString();
  EXPECT_TRUE(IsTransient(next_status) ||
              ShuffleErrorDetail::FromStatus(next_status)->context().retryable);
  reader.reset();
  transport.reset();
}

TEST(ShuffleServerAuthTest, BearerTokenIsRequiredAndChecked) {
  ASSERT_OK_AND_ASSIGN(auto store, InMemoryPartitionStore::Make());
  ShuffleServerOptions options;
  options.port = 0;
  options.auth_token = "s3cret";
  ASSERT_OK_AND_ASSIGN(auto server, ShuffleServer::Make(options, store));
  auto expect_unauthenticated = [&](const std::string& token) {
    ShuffleClientOptions client_options;
    client_options.auth_token = token;
    client_options.max_attempts = 1;
    ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(client_options));
    auto status = client->Action(server->uri(), kActionHealth).status();
    ASSERT_FALSE(status.ok());
    auto detail = flight::FlightStatusDetail::UnwrapStatus(status);
    ASSERT_NE(detail, nullptr) << status.ToString();
    EXPECT_EQ(detail->code(), flight::FlightStatusCode::Unauthenticated) << status.ToString();
  };
  expect_unauthenticated("");
  expect_unauthenticated("wrong");
  expect_unauthenticated("s3cret-but-longer");
  ShuffleClientOptions good;
  good.auth_token = "s3cret";
  ASSERT_OK_AND_ASSIGN(auto client, ShuffleClient::Make(good));
  ASSERT_OK_AND_ASSIGN(auto health, client->Action(server->uri(), kActionHealth));
  EXPECT_EQ(health, "ok");
}

// Self-signed certificates made with the openssl command at test time.
class ShuffleServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "sabot-tls-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    for (const std::string name : {"server", "client"}) {
      const std::string command =
          "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
          " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + dir_ + "/" + name +
          ".key -out " + dir_ + "/" + name + ".pem > " + dir_ + "/openssl.log 2>&1";
      ASSERT_EQ(std::system(command.c_str()), 0) << command;
    }
    server_cert_ = Read("server.pem");
    server_key_ = Read("server.key");
    client_cert_ = Read("client.pem");
    client_key_ = Read("client.key");
    ASSERT_OK_AND_ASSIGN(store_, InMemoryPartitionStore::Make());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  arrow::Status Health(const std::string& uri, ShuffleClientOptions options) {
    options.max_attempts = 1;
    options.call_timeout = std::chrono::milliseconds(5'000);
    ARROW_ASSIGN_OR_RAISE(auto client, ShuffleClient::Make(options));
    return client->Action(uri, kActionHealth).status();
  }

  std::string dir_, server_cert_, server_key_, client_cert_, client_key_;
  std::shared_ptr<InMemoryPartitionStore> store_;
};

TEST_F(ShuffleServerTlsTest, TlsServesTrustingClientsAndRejectsPlainText) {
  ShuffleServerOptions options;
  options.port = 0;
  options.tls_cert_pem = server_cert_;
  options.tls_key_pem = server_key_;
  ASSERT_OK_AND_ASSIGN(auto server, ShuffleServer::Make(options, store_));
  ASSERT_EQ(server->uri().rfind("grpc+tls://", 0), 0u);
  ShuffleClientOptions trusting;
  trusting.tls_root_certs = server_cert_;
  ASSERT_OK(Health(server->uri(), trusting));
  // Plain text to a TLS port, and TLS without trusting the certificate, both fail.
  const std::string plain = "grpc+tcp://127.0.0.1:" + std::to_string(server->port());
  EXPECT_FALSE(Health(plain, {}).ok());
  ShuffleClientOptions untrusting;
  untrusting.tls_root_certs = client_cert_;
  EXPECT_FALSE(Health(server->uri(), untrusting).ok());
}

TEST_F(ShuffleServerTlsTest, MutualTlsRequiresAClientCertificate) {
  ShuffleServerOptions options;
  options.port = 0;
  options.tls_cert_pem = server_cert_;
  options.tls_key_pem = server_key_;
  options.verify_client = true;
  options.client_root_pem = client_cert_;
  options.auth_token = "t";
  ASSERT_OK_AND_ASSIGN(auto server, ShuffleServer::Make(options, store_));
  ShuffleClientOptions with_cert;
  with_cert.tls_root_certs = server_cert_;
  with_cert.tls_cert_chain = client_cert_;
  with_cert.tls_private_key = client_key_;
  with_cert.auth_token = "t";
  ASSERT_OK(Health(server->uri(), with_cert));
  ShuffleClientOptions without_cert;
  without_cert.tls_root_certs = server_cert_;
  without_cert.auth_token = "t";
  EXPECT_FALSE(Health(server->uri(), without_cert).ok());
  ShuffleClientOptions wrong_token = with_cert;
  wrong_token.auth_token = "nope";
  EXPECT_FALSE(Health(server->uri(), wrong_token).ok());
}

TEST(ShuffleServerOptionsTest, RejectsInconsistentOptions) {
  ASSERT_OK_AND_ASSIGN(auto store, InMemoryPartitionStore::Make());
  ShuffleServerOptions half_tls;
  half_tls.port = 0;
  half_tls.tls_cert_pem = "x";
  EXPECT_TRUE(ShuffleServer::Make(half_tls, store).status().IsInvalid());
  ShuffleServerOptions bad_port;
  bad_port.port = 70000;
  EXPECT_TRUE(ShuffleServer::Make(bad_port, store).status().IsInvalid());
  EXPECT_TRUE(ShuffleServer::Make(ShuffleServerOptions{}, nullptr).status().IsInvalid());
}

}  // namespace
}  // namespace sabot::testing
