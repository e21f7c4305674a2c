#include "sabot/dataflow/shuffle_fitting.h"

#include <algorithm>
#include <string>

namespace sabot {

namespace {

bool Pipelined(const ShuffleDescriptor& d) { return d.options.mode == ShuffleMode::kPipelined; }

// One writer's working set, admitted for batches of num_partitions blocks (the task slices
// larger batches to that size: task_runner.h).
int64_t WriterBytes(const ShuffleDescriptor& d) {
  const int64_t batch = int64_t{d.num_partitions()} * d.options.target_block_bytes;
  return ShuffleManager::WriterWorkingSetBytes(d, batch, /*non_blocking=*/true);
}

// What shuffle `d` needs of the reservable budget: all its writers (pipelined), or one.
int64_t NeededBytes(const ShuffleDescriptor& d) {
  return (Pipelined(d) ? int64_t{d.num_writers} : 1) * WriterBytes(d);
}

}  // namespace

arrow::Result<FittedShuffles> FitShufflesToBudget(
    std::vector<ShuffleDescriptor> shuffles, const ShuffleManagerOptions& manager,
    const std::function<std::string(size_t)>& label_of,
    const std::vector<std::vector<size_t>>& writer_groups) {
  const int64_t budget = manager.memory_budget;
  const auto reservable =
      static_cast<int64_t>(ShuffleManager::kReservableFraction * static_cast<double>(budget));
  // The groups of blocking shuffles one task writes at once; a shuffle in no group alone.
  std::vector<std::vector<size_t>> groups;
  std::vector<bool> grouped(shuffles.size(), false);
  for (const auto& group : writer_groups) {
    std::vector<size_t> blocking;
    for (size_t i : group) {
      if (i < shuffles.size() && !grouped[i] && !Pipelined(shuffles[i])) {
        blocking.push_back(i);
        grouped[i] = true;
      }
    }
    if (!blocking.empty()) groups.push_back(std::move(blocking));
  }
  for (size_t i = 0; i < shuffles.size(); ++i) {
    if (!grouped[i] && !Pipelined(shuffles[i])) groups.push_back({i});
  }
  // The blocking writers one task holds at once, for the task that holds the most.
  auto blocking_needed = [&] {
    int64_t most = 0;
    for (const auto& group : groups) {
      int64_t sum = 0;
      for (size_t i : group) sum += NeededBytes(shuffles[i]);
      most = std::max(most, sum);
    }
    return most;
  };
  // The pipelined shuffles' writers together, and the blocking writers of one task.
  auto needed = [&] {
    int64_t pipelined = 0;
    for (const ShuffleDescriptor& d : shuffles) {
      if (Pipelined(d)) pipelined += NeededBytes(d);
    }
    return std::max(pipelined, blocking_needed());
  };
  auto largest = [&] {
    size_t index = 0;
    for (size_t i = 1; i < shuffles.size(); ++i) {
      if (NeededBytes(shuffles[i]) > NeededBytes(shuffles[index])) index = i;
    }
    return index;
  };
  while (!shuffles.empty() && needed() > reservable) {
    bool shrunk = false;
    for (ShuffleDescriptor& d : shuffles) {
      if (d.options.target_block_bytes / 2 >= kMinFittedBlockBytes) {
        d.options.target_block_bytes /= 2;
        shrunk = true;
      }
    }
    if (!shrunk) {
      const size_t worst = largest();
      const ShuffleDescriptor& d = shuffles[worst];
      return arrow::Status::OutOfMemory(
          label_of(worst), ": its ", d.num_writers, " x ", d.num_partitions(),
          " shuffle's writers need ", NeededBytes(d) >> 20, " MiB of buffers",
          Pipelined(d) ? " at once (a pipelined job runs every writer together)"
                       : " (a task holds the writers of all its output shuffles at once)",
          " even with ", kMinFittedBlockBytes >> 10, " KiB blocks, and the job's shuffles ",
          needed() >> 20, " MiB, more than the ", reservable >> 20, " MiB a memory budget of ",
          budget >> 20, " MiB lets writers hold: raise the memory budget "
          "(--memory-budget-mib, or options: {memory_budget: ...}) or lower the parallelism",
          Pipelined(d) ? ", or run the shuffles blocking (options: {shuffle_mode: blocking}), "
                         "which needs one writer's buffers at a time"
                       : "");
    }
  }

  FittedShuffles fitted;
  fitted.network_fraction = manager.network_fraction;
  NetworkBufferPoolOptions network = manager.network;
  int64_t channels = 0;
  int64_t segments = 0;  // per segment size: exclusive per channel, floating per shuffle
  for (const ShuffleDescriptor& d : shuffles) {
    if (!Pipelined(d)) continue;
    const int64_t n = int64_t{d.num_writers} * d.num_partitions();
    channels += n;
    segments += n * network.exclusive_segments_per_channel + network.floating_segments_per_shuffle;
  }
  auto share = [&] {
    return static_cast<double>(segments * network.segment_size) / static_cast<double>(budget);
  };
  while (share() > kMaxNetworkFraction && network.segment_size / 2 >= kMinSegmentBytes) {
    network.segment_size /= 2;
  }
  if (share() > kMaxNetworkFraction) {
    return arrow::Status::OutOfMemory(
        label_of(largest()), ": the job's pipelined shuffles have ", channels,
        " channels, which need ", (segments * network.segment_size) >> 20,
        " MiB of network buffers at once even with ", kMinSegmentBytes >> 10,
        " KiB segments, more than ", static_cast<int64_t>(kMaxNetworkFraction * 100),
        "% of a memory budget of ", budget >> 20,
        " MiB: raise the memory budget, lower the parallelism, or run the shuffles blocking "
        "(options: {shuffle_mode: blocking})");
  }
  // A pipelined block must fit what its channel can ever reserve in segments.
  const int64_t channel_bytes =
      int64_t{network.exclusive_segments_per_channel + network.floating_segments_per_shuffle} *
      network.segment_size;
  for (ShuffleDescriptor& d : shuffles) {
    if (Pipelined(d)) {
      d.options.target_block_bytes = std::min(d.options.target_block_bytes, channel_bytes);
    }
  }
  fitted.network_fraction = std::max(fitted.network_fraction, share());
  fitted.segment_size = network.segment_size;
  fitted.shuffles = std::move(shuffles);
  return fitted;
}

}  // namespace sabot
