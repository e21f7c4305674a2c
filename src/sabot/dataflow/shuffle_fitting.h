#pragma once

// Fitting a job's shuffles to its memory budget, when the job is bound (job_binding.h): so that
// a job the budget cannot hold is refused before any task runs, naming the edge, instead of
// waiting at run time.
//
// A writer holds a working set it cannot spill (ShuffleManager::WriterWorkingSetBytes: a block
// per partition, blocks being sealed, batches being partitioned, and a non-blocking pipelined
// writer's outboxes) and open writers together may reserve ShuffleManager::kReservableFraction
// of the budget. In a pipelined job every writer runs at once (a writer finishes only when its
// readers read, and they run in the same job), so all of them must fit together; in a blocking
// job writers finish without their readers and are admitted one task after another, so the
// writers one task opens together (one per output shuffle of its chain: a task cannot move a row
// until all of them are admitted) must fit together. Pipelined channels also each set aside network segments for as long as they are open.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <arrow/result.h>

#include "sabot/shuffle/shuffle_descriptor.h"
#include "sabot/shuffle/shuffle_manager.h"

namespace sabot {

// The smallest block the fitting gives a shuffle's writers (below it per-block costs dominate).
inline constexpr int64_t kMinFittedBlockBytes = 4 * 1024;
// The most of the budget the network pool may take for a job's pipelined channels: what writers
// reserve (kReservableFraction) stays theirs.
inline constexpr double kMaxNetworkFraction = 0.45;
// The smallest network segment the fitting chooses.
inline constexpr int64_t kMinSegmentBytes = 4 * 1024;

struct FittedShuffles {
  // The shuffles with their block size lowered (halved, not below kMinFittedBlockBytes) until
  // the writers fit as described above.
  std::vector<ShuffleDescriptor> shuffles;
  // The share of the budget the network pool needs so that every pipelined channel can set aside
  // its exclusive segments and every shuffle its floating ones; `manager.network_fraction` when
  // that is enough.
  double network_fraction = 0;
  // The network pool's segment size: `manager.network.segment_size`, halved (not below
  // kMinSegmentBytes) while the channels would need more than kMaxNetworkFraction (many
  // channels, each setting aside its exclusive segments); blocks are then cut to what a channel
  // can ever reserve.
  int64_t segment_size = 0;
};

// Fits `shuffles` to `manager.memory_budget`. `writer_groups` lists the shuffles one task writes
// together (indices into `shuffles`, e.g. the output shuffles of one chain); a shuffle in no
// group is a group of its own. OutOfMemory when no block size can fit, or the channels need
// more than kMaxNetworkFraction of the budget: the message gives the bytes needed and the budget
// and begins with `label_of(i)` for the shuffle i that needs the most.
arrow::Result<FittedShuffles> FitShufflesToBudget(
    std::vector<ShuffleDescriptor> shuffles, const ShuffleManagerOptions& manager,
    const std::function<std::string(size_t)>& label_of,
    const std::vector<std::vector<size_t>>& writer_groups = {});

}  // namespace sabot
