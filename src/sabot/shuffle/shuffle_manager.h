#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/memory/block_store.h"
#include "sabot/memory/budget_pool.h"
#include "sabot/memory/mapped_memory_pool.h"
#include "sabot/memory/memory_metrics.h"
#include "sabot/memory/network_buffer_pool.h"
#include "sabot/shuffle/shuffle_descriptor.h"
#include "sabot/shuffle/shuffle_reader.h"
#include "sabot/shuffle/shuffle_writer.h"

namespace sabot {

class PartitionStore;
class ShuffleClient;
class Transport;

struct ShuffleManagerOptions {
  // This agent's name in logs and errors.
  std::string agent_id = "local";
  // The agent's memory budget for all its shuffles (see BudgetedMemoryPool).
  int64_t memory_budget = BudgetedMemoryPool::kDefaultBudgetBytes;
  // Where and when blocking shuffles spill (directory, watermarks).
  SpillOptions spill;
  // An allocation from the budget that does not fit spills stored blocks to make room and, if
  // the memory is still taken (a spill in another thread, readers holding batches), waits this
  // long for it to be freed before failing with OutOfMemory (BudgetedMemoryPool).
  std::chrono::milliseconds allocation_wait{std::chrono::seconds(30)};
  // Pipelined channels pay for every block in flight with segments of a NetworkBufferPool
  // (segment size, exclusive segments per channel, floating segments per shuffle); the pool
  // holds this fraction of the memory budget.
  NetworkBufferPoolOptions network;
  double network_fraction = 0.25;
  // A shuffle with no open writer or reader that nobody asked about for this long is released
  // as an orphan; zero disables the sweep.
  std::chrono::milliseconds orphan_timeout{std::chrono::minutes(30)};
};

// Where one writer task (attempt) of a shuffle ran: the location of its agent's shuffle server
// ("grpc+tcp://host:port"), or empty for this agent.
struct WriterLocation {
  TaskIndex writer_task = 0;
  int32_t attempt = 0;
  std::string agent;
};

enum class ShuffleLifecycle { kCreated, kWriting, kComplete, kReleased };
std::string_view ShuffleLifecycleName(ShuffleLifecycle state);

// Figures of one shuffle on this agent, over the writer tasks that finished here.
struct ShuffleStats {
  ShuffleId shuffle_id;
  ShuffleLifecycle state = ShuffleLifecycle::kCreated;
  int32_t writers_finished = 0;          // writer tasks of this agent that finished
  int64_t rows_written = 0;
  int64_t blocks_written = 0;
  int64_t bytes_written = 0;             // block bytes (encoded, or buffer bytes if unencoded)
  std::vector<int64_t> partition_rows;   // rows written per partition: skew is visible here
  std::vector<int64_t> partition_bytes;  // block bytes per partition
  int64_t bytes_spilled = 0;
  int64_t blocks_spilled = 0;
  std::chrono::nanoseconds time_blocked{0};  // writers waiting for credit or for admission

  std::string ToString() const;
};

// Coordinates every shuffle of one agent (process): registration, the writers and readers of
// its tasks, where each writer ran, memory and spill (through its BlockStore and budget), stats,
// and release. It is the single way callers shuffle; ShuffleService and the engine sit on it.
//
// Data path. A writer (OpenWriter / Write / WritePartition / Finish) partitions and seals blocks
// into, for a pipelined shuffle, credit-based channels of the agent's transport (in-process in
// local mode, Flight in distributed mode) and, for a blocking shuffle, the agent's BlockStore,
// where they stay until the shuffle is released so a reader can fetch again. A reader
// (ReadPartition) opens one input per upstream writer (a channel; the local store; or a remote
// agent's store over Flight) and yields batches until every writer's stream has ended.
//
// Lifecycle of a shuffle: created (registered) -> writing (a writer opened) -> complete (every
// writer task of the shuffle finished, counting those this agent ran) -> released (Release,
// ReleaseJob, or the orphan sweep: memory freed, spill files deleted; later calls about it fail
// with a clear error).
//
// Thread safety: every method is safe for concurrent use; one writer task uses its writer from
// one thread at a time. Lifetime: `transport` and `client` (not owned) outlive the manager.
class ShuffleManager {
 public:
  // Open writers' working sets (what they hold and cannot spill, WriterWorkingSetBytes) may
  // reserve at most this fraction of the budget together; the rest is for blocks in flight (the
  // network pool) and blocks stored, spilled and read back.
  static constexpr double kReservableFraction = 0.5;

  // A bound on the memory one writer of `descriptor` holds at once and cannot spill, when the
  // batches it is given have at most `batch_bytes` bytes of rows (RowBytes::RangeBytes):
  //   num_partitions x target_block_bytes  the rows its partition buffers coalesce
  //   + 2 x target_block_bytes             a block being sealed: its concatenated rows and its
  //                                        encoded bytes
  //   + 2 x batch_bytes                    the batch being partitioned (the partitioner's
  //                                        batch-wide output, shared by all partitions) and the
  //                                        previous one, whose slices the buffers may still pin
  //                                        (or the budget copy of a caller's batch)
  // A writer is admitted with batch_bytes = num_partitions x target_block_bytes (a batch that
  // fills a block of every partition); a larger batch grows its admission when it arrives.
  // A non-blocking writer (WriterMode) also holds, between a write and the drain of its
  // outboxes, the blocks that one batch sealed and no credit or network segment let through yet:
  // at most what its partition buffers held plus the batch's rows, so with `non_blocking` the
  // bound of a pipelined writer adds num_partitions x target_block_bytes + batch_bytes (a
  // blocking shuffle's store takes every block at once: its outboxes stay empty).
  static int64_t WriterWorkingSetBytes(const ShuffleDescriptor& descriptor, int64_t batch_bytes,
                                       bool non_blocking = false);

  // `transport` carries pipelined shuffles. `client` fetches blocking shuffles' streams from
  // other agents; null in local mode. `local_location` is how other agents name this one
  // (empty in local mode); WriterLocations equal to it are read from the local store.
  // A null `transport` must be attached (AttachTransport) before any writer or reader opens.
  static arrow::Result<std::unique_ptr<ShuffleManager>> Make(ShuffleManagerOptions options,
                                                             Transport* transport,
                                                             ShuffleClient* client = nullptr,
                                                             std::string local_location = "");
  ~ShuffleManager();

  // For distributed mode, where the transport needs the agent's server, which serves this
  // manager's partition_store(): Make the manager without a transport, then attach it, once,
  // before any writer or reader opens. Invalid when one is attached already.
  arrow::Status AttachTransport(Transport* transport, ShuffleClient* client,
                                std::string local_location);

  // Registers a shuffle with a new id "<operator_id>-<n>" and returns it.
  arrow::Result<ShuffleId> RegisterShuffle(const std::string& operator_id,
                                           std::shared_ptr<const PartitionSpec> spec,
                                           std::shared_ptr<arrow::Schema> schema,
                                           int32_t num_writers, ShuffleOptions options = {},
                                           std::string job_id = "");
  // Registers a shuffle whose id the caller (the job manager) chose. Registering the same
  // descriptor again is a no-op; a different one under a taken id is AlreadyExists.
  arrow::Status RegisterShuffle(const ShuffleDescriptor& descriptor, std::string job_id = "");
  // KeyError for an unknown shuffle, Invalid for a released one.
  arrow::Result<std::shared_ptr<const ShuffleDescriptor>> GetShuffle(const ShuffleId& id);
  std::vector<ShuffleId> ListShuffles() const;

  // --- Write side (one writer task) ---------------------------------------------------------
  // The writer of task `writer_task`, attempt `attempt`, owned by the manager until Finish or
  // Release. Opening one twice is AlreadyExists.
  arrow::Status OpenWriter(const ShuffleId& id, TaskIndex writer_task, int32_t attempt = 0);
  // Admission: opening a writer reserves its working set (WriterWorkingSetBytes) in
  // kReservableFraction of the budget. A working set that can never fit there is refused at
  // once with OutOfMemory naming the bytes needed and the budget; otherwise, when other open
  // writers hold the room, OpenWriter WAITS (first come, first served) until writers finish,
  // abort or are released, so that the writers running at any instant never hold more than the
  // budget in what they cannot spill. A batch larger than what its writer was admitted for grows
  // the admission before it is partitioned: the writer seals what it buffered (so it holds
  // nothing it cannot spill or send), gives its reservation back and waits for the larger one.
  // A waiting writer holds no reservation, so waits cannot deadlock each other. The wait ends
  // with Cancelled on CancelWriter, on the thread's AllocationWaitCancel flag, or when the
  // shuffle is released; with OutOfMemory after the shuffle's timeout. Time waited counts in the
  // writer's `blocked` stat (ShuffleWriterStats, ShuffleStats::time_blocked).
  //
  // Partitions `batch` and buffers it (opens the writer on first use). Invalid for a writer
  // opened non-blocking (use TryWrite).
  arrow::Status Write(const ShuffleId& id, TaskIndex writer_task,
                      const std::shared_ptr<arrow::RecordBatch>& batch);
  // Buffers `batch`, all of whose rows belong to `partition_id`.
  arrow::Status WritePartition(const ShuffleId& id, TaskIndex writer_task, PartitionId partition_id,
                               const std::shared_ptr<arrow::RecordBatch>& batch);
  arrow::Status FlushPartition(const ShuffleId& id, TaskIndex writer_task, PartitionId partition_id);
  // Sends the event `payload` to every partition's stream of the writer (opened on first use),
  // after the rows it wrote before: ShuffleWriter::WriteEvent. Readers receive it in order
  // (ShuffleReader::NextItem).
  arrow::Status WriteEvent(const ShuffleId& id, TaskIndex writer_task,
                           std::shared_ptr<arrow::Buffer> payload);
  // Seals and sends everything the writer buffered and ends its streams. Finishing a writer
  // twice is Invalid, and so is Finish of a writer opened non-blocking (use TryFinish).
  arrow::Status Finish(const ShuffleId& id, TaskIndex writer_task);

  // --- Non-blocking write side (a task run as steps on a bounded thread pool) ----------------
  // No call below waits: not for admission, credit or network segments. A call that cannot
  // make progress now returns false (or leaves blocks pending) and `mode.on_ready` is called
  // once progress may be possible; the task then calls again. Protocol, per writer task:
  //   OpenWriter(id, task, attempt, {.non_blocking = true, .on_ready = wake});
  //   for each batch: while (!TryWrite(id, task, batch)) park until on_ready;
  //                   (a true TryWrite may leave blocks pending: the next TryWrite drains them
  //                   first and returns false while they stay pending; HasPending/Drain
  //                   let the task do the same between batches)
  //   while (!TryFinish(id, task)) park until on_ready;
  // Errors end the writer as in blocking mode: the task then calls AbortWriter.
  //
  // Admission is the same as in blocking mode, without the wait: the writer is admitted in the
  // same first-come-first-served order as blocking writers, for its non-blocking working set
  // (WriterWorkingSetBytes with non_blocking: what its outboxes may hold is counted), a working
  // set that can never fit is refused at once (OutOfMemory, from OpenWriter or TryWrite), and a
  // writer not admitted yet holds its place in line without holding a thread. Its streams open
  // when it is admitted (its readers wait for them as for any writer that has not started). A
  // place held for longer than the shuffle's timeout fails with OutOfMemory at the next call.
  //
  // Opens the writer of (id, writer_task) in `mode`; with mode.non_blocking false this is
  // OpenWriter(id, writer_task, attempt). Non-blocking, it never waits: it is admitted now, or
  // takes its place in line and is admitted by a later TryWrite/TryFinish (after on_ready).
  // OutOfMemory when its working set can never fit; AlreadyExists when open.
  arrow::Status OpenWriter(const ShuffleId& id, TaskIndex writer_task, int32_t attempt,
                           WriterMode mode);
  // Partitions `batch` and buffers it, as Write, for a writer opened non-blocking. True: the
  // batch was taken (sealed blocks that could not be sent wait in the writer's outboxes:
  // HasPending). False: nothing of the batch was taken, because blocks of the previous batch are
  // still pending (they were drained as far as credit allows) or because admitting the writer
  // (for the first time, or for a batch larger than it was admitted for) would have to wait;
  // on_ready is called when it may succeed (another writer's reservation was released, or its
  // own blocks may drain). Call it again with the same batch then.
  arrow::Result<bool> TryWrite(const ShuffleId& id, TaskIndex writer_task,
                               const std::shared_ptr<arrow::RecordBatch>& batch);
  // TryWrite for a batch all of whose rows belong to `partition_id`.
  arrow::Result<bool> TryWritePartition(const ShuffleId& id, TaskIndex writer_task,
                                        PartitionId partition_id,
                                        const std::shared_ptr<arrow::RecordBatch>& batch);
  // WriteEvent for a writer opened non-blocking. True: the event was taken (its blocks, and the
  // rows sealed before it, may wait in the outboxes: HasPending). False: nothing was taken,
  // because the writer waits for admission or blocks of an earlier write are still pending;
  // on_ready is called when it may succeed.
  arrow::Result<bool> TryWriteEvent(const ShuffleId& id, TaskIndex writer_task,
                                    std::shared_ptr<arrow::Buffer> payload);
  // Whether the writer's outboxes hold blocks waiting for credit or network segments (false
  // for a writer not admitted yet, which holds none).
  arrow::Result<bool> HasPending(const ShuffleId& id, TaskIndex writer_task);
  // Sends the pending blocks that credit and segments allow now, in order; never waits.
  arrow::Status Drain(const ShuffleId& id, TaskIndex writer_task);
  // Seals what the writer buffered, drains, and once nothing is pending ends its streams and
  // returns true (the writer is then finished, as after Finish). False while blocks are pending
  // or while the writer, never admitted yet, waits for admission (its streams must open to
  // end); on_ready is called when it may succeed.
  arrow::Result<bool> TryFinish(const ShuffleId& id, TaskIndex writer_task);
  // Ends the writer's streams with `cause`; its readers fail with it. Call it from the writer's
  // task thread (or when no call on that writer is in progress): a writer is not thread-safe.
  arrow::Status AbortWriter(const ShuffleId& id, TaskIndex writer_task, const arrow::Status& cause);
  // From any thread: the writer's wait in progress (for admission, for credit, for network
  // segments or for budget memory) and its later writes fail at once with a Cancelled status carrying `cause` and
  // naming the shuffle, partition and writer; its task thread then aborts it. Nothing when it is
  // not open.
  void CancelWriter(const ShuffleId& id, TaskIndex writer_task, const arrow::Status& cause);

  // --- Read side (one reader task) ----------------------------------------------------------
  // The batches and events of `partition_id` from every writer in `upstream` (empty: every
  // writer task of the shuffle, attempt 0, on this agent). The reader's input i reads upstream[i]
  // (by default writer task i). IndexError for a partition out of range.
  arrow::Result<std::unique_ptr<ShuffleReader>> ReadPartition(const ShuffleId& id,
                                                              PartitionId partition_id,
                                                              std::vector<WriterLocation> upstream = {});

  // --- Locations ----------------------------------------------------------------------------
  // Records where a writer ran (pipelined readers find remote writers through it).
  arrow::Status SetWriterLocation(const ShuffleId& id, const WriterLocation& location);

  // --- Lineage recovery (docs/fault-tolerance.md, "Batch jobs: lineage recovery") -----------
  // Makes the reads of blocking shuffle `id` opened from now on recoverable: a reader delivers
  // each remote stream only once it has all of it, and an input whose stream fails waits (up to
  // the shuffle's timeout, or until the reader is cancelled) for a newer attempt of its writer
  // task (RelocateWriter) and reads that attempt's whole stream instead (InputRecovery,
  // shuffle_reader.h). Invalid for a pipelined shuffle; KeyError for an unknown one.
  arrow::Status EnableRecovery(const ShuffleId& id);
  // Writer task `location.writer_task` of shuffle `id` runs again as attempt `location.attempt`
  // on `location.agent` (empty or this agent's location: here). Readers opened later read that
  // attempt; recoverable readers whose input of an older attempt failed (or fails later) switch
  // to it. A relocation older than or equal to the newest known one changes nothing.
  arrow::Status RelocateWriter(const ShuffleId& id, const WriterLocation& location);
  // The location of `key`'s writer, for the Flight transport's locator: the recorded agent or
  // this agent's own location. KeyError when unknown.
  arrow::Result<std::string> LocateWriter(const StreamKey& key);

  // --- Lifecycle and figures ----------------------------------------------------------------
  arrow::Status Release(const ShuffleId& id);
  // Releases every shuffle of this agent; returns how many.
  int64_t ReleaseAll();
  // Releases every shuffle registered with `job_id`; returns how many.
  int64_t ReleaseJob(const std::string& job_id);
  // Releases shuffles untouched for the orphan timeout; returns how many.
  int64_t ReleaseOrphans();
  arrow::Result<ShuffleStats> Stats(const ShuffleId& id);

  // What this agent's Flight server serves: its blocking shuffles' streams.
  std::shared_ptr<PartitionStore> partition_store();
  // Writers waiting in line for admission now, blocking and non-blocking (backpressure).
  int64_t writers_waiting_for_admission() const SABOT_EXCLUDES(mutex_);
  BudgetedMemoryPool* pool() { return pool_.get(); }
  MemoryMetrics* metrics() { return &metrics_; }
  NetworkBufferPool* network() { return network_.get(); }
  BlockStore* block_store() { return store_.get(); }
  const ShuffleManagerOptions& options() const { return options_; }
  bool distributed() const { return client_ != nullptr; }

 private:
  struct Shuffle;
  using Clock = std::chrono::steady_clock;

  ShuffleManager() = default;
  // The InputRecovery of a recoverable read of `partition_id` whose input i reads upstream[i].
  std::function<arrow::Result<std::unique_ptr<BlockInput>>(size_t, const arrow::Status&,
                                                           const std::function<bool()>&)>
  MakeInputRecovery(const std::shared_ptr<Shuffle>& shuffle, PartitionId partition_id,
                    const std::vector<WriterLocation>& upstream);
  arrow::Result<std::shared_ptr<Shuffle>> Find(const ShuffleId& id) SABOT_EXCLUDES(mutex_);
  arrow::Result<std::shared_ptr<Shuffle>> FindLocked(const ShuffleId& id) SABOT_REQUIRES(mutex_);
  // The writer of (id, task), opened on demand when `open` is true.
  // Callers keep the writer alive while they use it: a release may drop the manager's reference.
  arrow::Result<std::shared_ptr<ShuffleWriter>> Writer(const ShuffleId& id, TaskIndex writer_task,
                                                       bool open);
  // Releases `shuffle`; with `orphaned_before`, only if it still has no open writer and was not
  // touched since then (checked under the lock that releases).
  arrow::Status ReleaseShuffle(const std::shared_ptr<Shuffle>& shuffle,
                               std::optional<Clock::time_point> orphaned_before = std::nullopt);
  // Releases the unreleased shuffles `selected` picks (job_id is immutable, so it may read that
  // without their locks); returns how many.
  int64_t ReleaseWhere(const std::function<bool(const Shuffle&)>& selected,
                       std::optional<Clock::time_point> orphaned_before = std::nullopt);
  // Admission control (see Write): the pipelined block-size check, then the working set of a
  // writer of `descriptor` for batches of `batch_bytes` (non-blocking: with its outboxes);
  // OutOfMemory, explaining the numbers, when it can never fit in kReservableFraction of the
  // budget.
  arrow::Result<int64_t> WriterAdmissionBytes(const ShuffleDescriptor& descriptor,
                                              TaskIndex writer_task, int64_t batch_bytes,
                                              bool non_blocking = false);
  // Waits until `bytes` fit in kReservableFraction of the budget beside the other open writers'
  // reservations and this waiter is first in line, then reserves them; returns the time waited.
  // Cancelled as soon as `*cancelled` or the thread's AllocationWaitCancel flag is set;
  // OutOfMemory after the shuffle's timeout. Takes no lock but the manager's.
  arrow::Result<std::chrono::nanoseconds> AdmitWriterMemory(const ShuffleDescriptor& descriptor,
                                                            TaskIndex writer_task, int64_t bytes,
                                                            const std::atomic<bool>* cancelled)
      SABOT_EXCLUDES(mutex_);
  // Grows the admission of an open writer whose next batch has `batch_bytes` (see Write).
  arrow::Status AdmitBatch(const ShuffleId& id, TaskIndex writer_task, ShuffleWriter* writer,
                           int64_t batch_bytes);
  // On-ready callbacks of non-blocking writers, called when the object goes away: declared
  // before any lock_guard of a method, so they run after every lock was released.
  class Wakes;
  using WakeCallback = std::shared_ptr<const std::function<void()>>;
  // With `wakes` null the caller holds no lock and the next writer in line is woken at once.
  void UnreserveWriterMemory(int64_t bytes, Wakes* wakes = nullptr) SABOT_EXCLUDES(mutex_);
  // Ends the writer's reservation (and a non-blocking writer's place in the admission line)
  // and removes it; requires the shuffle's lock. The writers it lets in are woken by `wakes`.
  void DropWriterLocked(Shuffle* shuffle, TaskIndex writer_task, Wakes* wakes);
  // A writer finished (Finish, TryFinish): drops it and counts its figures; requires the
  // shuffle's lock.
  void RecordFinishedLocked(Shuffle* shuffle, TaskIndex writer_task, const ShuffleWriter& writer,
                            Wakes* wakes);
  // The on_ready of the first in the admission line when it is a non-blocking writer whose
  // working set fits now.
  WakeCallback AdmissionWakeLocked() SABOT_REQUIRES(mutex_);
  // Non-blocking admission of `bytes` for a writer whose place in line is `*ticket` (-1: none
  // yet): reserves them and returns true when they fit and the writer is first in line (or
  // nobody waits); otherwise takes or keeps the place and returns false (`on_ready` is called
  // when it may fit). OutOfMemory when the place was held past the shuffle's timeout. Requires
  // the writer's shuffle's lock (taken before the manager's).
  arrow::Result<bool> TryAdmitWriterMemory(const ShuffleDescriptor& descriptor,
                                           TaskIndex writer_task, int64_t bytes,
                                           const WakeCallback& on_ready, int64_t* ticket,
                                           Clock::time_point* since, Wakes* wakes)
      SABOT_EXCLUDES(mutex_);
  // Leaves the admission line (a non-blocking writer giving up its place); wakes the next.
  void LeaveAdmissionLine(int64_t* ticket, Wakes* wakes) SABOT_EXCLUDES(mutex_);
  // Makes the ShuffleWriter of (shuffle, writer_task, attempt) in `mode` with its outputs.
  arrow::Result<std::shared_ptr<ShuffleWriter>> MakeWriter(const std::shared_ptr<Shuffle>& shuffle,
                                                           TaskIndex writer_task, int32_t attempt,
                                                           WriterMode mode);
  // Non-blocking: the writer of (id, writer_task) once it is admitted and made, or null while
  // it waits for admission (false from the caller); errors as Writer().
  // The writer of (id, writer_task) as made so far: null for a non-blocking writer still in the
  // admission line; Invalid when it is not open. Never admits (AdmittedWriter does).
  arrow::Result<std::shared_ptr<ShuffleWriter>> MadeWriter(const ShuffleId& id,
                                                           TaskIndex writer_task);
  arrow::Result<std::shared_ptr<ShuffleWriter>> AdmittedWriter(const ShuffleId& id,
                                                               TaskIndex writer_task);
  // Non-blocking: grows the writer's admission for a batch of `batch_bytes` (AdmitBatch without
  // waiting); false while it cannot be done now.
  arrow::Result<bool> TryAdmitBatch(const std::shared_ptr<Shuffle>& shuffle,
                                    TaskIndex writer_task, ShuffleWriter* writer,
                                    int64_t batch_bytes);
  // TryWrite / TryWritePartition (partition_id < 0: partition the batch).
  arrow::Result<bool> TryWriteBatch(const ShuffleId& id, TaskIndex writer_task,
                                    PartitionId partition_id,
                                    const std::shared_ptr<arrow::RecordBatch>& batch);
  void SweepLoop();

  ShuffleManagerOptions options_;
  // Set by Make or once by AttachTransport, before any writer or reader exists.
  std::atomic<Transport*> transport_{nullptr};
  ShuffleClient* client_ = nullptr;
  std::string local_location_;
  // Backs the budget: freed blocks go back to the system, so resident memory follows the
  // budget (MappedMemoryPool). Declared first, destroyed last.
  std::unique_ptr<MappedMemoryPool> mapped_;
  std::unique_ptr<BudgetedMemoryPool> pool_;
  MemoryMetrics metrics_;
  std::unique_ptr<NetworkBufferPool> network_;
  std::unique_ptr<BlockStore> store_;
  std::shared_ptr<PartitionStore> partition_store_;

  mutable std::mutex mutex_;
  std::map<ShuffleId, std::shared_ptr<Shuffle>> shuffles_ SABOT_GUARDED_BY(mutex_);
  int64_t next_id_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t reserved_bytes_ SABOT_GUARDED_BY(mutex_) = 0;
  // Writers waiting for admission, in arrival order; blocking ones (no on_ready) wait on
  // admission_, which is notified on every unreserve; non-blocking ones are called back.
  struct AdmissionWaiter {
    int64_t ticket = 0;
    int64_t bytes = 0;
    WakeCallback on_ready;  // null: a blocking waiter
  };
  std::list<AdmissionWaiter> admission_queue_ SABOT_GUARDED_BY(mutex_);
  int64_t next_admission_ticket_ SABOT_GUARDED_BY(mutex_) = 0;
  std::condition_variable admission_;
  bool stopping_ SABOT_GUARDED_BY(mutex_) = false;
  std::condition_variable stop_;
  std::thread sweeper_;
};

}  // namespace sabot
