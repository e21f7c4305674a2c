// The non-blocking write side of the shuffle (ShuffleManager::OpenWriter with WriterMode,
// TryWrite, HasPending, Drain, TryFinish): no call waits for credit, network segments or
// admission, so writer and reader tasks can share a bounded pool of threads as cooperative
// steps. Each test here would hang a blocking implementation on the calling thread (until the
// shuffle's timeout fails it), so they fail on one.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/record_batch.h>

#include "sabot/memory/network_buffer_pool.h"
#include "sabot/memory/row_bytes.h"
#include "sabot/memory/test_budget.h"
#include "sabot/verify/generated_shuffle_check.h"
#include "sabot/runtime/generated_shuffle_run.h"
#include "sabot/shuffle/shuffle_manager.h"
#include "sabot/testing/assertions.h"
#include "sabot/transport/in_process_transport.h"

namespace sabot {
namespace {

// Tasks run as steps on a bounded pool of threads, as the local executor runs them. A step
// returns kAgain (run it again), kPark (run it again once its waker is called) or kDone. A
// waker called while its task runs (or before the task parks) makes it run again: no wake-up is
// lost. When no task runs, none is queued and some are parked, nothing can ever wake them (every
// wake-up in these tests comes from a step): Run() fails at once, naming the parked tasks,
// instead of hanging.
class StepPool {
 public:
  enum class Step { kAgain, kPark, kDone };
  using Task = std::function<arrow::Result<Step>()>;

  explicit StepPool(int threads) : threads_(threads), shared_(std::make_shared<Shared>()) {}

  // Adds a task (before Run); returns its index.
  int Add(std::string name, Task task) {
    tasks_.push_back(std::move(task));
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->names.push_back(std::move(name));
    shared_->states.push_back(State::kQueued);
    shared_->woken.push_back(false);
    shared_->queue.push_back(static_cast<int>(tasks_.size()) - 1);
    return static_cast<int>(tasks_.size()) - 1;
  }

  // Wakes task `index`; callable from any thread at any time (it shares the pool's state).
  std::function<void()> Waker(int index) const {
    return [shared = shared_, index] {
      {
        std::lock_guard<std::mutex> lock(shared->mutex);
        if (shared->states[index] == State::kParked) {
          shared->states[index] = State::kQueued;
          shared->queue.push_back(index);
        } else if (shared->states[index] == State::kRunning) {
          shared->woken[index] = true;
        }
      }
      shared->changed.notify_all();
    };
  }

  // Runs every task to kDone on `threads` threads. The first failed step's error, or a
  // deadlock, ends the run.
  arrow::Status Run() {
    std::vector<std::thread> threads;
    for (int t = 0; t < threads_; ++t) threads.emplace_back([this] { Work(); });
    for (auto& thread : threads) thread.join();
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return shared_->error;
  }

  int64_t parks() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return shared_->parks;
  }

 private:
  enum class State { kQueued, kRunning, kParked, kDone };
  struct Shared {
    mutable std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::string> names;
    std::vector<State> states;
    std::vector<bool> woken;
    std::deque<int> queue;
    int running = 0;
    int done = 0;
    int64_t parks = 0;
    bool stop = false;
    arrow::Status error;
  };

  void Work() {
    Shared& s = *shared_;
    std::unique_lock<std::mutex> lock(s.mutex);
    while (true) {
      s.changed.wait(lock, [&] { return s.stop || !s.queue.empty() || s.running == 0; });
      if (s.stop) return;
      if (s.done == static_cast<int>(tasks_.size())) {
        s.stop = true;
        s.changed.notify_all();
        return;
      }
      if (s.queue.empty()) {  // and nothing runs: nothing can wake the parked tasks
        std::ostringstream parked;
        for (size_t i = 0; i < s.states.size(); ++i) {
          if (s.states[i] == State::kParked) parked << " " << s.names[i];
        }
        s.error = arrow::Status::Invalid("deadlock: tasks parked with nothing left to wake them:",
                                         parked.str());
        s.stop = true;
        s.changed.notify_all();
        return;
      }
      const int index = s.queue.front();
      s.queue.pop_front();
      s.states[index] = State::kRunning;
      s.woken[index] = false;
      ++s.running;
      lock.unlock();
      arrow::Result<Step> step = tasks_[index]();
      lock.lock();
      --s.running;
      if (!step.ok()) {
        if (s.error.ok()) {
          s.error = step.status().WithMessage(s.names[index], ": ", step.status().message());
        }
        s.stop = true;
        s.changed.notify_all();
        return;
      }
      switch (*step) {
        case Step::kDone:
          s.states[index] = State::kDone;
          ++s.done;
          break;
        case Step::kAgain:
          s.states[index] = State::kQueued;
          s.queue.push_back(index);
          break;
        case Step::kPark:
          ++s.parks;
          if (s.woken[index]) {
            s.states[index] = State::kQueued;
            s.queue.push_back(index);
          } else {
            s.states[index] = State::kParked;
          }
          break;
      }
      s.changed.notify_all();
    }
  }

  const int threads_;
  std::vector<Task> tasks_;
  std::shared_ptr<Shared> shared_;
};

// Counts the calls of an on_ready callback; shared with it, so it may outlive the writer.
struct ReadyCounter {
  std::atomic<int> calls{0};
  static std::function<void()> Callback(const std::shared_ptr<ReadyCounter>& counter) {
    return [counter] { counter->calls.fetch_add(1); };
  }
};

// The reading ends of one partition: one in-process channel per writer, polled with TryNext.
// (ShuffleReader is rewritten elsewhere; these tests read the channels directly.)
class PolledPartition {
 public:
  PolledPartition(Transport* transport, const ShuffleDescriptor& descriptor, PartitionId partition)
      : partition_(partition) {
    ChannelOptions options;
    options.exclusive_credits = descriptor.options.exclusive_credits;
    options.timeout = descriptor.options.timeout;
    if (descriptor.options.floating_credits > 0) {
      options.floating_credits =
          std::make_shared<FloatingCreditPool>(descriptor.options.floating_credits);
    }
    for (TaskIndex w = 0; w < descriptor.num_writers; ++w) {
      channels_.push_back(
          transport->OpenReader({descriptor.shuffle_id, partition, w, 0}, options).ValueOrDie());
      ended_.push_back(false);
    }
  }

  void SetOnReadable(const std::function<void()>& callback) {
    for (auto& channel : channels_) channel->SetOnReadable(callback);
  }

  // Takes what the channels have now, at most `limit` batches, handing each to `consume`.
  // Returns the batches taken; a full pass over the channels that finds nothing has returned
  // every consumed batch's credit.
  arrow::Result<int> Poll(int limit,
                          const std::function<arrow::Status(const arrow::RecordBatch&)>& consume) {
    int taken = 0;
    while (!done()) {
      bool progress = false;
      for (size_t c = 0; c < channels_.size(); ++c) {
        if (ended_[c]) continue;
        std::shared_ptr<arrow::RecordBatch> batch;
        ARROW_ASSIGN_OR_RAISE(bool got, channels_[c]->TryNext(&batch));
        if (!got) continue;
        progress = true;
        if (batch == nullptr) {
          ended_[c] = true;
          ++num_ended_;
          continue;
        }
        ARROW_RETURN_NOT_OK(consume(*batch));
        if (++taken >= limit) return taken;
      }
      if (!progress) break;
    }
    return taken;
  }

  bool done() const { return num_ended_ == static_cast<int>(channels_.size()); }
  PartitionId partition() const { return partition_; }

 private:
  PartitionId partition_;
  std::vector<std::unique_ptr<ChannelReader>> channels_;
  std::vector<bool> ended_;
  int num_ended_ = 0;
};

// Rows and the sum of payload p0 (row * 16, unique per row) per partition of a HASH shuffle
// of `job`, computed from the generated batches and docs/hashing.md's reference hash.
struct PartitionTotals {
  std::vector<int64_t> rows;
  std::vector<int64_t> p0_sum;
};

PartitionTotals ReferenceTotals(const GeneratedJob& job, int32_t partitions) {
  PartitionTotals totals{std::vector<int64_t>(partitions, 0),
                         std::vector<int64_t>(partitions, 0)};
  for (int32_t w = 0; w < job.num_writers; ++w) {
    for (int64_t i = 0; i < job.batches_per_writer; ++i) {
      auto batch = job.WriterBatch(w, i).ValueOrDie();
      const auto& keys = static_cast<const arrow::Int64Array&>(*batch->GetColumnByName("key"));
      const auto& p0 = static_cast<const arrow::Int64Array&>(*batch->GetColumnByName("p0"));
      for (int64_t r = 0; r < batch->num_rows(); ++r) {
        const int32_t p = ReferenceHashPartitionOfInt64(keys.Value(r), partitions);
        totals.rows[p] += 1;
        totals.p0_sum[p] += p0.Value(r);
      }
    }
  }
  return totals;
}

void AddTotals(const arrow::RecordBatch& batch, PartitionId p, PartitionTotals* totals) {
  const auto& p0 = static_cast<const arrow::Int64Array&>(*batch.GetColumnByName("p0"));
  totals->rows[p] += batch.num_rows();
  for (int64_t r = 0; r < batch.num_rows(); ++r) totals->p0_sum[p] += p0.Value(r);
}

ShuffleOptions SmallBlocks() {
  ShuffleOptions options;
  options.mode = ShuffleMode::kPipelined;
  options.target_block_rows = 100;
  options.target_block_bytes = 16 * 1024;
  options.exclusive_credits = 1;
  options.floating_credits = 0;
  options.buffer_timeout = std::chrono::milliseconds(0);
  // A blocking implementation would wait this long on the test's thread, then fail.
  options.timeout = std::chrono::seconds(20);
  return options;
}

class NonBlockingWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = InProcessTransport::Make().ValueOrDie();
    ShuffleManagerOptions options;
    options.spill = testing::TestSpillOptions();
    manager_ = ShuffleManager::Make(options, transport_.get()).ValueOrDie();
    job_.data.batch_rows = 1000;
    job_.data.key_cardinality = 1000;
    job_.num_writers = 1;
    job_.batches_per_writer = 3;
  }

  // Registers a HASH shuffle of job_ over `partitions` and opens its polled readers.
  void Register(int32_t partitions, ShuffleOptions options) {
    spec_ = job_.MakeSpec(EdgeType::kHash, partitions).ValueOrDie();
    id_ = manager_->RegisterShuffle("op", spec_, GeneratedSchema(job_.data), job_.num_writers,
                                    options)
              .ValueOrDie();
    check_ = GeneratedShuffleCheck::Make(job_, spec_).ValueOrDie();
    if (options.mode == ShuffleMode::kPipelined) {
      auto descriptor = manager_->GetShuffle(id_).ValueOrDie();
      for (PartitionId p = 0; p < partitions; ++p) {
        readers_.push_back(std::make_unique<PolledPartition>(transport_.get(), *descriptor, p));
      }
    }
  }

  // Polls every reader until none has anything now; returns the batches taken.
  arrow::Result<int> ReadAvailable() {
    int taken = 0;
    for (auto& reader : readers_) {
      const PartitionId p = reader->partition();
      ARROW_ASSIGN_OR_RAISE(int got, reader->Poll(1 << 20, [&](const arrow::RecordBatch& batch) {
        return check_->Check(p, batch);
      }));
      taken += got;
    }
    return taken;
  }

  std::unique_ptr<InProcessTransport> transport_;
  std::unique_ptr<ShuffleManager> manager_;
  GeneratedJob job_;
  std::shared_ptr<const PartitionSpec> spec_;
  ShuffleId id_;
  std::unique_ptr<GeneratedShuffleCheck> check_;
  std::vector<std::unique_ptr<PolledPartition>> readers_;
};

// One writer, two partitions, one credit per channel, one thread for everything: each batch
// seals about five blocks per partition, so TryWrite returns with blocks pending instead of
// waiting for the reader (a blocking writer would wait here, on the only thread there is, for
// the shuffle's timeout). A second batch is refused while they are pending; once the reader
// consumes, on_ready runs and Drain sends the next blocks, in order.
TEST_F(NonBlockingWriteTest, NeverBlocksOnOneCreditAndDrainsInOrderWhenWoken) {
  Register(2, SmallBlocks());
  auto ready = std::make_shared<ReadyCounter>();
  ASSERT_OK(manager_->OpenWriter(id_, 0, 0,
                                 WriterMode{.non_blocking = true,
                                            .on_ready = ReadyCounter::Callback(ready)}));
  ASSERT_OK_AND_ASSIGN(auto batch0, job_.WriterBatch(0, 0));
  ASSERT_OK_AND_ASSIGN(bool taken, manager_->TryWrite(id_, 0, batch0));
  ASSERT_TRUE(taken);
  ASSERT_OK_AND_ASSIGN(bool pending, manager_->HasPending(id_, 0));
  ASSERT_TRUE(pending) << "one credit per channel cannot take five blocks";
  ASSERT_OK_AND_ASSIGN(auto batch1, job_.WriterBatch(0, 1));
  ASSERT_OK_AND_ASSIGN(taken, manager_->TryWrite(id_, 0, batch1));
  EXPECT_FALSE(taken) << "a batch is refused while the previous one's blocks are pending";
  EXPECT_EQ(ready->calls.load(), 0) << "nothing was consumed yet";

  // The reader takes partition 0's first block; its credit returns at the next TryNext.
  ASSERT_OK_AND_ASSIGN(int read, readers_[0]->Poll(1, [&](const arrow::RecordBatch& batch) {
    return check_->Check(0, batch);
  }));
  ASSERT_EQ(read, 1);
  EXPECT_EQ(ready->calls.load(), 0);
  ASSERT_OK_AND_ASSIGN(read, readers_[0]->Poll(1 << 20, [&](const arrow::RecordBatch& batch) {
    return check_->Check(0, batch);
  }));
  EXPECT_EQ(read, 0) << "nothing more was sent";
  EXPECT_GE(ready->calls.load(), 1) << "the returned credit must wake the writer";
  ASSERT_OK(manager_->Drain(id_, 0));
  ASSERT_OK_AND_ASSIGN(read, readers_[0]->Poll(1, [&](const arrow::RecordBatch& batch) {
    return check_->Check(0, batch);
  }));
  EXPECT_EQ(read, 1) << "Drain sent partition 0's next block";

  // The task's loop: read what is there, drain when woken, write the next batch when nothing
  // is pending, then finish. Each round makes progress (a block consumed and one sent).
  int64_t batches_written = 1;
  std::shared_ptr<arrow::RecordBatch> next = batch1;
  bool finished = false;
  for (int round = 0; round < 10'000 && !finished; ++round) {
    ASSERT_OK(ReadAvailable().status());
    ASSERT_OK(manager_->Drain(id_, 0));
    ASSERT_OK_AND_ASSIGN(pending, manager_->HasPending(id_, 0));
    if (pending) continue;
    if (batches_written < job_.batches_per_writer) {
      ASSERT_OK_AND_ASSIGN(taken, manager_->TryWrite(id_, 0, next));
      ASSERT_TRUE(taken) << "nothing pending and admitted: the batch must be taken";
      if (++batches_written < job_.batches_per_writer) {
        ASSERT_OK_AND_ASSIGN(next, job_.WriterBatch(0, batches_written));
      }
    } else {
      ASSERT_OK_AND_ASSIGN(finished, manager_->TryFinish(id_, 0));
    }
  }
  ASSERT_TRUE(finished);
  ASSERT_OK(ReadAvailable().status());
  for (auto& reader : readers_) EXPECT_TRUE(reader->done());
  ASSERT_OK(check_->Finish());
  EXPECT_EQ(check_->rows_checked(), job_.total_rows());
  ASSERT_OK_AND_ASSIGN(ShuffleStats stats, manager_->Stats(id_));
  EXPECT_EQ(stats.state, ShuffleLifecycle::kComplete);
  EXPECT_EQ(stats.rows_written, job_.total_rows());
  EXPECT_GT(stats.time_blocked.count(), 0) << "time with blocks pending counts as blocked";
  readers_.clear();
  ASSERT_OK(manager_->Release(id_));
  auto network = manager_->network()->stats();
  EXPECT_EQ(network.exclusive_in_use + network.floating_in_use, 0);
  EXPECT_EQ(network.set_aside_segments, 0);
  EXPECT_EQ(transport_->num_open_channels(), 0);
}

// A blocking shuffle's output is the block store, which never waits for a reader: a
// non-blocking writer of it never has anything pending.
TEST_F(NonBlockingWriteTest, AStoreOutputAlwaysTakesTheBlocks) {
  ShuffleOptions options = SmallBlocks();
  options.mode = ShuffleMode::kBlocking;
  Register(3, options);
  ASSERT_OK(manager_->OpenWriter(id_, 0, 0, WriterMode{.non_blocking = true}));
  for (int64_t i = 0; i < job_.batches_per_writer; ++i) {
    ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, i));
    ASSERT_OK_AND_ASSIGN(bool taken, manager_->TryWrite(id_, 0, batch));
    ASSERT_TRUE(taken);
    ASSERT_OK_AND_ASSIGN(bool pending, manager_->HasPending(id_, 0));
    ASSERT_FALSE(pending);
  }
  ASSERT_OK_AND_ASSIGN(bool finished, manager_->TryFinish(id_, 0));
  ASSERT_TRUE(finished);
  for (PartitionId p = 0; p < 3; ++p) {
    ASSERT_OK_AND_ASSIGN(auto stream, manager_->block_store()->OpenReader({id_, p, 0, 0}));
    while (true) {
      ASSERT_OK_AND_ASSIGN(auto block, stream->Next());
      if (!block.has_value()) break;
      ASSERT_NE(block->batch, nullptr) << "local blocks stay batches";
      ASSERT_OK(check_->Check(p, *block->batch));
    }
  }
  ASSERT_OK(check_->Finish());
  EXPECT_EQ(check_->rows_checked(), job_.total_rows());
  ASSERT_OK(manager_->Release(id_));
}

// A cancel while blocks are pending wakes the writer's task; its next calls fail with the
// cause; aborting it drops the pending blocks, whose network segments and memory return; its
// readers get the cause after the blocks already delivered.
TEST_F(NonBlockingWriteTest, CancelWhileBlocksArePendingWakesAndReleasesEverything) {
  Register(2, SmallBlocks());
  auto ready = std::make_shared<ReadyCounter>();
  ASSERT_OK(manager_->OpenWriter(id_, 0, 0,
                                 WriterMode{.non_blocking = true,
                                            .on_ready = ReadyCounter::Callback(ready)}));
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  ASSERT_OK_AND_ASSIGN(bool taken, manager_->TryWrite(id_, 0, batch));
  ASSERT_TRUE(taken);
  ASSERT_OK_AND_ASSIGN(bool pending, manager_->HasPending(id_, 0));
  ASSERT_TRUE(pending);
  EXPECT_GT(manager_->network()->stats().exclusive_in_use, 0);
  std::thread canceller(
      [&] { manager_->CancelWriter(id_, 0, arrow::Status::Cancelled("the job was cancelled")); });
  canceller.join();
  EXPECT_GE(ready->calls.load(), 1) << "the cancel must wake the writer's task";
  ASSERT_RAISES_WITH(Cancelled, "the job was cancelled", manager_->Drain(id_, 0));
  EXPECT_FALSE(manager_->TryWrite(id_, 0, batch).ok());
  ASSERT_OK(manager_->AbortWriter(id_, 0, arrow::Status::Cancelled("the job was cancelled")));
  for (auto& reader : readers_) {
    arrow::Status status;
    for (int i = 0; i < 100 && status.ok(); ++i) {
      status = reader->Poll(1 << 20, [](const arrow::RecordBatch&) {
        return arrow::Status::OK();
      }).status();
    }
    ASSERT_TRUE(status.IsCancelled()) << status.ToString();
    EXPECT_NE(status.message().find("the job was cancelled"), std::string::npos)
        << status.ToString();
  }
  readers_.clear();
  auto network = manager_->network()->stats();
  EXPECT_EQ(network.exclusive_in_use + network.floating_in_use, 0);
  EXPECT_EQ(network.set_aside_segments, 0);
  EXPECT_EQ(transport_->num_open_channels(), 0);
  ASSERT_OK(manager_->Release(id_));
  EXPECT_EQ(manager_->pool()->bytes_allocated(), 0) << "pending blocks were freed";
}

TEST_F(NonBlockingWriteTest, BlockingAndNonBlockingCallsDoNotMix) {
  job_.num_writers = 2;
  Register(2, SmallBlocks());
  ASSERT_OK(manager_->OpenWriter(id_, 0, 0, WriterMode{.non_blocking = true}));
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  ASSERT_RAISES_WITH(Invalid, "TryWrite", manager_->Write(id_, 0, batch));
  ASSERT_RAISES_WITH(Invalid, "TryFinish", manager_->Finish(id_, 0));
  ASSERT_RAISES_WITH(AlreadyExists, "already open",
                     manager_->OpenWriter(id_, 0, 0, WriterMode{.non_blocking = true}));
  ASSERT_OK(manager_->OpenWriter(id_, 1, 0, WriterMode{}));
  ASSERT_RAISES_WITH(Invalid, "opened blocking", manager_->TryWrite(id_, 1, batch).status());
  ASSERT_OK(manager_->AbortWriter(id_, 0, arrow::Status::Cancelled("test over")));
  ASSERT_OK(manager_->AbortWriter(id_, 1, arrow::Status::Cancelled("test over")));
  readers_.clear();
  ASSERT_OK(manager_->Release(id_));
}

// 10 writer tasks and 5 reader tasks of one pipelined HASH shuffle, all on a pool of 2
// threads, with one exclusive and one floating credit per channel, 4 KiB network segments and
// a budget in which about 5 writers' working sets fit at once (so admission keeps some waiting
// in line). A blocking writer would hold a pool thread while it waits, and with both threads
// held by writers no reader runs: the pool reports the deadlock (or the shuffle's timeout fails
// the waits). Every row arrives exactly once at its partition, in order per (writer,
// partition) stream, and the rows and payload sums per partition equal the reference.
TEST_F(NonBlockingWriteTest, TenWritersAndFiveReadersRunOnTwoThreads) {
  constexpr int32_t kWriters = 10;
  constexpr int32_t kPartitions = 5;
  job_.num_writers = kWriters;
  job_.batches_per_writer = 6;
  job_.data.batch_rows = 1000;
  ShuffleOptions options = SmallBlocks();
  options.target_block_rows = 64;
  options.target_block_bytes = 4096;
  options.floating_credits = 1;
  spec_ = job_.MakeSpec(EdgeType::kHash, kPartitions).ValueOrDie();

  // Size the budget from the writers' non-blocking working set at this batch size.
  ASSERT_OK_AND_ASSIGN(auto first, job_.WriterBatch(0, 0));
  ShuffleDescriptor sizing;
  sizing.spec = spec_;
  sizing.options = options;
  const int64_t working_set = ShuffleManager::WriterWorkingSetBytes(
      sizing, RowBytes::RangeBytes(*first, 0, first->num_rows()), /*non_blocking=*/true);
  ShuffleManagerOptions manager_options;
  manager_options.memory_budget = 10 * working_set;  // 5 working sets in the reservable half
  manager_options.network.segment_size = 4096;
  manager_options.network_fraction = 0.5;
  manager_options.spill = testing::TestSpillOptions();
  manager_ = ShuffleManager::Make(manager_options, transport_.get()).ValueOrDie();
  Register(kPartitions, options);

  StepPool pool(2);
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> left_pending{0};
  std::atomic<int64_t> most_in_line{0};  // writers seen waiting for admission at once
  for (TaskIndex w = 0; w < kWriters; ++w) {
    struct State {
      bool opened = false;
      int64_t next = 0;
      std::shared_ptr<arrow::RecordBatch> batch;
    };
    auto state = std::make_shared<State>();
    // The task's index is its writer's: writers are added first.
    const std::function<void()> wake = pool.Waker(w);
    pool.Add("writer " + std::to_string(w), [this, w, state, wake, &refused, &left_pending,
                                             &most_in_line]() -> arrow::Result<StepPool::Step> {
      if (!state->opened) {
        ARROW_RETURN_NOT_OK(manager_->OpenWriter(
            id_, w, 0, WriterMode{.non_blocking = true, .on_ready = wake}));
        state->opened = true;
      }
      if (state->next < job_.batches_per_writer) {
        if (state->batch == nullptr) {
          ARROW_ASSIGN_OR_RAISE(state->batch, job_.WriterBatch(w, state->next));
        }
        ARROW_ASSIGN_OR_RAISE(bool taken, manager_->TryWrite(id_, w, state->batch));
        if (!taken) {
          refused.fetch_add(1);
          const int64_t in_line = manager_->writers_waiting_for_admission();
          int64_t seen = most_in_line.load();
          while (in_line > seen && !most_in_line.compare_exchange_weak(seen, in_line)) {
          }
          return StepPool::Step::kPark;
        }
        state->batch.reset();
        ++state->next;
        ARROW_ASSIGN_OR_RAISE(bool pending, manager_->HasPending(id_, w));
        if (pending) left_pending.fetch_add(1);
        return StepPool::Step::kAgain;
      }
      ARROW_ASSIGN_OR_RAISE(bool finished, manager_->TryFinish(id_, w));
      return finished ? StepPool::Step::kDone : StepPool::Step::kPark;
    });
  }
  PartitionTotals received{std::vector<int64_t>(kPartitions, 0),
                           std::vector<int64_t>(kPartitions, 0)};
  for (PartitionId p = 0; p < kPartitions; ++p) {
    PolledPartition* reader = readers_[p].get();
    const int index = pool.Add("reader " + std::to_string(p), [this, reader, p, &received]()
                                   -> arrow::Result<StepPool::Step> {
      // A few batches per step, so the other tasks get their turns.
      ARROW_ASSIGN_OR_RAISE(int taken, reader->Poll(8, [&](const arrow::RecordBatch& batch) {
        AddTotals(batch, p, &received);
        return check_->Check(p, batch);
      }));
      if (reader->done()) return StepPool::Step::kDone;
      return taken == 8 ? StepPool::Step::kAgain : StepPool::Step::kPark;
    });
    reader->SetOnReadable(pool.Waker(index));
  }
  ASSERT_OK(pool.Run());

  ASSERT_OK(check_->Finish());
  EXPECT_EQ(check_->rows_checked(), job_.total_rows());
  const PartitionTotals reference = ReferenceTotals(job_, kPartitions);
  EXPECT_EQ(received.rows, reference.rows);
  EXPECT_EQ(received.p0_sum, reference.p0_sum);
  // The run exercised what it is about: writers refused (pending blocks, admission) and parked.
  EXPECT_GT(refused.load(), 0);
  EXPECT_GT(left_pending.load(), 0);
  EXPECT_GT(most_in_line.load(), 0) << "the budget admits only some writers at once";
  EXPECT_GT(pool.parks(), 0);
  ASSERT_OK_AND_ASSIGN(ShuffleStats stats, manager_->Stats(id_));
  EXPECT_EQ(stats.state, ShuffleLifecycle::kComplete);
  EXPECT_EQ(stats.writers_finished, kWriters);
  EXPECT_LE(manager_->pool()->peak_bytes(), manager_->pool()->budget());
  readers_.clear();
  ASSERT_OK(manager_->Release(id_));
  EXPECT_EQ(transport_->num_open_channels(), 0);
  auto network = manager_->network()->stats();
  EXPECT_EQ(network.exclusive_in_use + network.floating_in_use, 0);
}

// Admission without the wait: in a budget where one writer's working set fits and two do not,
// a second and a third non-blocking writer are refused at once (TryWrite returns false, on the
// calling thread, taking nothing) and keep their places in line; when the first finishes, the
// second is woken (and not the third, still behind it), and so on. A working set that can never
// fit is refused at once with OutOfMemory.
class NonBlockingAdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = InProcessTransport::Make().ValueOrDie();
    job_.data.batch_rows = 500;
    job_.num_writers = 4;
    job_.batches_per_writer = 2;
    spec_ = job_.MakeSpec(EdgeType::kHash, 2).ValueOrDie();
    ShuffleOptions options = SmallBlocks();
    options.mode = ShuffleMode::kBlocking;  // the store takes every block: only admission waits
    ShuffleDescriptor sizing;
    sizing.spec = spec_;
    sizing.options = options;
    working_set_ = ShuffleManager::WriterWorkingSetBytes(
        sizing, int64_t{2} * options.target_block_bytes, /*non_blocking=*/true);
    ShuffleManagerOptions manager_options;
    manager_options.memory_budget = 3 * working_set_;  // 1.5 working sets may be reserved
    manager_options.spill = testing::TestSpillOptions();
    manager_ = ShuffleManager::Make(manager_options, transport_.get()).ValueOrDie();
    id_ = manager_->RegisterShuffle("op", spec_, GeneratedSchema(job_.data), job_.num_writers,
                                    options)
              .ValueOrDie();
    for (int w = 0; w < job_.num_writers; ++w) ready_.push_back(std::make_shared<ReadyCounter>());
  }

  arrow::Status Open(TaskIndex w) {
    return manager_->OpenWriter(id_, w, 0,
                                WriterMode{.non_blocking = true,
                                           .on_ready = ReadyCounter::Callback(ready_[w])});
  }
  arrow::Result<bool> TryWrite(TaskIndex w) {
    ARROW_ASSIGN_OR_RAISE(auto batch, job_.WriterBatch(w, 0));
    return manager_->TryWrite(id_, w, batch);
  }

  std::unique_ptr<InProcessTransport> transport_;
  std::unique_ptr<ShuffleManager> manager_;
  GeneratedJob job_;
  std::shared_ptr<const PartitionSpec> spec_;
  int64_t working_set_ = 0;
  ShuffleId id_;
  std::vector<std::shared_ptr<ReadyCounter>> ready_;
};

TEST_F(NonBlockingAdmissionTest, RefusedAtOnceAndWokenInArrivalOrder) {
  ASSERT_OK(Open(0));
  ASSERT_OK_AND_ASSIGN(bool taken, TryWrite(0));
  ASSERT_TRUE(taken) << "the first writer fits";
  ASSERT_OK(Open(1));
  ASSERT_OK(Open(2));
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(1));
  EXPECT_FALSE(taken) << "the second working set does not fit beside the first";
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(2));
  EXPECT_FALSE(taken);
  ASSERT_OK_AND_ASSIGN(bool finished, manager_->TryFinish(id_, 2));
  EXPECT_FALSE(finished) << "a writer never admitted must be admitted to open and end its streams";
  EXPECT_EQ(ready_[1]->calls.load(), 0);
  EXPECT_EQ(ready_[2]->calls.load(), 0);

  ASSERT_OK_AND_ASSIGN(finished, manager_->TryFinish(id_, 0));
  ASSERT_TRUE(finished);
  EXPECT_EQ(ready_[1]->calls.load(), 1) << "the first in line fits now";
  EXPECT_EQ(ready_[2]->calls.load(), 0) << "the second in line waits for the first";
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(2));
  EXPECT_FALSE(taken) << "first come, first served: writer 1 is ahead";
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(1));
  ASSERT_TRUE(taken);
  ASSERT_OK_AND_ASSIGN(finished, manager_->TryFinish(id_, 1));
  ASSERT_TRUE(finished);
  EXPECT_EQ(ready_[2]->calls.load(), 1);
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(2));
  ASSERT_TRUE(taken);
  ASSERT_OK_AND_ASSIGN(finished, manager_->TryFinish(id_, 2));
  ASSERT_TRUE(finished);
  ASSERT_OK(Open(3));
  ASSERT_OK_AND_ASSIGN(finished, manager_->TryFinish(id_, 3));
  ASSERT_TRUE(finished) << "an empty writer is admitted, opens its streams and ends them";
  ASSERT_OK_AND_ASSIGN(ShuffleStats stats, manager_->Stats(id_));
  EXPECT_EQ(stats.state, ShuffleLifecycle::kComplete);
  EXPECT_EQ(stats.rows_written, 3 * job_.data.batch_rows);
  ASSERT_OK(manager_->Release(id_));
}

// A blocking writer waiting in OpenWriter keeps its place ahead of a non-blocking writer that
// came later: the non-blocking one is not woken, and is refused, until the blocking one is in.
TEST_F(NonBlockingAdmissionTest, BlockingAndNonBlockingWritersShareOneLine) {
  ASSERT_OK(Open(0));
  ASSERT_OK_AND_ASSIGN(bool taken, TryWrite(0));
  ASSERT_TRUE(taken);
  std::thread blocking([&] { ASSERT_OK(manager_->OpenWriter(id_, 1)); });
  // Bounded: the blocking writer takes its place in line as soon as its thread runs.
  for (int i = 0; i < 20'000 && manager_->writers_waiting_for_admission() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(manager_->writers_waiting_for_admission(), 1);
  ASSERT_OK(Open(2));
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(2));
  EXPECT_FALSE(taken);
  EXPECT_EQ(manager_->writers_waiting_for_admission(), 2);
  ASSERT_OK_AND_ASSIGN(bool finished, manager_->TryFinish(id_, 0));
  ASSERT_TRUE(finished);
  blocking.join();  // admitted: it was first in line
  EXPECT_EQ(ready_[2]->calls.load(), 0) << "writer 1 holds the room now";
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(2));
  EXPECT_FALSE(taken);
  ASSERT_OK(manager_->Finish(id_, 1));
  EXPECT_EQ(ready_[2]->calls.load(), 1);
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(2));
  EXPECT_TRUE(taken);
  ASSERT_OK(manager_->AbortWriter(id_, 2, arrow::Status::Cancelled("test over")));
  ASSERT_OK(manager_->Release(id_));
}

TEST_F(NonBlockingAdmissionTest, CancelWhileInLineWakesAndGivesUpThePlace) {
  ASSERT_OK(Open(0));
  ASSERT_OK_AND_ASSIGN(bool taken, TryWrite(0));
  ASSERT_TRUE(taken);
  ASSERT_OK(Open(1));
  ASSERT_OK(Open(2));
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(1));
  ASSERT_FALSE(taken);
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(2));
  ASSERT_FALSE(taken);
  std::thread canceller(
      [&] { manager_->CancelWriter(id_, 1, arrow::Status::Cancelled("the job was cancelled")); });
  canceller.join();
  EXPECT_EQ(ready_[1]->calls.load(), 1) << "the cancel wakes the writer's task";
  ASSERT_RAISES_WITH(Cancelled, "the job was cancelled", TryWrite(1).status());
  ASSERT_OK(manager_->AbortWriter(id_, 1, arrow::Status::Cancelled("the job was cancelled")));
  ASSERT_OK_AND_ASSIGN(bool finished, manager_->TryFinish(id_, 0));
  ASSERT_TRUE(finished);
  EXPECT_EQ(ready_[2]->calls.load(), 1) << "writer 2 is first in line now";
  ASSERT_OK_AND_ASSIGN(taken, TryWrite(2));
  EXPECT_TRUE(taken);
  ASSERT_OK(manager_->AbortWriter(id_, 2, arrow::Status::Cancelled("test over")));
  ASSERT_OK(manager_->Release(id_));
}

TEST_F(NonBlockingAdmissionTest, AWorkingSetThatCanNeverFitIsRefusedAtOnce) {
  ShuffleManagerOptions options;
  options.memory_budget = working_set_;  // half of one working set may be reserved
  options.spill = testing::TestSpillOptions();
  auto manager = ShuffleManager::Make(options, transport_.get()).ValueOrDie();
  ShuffleOptions shuffle = SmallBlocks();
  shuffle.mode = ShuffleMode::kBlocking;
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager->RegisterShuffle("op", spec_,
                                                              GeneratedSchema(job_.data), 4,
                                                              shuffle));
  ASSERT_RAISES_WITH(OutOfMemory, "outboxes",
                     manager->OpenWriter(id, 0, 0, WriterMode{.non_blocking = true}));
  // A batch too large for any admission is refused at once too, taking nothing.
  ASSERT_OK(Open(0));
  ASSERT_OK_AND_ASSIGN(bool taken, TryWrite(0));
  ASSERT_TRUE(taken);
  GeneratedJob huge = job_;
  huge.data.batch_rows = 200'000;
  ASSERT_OK_AND_ASSIGN(auto batch, huge.WriterBatch(0, 1));
  ASSERT_RAISES_WITH(OutOfMemory, "open writers may use",
                     manager_->TryWrite(id_, 0, batch).status());
  ASSERT_OK(manager_->AbortWriter(id_, 0, arrow::Status::Cancelled("test over")));
  ASSERT_OK(manager_->Release(id_));
  ASSERT_OK(manager->Release(id));
}

// The writer itself, below the manager: with blocks pending it refuses another batch (so its
// outboxes never hold more than one batch's blocks) but takes flushes, which queue behind them;
// TryFinish is false until the outboxes drained; Finish is for blocking writers.
TEST(NonBlockingShuffleWriterTest, RefusesABatchWhileBlocksArePending) {
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  ASSERT_OK_AND_ASSIGN(auto network, NetworkBufferPool::Make({}, 64 << 20));
  GeneratedJob job;
  job.data.batch_rows = 1000;
  job.num_writers = 1;
  job.batches_per_writer = 2;
  auto descriptor = std::make_shared<ShuffleDescriptor>();
  descriptor->shuffle_id = "s";
  descriptor->spec = job.MakeSpec(EdgeType::kHash, 2).ValueOrDie();
  descriptor->schema = GeneratedSchema(job.data);
  descriptor->num_writers = 1;
  descriptor->options = SmallBlocks();
  ChannelOptions channel;
  channel.exclusive_credits = 1;
  std::vector<std::unique_ptr<ChannelReader>> readers;
  for (PartitionId p = 0; p < 2; ++p) {
    ASSERT_OK_AND_ASSIGN(auto reader, transport->OpenReader({"s", p, 0, 0}, channel));
    readers.push_back(std::move(reader));
  }
  auto ready = std::make_shared<ReadyCounter>();
  ASSERT_OK_AND_ASSIGN(
      auto writer,
      ShuffleWriter::Make(descriptor, 0, 0,
                          ChannelOutputFactory(transport.get(), network.get(), channel),
                          /*encode_blocks=*/false, arrow::default_memory_pool(), nullptr,
                          WriterMode{.non_blocking = true,
                                     .on_ready = ReadyCounter::Callback(ready)}));
  ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job, descriptor->spec));
  ASSERT_OK(writer->Write(job.WriterBatch(0, 0).ValueOrDie()));
  ASSERT_TRUE(writer->has_pending());
  const int64_t pending = writer->pending_blocks();
  ASSERT_RAISES_WITH(Invalid, "Drain", writer->Write(job.WriterBatch(0, 1).ValueOrDie()));
  EXPECT_EQ(writer->pending_blocks(), pending) << "the refused batch added nothing";
  ASSERT_OK(writer->Flush());
  ASSERT_RAISES_WITH(Invalid, "TryFinish", writer->Finish());
  auto read_all = [&]() -> arrow::Status {
    for (PartitionId p = 0; p < 2; ++p) {
      std::shared_ptr<arrow::RecordBatch> batch;
      while (true) {
        ARROW_ASSIGN_OR_RAISE(bool got, readers[p]->TryNext(&batch));
        if (!got || batch == nullptr) break;
        ARROW_RETURN_NOT_OK(check->Check(p, *batch));
      }
    }
    return arrow::Status::OK();
  };
  bool written = false;
  for (int round = 0; round < 10'000 && !written; ++round) {
    ASSERT_OK(read_all());
    ASSERT_OK(writer->Drain());
    if (writer->has_pending()) continue;
    ASSERT_OK(writer->Write(job.WriterBatch(0, 1).ValueOrDie()));
    written = true;
  }
  ASSERT_TRUE(written);
  bool finished = false;
  for (int round = 0; round < 10'000 && !finished; ++round) {
    ASSERT_OK_AND_ASSIGN(finished, writer->TryFinish());
    if (!finished) ASSERT_OK(read_all());
  }
  ASSERT_TRUE(finished);
  EXPECT_TRUE(writer->finished());
  ASSERT_OK(read_all());
  EXPECT_GE(ready->calls.load(), 1);
  ASSERT_OK(check->Finish());
  EXPECT_EQ(check->rows_checked(), job.total_rows());
  ASSERT_RAISES_WITH(Invalid, "already finished", writer->TryFinish().status());
}

}  // namespace
}  // namespace sabot
