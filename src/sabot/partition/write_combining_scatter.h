#pragma once

#include <cstdint>
#include <vector>

#include "sabot/common/ids.h"

namespace sabot {

// Scatters fixed-width columns by partition id, writing the output around the cache.
//
// The plain scatter, out[dest[i]] = in[i], stores one value at a time into one write stream per
// partition: every output cache line is first read from memory (read for ownership), then
// written back, and the input is evicted to make room. Here each partition keeps, per column,
// one cache line (64 bytes) in a small buffer that stays in L1/L2; a value goes into its slot
// of that line, and when the slot it fills is the line's last, the whole line goes to the output
// with non-temporal stores: each output line is written once, whole, without being read first.
// Lines go out with one 64-byte store on AVX-512, four 16-byte SSE2 stores otherwise, with the
// line's last value blended in registers rather than stored and loaded back (a load of a value
// still in the store buffer stalls). Measured (docs/performance.md, Partitioning): HASH at 64
// partitions went from 0.42 to 0.76 of memcpy of the same bytes, most of it from this pass.
//
// Lines are aligned to the output buffer (which must be 64-byte aligned), so a partition's first
// and last lines are shared with its neighbours. A flushed line carries stale bytes in the slots
// of the partitions before it; those slots all lie in their partitions' last lines, which are
// never flushed whole but written slot by slot after a store fence, once every full line is out.
// So the output is exact: out[starts[p] + k] = the k-th value of partition p, in input order.
//
// Worth it only when the output is larger than the cache and every partition gets several lines
// of each column: see Pays. Below that, the plain scatter (row_scatter.cc) is as fast and leaves
// the output in cache for whoever reads it next.
//
// Thread safety: not safe for concurrent use; the scratch (line buffers, cursors) is reused from
// one call to the next. Make one per task.
class WriteCombiningScatter {
 public:
  // How lines go out: kBest picks the widest stores the CPU has (one 64-byte store with AVX-512,
  // else four 16-byte SSE2 stores; plain copies off x86); kPortable always takes the SSE2 (or
  // plain) kernel, so tests cover it on any machine.
  enum class Kernel { kBest, kPortable };

  explicit WriteCombiningScatter(Kernel kernel = Kernel::kBest) : kernel_(kernel) {}

  // One column: `in` points at value 0 of the input (offset applied), `out` at a 64-byte
  // aligned buffer with room for every row's value.
  struct Column {
    const uint8_t* in;
    uint8_t* out;
  };

  // Value widths handled, in bytes: 1, 2, 4, 8 and 16 (kMaxWidth).
  static constexpr int64_t kMaxWidth = 16;
  static bool SupportsWidth(int64_t width);

  // Whether scattering `rows` rows of `row_bytes` fixed-width bytes into `num_partitions`
  // partitions pays for writing around the cache (measured in partition_benchmark).
  static bool Pays(int64_t rows, int64_t row_bytes, int32_t num_partitions);

  // Scatters `columns` (each `width` bytes a value, SupportsWidth) of `rows` rows, where row i
  // goes to partition ids[i] at position starts[ids[i]] + (its rank among that partition's rows).
  // `ids` are trusted to be in [0, num_partitions) and `starts` to be the prefix sums of their
  // histogram. The streamed lines are fenced before the last lines are written with ordinary
  // stores, so on return the output is complete and ordered like any other stores: handing it
  // to another thread needs only the usual synchronization (a mutex, a queue).
  void Scatter(int64_t width, const std::vector<Column>& columns, const PartitionId* ids,
               int64_t rows, const int64_t* starts, int32_t num_partitions);

 private:
  // One 64-byte line per partition per column of a group, 64-byte aligned.
  struct alignas(64) Line {
    uint8_t bytes[64];
  };
  Kernel kernel_;
  std::vector<Line> lines_;
  std::vector<uint32_t> cursors_;
};

}  // namespace sabot
