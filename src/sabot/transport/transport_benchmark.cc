// Transport benchmarks.
//
// BM_ShuffleFetch/W/R: W agent processes on loopback serve an N x M shuffle's blocks (2 MiB
// generated batches, scattered into R partitions, stored encoded); this process fetches all
// W x R partitions through ShuffleClient with R fetches in parallel. In the same run, the
// ceiling: W plain Flight servers (same agent binary, --raw-flight 1) serve the same partition
// batches through arrow::flight::RecordBatchStream, read by R threads with bare FlightClients.
// Counters: shuffle and raw throughput (MiB/s of batch buffer bytes, median of the iterations)
// and their ratio.
//
// BM_PipelinedLatency/<transport>: 10 KB batches through one pipelined channel (Flight over
// loopback, or in-process), the writer pacing one block every 100 us (sleeping, not spinning); latency from just before
// Write to the reader holding the decoded batch. Counters: p50, p99, p99.9 in microseconds.

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/flight/client.h>
#include <arrow/util/byte_size.h>

#include "sabot/common/data_generator.h"
#include "sabot/testing/benchmark_main.h"
#include "sabot/transport/agent_process_testing.h"
#include "sabot/transport/flight_transport.h"
#include "sabot/transport/in_memory_partition_store.h"
#include "sabot/transport/in_process_transport.h"
#include "sabot/transport/ipc_block.h"
#include "sabot/transport/shuffle_client.h"
#include "sabot/transport/shuffle_server.h"

namespace sabot {
namespace {

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double Percentile(std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(q * (sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)];
}

struct Cluster {
  std::vector<std::unique_ptr<testing::AgentProcess>> shuffle_agents;
  std::vector<std::unique_ptr<testing::AgentProcess>> raw_agents;
};

arrow::Result<Cluster> StartCluster(int writers, int partitions, int batches, int64_t rows) {
  Cluster cluster;
  for (int raw = 0; raw < 2; ++raw) {
    for (int i = 0; i < writers; ++i) {
      ARROW_ASSIGN_OR_RAISE(
          auto agent,
          testing::AgentProcess::Start(
              SABOT_TEST_AGENT_PATH,
              {"--shuffle", "bench", "--agent", std::to_string(i), "--agents",
               std::to_string(writers), "--partitions", std::to_string(partitions), "--batches",
               std::to_string(batches), "--rows", std::to_string(rows), "--raw-flight",
               raw ? "1" : "0"}));
      (raw ? cluster.raw_agents : cluster.shuffle_agents).push_back(std::move(agent));
    }
  }
  return cluster;
}

// One plain FlightClient per raw agent, made once and shared by the reading threads (as the
// shuffle client pools its connections).
using RawClients = std::map<std::string, std::unique_ptr<arrow::flight::FlightClient>>;

arrow::Result<RawClients> ConnectRaw(const Cluster& cluster) {
  RawClients clients;
  for (const auto& agent : cluster.raw_agents) {
    ARROW_ASSIGN_OR_RAISE(auto location, arrow::flight::Location::Parse(agent->uri()));
    ARROW_ASSIGN_OR_RAISE(clients[agent->uri()], arrow::flight::FlightClient::Connect(location));
  }
  return clients;
}

// Reads every (agent, partition) of the raw servers with `parallelism` threads; returns bytes.
arrow::Result<int64_t> RawFetch(const Cluster& cluster, RawClients& clients, int partitions,
                                int parallelism) {
  std::vector<std::pair<std::string, int>> requests;
  for (int p = 0; p < partitions; ++p) {
    for (const auto& agent : cluster.raw_agents) requests.emplace_back(agent->uri(), p);
  }
  std::atomic<size_t> next{0};
  std::atomic<int64_t> bytes{0};
  std::vector<arrow::Status> statuses(parallelism);
  std::vector<std::thread> threads;
  for (int t = 0; t < parallelism; ++t) {
    threads.emplace_back([&, t] {
      statuses[t] = [&]() -> arrow::Status {
        for (size_t i = next++; i < requests.size(); i = next++) {
          PartitionPath path{"bench", requests[i].second, std::nullopt, std::nullopt};
          ARROW_ASSIGN_OR_RAISE(auto reader, clients.at(requests[i].first)
                                                 ->DoGet(arrow::flight::Ticket{path.ToString()}));
          while (true) {
            ARROW_ASSIGN_OR_RAISE(auto chunk, reader->Next());
            if (chunk.data == nullptr) break;
            bytes += arrow::util::TotalBufferSize(*chunk.data);
          }
        }
        return arrow::Status::OK();
      }();
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& status : statuses) ARROW_RETURN_NOT_OK(status);
  return bytes.load();
}

arrow::Result<int64_t> ShuffleFetch(ShuffleClient* client, const Cluster& cluster,
                                    int partitions) {
  std::vector<FetchRequest> requests;
  for (int p = 0; p < partitions; ++p) {
    for (const auto& agent : cluster.shuffle_agents) {
      requests.push_back({agent->uri(), PartitionPath{"bench", p, std::nullopt, std::nullopt}});
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto stream, client->FetchMany(std::move(requests)));
  int64_t bytes = 0;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto item, stream->Next());
    if (item.batch == nullptr) break;
    bytes += arrow::util::TotalBufferSize(*item.batch);
  }
  return bytes;
}

void BM_ShuffleFetch(benchmark::State& state) {
  const int writers = static_cast<int>(state.range(0));
  const int partitions = static_cast<int>(state.range(1));
  const bool smoke = testing::IsSmokeRun();
  const int64_t rows = smoke ? 1024 : 64 * 1024;
  const int batches = smoke ? 2 : 32 / writers;
  auto cluster = StartCluster(writers, partitions, batches, rows);
  if (!cluster.ok()) {
    state.SkipWithError(cluster.status().ToString().c_str());
    return;
  }
  ShuffleClientOptions options;
  options.parallelism = partitions;
  options.max_bytes_in_flight = 256LL << 20;
  auto client = ShuffleClient::Make(options).ValueOrDie();
  auto raw_clients = ConnectRaw(*cluster);
  if (!raw_clients.ok()) {
    state.SkipWithError(raw_clients.status().ToString().c_str());
    return;
  }
  std::vector<double> shuffle_mibps, raw_mibps;
  int64_t total_bytes = 0;
  int64_t iteration = 0;
  for (auto _ : state) {
    // Alternate which goes first, so neither always runs on a warmer machine.
    const bool raw_first = (iteration++ % 2) == 1;
    arrow::Result<int64_t> shuffle_bytes = 0, raw_bytes = 0;
    std::chrono::steady_clock::time_point t0, t1, t2, t3;
    if (raw_first) {
      t2 = std::chrono::steady_clock::now();
      raw_bytes = RawFetch(*cluster, *raw_clients, partitions, partitions);
      t3 = t0 = std::chrono::steady_clock::now();
      shuffle_bytes = ShuffleFetch(client.get(), *cluster, partitions);
      t1 = std::chrono::steady_clock::now();
    } else {
      t0 = std::chrono::steady_clock::now();
      shuffle_bytes = ShuffleFetch(client.get(), *cluster, partitions);
      t1 = t2 = std::chrono::steady_clock::now();
      raw_bytes = RawFetch(*cluster, *raw_clients, partitions, partitions);
      t3 = std::chrono::steady_clock::now();
    }
    if (!shuffle_bytes.ok() || !raw_bytes.ok()) {
      state.SkipWithError((shuffle_bytes.ok() ? raw_bytes.status() : shuffle_bytes.status())
                              .ToString()
                              .c_str());
      return;
    }
    const double mib = *shuffle_bytes / double(1 << 20);
    shuffle_mibps.push_back(mib / std::chrono::duration<double>(t1 - t0).count());
    raw_mibps.push_back(*raw_bytes / double(1 << 20) /
                        std::chrono::duration<double>(t3 - t2).count());
    total_bytes += *shuffle_bytes;
  }
  state.SetBytesProcessed(total_bytes);
  const double shuffle = Median(shuffle_mibps), raw = Median(raw_mibps);
  state.counters["shuffle_MiBps"] = shuffle;
  state.counters["raw_flight_MiBps"] = raw;
  state.counters["ratio_to_raw"] = raw > 0 ? shuffle / raw : 0;
}
BENCHMARK(BM_ShuffleFetch)
    ->Args({1, 1})
    ->Args({4, 4})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

std::shared_ptr<arrow::RecordBatch> TenKilobyteBatch(int64_t seq) {
  arrow::Int64Builder builder;
  for (int64_t i = 0; i < 1250; ++i) ARROW_UNUSED(builder.Append(i == 0 ? seq : i));
  auto array = builder.Finish().ValueOrDie();
  return arrow::RecordBatch::Make(arrow::schema({arrow::field("v", arrow::int64())}), 1250,
                                  {array});
}

void BM_PipelinedLatency(benchmark::State& state) {
  const bool flight = state.range(0) == 1;
  const int blocks = testing::IsSmokeRun() ? 50 : 5000;
  std::shared_ptr<InMemoryPartitionStore> store = InMemoryPartitionStore::Make().ValueOrDie();
  std::unique_ptr<ShuffleServer> server;
  std::unique_ptr<ShuffleClient> client;
  std::unique_ptr<Transport> transport;
  if (flight) {
    ShuffleServerOptions options;
    options.port = 0;
    server = ShuffleServer::Make(options, store).ValueOrDie();
    client = ShuffleClient::Make({}).ValueOrDie();
    const std::string uri = server->uri();
    transport = FlightTransport::Make(server.get(), client.get(),
                                      [uri](const StreamKey&) -> arrow::Result<std::string> {
                                        return uri;
                                      },
                                      /*local_channels_in_process=*/false)
                    .ValueOrDie();
  } else {
    transport = InProcessTransport::Make().ValueOrDie();
  }
  std::vector<SealedBlock> encoded;
  for (int i = 0; i < blocks; ++i) {
    encoded.push_back(EncodeIpcBlock(*TenKilobyteBatch(i), Compression::kNone).ValueOrDie());
  }
  std::vector<double> latencies_us;
  int32_t round = 0;
  for (auto _ : state) {
    StreamKey key{"latency", 0, round++, 0};
    ChannelOptions options;
    options.exclusive_credits = 4;
    auto writer = transport->OpenWriter(key, TenKilobyteBatch(0)->schema(), options).ValueOrDie();
    auto reader = transport->OpenReader(key, options).ValueOrDie();
    std::vector<std::chrono::steady_clock::time_point> sent(blocks);
    std::thread producer([&] {
      auto next = std::chrono::steady_clock::now();
      for (int i = 0; i < blocks; ++i) {
        next += std::chrono::microseconds(100);
        std::this_thread::sleep_until(next);
        sent[i] = std::chrono::steady_clock::now();
        if (!writer->Write(encoded[i]).ok()) return;
      }
      ARROW_UNUSED(writer->Finish());
    });
    for (int i = 0; i < blocks; ++i) {
      auto batch = reader->Next();
      const auto now = std::chrono::steady_clock::now();
      if (!batch.ok() || *batch == nullptr) {
        state.SkipWithError("channel ended early");
        break;
      }
      const int64_t seq =
          std::static_pointer_cast<arrow::Int64Array>((*batch)->column(0))->Value(0);
      latencies_us.push_back(std::chrono::duration<double, std::micro>(now - sent[seq]).count());
    }
    ARROW_UNUSED(reader->Next());
    producer.join();
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  state.counters["p50_us"] = Percentile(latencies_us, 0.5);
  state.counters["p99_us"] = Percentile(latencies_us, 0.99);
  state.counters["p999_us"] = Percentile(latencies_us, 0.999);
  state.SetItemsProcessed(static_cast<int64_t>(latencies_us.size()));
  state.SetLabel(flight ? "flight" : "in-process");
}
BENCHMARK(BM_PipelinedLatency)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace sabot
