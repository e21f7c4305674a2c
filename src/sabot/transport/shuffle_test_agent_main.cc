// A test agent: one process hosting a ShuffleServer over generated data, as writer task
// `--agent` of `--agents` writers of an N x M shuffle. Tests and benchmarks start it as a real
// process on loopback and read what it serves.
//
// Writer task i owns batches [i * batches, (i + 1) * batches) of the generated table
// (sabot/common/data_generator.h, `--rows` rows per batch) and sends row r to partition
// pmod(key(r), partitions). Each partition's rows of one batch become one sealed block,
// encoded once with `--compression`, in stream {shuffle, partition, writer=i, attempt=0}.
//
// It writes its port to `--port-file` (written whole, then renamed) and serves until SIGTERM or
// SIGINT, or until its parent process exits. `--raw-flight 1` serves the same partition batches from a minimal plain Flight server
// instead (DoGet of the same tickets through arrow::flight::RecordBatchStream, which encodes
// them per call): the ceiling benchmarks compare against. `--dump-partition p --dump-file f` also writes the batches of partition p, as they
// were before encoding and in the order served, to the Arrow IPC file f (for third-party
// clients to compare against). `--serve-delay-ms` slows each block served (to test failures mid-stream);
// `--token`, `--tls-cert` and `--tls-key` turn on authentication and TLS. `--events 1` follows
// each batch b's blocks with the event "batch <b>" in every partition's stream (docs/wire-protocol.md:
// third-party clients see each as an empty batch tagged with EVENT app_metadata).

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/compute/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>

#include "sabot/common/arrow_init.h"
#include "sabot/common/data_generator.h"
#include "sabot/transport/ipc_block.h"
#include "sabot/transport/in_memory_partition_store.h"
#include "sabot/transport/shuffle_server.h"

#include <arrow/flight/server.h>
#include <arrow/record_batch.h>

namespace sabot {
namespace {

struct AgentArgs {
  std::string shuffle = "nxm";
  int agent = 0;
  int agents = 1;
  int partitions = 1;
  int batches = 4;
  int64_t rows = 1000;
  int port = 0;
  std::string port_file;
  std::string compression = "none";
  int serve_delay_ms = 0;
  std::string token;
  std::string tls_cert;
  std::string tls_key;
  int dump_partition = -1;
  std::string dump_file;
  bool raw_flight = false;
  bool events = false;
};

arrow::Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return arrow::Status::IOError("cannot read ", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

arrow::Result<AgentArgs> ParseArgs(int argc, char** argv) {
  AgentArgs args;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return arrow::Status::Invalid("flag ", flag, " needs a value");
    std::string value = argv[++i];
    try {
      if (flag == "--shuffle") args.shuffle = value;
      else if (flag == "--agent") args.agent = std::stoi(value);
      else if (flag == "--agents") args.agents = std::stoi(value);
      else if (flag == "--partitions") args.partitions = std::stoi(value);
      else if (flag == "--batches") args.batches = std::stoi(value);
      else if (flag == "--rows") args.rows = std::stoll(value);
      else if (flag == "--port") args.port = std::stoi(value);
      else if (flag == "--port-file") args.port_file = value;
      else if (flag == "--compression") args.compression = value;
      else if (flag == "--serve-delay-ms") args.serve_delay_ms = std::stoi(value);
      else if (flag == "--token") args.token = value;
      else if (flag == "--tls-cert") args.tls_cert = value;
      else if (flag == "--tls-key") args.tls_key = value;
      else if (flag == "--dump-partition") args.dump_partition = std::stoi(value);
      else if (flag == "--dump-file") args.dump_file = value;
      else if (flag == "--raw-flight") args.raw_flight = value == "1";
      else if (flag == "--events") args.events = value == "1";
      else return arrow::Status::Invalid("unknown flag ", flag);
    } catch (const std::exception&) {
      return arrow::Status::Invalid("bad value '", value, "' for ", flag);
    }
  }
  if (args.port_file.empty()) return arrow::Status::Invalid("--port-file is required");
  return args;
}

DataGeneratorOptions DataOptions(const AgentArgs& args) {
  DataGeneratorOptions data;
  data.batch_rows = args.rows;
  return data;
}

// The ceiling: a plain Flight server handing the same batches to Arrow's RecordBatchStream.
class RawFlightServer : public arrow::flight::FlightServerBase {
 public:
  RawFlightServer(std::shared_ptr<arrow::Schema> schema,
                  std::map<int32_t, std::vector<std::shared_ptr<arrow::RecordBatch>>> batches)
      : schema_(std::move(schema)), batches_(std::move(batches)) {}

  arrow::Status DoGet(const arrow::flight::ServerCallContext&,
                      const arrow::flight::Ticket& request,
                      std::unique_ptr<arrow::flight::FlightDataStream>* stream) override {
    ARROW_ASSIGN_OR_RAISE(auto path, PartitionPath::Parse(request.ticket));
    ARROW_ASSIGN_OR_RAISE(auto reader,
                          arrow::RecordBatchReader::Make(batches_[path.partition_id], schema_));
    *stream = std::make_unique<arrow::flight::RecordBatchStream>(std::move(reader));
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<arrow::Schema> schema_;
  std::map<int32_t, std::vector<std::shared_ptr<arrow::RecordBatch>>> batches_;
};

// Serves the blocks of an InMemoryPartitionStore, sleeping before each.
class SlowStore : public PartitionStore {
 public:
  SlowStore(std::shared_ptr<PartitionStore> inner, int delay_ms)
      : inner_(std::move(inner)), delay_ms_(delay_ms) {}
  std::vector<std::string> ListShuffles() override { return inner_->ListShuffles(); }
  arrow::Result<ShuffleDescription> Describe(const std::string& id) override {
    return inner_->Describe(id);
  }
  arrow::Result<std::vector<StreamKey>> ListStreams(const std::string& id, int32_t p) override {
    return inner_->ListStreams(id, p);
  }
  arrow::Result<std::unique_ptr<BlockIterator>> OpenStream(const StreamKey& key) override {
    ARROW_ASSIGN_OR_RAISE(auto inner, inner_->OpenStream(key));
    return std::make_unique<Iterator>(std::move(inner), delay_ms_);
  }
  arrow::Status Append(const StreamKey& key, const arrow::Schema& schema,
                       std::vector<SealedBlock> blocks) override {
    return inner_->Append(key, schema, std::move(blocks));
  }
  arrow::Status Release(const std::string& id) override { return inner_->Release(id); }

 private:
  class Iterator : public BlockIterator {
   public:
    Iterator(std::unique_ptr<BlockIterator> inner, int delay_ms)
        : inner_(std::move(inner)), delay_ms_(delay_ms) {}
    arrow::Result<std::optional<SealedBlock>> Next() override {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
      return inner_->Next();
    }

   private:
    std::unique_ptr<BlockIterator> inner_;
    int delay_ms_;
  };
  std::shared_ptr<PartitionStore> inner_;
  int delay_ms_;
};

using PartitionBatches = std::map<int32_t, std::vector<std::shared_ptr<arrow::RecordBatch>>>;

arrow::Status Populate(const AgentArgs& args, Compression compression,
                       InMemoryPartitionStore* store, PartitionBatches* batches_out) {
  DataGeneratorOptions data = DataOptions(args);
  auto schema = GeneratedSchema(data);
  ARROW_RETURN_NOT_OK(store->RegisterShuffle(args.shuffle, schema, args.partitions, compression));
  std::map<int32_t, std::vector<SealedBlock>> blocks;
  std::vector<std::shared_ptr<arrow::RecordBatch>> dumped;
  for (int b = 0; b < args.batches; ++b) {
    const int64_t batch_index = static_cast<int64_t>(args.agent) * args.batches + b;
    ARROW_ASSIGN_OR_RAISE(auto batch, GenerateBatch(data, batch_index));
    auto keys = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("key"));
    std::vector<arrow::Int32Builder> indices(args.partitions);
    for (int64_t row = 0; row < batch->num_rows(); ++row) {
      const int64_t key = keys->Value(row);
      const int32_t partition = static_cast<int32_t>(((key % args.partitions) + args.partitions) %
                                                     args.partitions);
      ARROW_RETURN_NOT_OK(indices[partition].Append(static_cast<int32_t>(row)));
    }
    for (int32_t p = 0; p < args.partitions; ++p) {
      if (indices[p].length() == 0) continue;
      ARROW_ASSIGN_OR_RAISE(auto index_array, indices[p].Finish());
      ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(batch, index_array));
      if (p == args.dump_partition) dumped.push_back(taken.record_batch());
      (*batches_out)[p].push_back(taken.record_batch());
      ARROW_ASSIGN_OR_RAISE(auto block, EncodeIpcBlock(*taken.record_batch(), compression));
      blocks[p].push_back(std::move(block));
    }
    if (args.events) {
      for (int32_t p = 0; p < args.partitions; ++p) {
        ARROW_ASSIGN_OR_RAISE(
            auto event, MakeEventBlock(arrow::Buffer::FromString("batch " + std::to_string(b))));
        blocks[p].push_back(std::move(event));
      }
    }
  }
  if (!args.dump_file.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::FileOutputStream::Open(args.dump_file));
    ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(file, schema));
    for (const auto& batch : dumped) ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*batch));
    ARROW_RETURN_NOT_OK(writer->Close());
    ARROW_RETURN_NOT_OK(file->Close());
  }
  for (auto& [p, list] : blocks) {
    ARROW_RETURN_NOT_OK(store->Append(StreamKey{args.shuffle, p, args.agent, 0}, *schema,
                                      std::move(list)));
  }
  return arrow::Status::OK();
}

arrow::Status Run(int argc, char** argv) {
  const pid_t parent = getppid();
  ARROW_RETURN_NOT_OK(InitializeArrow());
  ARROW_ASSIGN_OR_RAISE(AgentArgs args, ParseArgs(argc, argv));
  ARROW_ASSIGN_OR_RAISE(Compression compression, ParseCompression(args.compression));
  ARROW_ASSIGN_OR_RAISE(auto store, InMemoryPartitionStore::Make());
  PartitionBatches batches;
  ARROW_RETURN_NOT_OK(Populate(args, compression, store.get(), &batches));

  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ShuffleServerOptions options;
  options.port = args.port;
  options.auth_token = args.token;
  if (!args.tls_cert.empty()) {
    ARROW_ASSIGN_OR_RAISE(options.tls_cert_pem, ReadFile(args.tls_cert));
    ARROW_ASSIGN_OR_RAISE(options.tls_key_pem, ReadFile(args.tls_key));
  }
  std::unique_ptr<arrow::flight::FlightServerBase> server;
  if (args.raw_flight) {
    ARROW_ASSIGN_OR_RAISE(auto location, arrow::flight::Location::ForGrpcTcp("127.0.0.1", args.port));
    auto raw = std::make_unique<RawFlightServer>(GeneratedSchema(DataOptions(args)),
                                                 std::move(batches));
    ARROW_RETURN_NOT_OK(raw->Init(arrow::flight::FlightServerOptions(location)));
    server = std::move(raw);
  } else {
    std::shared_ptr<PartitionStore> served = store;
    if (args.serve_delay_ms > 0) served = std::make_shared<SlowStore>(store, args.serve_delay_ms);
    ARROW_ASSIGN_OR_RAISE(auto shuffle_server, ShuffleServer::Make(options, served));
    server = std::move(shuffle_server);
  }

  const std::string temp = args.port_file + ".tmp";
  {
    std::ofstream out(temp);
    out << server->port() << "\n";
    if (!out) return arrow::Status::IOError("cannot write ", temp);
  }
  if (std::rename(temp.c_str(), args.port_file.c_str()) != 0) {
    return arrow::Status::IOError("cannot rename ", temp, " to ", args.port_file);
  }
  // A test that dies (a failed assertion, a sanitizer abort) must not leave its agents behind:
  // the agent stops when its parent goes away.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) kill(getpid(), SIGTERM);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  // ShuffleServer's destructor shuts it down and waits for calls in progress.
  if (args.raw_flight) {
    ARROW_RETURN_NOT_OK(server->Shutdown());
    return server->Wait();
  }
  server.reset();
  return arrow::Status::OK();
}

}  // namespace
}  // namespace sabot

int main(int argc, char** argv) {
  arrow::Status status = sabot::Run(argc, argv);
  if (!status.ok()) {
    std::cerr << "shuffle test agent: " << status.ToString() << std::endl;
    return 1;
  }
  return 0;
}
