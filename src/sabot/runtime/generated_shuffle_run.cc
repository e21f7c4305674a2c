#include "sabot/runtime/generated_shuffle_run.h"

#include <pthread.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>

#include <arrow/array.h>

#include "sabot/common/batch_bytes.h"
#include "sabot/common/error_detail.h"
#include "sabot/memory/budget_pool.h"
#include "sabot/memory/mapped_memory_pool.h"

namespace sabot {

namespace {

void JoinAll(std::vector<std::thread>* threads) {
  for (auto& thread : *threads) thread.join();
  threads->clear();
}

// The CPU time (user + system) of every thread of this process so far, and its page faults.
struct ProcessUsage {
  std::chrono::nanoseconds cpu{0};
  int64_t page_faults = 0;

  static ProcessUsage Now() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto time = [](const timeval& t) {
      return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
    };
    return {time(usage.ru_utime) + time(usage.ru_stime), usage.ru_minflt + usage.ru_majflt};
  }
};

// Names the calling thread (at most 15 characters), so profiles and debuggers tell a run's tasks
// apart; threads it starts inherit the name (a reader's input threads, say).
void NameThread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

// Runs fn(0) ... fn(count - 1) on up to as many threads as cores, named `name`; the first error
// (by index).
arrow::Status ForEachOnCores(size_t count, const char* name,
                             const std::function<arrow::Status(size_t)>& fn) {
  const size_t threads =
      std::min<size_t>(count, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<arrow::Status> statuses(count);
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      NameThread(name);
      for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) statuses[i] = fn(i);
    });
  }
  JoinAll(&workers);
  for (const auto& status : statuses) ARROW_RETURN_NOT_OK(status);
  return arrow::Status::OK();
}

}  // namespace

void ShuffleRunCancellation::Cancel(const arrow::Status& cause) {
  if (cause.ok()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!cause_.ok()) return;
  cause_ = cause;
  // Under the lock: Unsubscribe waits, so nothing a subscriber touches goes away meanwhile.
  for (const auto& [id, on_cancel] : subscribers_) on_cancel(cause_);
}

bool ShuffleRunCancellation::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !cause_.ok();
}

arrow::Status ShuffleRunCancellation::cause() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cause_;
}

int64_t ShuffleRunCancellation::Subscribe(Subscriber on_cancel) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!cause_.ok()) on_cancel(cause_);
  const int64_t id = next_id_++;
  subscribers_.emplace(id, std::move(on_cancel));
  return id;
}

void ShuffleRunCancellation::Unsubscribe(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  subscribers_.erase(id);
}

arrow::Result<ShuffleRunReport> RunGeneratedShuffle(
    ShuffleManager* manager, const ShuffleId& shuffle_id, const GeneratedJob& job,
    std::vector<TaskIndex> writers, std::vector<PartitionId> partitions,
    std::vector<WriterLocation> upstream, GeneratedShuffleCheck* check,
    ShuffleProgress* progress, ShuffleRunCancellation* cancellation, GeneratedRunTiming timing) {
  ARROW_ASSIGN_OR_RAISE(auto descriptor, manager->GetShuffle(shuffle_id));
  ShuffleProgress own_progress;
  if (progress == nullptr) progress = &own_progress;
  ShuffleRunCancellation own_cancellation;
  if (cancellation == nullptr) cancellation = &own_cancellation;
  ARROW_RETURN_NOT_OK(cancellation->cause());
  ShuffleRunReport report;
  report.partition_rows.assign(descriptor->num_partitions(), 0);
  std::vector<int64_t> writer_bytes(writers.size(), 0);
  std::atomic<int64_t> rows_written{0};  // this run's, whatever `progress` counted before
  // The generated input: one batch per writer at a time, in pages returned to the system when
  // the batch is done (not in an allocator's thread heap, where it would stay resident).
  ARROW_ASSIGN_OR_RAISE(auto input_pool, MappedMemoryPool::Make());
  const bool shuffle_only = timing == GeneratedRunTiming::kShuffleOnly;
  // kShuffleOnly: every writer's batches, generated before the clock (one thread per writer, up
  // to the cores), and every batch each reader received, checked after the clock.
  std::vector<std::vector<std::shared_ptr<arrow::RecordBatch>>> inputs(writers.size());
  std::vector<std::vector<std::shared_ptr<arrow::RecordBatch>>> received(
      static_cast<size_t>(descriptor->num_partitions()));
  if (shuffle_only) {
    const auto generate_start = std::chrono::steady_clock::now();
    auto generate = [&](size_t slot) -> arrow::Status {
      inputs[slot].reserve(static_cast<size_t>(job.batches_per_writer));
      for (int64_t i = 0; i < job.batches_per_writer; ++i) {
        ARROW_ASSIGN_OR_RAISE(auto batch, job.WriterBatch(writers[slot], i, input_pool.get()));
        inputs[slot].push_back(std::move(batch));
      }
      return arrow::Status::OK();
    };
    ARROW_RETURN_NOT_OK(ForEachOnCores(writers.size(), "run-generate", generate));
    report.generate_elapsed = std::chrono::steady_clock::now() - generate_start;
  }
  const ProcessUsage usage_start = ProcessUsage::Now();
  auto start = std::chrono::steady_clock::now();

  auto run_writer = [&](size_t slot) {
    const TaskIndex w = writers[slot];
    NameThread("run-writer-" + std::to_string(w));
    arrow::Status status = [&]() -> arrow::Status {
      // Subscribed while it opens and writes: a failure elsewhere ends even a wait for
      // admission (the flag, which also covers a cancellation before the wait began) or for
      // credit (CancelWriter).
      std::atomic<bool> cancelled{false};
      AllocationWaitCancel wait_cancel(&cancelled);
      const int64_t subscription = cancellation->Subscribe([&](const arrow::Status& cause) {
        cancelled.store(true, std::memory_order_release);
        manager->CancelWriter(shuffle_id, w, cause);
      });
      arrow::Status written = [&]() -> arrow::Status {
        ARROW_RETURN_NOT_OK(manager->OpenWriter(shuffle_id, w));
        for (int64_t i = 0; i < job.batches_per_writer && !cancellation->cancelled(); ++i) {
          std::shared_ptr<arrow::RecordBatch> batch;
          if (shuffle_only) {
            batch = inputs[slot][static_cast<size_t>(i)];
          } else {
            ARROW_ASSIGN_OR_RAISE(batch, job.WriterBatch(w, i, input_pool.get()));
          }
          writer_bytes[slot] += BatchBufferBytes(*batch);
          ARROW_RETURN_NOT_OK(manager->Write(shuffle_id, w, batch));
          progress->rows_written.fetch_add(batch->num_rows());
          rows_written.fetch_add(batch->num_rows());
        }
        if (cancellation->cancelled()) return arrow::Status::Cancelled("another task failed");
        return manager->Finish(shuffle_id, w);
      }();
      cancellation->Unsubscribe(subscription);
      return written;
    }();
    if (!status.ok()) {
      (void)manager->AbortWriter(shuffle_id, w, status);
      cancellation->Cancel(WithShuffleContext(status, {.shuffle_id = shuffle_id, .writer_task = w}));
    }
    progress->writers_finished.fetch_add(1);
  };

  auto run_reader = [&](PartitionId p) {
    NameThread("run-reader-" + std::to_string(p));
    arrow::Status status = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto reader, manager->ReadPartition(shuffle_id, p, upstream));
      // Subscribed while it reads: a failure elsewhere cancels it even while Next() waits.
      ShuffleReader* waiting = reader.get();
      const int64_t subscription =
          cancellation->Subscribe([waiting](const arrow::Status&) { waiting->Cancel(); });
      arrow::Status read = [&]() -> arrow::Status {
        while (true) {
          ARROW_ASSIGN_OR_RAISE(auto batch, reader->Next());
          if (batch == nullptr) return arrow::Status::OK();
          const int64_t rows = batch->num_rows();
          if (shuffle_only) {
            received[static_cast<size_t>(p)].push_back(std::move(batch));
          } else {
            ARROW_RETURN_NOT_OK(check->Check(p, *batch));
          }
          report.partition_rows[p] += rows;
          progress->rows_read.fetch_add(rows);
        }
      }();
      cancellation->Unsubscribe(subscription);
      return read;
    }();
    cancellation->Cancel(WithShuffleContext(status, {.shuffle_id = shuffle_id, .partition_id = p}));
    progress->readers_finished.fetch_add(1);
  };

  std::vector<std::thread> threads;
  for (size_t slot = 0; slot < writers.size(); ++slot) threads.emplace_back(run_writer, slot);
  if (descriptor->options.mode == ShuffleMode::kBlocking) JoinAll(&threads);
  for (PartitionId p : partitions) threads.emplace_back(run_reader, p);
  JoinAll(&threads);

  report.elapsed = std::chrono::steady_clock::now() - start;
  if (shuffle_only) {
    const ProcessUsage usage = ProcessUsage::Now();
    report.cpu_elapsed = usage.cpu - usage_start.cpu;
    report.page_faults = usage.page_faults - usage_start.page_faults;
  }
  ARROW_RETURN_NOT_OK(cancellation->cause());
  if (shuffle_only) {
    // After the clock: every kept batch through the same check, partitions in parallel (Check
    // allows that), then the batches are released.
    const auto check_start = std::chrono::steady_clock::now();
    // The memory the kept batches hold: each buffer once, however many slices share it.
    std::unordered_set<const arrow::Buffer*> buffers;
    for (const auto& batches : received) {
      for (const auto& batch : batches) {
        for (const auto& column : batch->columns()) {
          for (const auto& buffer : column->data()->buffers) {
            if (buffer != nullptr && buffers.insert(buffer.get()).second) {
              report.bytes_kept += buffer->size();
            }
          }
        }
      }
    }
    auto check_partition = [&](size_t i) -> arrow::Status {
      const PartitionId p = partitions[i];
      for (const auto& batch : received[static_cast<size_t>(p)]) {
        ARROW_RETURN_NOT_OK(WithShuffleContext(check->Check(p, *batch),
                                               {.shuffle_id = shuffle_id, .partition_id = p}));
      }
      return arrow::Status::OK();
    };
    ARROW_RETURN_NOT_OK(ForEachOnCores(partitions.size(), "run-check", check_partition));
    report.check_elapsed = std::chrono::steady_clock::now() - check_start;
  }
  for (int64_t bytes : writer_bytes) report.bytes_written += bytes;
  report.rows_written = rows_written.load();
  return report;
}

}  // namespace sabot
