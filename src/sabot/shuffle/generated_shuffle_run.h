#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include <arrow/result.h>

#include "sabot/shuffle/generated_shuffle_check.h"
#include "sabot/shuffle/shuffle_manager.h"

namespace sabot {

// Live counters of a running shuffle job, readable from another thread (progress display).
struct ShuffleProgress {
  std::atomic<int64_t> rows_written{0};
  std::atomic<int64_t> rows_read{0};
  std::atomic<int32_t> writers_finished{0};
  std::atomic<int32_t> readers_finished{0};
};

// What one run of a generated shuffle did.
struct ShuffleRunReport {
  int64_t rows_written = 0;
  int64_t bytes_written = 0;  // generated batch bytes handed to the writers
  std::vector<int64_t> partition_rows;  // rows each reader received
  std::chrono::nanoseconds elapsed{0};
};

// Runs the writer tasks and reader tasks of `job`'s shuffle `shuffle_id` (registered with
// `manager`, which must hold writer tasks [writers_begin, writers_end) and reader partitions
// `partitions`), each task on its own thread, and checks every batch a reader receives with
// `check`. Pipelined shuffles run writers and readers together; blocking ones run the readers
// after every writer finished. `upstream` says where each writer ran (empty: all here).
//
// The first failure of any task is returned, naming the task; the other tasks are then stopped
// (their streams aborted), so a failure never hangs the run.
arrow::Result<ShuffleRunReport> RunGeneratedShuffle(ShuffleManager* manager,
                                                    const ShuffleId& shuffle_id,
                                                    const GeneratedJob& job,
                                                    std::vector<TaskIndex> writers,
                                                    std::vector<PartitionId> partitions,
                                                    std::vector<WriterLocation> upstream,
                                                    GeneratedShuffleCheck* check,
                                                    ShuffleProgress* progress = nullptr);

}  // namespace sabot
