#include "sabot/shuffle/shuffle_manager.h"

#include <algorithm>
#include <condition_variable>
#include <optional>
#include <sstream>

#include "sabot/common/error_detail.h"
#include "sabot/common/logging.h"
#include "sabot/memory/row_bytes.h"
#include "sabot/shuffle/served_partition_store.h"
#include "sabot/transport/channel.h"

namespace sabot {

struct ShuffleManager::Shuffle {
  std::shared_ptr<const ShuffleDescriptor> descriptor;
  std::string job_id;

  std::mutex mutex;
  ShuffleLifecycle state SABOT_GUARDED_BY(mutex) = ShuffleLifecycle::kCreated;
  std::map<TaskIndex, std::shared_ptr<ShuffleWriter>> writers SABOT_GUARDED_BY(mutex);
  // The admission of each open writer: bytes reserved, for batches of up to batch_bytes.
  struct Admission {
    int64_t bytes = 0;
    int64_t batch_bytes = 0;
  };
  std::map<TaskIndex, Admission> reservations SABOT_GUARDED_BY(mutex);
  // Writers waiting for admission in OpenWriter: set to end the wait (CancelWriter, Release).
  std::map<TaskIndex, std::shared_ptr<std::atomic<bool>>> admitting SABOT_GUARDED_BY(mutex);
  // Writers opened non-blocking: every one from OpenWriter to its end, also while it waits to
  // be admitted (then it is not in `writers`: nothing is made before admission).
  struct NonBlocking {
    int32_t attempt = 0;
    WakeCallback on_ready;
    int64_t ticket = -1;       // its place in the admission line; -1: none
    Clock::time_point since;   // when it took that place
    arrow::Status cancelled;   // CancelWriter before the writer was made
  };
  std::map<TaskIndex, NonBlocking> non_blocking SABOT_GUARDED_BY(mutex);
  std::map<TaskIndex, WriterLocation> locations SABOT_GUARDED_BY(mutex);
  // Lineage recovery: reads opened after EnableRecovery are recoverable; the newest attempt of
  // each writer task that ran again (RelocateWriter), and what wakes inputs waiting for one.
  bool recoverable SABOT_GUARDED_BY(mutex) = false;
  std::map<TaskIndex, WriterLocation> relocated SABOT_GUARDED_BY(mutex);
  std::condition_variable relocated_changed;
  // Figures of finished writers, folded in when they finish.
  ShuffleStats finished SABOT_GUARDED_BY(mutex);
  Clock::time_point last_touch SABOT_GUARDED_BY(mutex) = Clock::now();
  int64_t open_readers SABOT_GUARDED_BY(mutex) = 0;  // a shuffle being read is not an orphan

  ShuffleErrorContext where() const { return {.shuffle_id = descriptor->shuffle_id}; }
};

class ShuffleManager::Wakes {
 public:
  Wakes() = default;
  Wakes(const Wakes&) = delete;
  Wakes& operator=(const Wakes&) = delete;
  ~Wakes() {
    for (const auto& wake : wakes_) (*wake)();
  }
  void Add(WakeCallback wake) {
    if (wake != nullptr) wakes_.push_back(std::move(wake));
  }

 private:
  std::vector<WakeCallback> wakes_;
};

std::string_view ShuffleLifecycleName(ShuffleLifecycle state) {
  switch (state) {
    case ShuffleLifecycle::kCreated:
      return "created";
    case ShuffleLifecycle::kWriting:
      return "writing";
    case ShuffleLifecycle::kComplete:
      return "complete";
    case ShuffleLifecycle::kReleased:
      return "released";
  }
  return "unknown";
}

std::string ShuffleStats::ToString() const {
  std::ostringstream out;
  out << "shuffle '" << shuffle_id << "' " << ShuffleLifecycleName(state) << ": " << rows_written
      << " rows, " << blocks_written << " blocks, " << bytes_written << " bytes written by "
      << writers_finished << " finished writers; " << bytes_spilled << " bytes spilled in " << blocks_spilled << " blocks; blocked "
      << std::chrono::duration_cast<std::chrono::milliseconds>(time_blocked).count() << " ms";
  return out.str();
}

namespace {

// How many upstream streams a reader of a blocking shuffle reads at once.
constexpr size_t kBlockingReadInputs = 2;

// How often a recoverable input waiting for a new attempt of its writer looks at its reader's
// cancel flag.
constexpr std::chrono::milliseconds kRecoveryCheck{50};


// The bytes of `batch`'s rows (nested data included; a slice counts its rows, not the buffers
// it shares), which partitioning it allocates about once.
int64_t BatchRowBytes(const arrow::RecordBatch& batch) {
  return RowBytes::RangeBytes(batch, 0, batch.num_rows());
}

void Accumulate(const ShuffleWriterStats& from, ShuffleStats* into) {
  into->rows_written += from.rows;
  into->blocks_written += from.blocks;
  into->bytes_written += from.block_bytes;
  into->time_blocked += from.blocked;
  for (size_t p = 0; p < from.partition_rows.size(); ++p) {
    into->partition_rows[p] += from.partition_rows[p];
    into->partition_bytes[p] += from.partition_bytes[p];
  }
}

}  // namespace

arrow::Result<std::unique_ptr<ShuffleManager>> ShuffleManager::Make(ShuffleManagerOptions options,
                                                                    Transport* transport,
                                                                    ShuffleClient* client,
                                                                    std::string local_location) {
  ARROW_RETURN_NOT_OK(ValidateId(options.agent_id, "agent id"));
  if (options.orphan_timeout.count() < 0) {
    return arrow::Status::Invalid("orphan_timeout must be >= 0 ms, got ",
                                  options.orphan_timeout.count());
  }
  if (options.allocation_wait.count() < 0) {
    return arrow::Status::Invalid("allocation_wait must be >= 0 ms, got ",
                                  options.allocation_wait.count());
  }
  std::unique_ptr<ShuffleManager> manager(new ShuffleManager());
  manager->options_ = options;
  if (transport != nullptr) {
    ARROW_RETURN_NOT_OK(manager->AttachTransport(transport, client, std::move(local_location)));
  }
  ARROW_ASSIGN_OR_RAISE(manager->mapped_, MappedMemoryPool::Make());
  ARROW_ASSIGN_OR_RAISE(manager->pool_,
                        BudgetedMemoryPool::Make(options.memory_budget, manager->mapped_.get()));
  if (!(options.network_fraction > 0 && options.network_fraction < 1)) {
    return arrow::Status::Invalid("network_fraction must be between 0 and 1, got ",
                                  options.network_fraction);
  }
  ARROW_ASSIGN_OR_RAISE(
      manager->network_,
      NetworkBufferPool::Make(options.network,
                              static_cast<int64_t>(options.memory_budget * options.network_fraction),
                              &manager->metrics_));
  BlockStoreOptions store_options;
  store_options.spill = options.spill;
  ARROW_ASSIGN_OR_RAISE(manager->store_, BlockStore::Make(store_options, manager->pool_.get(),
                                                          &manager->metrics_));
  // An allocation that does not fit spills stored blocks first, then waits for frees: a
  // blocking writer never fails for memory that disk could take.
  BlockStore* store = manager->store_.get();
  manager->pool_->SetReclaimer([store](int64_t bytes) { return store->Reclaim(bytes); });
  manager->pool_->set_allocation_wait(options.allocation_wait);
  ShuffleManager* self = manager.get();
  manager->partition_store_ = std::make_shared<ServedPartitionStore>(self);
  if (options.orphan_timeout.count() > 0) {
    manager->sweeper_ = std::thread([self] { self->SweepLoop(); });
  }
  return manager;
}

arrow::Status ShuffleManager::AttachTransport(Transport* transport, ShuffleClient* client,
                                              std::string local_location) {
  if (transport == nullptr) return arrow::Status::Invalid("cannot attach a null transport");
  if (transport_.load() != nullptr) {
    return arrow::Status::Invalid("agent '", options_.agent_id, "' already has a transport");
  }
  client_ = client;
  local_location_ = std::move(local_location);
  transport_.store(transport);
  return arrow::Status::OK();
}

ShuffleManager::~ShuffleManager() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  ReleaseAll();
  pool_->SetReclaimer(nullptr);  // the store goes first
}

void ShuffleManager::SweepLoop() {
  auto period = std::max<std::chrono::milliseconds>(options_.orphan_timeout / 4,
                                                    std::chrono::milliseconds(10));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_.wait_for(lock, period, [&] { return stopping_; })) {
    lock.unlock();
    int64_t released = ReleaseOrphans();
    if (released > 0) SABOT_LOG(kInfo) << "released " << released << " orphaned shuffles";
    lock.lock();
  }
}

arrow::Result<ShuffleId> ShuffleManager::RegisterShuffle(const std::string& operator_id,
                                                         std::shared_ptr<const PartitionSpec> spec,
                                                         std::shared_ptr<arrow::Schema> schema,
                                                         int32_t num_writers,
                                                         ShuffleOptions options,
                                                         std::string job_id) {
  ARROW_RETURN_NOT_OK(ValidateId(operator_id, "operator id"));
  ShuffleDescriptor descriptor;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    descriptor.shuffle_id = operator_id + "-" + std::to_string(next_id_++);
  }
  descriptor.spec = std::move(spec);
  descriptor.schema = std::move(schema);
  descriptor.num_writers = num_writers;
  descriptor.options = options;
  ARROW_RETURN_NOT_OK(RegisterShuffle(descriptor, std::move(job_id)));
  return descriptor.shuffle_id;
}

arrow::Status ShuffleManager::RegisterShuffle(const ShuffleDescriptor& descriptor,
                                              std::string job_id) {
  ARROW_RETURN_NOT_OK(descriptor.Validate());
  if (!job_id.empty()) ARROW_RETURN_NOT_OK(ValidateId(job_id, "job id"));
  auto shuffle = std::make_shared<Shuffle>();
  shuffle->descriptor = std::make_shared<const ShuffleDescriptor>(descriptor);
  shuffle->job_id = std::move(job_id);
  {
    std::lock_guard<std::mutex> shuffle_lock(shuffle->mutex);
    shuffle->finished.shuffle_id = descriptor.shuffle_id;
    shuffle->finished.partition_rows.assign(descriptor.num_partitions(), 0);
    shuffle->finished.partition_bytes.assign(descriptor.num_partitions(), 0);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, inserted] = shuffles_.emplace(descriptor.shuffle_id, shuffle);
  if (inserted) return arrow::Status::OK();
  // The same descriptor again (a job manager retrying) is fine; anything else is a conflict.
  ARROW_ASSIGN_OR_RAISE(auto mine, it->second->descriptor->Serialize());
  ARROW_ASSIGN_OR_RAISE(auto theirs, descriptor.Serialize());
  if (mine->Equals(*theirs)) return arrow::Status::OK();
  return WithShuffleContext(
      arrow::Status::AlreadyExists("a different shuffle is already registered under this id"),
      {.shuffle_id = descriptor.shuffle_id, .agent = options_.agent_id});
}

arrow::Result<std::shared_ptr<ShuffleManager::Shuffle>> ShuffleManager::FindLocked(
    const ShuffleId& id) {
  auto it = shuffles_.find(id);
  if (it == shuffles_.end()) {
    return WithShuffleContext(arrow::Status::KeyError("unknown shuffle"),
                              {.shuffle_id = id, .agent = options_.agent_id});
  }
  return it->second;
}

arrow::Result<std::shared_ptr<ShuffleManager::Shuffle>> ShuffleManager::Find(const ShuffleId& id) {
  std::shared_ptr<Shuffle> shuffle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ARROW_ASSIGN_OR_RAISE(shuffle, FindLocked(id));
  }
  std::lock_guard<std::mutex> lock(shuffle->mutex);
  if (shuffle->state == ShuffleLifecycle::kReleased) {
    return WithShuffleContext(arrow::Status::Invalid("the shuffle has been released"),
                              {.shuffle_id = id, .agent = options_.agent_id});
  }
  shuffle->last_touch = Clock::now();
  return shuffle;
}

arrow::Result<std::shared_ptr<const ShuffleDescriptor>> ShuffleManager::GetShuffle(
    const ShuffleId& id) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  return shuffle->descriptor;
}

std::vector<ShuffleId> ShuffleManager::ListShuffles() const {
  std::vector<std::shared_ptr<Shuffle>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, shuffle] : shuffles_) all.push_back(shuffle);
  }
  std::vector<ShuffleId> out;
  for (const auto& shuffle : all) {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    if (shuffle->state != ShuffleLifecycle::kReleased) {
      out.push_back(shuffle->descriptor->shuffle_id);
    }
  }
  return out;
}

arrow::Status ShuffleManager::OpenWriter(const ShuffleId& id, TaskIndex writer_task,
                                         int32_t attempt) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  const ShuffleDescriptor& descriptor = *shuffle->descriptor;
  Transport* transport = transport_.load();
  if (transport == nullptr) {
    return arrow::Status::Invalid("agent '", options_.agent_id, "' has no transport attached");
  }
  const int64_t batch_bytes =
      int64_t{descriptor.num_partitions()} * descriptor.options.target_block_bytes;
  ARROW_ASSIGN_OR_RAISE(int64_t reserved,
                        WriterAdmissionBytes(descriptor, writer_task, batch_bytes));
  // Waits for admission (see the header), cancellable through `admitting`.
  auto admitting = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    if (shuffle->writers.count(writer_task) > 0 || shuffle->admitting.count(writer_task) > 0 ||
        shuffle->non_blocking.count(writer_task) > 0) {
      return WithShuffleContext(arrow::Status::AlreadyExists("the writer is already open"),
                                {.shuffle_id = id, .writer_task = writer_task});
    }
    shuffle->admitting.emplace(writer_task, admitting);
  }
  auto admitted = AdmitWriterMemory(descriptor, writer_task, reserved, admitting.get());
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    shuffle->admitting.erase(writer_task);
  }
  ARROW_ASSIGN_OR_RAISE(std::chrono::nanoseconds waited, std::move(admitted));
  auto made = MakeWriter(shuffle, writer_task, attempt, WriterMode{});
  if (!made.ok()) {
    UnreserveWriterMemory(reserved);
    return made.status();
  }
  std::shared_ptr<ShuffleWriter> writer = std::move(made).ValueUnsafe();
  writer->RecordAdmissionWait(waited);
  Wakes wakes;
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    if (shuffle->state != ShuffleLifecycle::kReleased) {
      if (!shuffle->writers.emplace(writer_task, writer).second) {
        UnreserveWriterMemory(reserved, &wakes);
        return WithShuffleContext(arrow::Status::AlreadyExists("the writer is already open"),
                                  {.shuffle_id = id, .writer_task = writer_task});
      }
      shuffle->reservations[writer_task] = Shuffle::Admission{reserved, batch_bytes};
      shuffle->locations[writer_task] = WriterLocation{writer_task, attempt, local_location_};
      if (shuffle->state == ShuffleLifecycle::kCreated) {
        shuffle->state = ShuffleLifecycle::kWriting;
      }
      return arrow::Status::OK();
    }
    UnreserveWriterMemory(reserved, &wakes);
  }
  // Released while this writer was being made: its streams end (outside the lock: ending a
  // stream wakes its reader) and the streams it declared meanwhile are dropped.
  writer->Abort(arrow::Status::Cancelled("the shuffle was released"));
  (void)store_->Release(id);
  return WithShuffleContext(arrow::Status::Invalid("the shuffle has been released"),
                            shuffle->where());
}

arrow::Result<std::shared_ptr<ShuffleWriter>> ShuffleManager::MakeWriter(
    const std::shared_ptr<Shuffle>& shuffle, TaskIndex writer_task, int32_t attempt,
    WriterMode mode) {
  const ShuffleDescriptor& descriptor = *shuffle->descriptor;
  BlockOutputFactory outputs;
  if (descriptor.options.mode == ShuffleMode::kBlocking) {
    outputs = StoreOutputFactory(store_.get());
  } else {
    ChannelOptions channel;
    channel.timeout = descriptor.options.timeout;
    outputs = ChannelOutputFactory(transport_.load(), network_.get(), channel);
  }
  // Blocks cross a process boundary only in distributed mode; locally they stay batches.
  ARROW_ASSIGN_OR_RAISE(std::unique_ptr<ShuffleWriter> writer,
                        ShuffleWriter::Make(shuffle->descriptor, writer_task, attempt, outputs,
                                            /*encode_blocks=*/distributed(), pool_.get(),
                                            &metrics_, std::move(mode)));
  return std::shared_ptr<ShuffleWriter>(std::move(writer));
}

int64_t ShuffleManager::WriterWorkingSetBytes(const ShuffleDescriptor& descriptor,
                                              int64_t batch_bytes, bool non_blocking) {
  // ShuffleOptions::Validate bounds the block size and partitions, so this cannot overflow.
  const int64_t block = descriptor.options.target_block_bytes;
  const int64_t partitions = descriptor.num_partitions();
  const int64_t bytes = (partitions + 2) * block + 2 * batch_bytes;
  // The outboxes: what the partition buffers held plus the rows of one batch, sealed. Only a
  // pipelined writer's outboxes ever hold anything: a block store takes every block at once.
  const bool outboxes = non_blocking && descriptor.options.mode == ShuffleMode::kPipelined;
  return outboxes ? bytes + partitions * block + batch_bytes : bytes;
}

arrow::Result<int64_t> ShuffleManager::WriterAdmissionBytes(const ShuffleDescriptor& descriptor,
                                                            TaskIndex writer_task,
                                                            int64_t batch_bytes,
                                                            bool non_blocking) {
  const ShuffleOptions& options = descriptor.options;
  if (options.mode == ShuffleMode::kPipelined) {
    const NetworkBufferPoolOptions& network = network_->options();
    const int64_t channel_bytes =
        int64_t{network.exclusive_segments_per_channel + network.floating_segments_per_shuffle} *
        network.segment_size;
    if (options.target_block_bytes > channel_bytes) {
      return WithShuffleContext(
          arrow::Status::Invalid("blocks of ", options.target_block_bytes,
                                 " bytes exceed the ", channel_bytes,
                                 " bytes a pipelined channel can hold in network segments (",
                                 network.exclusive_segments_per_channel, " exclusive + ",
                                 network.floating_segments_per_shuffle, " floating x ",
                                 network.segment_size, " bytes): lower the block size"),
          {.shuffle_id = descriptor.shuffle_id, .writer_task = writer_task});
    }
  }
  const int64_t bytes = WriterWorkingSetBytes(descriptor, batch_bytes, non_blocking);
  const int64_t limit = static_cast<int64_t>(pool_->budget() * kReservableFraction);
  if (bytes > limit) {
    return WithShuffleContext(
        arrow::Status::OutOfMemory(
            "the writer needs ", bytes, " bytes of the agent's memory budget for what it holds "
            "and cannot spill (", descriptor.num_partitions(), " partitions x ",
            options.target_block_bytes, " bytes per block buffered, 2 blocks being sealed, 2 x ",
            batch_bytes, " bytes of batches being partitioned",
            non_blocking ? std::string(", and in its outboxes (non-blocking) the blocks of ") +
                               std::to_string(descriptor.num_partitions()) +
                               " buffers and of one batch"
                         : std::string(),
            "), more than the ", limit,
            " bytes open writers may use (", static_cast<int>(kReservableFraction * 100),
            "% of the ", pool_->budget(),
            "-byte budget): raise the memory budget, or lower the block size, the batch size or "
            "the number of partitions"),
        {.shuffle_id = descriptor.shuffle_id, .writer_task = writer_task,
         .agent = options_.agent_id});
  }
  return bytes;
}

arrow::Result<std::chrono::nanoseconds> ShuffleManager::AdmitWriterMemory(
    const ShuffleDescriptor& descriptor, TaskIndex writer_task, int64_t bytes,
    const std::atomic<bool>* cancelled) {
  const std::atomic<bool>* thread_cancelled = AllocationWaitCancel::Current();
  auto is_cancelled = [&] {
    return (cancelled != nullptr && cancelled->load(std::memory_order_acquire)) ||
           (thread_cancelled != nullptr && thread_cancelled->load(std::memory_order_acquire));
  };
  const int64_t limit = static_cast<int64_t>(pool_->budget() * kReservableFraction);
  const auto start = Clock::now();
  const auto deadline = start + descriptor.options.timeout;
  ShuffleErrorContext where{.shuffle_id = descriptor.shuffle_id, .writer_task = writer_task,
                            .agent = options_.agent_id};
  arrow::Status status;
  WakeCallback wake;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t ticket = next_admission_ticket_++;
    admission_queue_.push_back(AdmissionWaiter{ticket, bytes, nullptr});
    while (true) {
      // First come, first served: a large working set is not starved by smaller ones.
      if (admission_queue_.front().ticket == ticket && reserved_bytes_ + bytes <= limit) {
        reserved_bytes_ += bytes;
        break;
      }
      if (is_cancelled()) {
        status = arrow::Status::Cancelled(
            "waiting for admission of the writer's ", bytes, " bytes of working set (",
            reserved_bytes_, " of ", limit,
            " bytes held by other open writers) ended: the writer was cancelled, or its shuffle "
            "released");
        break;
      }
      const auto now = Clock::now();
      if (now >= deadline) {
        status = arrow::Status::OutOfMemory(
            "the writer waited ",
            std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count(),
            " ms (the shuffle's timeout) for admission of its ", bytes,
            " bytes of working set, but other open writers kept ", reserved_bytes_, " of the ",
            limit, " bytes open writers may use (", static_cast<int>(kReservableFraction * 100),
            "% of the ", pool_->budget(), "-byte memory budget)");
        break;
      }
      // Bounded, so a cancellation flag set without a notification is seen within 10 ms.
      admission_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(10)));
    }
    admission_queue_.remove_if([&](const AdmissionWaiter& waiter) {
      return waiter.ticket == ticket;
    });
    wake = AdmissionWakeLocked();
  }
  // The next in line may fit now (this one was admitted, or gave up its place).
  admission_.notify_all();
  if (wake != nullptr) (*wake)();
  if (!status.ok()) return WithShuffleContext(status, where);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
}

arrow::Status ShuffleManager::AdmitBatch(const ShuffleId& id, TaskIndex writer_task,
                                         ShuffleWriter* writer, int64_t batch_bytes) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  const ShuffleDescriptor& descriptor = *shuffle->descriptor;
  auto not_open = [&] {
    return WithShuffleContext(
        arrow::Status::Invalid("writer task ", writer_task,
                               " is no longer open (aborted, or its shuffle released)"),
        {.shuffle_id = id, .writer_task = writer_task});
  };
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    auto it = shuffle->reservations.find(writer_task);
    if (it == shuffle->reservations.end()) return not_open();
    if (batch_bytes <= it->second.batch_bytes) return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(int64_t bytes, WriterAdmissionBytes(descriptor, writer_task, batch_bytes));
  // Wait holding nothing that cannot be spilled or sent: seal what the buffers hold (blocking:
  // into the store, which spills; pipelined: to the channels, which readers drain), then give
  // the reservation back. So waiting writers never keep each other waiting.
  ARROW_RETURN_NOT_OK(writer->Flush());
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    auto it = shuffle->reservations.find(writer_task);
    if (it == shuffle->reservations.end()) return not_open();
    UnreserveWriterMemory(it->second.bytes);
    it->second = Shuffle::Admission{};
  }
  ARROW_ASSIGN_OR_RAISE(std::chrono::nanoseconds waited,
                        AdmitWriterMemory(descriptor, writer_task, bytes, writer->cancelled_flag()));
  writer->RecordAdmissionWait(waited);
  std::lock_guard<std::mutex> lock(shuffle->mutex);
  auto it = shuffle->reservations.find(writer_task);
  if (it == shuffle->reservations.end()) {
    UnreserveWriterMemory(bytes);
    return not_open();
  }
  it->second = Shuffle::Admission{bytes, batch_bytes};
  return arrow::Status::OK();
}

void ShuffleManager::UnreserveWriterMemory(int64_t bytes, Wakes* wakes) {
  WakeCallback wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reserved_bytes_ -= bytes;
    wake = AdmissionWakeLocked();
  }
  admission_.notify_all();
  if (wakes != nullptr) {
    wakes->Add(std::move(wake));
  } else if (wake != nullptr) {
    (*wake)();
  }
}

ShuffleManager::WakeCallback ShuffleManager::AdmissionWakeLocked() {
  if (admission_queue_.empty()) return nullptr;
  const AdmissionWaiter& first = admission_queue_.front();
  const int64_t limit = static_cast<int64_t>(pool_->budget() * kReservableFraction);
  if (first.on_ready == nullptr || reserved_bytes_ + first.bytes > limit) return nullptr;
  return first.on_ready;
}

arrow::Result<bool> ShuffleManager::TryAdmitWriterMemory(const ShuffleDescriptor& descriptor,
                                                         TaskIndex writer_task, int64_t bytes,
                                                         const WakeCallback& on_ready,
                                                         int64_t* ticket,
                                                         Clock::time_point* since,
                                                         Wakes* wakes) {
  const int64_t limit = static_cast<int64_t>(pool_->budget() * kReservableFraction);
  const auto now = Clock::now();
  arrow::Status status;
  bool admitted = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto place = admission_queue_.end();
    if (*ticket >= 0) {
      place = std::find_if(admission_queue_.begin(), admission_queue_.end(),
                           [&](const AdmissionWaiter& waiter) { return waiter.ticket == *ticket; });
      if (place == admission_queue_.end()) *ticket = -1;  // dropped: take a new place
    }
    if (*ticket < 0) {
      // First come, first served: nobody waiting and room now, or a place at the end of line.
      if (admission_queue_.empty() && reserved_bytes_ + bytes <= limit) {
        reserved_bytes_ += bytes;
        return true;
      }
      *ticket = next_admission_ticket_++;
      *since = now;
      admission_queue_.push_back(AdmissionWaiter{*ticket, bytes, on_ready});
      return false;
    }
    place->bytes = bytes;
    if (place == admission_queue_.begin() && reserved_bytes_ + bytes <= limit) {
      reserved_bytes_ += bytes;
      admitted = true;
    } else if (now - *since >= descriptor.options.timeout) {
      status = arrow::Status::OutOfMemory(
          "the writer waited ",
          std::chrono::duration_cast<std::chrono::milliseconds>(now - *since).count(),
          " ms (the shuffle's timeout) for admission of its ", bytes,
          " bytes of working set, but other open writers kept ", reserved_bytes_, " of the ",
          limit, " bytes open writers may use (", static_cast<int>(kReservableFraction * 100),
          "% of the ", pool_->budget(), "-byte memory budget)");
    } else {
      return false;
    }
    // Admitted or given up: the place goes, and the next in line may fit now.
    admission_queue_.erase(place);
    *ticket = -1;
    wakes->Add(AdmissionWakeLocked());
  }
  admission_.notify_all();
  if (!status.ok()) {
    return WithShuffleContext(status, {.shuffle_id = descriptor.shuffle_id,
                                       .writer_task = writer_task, .agent = options_.agent_id});
  }
  return admitted;
}

void ShuffleManager::LeaveAdmissionLine(int64_t* ticket, Wakes* wakes) {
  if (*ticket < 0) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    admission_queue_.remove_if(
        [&](const AdmissionWaiter& waiter) { return waiter.ticket == *ticket; });
    *ticket = -1;
    wakes->Add(AdmissionWakeLocked());
  }
  admission_.notify_all();
}

void ShuffleManager::DropWriterLocked(Shuffle* shuffle, TaskIndex writer_task, Wakes* wakes) {
  auto it = shuffle->reservations.find(writer_task);
  if (it != shuffle->reservations.end()) {
    UnreserveWriterMemory(it->second.bytes, wakes);
    shuffle->reservations.erase(it);
  }
  auto non_blocking = shuffle->non_blocking.find(writer_task);
  if (non_blocking != shuffle->non_blocking.end()) {
    LeaveAdmissionLine(&non_blocking->second.ticket, wakes);
    shuffle->non_blocking.erase(non_blocking);
  }
  shuffle->writers.erase(writer_task);
}

arrow::Result<std::shared_ptr<ShuffleWriter>> ShuffleManager::Writer(const ShuffleId& id, TaskIndex writer_task,
                                                     bool open) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  for (int round = 0; round < 2; ++round) {
    {
      std::lock_guard<std::mutex> lock(shuffle->mutex);
      auto it = shuffle->writers.find(writer_task);
      if (it != shuffle->writers.end()) {
        if (open && it->second->non_blocking()) break;
        return it->second;
      }
      if (shuffle->non_blocking.count(writer_task) > 0) break;
    }
    if (!open || round == 1) break;
    arrow::Status opened = OpenWriter(id, writer_task);
    if (!opened.ok() && !opened.IsAlreadyExists()) return opened;
  }
  if (open) {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    if (shuffle->non_blocking.count(writer_task) > 0) {
      return WithShuffleContext(
          arrow::Status::Invalid("writer task ", writer_task,
                                 " was opened non-blocking: write with TryWrite/TryWritePartition"),
          {.shuffle_id = id, .writer_task = writer_task});
    }
  }
  return WithShuffleContext(
      arrow::Status::Invalid("writer task ", writer_task, " is not open (finished, or never opened)"),
      {.shuffle_id = id, .writer_task = writer_task});
}

arrow::Status ShuffleManager::Write(const ShuffleId& id, TaskIndex writer_task,
                                    const std::shared_ptr<arrow::RecordBatch>& batch) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ShuffleWriter> writer, Writer(id, writer_task, /*open=*/true));
  if (batch != nullptr) {
    ARROW_RETURN_NOT_OK(AdmitBatch(id, writer_task, writer.get(), BatchRowBytes(*batch)));
  }
  return writer->Write(batch);
}

arrow::Status ShuffleManager::WritePartition(const ShuffleId& id, TaskIndex writer_task,
                                             PartitionId partition_id,
                                             const std::shared_ptr<arrow::RecordBatch>& batch) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ShuffleWriter> writer, Writer(id, writer_task, /*open=*/true));
  if (batch != nullptr) {
    ARROW_RETURN_NOT_OK(AdmitBatch(id, writer_task, writer.get(), BatchRowBytes(*batch)));
  }
  return writer->WritePartition(partition_id, batch);
}

arrow::Status ShuffleManager::FlushPartition(const ShuffleId& id, TaskIndex writer_task,
                                             PartitionId partition_id) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ShuffleWriter> writer, Writer(id, writer_task, /*open=*/false));
  return writer->FlushPartition(partition_id);
}

arrow::Status ShuffleManager::WriteEvent(const ShuffleId& id, TaskIndex writer_task,
                                         std::shared_ptr<arrow::Buffer> payload) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ShuffleWriter> writer, Writer(id, writer_task, /*open=*/true));
  return writer->WriteEvent(std::move(payload));
}

arrow::Result<bool> ShuffleManager::TryWriteEvent(const ShuffleId& id, TaskIndex writer_task,
                                                  std::shared_ptr<arrow::Buffer> payload) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ShuffleWriter> writer, AdmittedWriter(id, writer_task));
  if (writer == nullptr) return false;  // waits for admission; on_ready comes
  if (writer->has_pending()) {
    ARROW_RETURN_NOT_OK(writer->Drain());
    if (writer->has_pending()) return false;
  }
  ARROW_RETURN_NOT_OK(writer->WriteEvent(std::move(payload)));
  return true;
}

arrow::Status ShuffleManager::Finish(const ShuffleId& id, TaskIndex writer_task) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  std::shared_ptr<ShuffleWriter> writer;
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    auto it = shuffle->writers.find(writer_task);
    if (it == shuffle->writers.end()) {
      return WithShuffleContext(
          arrow::Status::Invalid("writer task ", writer_task,
                                 " cannot finish: it already finished or never opened"),
          {.shuffle_id = id, .writer_task = writer_task});
    }
    writer = it->second;
  }
  // Finishing may wait for credit: never under the lock.
  ARROW_RETURN_NOT_OK(writer->Finish());
  Wakes wakes;
  std::lock_guard<std::mutex> lock(shuffle->mutex);
  RecordFinishedLocked(shuffle.get(), writer_task, *writer, &wakes);
  return arrow::Status::OK();
}

void ShuffleManager::RecordFinishedLocked(Shuffle* shuffle, TaskIndex writer_task,
                                          const ShuffleWriter& writer, Wakes* wakes) {
  DropWriterLocked(shuffle, writer_task, wakes);
  Accumulate(writer.stats(), &shuffle->finished);
  shuffle->finished.writers_finished += 1;
  if (shuffle->finished.writers_finished == shuffle->descriptor->num_writers &&
      shuffle->state != ShuffleLifecycle::kReleased) {
    shuffle->state = ShuffleLifecycle::kComplete;
  }
}

arrow::Status ShuffleManager::OpenWriter(const ShuffleId& id, TaskIndex writer_task,
                                         int32_t attempt, WriterMode mode) {
  if (!mode.non_blocking) return OpenWriter(id, writer_task, attempt);
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  const ShuffleDescriptor& descriptor = *shuffle->descriptor;
  if (transport_.load() == nullptr) {
    return arrow::Status::Invalid("agent '", options_.agent_id, "' has no transport attached");
  }
  if (attempt < 0) {
    return WithShuffleContext(arrow::Status::Invalid("writer attempt must be >= 0, got ", attempt),
                              {.shuffle_id = id, .writer_task = writer_task});
  }
  ARROW_RETURN_NOT_OK(
      WithShuffleContext(descriptor.CheckWriterTask(writer_task), shuffle->where()));
  // A working set that can never fit is refused now, not after waiting in line.
  const int64_t batch_bytes =
      int64_t{descriptor.num_partitions()} * descriptor.options.target_block_bytes;
  ARROW_RETURN_NOT_OK(
      WriterAdmissionBytes(descriptor, writer_task, batch_bytes, /*non_blocking=*/true).status());
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    if (shuffle->writers.count(writer_task) > 0 || shuffle->admitting.count(writer_task) > 0 ||
        shuffle->non_blocking.count(writer_task) > 0) {
      return WithShuffleContext(arrow::Status::AlreadyExists("the writer is already open"),
                                {.shuffle_id = id, .writer_task = writer_task});
    }
    Shuffle::NonBlocking& entry = shuffle->non_blocking[writer_task];
    entry.attempt = attempt;
    if (mode.on_ready) {
      entry.on_ready = std::make_shared<const std::function<void()>>(std::move(mode.on_ready));
    }
  }
  // Admitted now when there is room and nobody waits; otherwise in line from now on.
  return AdmittedWriter(id, writer_task).status();
}

arrow::Result<std::shared_ptr<ShuffleWriter>> ShuffleManager::AdmittedWriter(
    const ShuffleId& id, TaskIndex writer_task) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  const ShuffleDescriptor& descriptor = *shuffle->descriptor;
  ShuffleErrorContext where{.shuffle_id = id, .writer_task = writer_task};
  const int64_t batch_bytes =
      int64_t{descriptor.num_partitions()} * descriptor.options.target_block_bytes;
  ARROW_ASSIGN_OR_RAISE(int64_t bytes, WriterAdmissionBytes(descriptor, writer_task, batch_bytes,
                                                            /*non_blocking=*/true));
  int32_t attempt = 0;
  WakeCallback on_ready;
  {
    Wakes wakes;
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    auto made = shuffle->writers.find(writer_task);
    if (made != shuffle->writers.end()) return made->second;
    auto entry = shuffle->non_blocking.find(writer_task);
    if (entry == shuffle->non_blocking.end()) {
      return WithShuffleContext(
          arrow::Status::Invalid("writer task ", writer_task,
                                 " is not open (finished, aborted, or never opened)"),
          where);
    }
    if (!entry->second.cancelled.ok()) return entry->second.cancelled;
    ARROW_ASSIGN_OR_RAISE(bool admitted,
                          TryAdmitWriterMemory(descriptor, writer_task, bytes,
                                               entry->second.on_ready, &entry->second.ticket,
                                               &entry->second.since, &wakes));
    if (!admitted) return nullptr;
    attempt = entry->second.attempt;
    on_ready = entry->second.on_ready;
  }
  // Admitted: the writer and its streams are made now, outside the lock (as in OpenWriter).
  WriterMode mode{.non_blocking = true};
  if (on_ready != nullptr) mode.on_ready = [on_ready] { (*on_ready)(); };
  auto made = MakeWriter(shuffle, writer_task, attempt, std::move(mode));
  Wakes wakes;
  std::shared_ptr<ShuffleWriter> writer;
  arrow::Status cancelled;
  bool released = false;
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    auto entry = shuffle->non_blocking.find(writer_task);
    released = shuffle->state == ShuffleLifecycle::kReleased;
    if (!made.ok() || released || entry == shuffle->non_blocking.end()) {
      UnreserveWriterMemory(bytes, &wakes);
    } else {
      writer = *made;
      cancelled = entry->second.cancelled;
      shuffle->writers.emplace(writer_task, writer);
      shuffle->reservations[writer_task] = Shuffle::Admission{bytes, batch_bytes};
      shuffle->locations[writer_task] = WriterLocation{writer_task, attempt, local_location_};
      if (shuffle->state == ShuffleLifecycle::kCreated) {
        shuffle->state = ShuffleLifecycle::kWriting;
      }
    }
  }
  if (!made.ok()) return made.status();
  if (writer == nullptr) {
    // Outside the lock: ending the streams wakes their readers.
    (*made)->Abort(arrow::Status::Cancelled("the writer was aborted or its shuffle released"));
    if (released) {
      // Released while this writer was being made: drop the streams it declared meanwhile.
      (void)store_->Release(id);
      return WithShuffleContext(arrow::Status::Invalid("the shuffle has been released"), where);
    }
    return WithShuffleContext(
        arrow::Status::Invalid("writer task ", writer_task, " was aborted while it was admitted"),
        where);
  }
  // Cancelled while being made: its calls fail from now on, as for any cancelled writer.
  if (!cancelled.ok()) writer->Cancel(cancelled);
  return writer;
}

arrow::Result<bool> ShuffleManager::TryAdmitBatch(const std::shared_ptr<Shuffle>& shuffle,
                                                  TaskIndex writer_task, ShuffleWriter* writer,
                                                  int64_t batch_bytes) {
  const ShuffleDescriptor& descriptor = *shuffle->descriptor;
  auto not_open = [&] {
    return WithShuffleContext(
        arrow::Status::Invalid("writer task ", writer_task,
                               " is no longer open (aborted, or its shuffle released)"),
        {.shuffle_id = descriptor.shuffle_id, .writer_task = writer_task});
  };
  bool holds_reservation = false;
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    auto it = shuffle->reservations.find(writer_task);
    if (it == shuffle->reservations.end()) return not_open();
    if (batch_bytes <= it->second.batch_bytes) return true;
    holds_reservation = it->second.bytes > 0;
  }
  ARROW_ASSIGN_OR_RAISE(int64_t bytes, WriterAdmissionBytes(descriptor, writer_task, batch_bytes,
                                                            /*non_blocking=*/true));
  Wakes wakes;
  if (holds_reservation) {
    // As AdmitBatch: the writer waits for the larger admission holding nothing it cannot spill
    // or send. Its buffers are sealed; until what they sealed has drained, it keeps its
    // reservation (those blocks are what it covers) and the batch is not taken.
    ARROW_RETURN_NOT_OK(writer->Flush());
    if (writer->has_pending()) return false;
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    auto it = shuffle->reservations.find(writer_task);
    if (it == shuffle->reservations.end()) return not_open();
    UnreserveWriterMemory(it->second.bytes, &wakes);
    it->second = Shuffle::Admission{};
  }
  std::lock_guard<std::mutex> lock(shuffle->mutex);
  auto it = shuffle->reservations.find(writer_task);
  auto entry = shuffle->non_blocking.find(writer_task);
  if (it == shuffle->reservations.end() || entry == shuffle->non_blocking.end()) {
    return not_open();
  }
  ARROW_ASSIGN_OR_RAISE(bool admitted,
                        TryAdmitWriterMemory(descriptor, writer_task, bytes,
                                             entry->second.on_ready, &entry->second.ticket,
                                             &entry->second.since, &wakes));
  if (!admitted) return false;
  it->second = Shuffle::Admission{bytes, batch_bytes};
  return true;
}

arrow::Result<bool> ShuffleManager::TryWriteBatch(
    const ShuffleId& id, TaskIndex writer_task, PartitionId partition_id,
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ShuffleWriter> writer, AdmittedWriter(id, writer_task));
  if (writer == nullptr) return false;  // waiting in line for admission
  if (!writer->non_blocking()) {
    return WithShuffleContext(
        arrow::Status::Invalid("writer task ", writer_task,
                               " was opened blocking: write with Write/WritePartition"),
        {.shuffle_id = id, .writer_task = writer_task});
  }
  if (writer->has_pending()) {
    ARROW_RETURN_NOT_OK(writer->Drain());
    if (writer->has_pending()) return false;
  }
  if (batch != nullptr) {
    ARROW_ASSIGN_OR_RAISE(bool admitted,
                          TryAdmitBatch(shuffle, writer_task, writer.get(), BatchRowBytes(*batch)));
    if (!admitted) return false;
  }
  if (partition_id < 0) {
    ARROW_RETURN_NOT_OK(writer->Write(batch));
  } else {
    ARROW_RETURN_NOT_OK(writer->WritePartition(partition_id, batch));
  }
  return true;
}

arrow::Result<bool> ShuffleManager::TryWrite(const ShuffleId& id, TaskIndex writer_task,
                                             const std::shared_ptr<arrow::RecordBatch>& batch) {
  return TryWriteBatch(id, writer_task, /*partition_id=*/-1, batch);
}

arrow::Result<bool> ShuffleManager::TryWritePartition(
    const ShuffleId& id, TaskIndex writer_task, PartitionId partition_id,
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  ARROW_ASSIGN_OR_RAISE(auto descriptor, GetShuffle(id));
  ARROW_RETURN_NOT_OK(WithShuffleContext(
      descriptor->CheckPartition(partition_id),
      {.shuffle_id = id, .partition_id = partition_id, .writer_task = writer_task}));
  return TryWriteBatch(id, writer_task, partition_id, batch);
}

arrow::Result<std::shared_ptr<ShuffleWriter>> ShuffleManager::MadeWriter(const ShuffleId& id,
                                                                          TaskIndex writer_task) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  std::lock_guard<std::mutex> lock(shuffle->mutex);
  auto it = shuffle->writers.find(writer_task);
  if (it != shuffle->writers.end()) return it->second;
  if (shuffle->non_blocking.count(writer_task) == 0) {
    return WithShuffleContext(arrow::Status::Invalid("writer task ", writer_task, " is not open"),
                              {.shuffle_id = id, .writer_task = writer_task});
  }
  return nullptr;  // in the admission line: nothing made yet
}

arrow::Result<bool> ShuffleManager::HasPending(const ShuffleId& id, TaskIndex writer_task) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ShuffleWriter> writer, MadeWriter(id, writer_task));
  return writer != nullptr && writer->has_pending();
}

arrow::Status ShuffleManager::Drain(const ShuffleId& id, TaskIndex writer_task) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ShuffleWriter> writer, MadeWriter(id, writer_task));
  return writer != nullptr ? writer->Drain() : arrow::Status::OK();
}

arrow::Result<bool> ShuffleManager::TryFinish(const ShuffleId& id, TaskIndex writer_task) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ShuffleWriter> writer, AdmittedWriter(id, writer_task));
  if (writer == nullptr) return false;  // its streams open once it is admitted
  if (!writer->non_blocking()) {
    return WithShuffleContext(
        arrow::Status::Invalid("writer task ", writer_task,
                               " was opened blocking: finish it with Finish"),
        {.shuffle_id = id, .writer_task = writer_task});
  }
  ARROW_ASSIGN_OR_RAISE(bool finished, writer->TryFinish());
  if (!finished) return false;
  Wakes wakes;
  std::lock_guard<std::mutex> lock(shuffle->mutex);
  RecordFinishedLocked(shuffle.get(), writer_task, *writer, &wakes);
  return true;
}

void ShuffleManager::CancelWriter(const ShuffleId& id, TaskIndex writer_task,
                                 const arrow::Status& cause) {
  auto shuffle = Find(id);
  if (!shuffle.ok()) return;
  std::shared_ptr<ShuffleWriter> writer;
  Wakes wakes;
  {
    std::lock_guard<std::mutex> lock((*shuffle)->mutex);
    // A writer still waiting for admission in OpenWriter ends that wait.
    auto admitting = (*shuffle)->admitting.find(writer_task);
    if (admitting != (*shuffle)->admitting.end()) {
      admitting->second->store(true, std::memory_order_release);
    }
    // A non-blocking writer gives up its place in line, and its task is woken to see why.
    auto entry = (*shuffle)->non_blocking.find(writer_task);
    if (entry != (*shuffle)->non_blocking.end()) {
      LeaveAdmissionLine(&entry->second.ticket, &wakes);
      if (entry->second.cancelled.ok()) {
        entry->second.cancelled = WithShuffleContext(
            arrow::Status::Cancelled("writer task ", writer_task, " was cancelled: ",
                                     cause.ok() ? std::string("no cause given") : cause.message()),
            {.shuffle_id = id, .writer_task = writer_task});
      }
      wakes.Add(entry->second.on_ready);
    }
    auto it = (*shuffle)->writers.find(writer_task);
    if (it == (*shuffle)->writers.end()) return;
    writer = it->second;  // kept alive while cancelling, whatever its task thread does
  }
  writer->Cancel(cause);
}

arrow::Status ShuffleManager::AbortWriter(const ShuffleId& id, TaskIndex writer_task,
                                          const arrow::Status& cause) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  std::shared_ptr<ShuffleWriter> writer;
  Wakes wakes;
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    auto it = shuffle->writers.find(writer_task);
    if (it == shuffle->writers.end()) {
      // A non-blocking writer not admitted yet opened no stream: it only leaves the line.
      if (shuffle->non_blocking.count(writer_task) > 0) {
        DropWriterLocked(shuffle.get(), writer_task, &wakes);
        return arrow::Status::OK();
      }
      return WithShuffleContext(arrow::Status::Invalid("writer task ", writer_task, " is not open"),
                                {.shuffle_id = id, .writer_task = writer_task});
    }
    writer = it->second;
    DropWriterLocked(shuffle.get(), writer_task, &wakes);
  }
  writer->Abort(cause);
  return arrow::Status::OK();
}

arrow::Result<std::unique_ptr<ShuffleReader>> ShuffleManager::ReadPartition(
    const ShuffleId& id, PartitionId partition_id, std::vector<WriterLocation> upstream) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  const ShuffleDescriptor& descriptor = *shuffle->descriptor;
  ShuffleErrorContext where{.shuffle_id = id, .partition_id = partition_id,
                            .agent = options_.agent_id};
  ARROW_RETURN_NOT_OK(WithShuffleContext(descriptor.CheckPartition(partition_id), where));
  if (upstream.empty()) {
    for (TaskIndex w = 0; w < descriptor.num_writers; ++w) upstream.push_back({w, 0, ""});
  }
  bool recoverable = false;
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    recoverable = shuffle->recoverable;
    // A writer task that ran again is read from its newest attempt.
    for (auto& location : upstream) {
      auto it = shuffle->relocated.find(location.writer_task);
      if (it != shuffle->relocated.end() && it->second.attempt > location.attempt) {
        location = it->second;
      }
    }
  }
  for (const auto& location : upstream) {
    ARROW_RETURN_NOT_OK(
        WithShuffleContext(descriptor.CheckWriterTask(location.writer_task), where));
    // Recorded before any channel opens: a pipelined reader may start before its writer does,
    // and the transport finds the writer's agent through LocateWriter.
    ARROW_RETURN_NOT_OK(SetWriterLocation(id, location));
  }
  Transport* transport = transport_.load();
  if (transport == nullptr) {
    return arrow::Status::Invalid("agent '", options_.agent_id, "' has no transport attached");
  }
  std::vector<std::unique_ptr<BlockInput>> inputs;
  if (descriptor.options.mode == ShuffleMode::kPipelined) {
    ChannelOptions channel;
    channel.exclusive_credits = descriptor.options.exclusive_credits;
    channel.timeout = descriptor.options.timeout;
    if (descriptor.options.floating_credits > 0) {
      channel.floating_credits =
          std::make_shared<FloatingCreditPool>(descriptor.options.floating_credits);
    }
    for (const auto& location : upstream) {
      StreamKey key{id, partition_id, location.writer_task, location.attempt};
      auto input = MakeChannelInput(transport, key, channel);
      if (!input.ok()) return WithShuffleContext(input.status(), where);
      inputs.push_back(std::move(input).ValueUnsafe());
    }
  } else {
    for (const auto& location : upstream) {
      StreamKey key{id, partition_id, location.writer_task, location.attempt};
      const bool local = location.agent.empty() || location.agent == local_location_;
      if (local) {
        inputs.push_back(MakeStoreInput(store_.get(), key, descriptor.options.timeout, pool_.get()));
      } else if (client_ == nullptr) {
        return WithShuffleContext(
            arrow::Status::Invalid("writer task ", location.writer_task, " ran on agent '",
                                   location.agent, "', but this agent runs in local mode"),
            where);
      } else {
        inputs.push_back(MakeRemoteInput(client_, location.agent, key, descriptor.options.timeout));
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    shuffle->open_readers += 1;
  }
  std::weak_ptr<Shuffle> weak = shuffle;
  auto on_close = [weak] {
    if (auto closing = weak.lock()) {
      std::lock_guard<std::mutex> lock(closing->mutex);
      closing->open_readers -= 1;
      closing->last_touch = Clock::now();
    }
  };
  // A blocking read takes its writers' stored streams a few at a time: its memory (a block read
  // back per running input, and the queue) then stays small with many writers.
  const size_t running_inputs =
      descriptor.options.mode == ShuffleMode::kBlocking ? kBlockingReadInputs : 0;
  InputRecovery recovery;
  if (recoverable && descriptor.options.mode == ShuffleMode::kBlocking) {
    recovery.replace = MakeInputRecovery(shuffle, partition_id, upstream);
    for (const auto& location : upstream) {
      recovery.inputs.push_back(!location.agent.empty() && location.agent != local_location_);
    }
  }
  auto reader = ShuffleReader::Make(shuffle->descriptor, partition_id, std::move(inputs),
                                    /*max_queued_batches=*/0, on_close, running_inputs,
                                    std::move(recovery));
  if (!reader.ok()) on_close();
  return reader;
}

arrow::Status ShuffleManager::EnableRecovery(const ShuffleId& id) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  if (shuffle->descriptor->options.mode != ShuffleMode::kBlocking) {
    return WithShuffleContext(
        arrow::Status::Invalid("only a blocking shuffle's stored streams can be read again"),
        shuffle->where());
  }
  std::lock_guard<std::mutex> lock(shuffle->mutex);
  shuffle->recoverable = true;
  return arrow::Status::OK();
}

arrow::Status ShuffleManager::RelocateWriter(const ShuffleId& id, const WriterLocation& location) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  ARROW_RETURN_NOT_OK(WithShuffleContext(
      shuffle->descriptor->CheckWriterTask(location.writer_task), shuffle->where()));
  if (location.attempt <= 0) {
    return WithShuffleContext(
        arrow::Status::Invalid("a relocated writer runs a later attempt than 0, got ",
                               location.attempt),
        shuffle->where());
  }
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    auto it = shuffle->relocated.find(location.writer_task);
    if (it != shuffle->relocated.end() && it->second.attempt >= location.attempt) {
      return arrow::Status::OK();
    }
    shuffle->relocated[location.writer_task] = location;
  }
  shuffle->relocated_changed.notify_all();
  return arrow::Status::OK();
}

std::function<arrow::Result<std::unique_ptr<BlockInput>>(size_t, const arrow::Status&,
                                                         const std::function<bool()>&)>
ShuffleManager::MakeInputRecovery(const std::shared_ptr<Shuffle>& shuffle,
                                  PartitionId partition_id,
                                  const std::vector<WriterLocation>& upstream) {
  // The attempt each input reads now; only the input's own thread touches its entry.
  auto current = std::make_shared<std::vector<WriterLocation>>(upstream);
  std::weak_ptr<Shuffle> weak = shuffle;
  return [this, weak, partition_id, current](
             size_t input, const arrow::Status& failure,
             const std::function<bool()>& cancelled) -> arrow::Result<std::unique_ptr<BlockInput>> {
    auto shuffle = weak.lock();
    if (shuffle == nullptr) return failure;
    WriterLocation& reading = (*current)[input];
    const auto timeout = shuffle->descriptor->options.timeout;
    const auto deadline = Clock::now() + timeout;
    std::optional<WriterLocation> newer;
    {
      std::unique_lock<std::mutex> lock(shuffle->mutex);
      while (true) {
        auto it = shuffle->relocated.find(reading.writer_task);
        if (it != shuffle->relocated.end() && it->second.attempt > reading.attempt) {
          newer = it->second;
          break;
        }
        if (shuffle->state == ShuffleLifecycle::kReleased || Clock::now() >= deadline) break;
        // Woken by a relocation; the cancel flag is looked at every kRecoveryCheck.
        shuffle->relocated_changed.wait_for(lock, kRecoveryCheck);
        lock.unlock();
        const bool stop = cancelled();
        lock.lock();
        if (stop) return arrow::Status::Cancelled("the reader was cancelled while waiting for ",
                                                  "a new attempt of writer task ",
                                                  reading.writer_task);
      }
    }
    if (!newer) {
      return failure.WithMessage(failure.message(), " (no new attempt of writer task ",
                                 reading.writer_task, " within ", timeout.count(), " ms)");
    }
    SABOT_LOG(kInfo) << "shuffle '" << shuffle->descriptor->shuffle_id << "' partition "
                     << partition_id << ": writer task " << reading.writer_task << " attempt "
                     << reading.attempt << " failed (" << failure.message()
                     << "); reading attempt " << newer->attempt << " at '"
                     << (newer->agent.empty() ? local_location_ : newer->agent) << "'";
    reading = *newer;
    StreamKey key{shuffle->descriptor->shuffle_id, partition_id, reading.writer_task,
                  reading.attempt};
    const auto stream_timeout = shuffle->descriptor->options.timeout;
    if (reading.agent.empty() || reading.agent == local_location_) {
      return MakeStoreInput(store_.get(), key, stream_timeout, pool_.get());
    }
    if (client_ == nullptr) {
      return arrow::Status::Invalid("writer task ", reading.writer_task, " runs again on agent '",
                                    reading.agent, "', but this agent runs in local mode");
    }
    return MakeRemoteInput(client_, reading.agent, key, stream_timeout);
  };
}

arrow::Status ShuffleManager::SetWriterLocation(const ShuffleId& id,
                                                const WriterLocation& location) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(id));
  ARROW_RETURN_NOT_OK(WithShuffleContext(
      shuffle->descriptor->CheckWriterTask(location.writer_task), shuffle->where()));
  std::lock_guard<std::mutex> lock(shuffle->mutex);
  shuffle->locations[location.writer_task] = location;
  return arrow::Status::OK();
}

arrow::Result<std::string> ShuffleManager::LocateWriter(const StreamKey& key) {
  ARROW_ASSIGN_OR_RAISE(auto shuffle, Find(key.shuffle_id));
  std::lock_guard<std::mutex> lock(shuffle->mutex);
  auto it = shuffle->locations.find(key.writer_task);
  if (it == shuffle->locations.end()) {
    return WithShuffleContext(arrow::Status::KeyError("no location is known for this writer"),
                              {.shuffle_id = key.shuffle_id, .partition_id = key.partition_id,
                               .writer_task = key.writer_task});
  }
  return it->second.agent.empty() ? local_location_ : it->second.agent;
}

arrow::Status ShuffleManager::ReleaseShuffle(const std::shared_ptr<Shuffle>& shuffle,
                                             std::optional<Clock::time_point> orphaned_before) {
  std::map<TaskIndex, std::shared_ptr<ShuffleWriter>> writers;
  Wakes wakes;
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    if (shuffle->state == ShuffleLifecycle::kReleased) return arrow::Status::OK();
    // The orphan sweep decides under the same lock that releases, so a writer that opened or a
    // call that touched the shuffle since the sweep looked keeps it alive.
    if (orphaned_before &&
        (!shuffle->writers.empty() || !shuffle->non_blocking.empty() ||
         shuffle->open_readers > 0 || shuffle->last_touch >= *orphaned_before)) {
      return arrow::Status::Cancelled("no longer orphaned");
    }
    shuffle->state = ShuffleLifecycle::kReleased;
    // Writers waiting for admission give up (OpenWriter then finds the shuffle released).
    for (const auto& [task, admitting] : shuffle->admitting) {
      admitting->store(true, std::memory_order_release);
    }
    // Non-blocking writers leave the admission line; their tasks are woken to find the
    // shuffle released at their next call.
    for (auto& [task, entry] : shuffle->non_blocking) {
      LeaveAdmissionLine(&entry.ticket, &wakes);
      wakes.Add(entry.on_ready);
    }
    writers = shuffle->writers;
    for (const auto& [task, writer] : writers) DropWriterLocked(shuffle.get(), task, &wakes);
    shuffle->non_blocking.clear();
  }
  // Open writers are not aborted from here: their task threads may be inside them. Dropping
  // the manager's references leaves each to its task, whose next call fails (the shuffle is
  // released, its store streams are gone) and whose last reference aborts its streams; a writer
  // nobody holds any more is destroyed, and so aborted, right here.
  writers.clear();
  arrow::Status status = store_->Release(shuffle->descriptor->shuffle_id);
  metrics_.Forget(shuffle->descriptor->shuffle_id);
  // A shuffle that never stored a block has nothing in the store to release.
  return status.IsKeyError() ? arrow::Status::OK() : status;
}

arrow::Status ShuffleManager::Release(const ShuffleId& id) {
  std::shared_ptr<Shuffle> shuffle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ARROW_ASSIGN_OR_RAISE(shuffle, FindLocked(id));
  }
  return ReleaseShuffle(shuffle);
}

int64_t ShuffleManager::ReleaseWhere(const std::function<bool(const Shuffle&)>& selected,
                                     std::optional<Clock::time_point> orphaned_before) {
  std::vector<std::shared_ptr<Shuffle>> candidates;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, shuffle] : shuffles_) {
      if (selected(*shuffle)) candidates.push_back(shuffle);
    }
  }
  // Lock order: a shuffle's mutex may be taken before the manager's, never after it, so each
  // shuffle is released after the manager's lock is let go.
  int64_t released = 0;
  for (auto& shuffle : candidates) {
    {
      std::lock_guard<std::mutex> lock(shuffle->mutex);
      if (shuffle->state == ShuffleLifecycle::kReleased) continue;
    }
    if (ReleaseShuffle(shuffle, orphaned_before).ok()) ++released;
  }
  return released;
}

int64_t ShuffleManager::ReleaseAll() {
  return ReleaseWhere([](const Shuffle&) { return true; });
}

int64_t ShuffleManager::ReleaseJob(const std::string& job_id) {
  return ReleaseWhere([&](const Shuffle& shuffle) { return shuffle.job_id == job_id; });
}

int64_t ShuffleManager::ReleaseOrphans() {
  if (options_.orphan_timeout.count() == 0) return 0;
  return ReleaseWhere([](const Shuffle&) { return true; },
                      Clock::now() - options_.orphan_timeout);
}

arrow::Result<ShuffleStats> ShuffleManager::Stats(const ShuffleId& id) {
  std::shared_ptr<Shuffle> shuffle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ARROW_ASSIGN_OR_RAISE(shuffle, FindLocked(id));
  }
  ShuffleStats out;
  {
    std::lock_guard<std::mutex> lock(shuffle->mutex);
    // Open writers' figures change under their task threads: only finished ones are counted.
    out = shuffle->finished;
    out.state = shuffle->state;
  }
  MemoryMetricsSnapshot memory = metrics_.Snapshot(pool_.get());
  auto it = memory.shuffles.find(id);
  if (it != memory.shuffles.end()) {
    out.bytes_spilled = it->second.bytes_spilled;
    out.blocks_spilled = it->second.blocks_spilled;
  }
  return out;
}

std::shared_ptr<PartitionStore> ShuffleManager::partition_store() { return partition_store_; }

int64_t ShuffleManager::writers_waiting_for_admission() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(admission_queue_.size());
}

}  // namespace sabot
