#include "sabot/transport/shuffle_client.h"

#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <random>
#include <thread>

#include <arrow/flight/types.h>
#include <arrow/util/byte_size.h>

#include "sabot/common/error_detail.h"
#include "sabot/common/logging.h"
#include "sabot/transport/ipc_block.h"
#include "sabot/transport/receive_buffer_pool.h"
#include "sabot/transport/token_auth.h"

namespace sabot {

namespace flight = arrow::flight;

bool IsTransient(const arrow::Status& status) {
  auto detail = flight::FlightStatusDetail::UnwrapStatus(status);
  if (detail == nullptr) return false;
  return detail->code() == flight::FlightStatusCode::Unavailable ||
         detail->code() == flight::FlightStatusCode::TimedOut;
}

namespace {

// Ends the DoGet streams of fetches asked to stop. Flight checks a call's StopToken only
// between messages, so a fetch waiting for the server's next message (a stream whose writer
// has not produced it yet) would notice its cancellation only when that message came, or at
// the server's read timeout. One thread, started on first use, checks the watched fetches'
// tokens every kPollInterval while there are any, and cancels the stream (TryCancel, which
// does not block) of each one stopped; its Next() then fails at once.
//
// Thread safety: safe for concurrent use. Streams are cancelled under the lock, so once
// Unwatch() returned the stream is never touched again. Never destroyed: fetches may still
// unwatch while the process exits.
class FetchStopper {
 public:
  static constexpr auto kPollInterval = std::chrono::milliseconds(20);

  static FetchStopper& Global() {
    static FetchStopper* stopper = new FetchStopper();
    return *stopper;
  }

  // `reader` must stay valid until Unwatch(id).
  uint64_t Watch(arrow::StopToken stop, flight::FlightStreamReader* reader) {
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      id = next_id_++;
      entries_.emplace(id, Entry{std::move(stop), reader});
    }
    changed_.notify_all();
    return id;
  }
  void Unwatch(uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.erase(id);
  }

 private:
  struct Entry {
    arrow::StopToken stop;
    flight::FlightStreamReader* reader;
  };

  FetchStopper() : thread_([this] { Loop(); }) {}

  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      changed_.wait(lock, [&] { return !entries_.empty(); });
      changed_.wait_for(lock, kPollInterval);
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.stop.IsStopRequested()) {
          it->second.reader->Cancel();
          it = entries_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<uint64_t, Entry> entries_ SABOT_GUARDED_BY(mutex_);
  uint64_t next_id_ SABOT_GUARDED_BY(mutex_) = 1;
  std::thread thread_;
};

// Sleeps for a random time in [0, min(max, initial * 2^attempt)] (full jitter), waking early
// when `stop` is requested.
void Backoff(const ShuffleClientOptions& options, int attempt, const arrow::StopToken& stop) {
  thread_local std::mt19937_64 random(std::random_device{}());
  const int64_t cap = std::min<int64_t>(options.max_backoff.count(),
                                        options.initial_backoff.count() << std::min(attempt, 20));
  std::uniform_int_distribution<int64_t> pick(0, std::max<int64_t>(cap, 0));
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(pick(random));
  while (std::chrono::steady_clock::now() < until && !stop.IsStopRequested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

ShuffleErrorContext ContextOf(const std::string& location, const PartitionPath& path,
                              bool retryable) {
  ShuffleErrorContext context;
  context.shuffle_id = path.shuffle_id;
  context.partition_id = path.partition_id;
  context.writer_task = path.writer_task;
  context.agent = location;
  context.retryable = retryable;
  return context;
}

}  // namespace

arrow::Result<std::unique_ptr<ShuffleClient>> ShuffleClient::Make(ShuffleClientOptions options) {
  if (options.max_attempts < 1) {
    return arrow::Status::Invalid("max_attempts must be >= 1, got ", options.max_attempts);
  }
  if (options.parallelism < 1) {
    return arrow::Status::Invalid("parallelism must be >= 1, got ", options.parallelism);
  }
  if (options.max_bytes_in_flight < 1) {
    return arrow::Status::Invalid("max_bytes_in_flight must be >= 1");
  }
  for (int64_t window : {options.receive_window_bytes, options.channel_receive_window_bytes}) {
    if (window > std::numeric_limits<int32_t>::max()) {
      return arrow::Status::Invalid("a receive window must be at most 2^31 - 1 bytes, got ",
                                    window);
    }
  }
  return std::unique_ptr<ShuffleClient>(new ShuffleClient(std::move(options)));
}

ShuffleClient::~ShuffleClient() {
  std::map<std::pair<std::string, bool>, std::shared_ptr<flight::FlightClient>> connections;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    connections.swap(connections_);
  }
  for (auto& [key, client] : connections) {
    const std::string& location = key.first;
    auto status = client->Close();
    if (!status.ok()) {
      SABOT_LOG(kDebug) << "closing " << location << ": " << status.ToString();
    }
  }
}

arrow::Result<std::shared_ptr<flight::FlightClient>> ShuffleClient::Connect(
    const std::string& location) {
  return ConnectPooled(location, /*for_channels=*/false, options_.receive_window_bytes);
}

arrow::Result<std::shared_ptr<flight::FlightClient>> ShuffleClient::ConnectForChannels(
    const std::string& location) {
  return ConnectPooled(location, /*for_channels=*/true, options_.channel_receive_window_bytes);
}

arrow::Result<std::shared_ptr<flight::FlightClient>> ShuffleClient::ConnectPooled(
    const std::string& location, bool for_channels, int64_t window_bytes) {
  const std::pair<std::string, bool> key{location, for_channels};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = connections_.find(key);
    if (it != connections_.end()) return it->second;
  }
  ARROW_ASSIGN_OR_RAISE(auto parsed, flight::Location::Parse(location));
  auto client_options = flight::FlightClientOptions::Defaults();
  client_options.tls_root_certs = options_.tls_root_certs;
  client_options.cert_chain = options_.tls_cert_chain;
  client_options.private_key = options_.tls_private_key;
  if (window_bytes > 0) {
    // A fixed HTTP/2 window per stream bounds what gRPC buffers for a stream its reader has not
    // taken yet; the window gRPC grows by itself (BDP probing) reached tens of MiB per stream.
    client_options.generic_options.emplace_back("grpc.http2.bdp_probe", 0);
    client_options.generic_options.emplace_back("grpc.http2.lookahead_bytes",
                                                static_cast<int>(window_bytes));
  }
  ARROW_ASSIGN_OR_RAISE(auto made, flight::FlightClient::Connect(parsed, client_options));
  std::shared_ptr<flight::FlightClient> client = std::move(made);
  std::shared_ptr<flight::FlightClient> unused;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, inserted] = connections_.emplace(key, client);
    if (!inserted) {
      unused = std::move(client);
      client = it->second;
    }
  }
  if (unused != nullptr) ARROW_UNUSED(unused->Close());
  return client;
}

void ShuffleClient::Evict(const std::string& location) {
  std::vector<std::shared_ptr<flight::FlightClient>> evicted;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (bool for_channels : {false, true}) {
      auto it = connections_.find({location, for_channels});
      if (it == connections_.end()) continue;
      evicted.push_back(std::move(it->second));
      connections_.erase(it);
    }
  }
  // Calls still running on it keep it alive; it closes when the last one lets go.
}

int64_t ShuffleClient::num_connections() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(connections_.size());
}

flight::FlightCallOptions ShuffleClient::CallOptions(const arrow::StopToken& stop) const {
  flight::FlightCallOptions call;
  if (!options_.auth_token.empty()) {
    call.headers.emplace_back(std::string(kAuthorizationHeader),
                              BearerHeaderValue(options_.auth_token));
  }
  if (options_.call_timeout.count() > 0) {
    call.timeout = flight::TimeoutDuration(options_.call_timeout.count() / 1000.0);
  }
  call.stop_token = stop;
  // gRPC hands out received bodies wherever they landed in its buffers; Arrow arrays need their
  // natural alignment, so misaligned buffers (only those) are copied once, into receive buffers
  // that are reused (ReceiveBufferPool) rather than fresh pages each time.
  call.read_options.ensure_alignment = arrow::ipc::Alignment::kDataTypeSpecificAlignment;
  call.read_options.memory_pool = ReceiveBufferPool::Global();
  return call;
}

arrow::Status ShuffleClient::FetchPartition(
    const std::string& location, const PartitionPath& path,
    const std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>)>& on_batch,
    const arrow::StopToken& stop) {
  return FetchItems(
      location, path,
      [&](StreamItem item) {
        if (item.is_event()) return arrow::Status::OK();
        return on_batch(std::move(item.batch));
      },
      stop);
}

arrow::Status ShuffleClient::FetchItems(const std::string& location, const PartitionPath& path,
                                        const std::function<arrow::Status(StreamItem)>& on_item,
                                        const arrow::StopToken& stop) {
  // Counts items (batches and events): a retry skips exactly what was delivered.
  int64_t delivered = 0;
  arrow::Status last;
  int attempt = 0;
  for (; attempt < options_.max_attempts; ++attempt) {
    if (stop.IsStopRequested()) {
      last = arrow::Status::Cancelled("fetch cancelled");
      break;
    }
    if (attempt > 0) Backoff(options_, attempt - 1, stop);
    bool consumer_failed = false;
    last = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto client, Connect(location));
      ARROW_ASSIGN_OR_RAISE(auto reader,
                            client->DoGet(CallOptions(stop), flight::Ticket{path.ToString()}));
      // While the stream waits for its next message, `stop` cancels it (FetchStopper).
      struct Watched {
        uint64_t id;
        ~Watched() { FetchStopper::Global().Unwatch(id); }
      } watched{FetchStopper::Global().Watch(stop, reader.get())};
      int64_t skip = delivered;
      while (true) {
        auto next = reader->Next();
        if (!next.ok() && stop.IsStopRequested()) {
          consumer_failed = true;  // not retried
          return arrow::Status::Cancelled("fetch of ", path.ToString(), " from ", location,
                                          " cancelled after ", delivered, " batches");
        }
        ARROW_ASSIGN_OR_RAISE(auto chunk, std::move(next));
        if (chunk.data == nullptr) return arrow::Status::OK();
        if (stop.IsStopRequested()) {
          consumer_failed = true;  // not retried
          reader->Cancel();
          return arrow::Status::Cancelled("fetch of ", path.ToString(), " from ", location,
                                          " cancelled after ", delivered, " batches");
        }
        if (skip > 0) {
          --skip;
          continue;
        }
        StreamItem item;
        if (chunk.app_metadata != nullptr) {
          auto event = DecodeEventMetadata(chunk.app_metadata);
          if (!event.ok() || chunk.data->num_rows() != 0) {
            consumer_failed = true;  // a protocol error: not retried
            return arrow::Status::IOError(
                "protocol error in ", path.ToString(), " from ", location, " after ", delivered,
                " items: ",
                event.ok() ? "an event's batch has " + std::to_string(chunk.data->num_rows()) +
                                 " rows"
                           : event.status().message());
          }
          item.event = std::move(event).ValueUnsafe();
        } else {
          item.batch = std::move(chunk.data);
        }
        arrow::Status taken = on_item(std::move(item));
        if (!taken.ok()) {
          consumer_failed = true;
          reader->Cancel();
          return taken;
        }
        ++delivered;
      }
    }();
    if (last.ok() || consumer_failed) return last;
    if (!IsTransient(last)) break;
    SABOT_LOG(kInfo) << "fetch of " << path.ToString() << " from " << location << " attempt "
                     << attempt + 1 << " failed, retrying: " << last.ToString();
    Evict(location);
  }
  const bool transient = IsTransient(last);
  arrow::Status final_status =
      transient ? arrow::Status(last.code(),
                                "gave up after " + std::to_string(attempt) + " attempts: " +
                                    last.message(),
                                last.detail())
                : last;
  return WithShuffleContext(final_status, ContextOf(location, path, transient));
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ShuffleClient::FetchAll(
    const std::string& location, const PartitionPath& path) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  ARROW_RETURN_NOT_OK(FetchPartition(location, path, [&](std::shared_ptr<arrow::RecordBatch> b) {
    batches.push_back(std::move(b));
    return arrow::Status::OK();
  }));
  return batches;
}

namespace {

class ParallelFetchStream : public FetchStream {
 public:
  ParallelFetchStream(ShuffleClient* client, std::vector<FetchRequest> requests)
      : client_(client), requests_(std::move(requests)) {
    const int workers =
        std::min<int>(client_->options().parallelism, static_cast<int>(requests_.size()));
    running_ = workers;
    for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { Work(); });
  }

  ~ParallelFetchStream() override {
    stop_source_.RequestStop();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error_.ok()) error_ = arrow::Status::Cancelled("fetch stream closed");
    }
    changed_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  int64_t peak_bytes_held() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return max_queued_bytes_;
  }

  arrow::Result<Item> Next() override {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !items_.empty() || !error_.ok() || running_ == 0; });
    if (!error_.ok()) return error_;
    if (items_.empty()) return Item{};
    Item item = std::move(items_.front());
    items_.pop_front();
    queued_bytes_ -= arrow::util::TotalBufferSize(*item.batch);
    lock.unlock();
    changed_.notify_all();
    return item;
  }

 private:
  void Work() {
    while (true) {
      size_t index;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (next_request_ >= requests_.size() || !error_.ok()) break;
        index = next_request_++;
      }
      const FetchRequest& request = requests_[index];
      arrow::Status status = client_->FetchPartition(
          request.location, request.path,
          [&](std::shared_ptr<arrow::RecordBatch> batch) { return Offer(index, std::move(batch)); },
          stop_source_.token());
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (error_.ok()) error_ = status;
        break;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --running_;
    }
    changed_.notify_all();
  }

  // Queues `batch`, waiting while the bytes held would exceed the bound.
  arrow::Status Offer(size_t index, std::shared_ptr<arrow::RecordBatch> batch) {
    const int64_t bytes = arrow::util::TotalBufferSize(*batch);
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] {
      return !error_.ok() || queued_bytes_ == 0 ||
             queued_bytes_ + bytes <= client_->options().max_bytes_in_flight;
    });
    if (!error_.ok()) return error_;
    queued_bytes_ += bytes;
    max_queued_bytes_ = std::max(max_queued_bytes_, queued_bytes_);
    items_.push_back(Item{index, std::move(batch)});
    lock.unlock();
    changed_.notify_all();
    return arrow::Status::OK();
  }

  ShuffleClient* client_;
  const std::vector<FetchRequest> requests_;
  arrow::StopSource stop_source_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Item> items_ SABOT_GUARDED_BY(mutex_);
  int64_t queued_bytes_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t max_queued_bytes_ SABOT_GUARDED_BY(mutex_) = 0;
  size_t next_request_ SABOT_GUARDED_BY(mutex_) = 0;
  int running_ SABOT_GUARDED_BY(mutex_) = 0;
  arrow::Status error_ SABOT_GUARDED_BY(mutex_);
  std::vector<std::thread> workers_;
};

}  // namespace

arrow::Result<std::unique_ptr<FetchStream>> ShuffleClient::FetchMany(
    std::vector<FetchRequest> requests) {
  for (const auto& request : requests) {
    ARROW_RETURN_NOT_OK(flight::Location::Parse(request.location).status());
  }
  return std::make_unique<ParallelFetchStream>(this, std::move(requests));
}

arrow::Status ShuffleClient::Push(const std::string& location, const PartitionPath& path,
                                  const std::shared_ptr<arrow::Schema>& schema,
                                  const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                                  Compression compression) {
  auto run = [&]() -> arrow::Status {
    if (!path.writer_task) {
      return arrow::Status::Invalid("a push must name the writer task and attempt");
    }
    ARROW_ASSIGN_OR_RAISE(auto client, Connect(location));
    auto call = CallOptions();
    ARROW_ASSIGN_OR_RAISE(call.write_options, MakeIpcWriteOptions(compression));
    ARROW_ASSIGN_OR_RAISE(
        auto put, client->DoPut(call, flight::FlightDescriptor::Path(path.ToComponents()), schema));
    for (const auto& batch : batches) ARROW_RETURN_NOT_OK(put.writer->WriteRecordBatch(*batch));
    ARROW_RETURN_NOT_OK(put.writer->DoneWriting());
    std::shared_ptr<arrow::Buffer> ack;
    ARROW_RETURN_NOT_OK(put.reader->ReadMetadata(&ack));
    return put.writer->Close();
  };
  arrow::Status status = run();
  return WithShuffleContext(status, ContextOf(location, path, IsTransient(status)));
}

arrow::Result<std::string> ShuffleClient::Action(const std::string& location,
                                                 std::string_view type, const std::string& body) {
  ARROW_ASSIGN_OR_RAISE(auto client, Connect(location));
  flight::Action action{std::string(type), arrow::Buffer::FromString(body)};
  ARROW_ASSIGN_OR_RAISE(auto results, client->DoAction(CallOptions(), action));
  ARROW_ASSIGN_OR_RAISE(auto first, results->Next());
  std::string answer = first != nullptr && first->body != nullptr ? first->body->ToString() : "";
  ARROW_RETURN_NOT_OK(results->Drain());
  return answer;
}

arrow::Result<std::unique_ptr<flight::FlightInfo>> ShuffleClient::GetInfo(
    const std::string& location, const std::vector<std::string>& path) {
  ARROW_ASSIGN_OR_RAISE(auto client, Connect(location));
  return client->GetFlightInfo(CallOptions(), flight::FlightDescriptor::Path(path));
}

}  // namespace sabot
