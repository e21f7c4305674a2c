#include "sabot/runtime/shuffle_ceiling.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/flight/client.h>
#include <arrow/flight/server.h>
#include <arrow/record_batch.h>

#include "sabot/common/batch_bytes.h"
#include "sabot/common/ids.h"
#include "sabot/transport/flight_transport.h"
#include "sabot/transport/in_memory_partition_store.h"
#include "sabot/transport/ipc_block.h"

namespace sabot {

namespace {

using Clock = std::chrono::steady_clock;
using Batches = std::vector<std::shared_ptr<arrow::RecordBatch>>;

// The batches one thread or stream moves: the job's writers w with w % parallelism == lane, in
// order; `distinct` holds the first few of each writer (within the working-set budget), and the
// i-th batch of a writer is stood in for by its distinct batch i % distinct.size().
struct Lane {
  std::vector<Batches> distinct;  // per writer of the lane
  int64_t batches_per_writer = 0;
};

arrow::Result<std::vector<Lane>> MakeLanes(const GeneratedJob& job, int32_t parallelism) {
  ARROW_RETURN_NOT_OK(ValidateCount(parallelism, "ceiling parallelism"));
  std::vector<Lane> lanes(static_cast<size_t>(parallelism));
  for (auto& lane : lanes) lane.batches_per_writer = job.batches_per_writer;
  if (job.batches_per_writer == 0) return lanes;
  for (int32_t w = 0; w < job.num_writers; ++w) {
    Lane& lane = lanes[static_cast<size_t>(w % parallelism)];
    const int64_t writers_in_lane = (job.num_writers - 1 - w % parallelism) / parallelism + 1;
    const int64_t budget = kCeilingWorkingSetBytes / writers_in_lane;
    Batches batches;
    int64_t bytes = 0;
    for (int64_t i = 0; i < job.batches_per_writer && (batches.empty() || bytes < budget); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto batch, job.WriterBatch(w, i));
      bytes += BatchBufferBytes(*batch);
      batches.push_back(std::move(batch));
    }
    lane.distinct.push_back(std::move(batches));
  }
  return lanes;
}

std::chrono::nanoseconds ProcessCpuTime() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  auto of = [](const timeval& t) {
    return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
  };
  return of(usage.ru_utime) + of(usage.ru_stime);
}

// Runs fn(lane index) on one thread per lane; the wall time of all of them, and the process's
// CPU time meanwhile into `*cpu` when given.
template <typename Fn>
std::chrono::nanoseconds TimeLanes(size_t lanes, Fn&& fn,
                                   std::chrono::nanoseconds* cpu = nullptr) {
  std::vector<std::thread> threads;
  const auto cpu_start = ProcessCpuTime();
  const auto start = Clock::now();
  for (size_t l = 0; l < lanes; ++l) threads.emplace_back(fn, l);
  for (auto& thread : threads) thread.join();
  const auto elapsed = Clock::now() - start;
  if (cpu != nullptr) *cpu = ProcessCpuTime() - cpu_start;
  return elapsed;
}

// A RecordBatchReader that yields `count` batches cycling through `batches`.
class CyclingReader : public arrow::RecordBatchReader {
 public:
  CyclingReader(std::shared_ptr<arrow::Schema> schema, std::vector<const Batches*> writers,
                int64_t batches_per_writer)
      : schema_(std::move(schema)),
        writers_(std::move(writers)),
        batches_per_writer_(batches_per_writer) {}

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    if (writer_ >= writers_.size()) {
      *batch = nullptr;
      return arrow::Status::OK();
    }
    const Batches& distinct = *writers_[writer_];
    *batch = distinct[static_cast<size_t>(index_ % static_cast<int64_t>(distinct.size()))];
    if (++index_ == batches_per_writer_) {
      index_ = 0;
      ++writer_;
    }
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<arrow::Schema> schema_;
  std::vector<const Batches*> writers_;
  int64_t batches_per_writer_;
  size_t writer_ = 0;
  int64_t index_ = 0;
};

// Serves lane `ticket` of `lanes` as a plain Flight stream.
class LaneServer : public arrow::flight::FlightServerBase {
 public:
  LaneServer(std::shared_ptr<arrow::Schema> schema, const std::vector<Lane>* lanes)
      : schema_(std::move(schema)), lanes_(lanes) {}

  arrow::Status DoGet(const arrow::flight::ServerCallContext&,
                      const arrow::flight::Ticket& request,
                      std::unique_ptr<arrow::flight::FlightDataStream>* stream) override {
    size_t lane = 0;
    try {
      lane = std::stoul(request.ticket);
    } catch (const std::exception&) {
      return arrow::Status::Invalid("no lane '", request.ticket, "'");
    }
    if (lane >= lanes_->size()) return arrow::Status::Invalid("no lane ", lane);
    std::vector<const Batches*> writers;
    for (const Batches& batches : (*lanes_)[lane].distinct) writers.push_back(&batches);
    auto reader = std::make_shared<CyclingReader>(schema_, std::move(writers),
                                                  (*lanes_)[lane].batches_per_writer);
    *stream = std::make_unique<arrow::flight::RecordBatchStream>(std::move(reader));
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<arrow::Schema> schema_;
  const std::vector<Lane>* lanes_;
};

}  // namespace

double CeilingMeasurement::bytes_per_second() const {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  return seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
}

arrow::Result<CeilingMeasurement> MeasureMemcpyCeiling(const GeneratedJob& job, int32_t threads) {
  ARROW_ASSIGN_OR_RAISE(std::vector<Lane> lanes, MakeLanes(job, threads));
  // One destination per distinct source buffer, allocated (and touched) before timing.
  std::vector<std::vector<std::vector<std::unique_ptr<arrow::Buffer>>>> destinations(lanes.size());
  for (size_t l = 0; l < lanes.size(); ++l) {
    for (const Batches& batches : lanes[l].distinct) {
      std::vector<std::unique_ptr<arrow::Buffer>> buffers;
      for (const auto& batch : batches) {
        ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateBuffer(BatchBufferBytes(*batch)));
        std::memset(buffer->mutable_data(), 0, static_cast<size_t>(buffer->size()));
        buffers.push_back(std::move(buffer));
      }
      destinations[l].push_back(std::move(buffers));
    }
  }
  std::vector<int64_t> copied(lanes.size(), 0);
  std::vector<int64_t> rows(lanes.size(), 0);
  CeilingMeasurement result;
  result.parallelism = threads;
  result.elapsed = TimeLanes(lanes.size(), [&](size_t l) {
    const Lane& lane = lanes[l];
    for (size_t w = 0; w < lane.distinct.size(); ++w) {
      const Batches& distinct = lane.distinct[w];
      for (int64_t i = 0; i < lane.batches_per_writer; ++i) {
        const size_t d = static_cast<size_t>(i % static_cast<int64_t>(distinct.size()));
        uint8_t* out = destinations[l][w][d]->mutable_data();
        rows[l] += distinct[d]->num_rows();
        for (const auto& column : distinct[d]->columns()) {
          for (const auto& buffer : column->data()->buffers) {
            if (!buffer) continue;
            std::memcpy(out, buffer->data(), static_cast<size_t>(buffer->size()));
            out += buffer->size();
            copied[l] += buffer->size();
          }
        }
      }
    }
  });
  for (size_t l = 0; l < lanes.size(); ++l) {
    result.bytes += copied[l];
    result.rows += rows[l];
  }
  return result;
}

arrow::Result<CeilingMeasurement> MeasureFlightCeiling(const GeneratedJob& job, int32_t streams) {
  ARROW_ASSIGN_OR_RAISE(std::vector<Lane> lanes, MakeLanes(job, streams));
  LaneServer server(GeneratedSchema(job.data), &lanes);
  ARROW_ASSIGN_OR_RAISE(auto listen, arrow::flight::Location::ForGrpcTcp("127.0.0.1", 0));
  ARROW_RETURN_NOT_OK(server.Init(arrow::flight::FlightServerOptions(listen)));
  // Shut down on every path once serving.
  struct ShutdownAtExit {
    LaneServer* server;
    ~ShutdownAtExit() { (void)server->Shutdown(); }
  } shutdown_at_exit{&server};
  ARROW_ASSIGN_OR_RAISE(auto location,
                        arrow::flight::Location::ForGrpcTcp("127.0.0.1", server.port()));
  // Connected before timing, as the shuffle's pooled connections are.
  std::vector<std::unique_ptr<arrow::flight::FlightClient>> clients;
  for (size_t l = 0; l < lanes.size(); ++l) {
    ARROW_ASSIGN_OR_RAISE(auto client, arrow::flight::FlightClient::Connect(location));
    clients.push_back(std::move(client));
  }
  std::vector<int64_t> received(lanes.size(), 0);
  std::vector<int64_t> rows(lanes.size(), 0);
  std::vector<arrow::Status> statuses(lanes.size());
  CeilingMeasurement result;
  result.parallelism = streams;
  result.elapsed = TimeLanes(lanes.size(), [&](size_t l) {
    statuses[l] = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto reader,
                            clients[l]->DoGet(arrow::flight::Ticket{std::to_string(l)}));
      while (true) {
        ARROW_ASSIGN_OR_RAISE(auto chunk, reader->Next());
        if (chunk.data == nullptr) return arrow::Status::OK();
        received[l] += BatchBufferBytes(*chunk.data);
        rows[l] += chunk.data->num_rows();
      }
    }();
  }, &result.cpu);
  for (auto& client : clients) (void)client->Close();
  for (const auto& status : statuses) ARROW_RETURN_NOT_OK(status);
  for (size_t l = 0; l < lanes.size(); ++l) {
    result.bytes += received[l];
    result.rows += rows[l];
  }
  return result;
}

arrow::Result<CeilingMeasurement> MeasurePipelinedFlightEdge(const GeneratedJob& job,
                                                             int32_t streams,
                                                             int32_t exclusive_credits) {
  if (exclusive_credits < 1) {
    return arrow::Status::Invalid("exclusive_credits must be >= 1, got ", exclusive_credits);
  }
  ARROW_ASSIGN_OR_RAISE(std::vector<Lane> lanes, MakeLanes(job, streams));
  // The lanes' batches as IPC blocks, encoded before the clock.
  std::vector<std::vector<std::vector<SealedBlock>>> blocks(lanes.size());
  for (size_t l = 0; l < lanes.size(); ++l) {
    for (const Batches& batches : lanes[l].distinct) {
      std::vector<SealedBlock> encoded;
      for (const auto& batch : batches) {
        ARROW_ASSIGN_OR_RAISE(auto block, EncodeIpcBlock(*batch, Compression::kNone));
        encoded.push_back(std::move(block));
      }
      blocks[l].push_back(std::move(encoded));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto store, InMemoryPartitionStore::Make());
  ShuffleServerOptions server_options;
  server_options.host = "127.0.0.1";
  server_options.port = 0;
  ARROW_ASSIGN_OR_RAISE(auto server, ShuffleServer::Make(server_options, store));
  ARROW_ASSIGN_OR_RAISE(auto client, ShuffleClient::Make({}));
  const std::string uri = server->uri();
  ARROW_ASSIGN_OR_RAISE(
      auto transport,
      FlightTransport::Make(server.get(), client.get(),
                            [uri](const StreamKey&) -> arrow::Result<std::string> { return uri; },
                            /*local_channels_in_process=*/false));
  const auto schema = GeneratedSchema(job.data);
  ChannelOptions channel;
  channel.exclusive_credits = exclusive_credits;
  std::vector<std::unique_ptr<ChannelWriter>> writers;
  std::vector<std::unique_ptr<ChannelReader>> readers;
  for (size_t l = 0; l < lanes.size(); ++l) {
    const StreamKey key{"edge-ceiling", static_cast<int32_t>(l), static_cast<int32_t>(l), 0};
    ARROW_ASSIGN_OR_RAISE(auto writer, transport->OpenWriter(key, schema, channel));
    ARROW_ASSIGN_OR_RAISE(auto reader, transport->OpenReader(key, channel));
    writers.push_back(std::move(writer));
    readers.push_back(std::move(reader));
  }
  std::vector<int64_t> received(lanes.size(), 0);
  std::vector<int64_t> rows(lanes.size(), 0);
  std::vector<arrow::Status> write_statuses(lanes.size()), read_statuses(lanes.size());
  CeilingMeasurement result;
  result.parallelism = streams;
  result.elapsed = TimeLanes(2 * lanes.size(), [&](size_t t) {
    const size_t l = t / 2;
    if (t % 2 == 0) {
      write_statuses[l] = [&]() -> arrow::Status {
        for (const std::vector<SealedBlock>& distinct : blocks[l]) {
          for (int64_t i = 0; i < lanes[l].batches_per_writer; ++i) {
            const auto d = static_cast<size_t>(i % static_cast<int64_t>(distinct.size()));
            ARROW_RETURN_NOT_OK(writers[l]->Write(distinct[d]));
          }
        }
        return writers[l]->Finish();
      }();
      if (!write_statuses[l].ok()) readers[l]->Cancel();
      return;
    }
    read_statuses[l] = [&]() -> arrow::Status {
      while (true) {
        ARROW_ASSIGN_OR_RAISE(auto batch, readers[l]->Next());
        if (batch == nullptr) return arrow::Status::OK();
        received[l] += BatchBufferBytes(*batch);
        rows[l] += batch->num_rows();
      }
    }();
    if (!read_statuses[l].ok()) writers[l]->Cancel(read_statuses[l]);
  }, &result.cpu);
  readers.clear();
  writers.clear();
  ARROW_RETURN_NOT_OK(server->Shutdown());
  for (size_t l = 0; l < lanes.size(); ++l) {
    ARROW_RETURN_NOT_OK(write_statuses[l]);
    ARROW_RETURN_NOT_OK(read_statuses[l]);
    result.bytes += received[l];
    result.rows += rows[l];
  }
  return result;
}

}  // namespace sabot
