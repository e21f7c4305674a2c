#include "sabot/partition/write_combining_scatter.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#define SABOT_HAVE_AVX512_KERNEL 1
#endif

namespace sabot {

namespace {

constexpr uint32_t kLineBytes = 64;
// Columns scattered in one pass over the ids (each row's cursor update and flush test serve all
// of them); more would keep more lines per partition than L1 holds at 64 partitions.
constexpr size_t kMaxGroup = 4;
// Pays: the output must outgrow a core's L2 share (writing around the cache then saves the
// read for ownership, and nothing is lost by not leaving the output in cache) ...
constexpr int64_t kMinOutputBytes = 1 << 20;
// ... every partition must get a few lines per column (otherwise most values go through the
// last-line pass) ...
constexpr int64_t kMinRowsPerPartition = 16;
// ... there must be more partitions than the plain scatter handles well (up to 16, its write
// streams stay in L1 and it wins: measured at 8 partitions) ...
constexpr int32_t kMinCombinedPartitions = 17;
// ... and the line buffers must fit in L2 (4096 partitions x 4 columns x 64 bytes = 1 MiB).
constexpr int32_t kMaxCombinedPartitions = 4096;

struct Bytes16 {
  uint64_t lo;
  uint64_t hi;
};

// Writes the 64-byte line at `line` (64-byte aligned) to `out` (64-byte aligned) around the
// cache, with `last` as the value of its last slot: the caller has not stored it into `line`,
// so no load here waits for a store still in flight (a load spanning a just-stored value cannot
// take it from the store buffer and stalls until the store is done).
template <typename T>
inline void StreamLine(uint8_t* out, const uint8_t* line, const T& last) {
#if defined(__SSE2__)
  auto* to = reinterpret_cast<__m128i*>(out);
  const auto* from = reinterpret_cast<const __m128i*>(line);
  _mm_stream_si128(to + 0, _mm_load_si128(from + 0));
  _mm_stream_si128(to + 1, _mm_load_si128(from + 1));
  _mm_stream_si128(to + 2, _mm_load_si128(from + 2));
  __m128i top;
  if constexpr (sizeof(T) == 16) {
    top = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&last));
  } else {
    // The last 16 bytes: the line's first 16 - sizeof(T) of them, then `last`.
    uint64_t bits = 0;
    std::memcpy(&bits, &last, sizeof(T));
    const __m128i keep = _mm_srli_si128(_mm_set1_epi32(-1), sizeof(T));
    top = _mm_or_si128(_mm_and_si128(_mm_load_si128(from + 3), keep),
                       _mm_slli_si128(_mm_cvtsi64_si128(static_cast<int64_t>(bits)),
                                      16 - sizeof(T)));
  }
  _mm_stream_si128(to + 3, top);
#else
  std::memcpy(out, line, kLineBytes - sizeof(T));
  std::memcpy(out + kLineBytes - sizeof(T), &last, sizeof(T));
#endif
}

#if defined(SABOT_HAVE_AVX512_KERNEL)
// StreamLine with one 64-byte non-temporal store (AVX-512F).
template <typename T>
__attribute__((target("avx512f"))) inline void StreamLineAvx512(uint8_t* out, const uint8_t* line,
                                                                 const T& last) {
  const __m512i whole = _mm512_load_si512(line);
  __m512i full;
  if constexpr (sizeof(T) == 16) {
    full = _mm512_inserti32x4(whole, _mm_loadu_si128(reinterpret_cast<const __m128i*>(&last)), 3);
  } else {
    uint64_t word = 0;
    if constexpr (sizeof(T) < 8) {
      std::memcpy(&word, line + kLineBytes - 8, 8);
      word &= ~uint64_t{0} >> (8 * sizeof(T));
    }
    uint64_t bits = 0;
    std::memcpy(&bits, &last, sizeof(T));
    word |= bits << (64 - 8 * sizeof(T));
    full = _mm512_mask_set1_epi64(whole, 0x80, static_cast<int64_t>(word));
  }
  _mm512_stream_si512(reinterpret_cast<__m512i*>(out), full);
}
#endif

// Orders every streamed line before the stores that follow (and for other threads).
inline void FenceStreams() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// The pass over the rows for K columns of T: each value into its slot of its partition's line,
// a line streamed out when its last slot is filled. lines holds K lines per partition.
template <typename T, int K, bool kAvx512>
[[gnu::always_inline]] inline void ScatterRows(const WriteCombiningScatter::Column* columns,
                                               const PartitionId* __restrict ids, int64_t rows,
                                               uint32_t* __restrict cursors,
                                               uint8_t* __restrict lines) {
  constexpr uint32_t kSlots = kLineBytes / sizeof(T);
  const uint8_t* __restrict in[K];  // the input need not be aligned to T: read by memcpy
  uint8_t* out[K];
  for (int c = 0; c < K; ++c) {
    in[c] = columns[c].in;
    out[c] = columns[c].out;
  }
  for (int64_t i = 0; i < rows; ++i) {
    const uint32_t p = static_cast<uint32_t>(ids[i]);
    const uint32_t d = cursors[p]++;
    const uint32_t slot = d & (kSlots - 1);
    uint8_t* line = lines + static_cast<size_t>(p) * K * kLineBytes;
    if (slot != kSlots - 1) {
#pragma GCC unroll 4
      for (int c = 0; c < K; ++c) {
        std::memcpy(line + c * kLineBytes + slot * sizeof(T), in[c] + i * sizeof(T), sizeof(T));
      }
    } else {
      const size_t at = static_cast<size_t>(d - slot) * sizeof(T);
#pragma GCC unroll 4
      for (int c = 0; c < K; ++c) {
        T last;
        std::memcpy(&last, in[c] + i * sizeof(T), sizeof(T));
#if defined(SABOT_HAVE_AVX512_KERNEL)
        if constexpr (kAvx512) {
          StreamLineAvx512<T>(out[c] + at, line + c * kLineBytes, last);
          continue;
        }
#endif
        StreamLine<T>(out[c] + at, line + c * kLineBytes, last);
      }
    }
  }
}

template <typename T, int K>
void ScatterGroup(const WriteCombiningScatter::Column* columns, const PartitionId* ids,
                  int64_t rows, uint32_t* cursors, uint8_t* lines) {
  ScatterRows<T, K, false>(columns, ids, rows, cursors, lines);
}

#if defined(SABOT_HAVE_AVX512_KERNEL)
template <typename T, int K>
__attribute__((target("avx512f"))) void ScatterGroupAvx512(
    const WriteCombiningScatter::Column* columns, const PartitionId* ids, int64_t rows,
    uint32_t* cursors, uint8_t* lines) {
  ScatterRows<T, K, true>(columns, ids, rows, cursors, lines);
}

bool HasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
#endif

// After the fence: each partition's last line, slot by slot (only its own slots; the line's
// other slots belong to the partitions around it and are written by their own pass).
template <typename T, int K>
void WriteLastLines(const WriteCombiningScatter::Column* columns, const int64_t* starts,
                    const uint32_t* cursors, int32_t num_partitions, const uint8_t* lines) {
  constexpr uint32_t kSlots = kLineBytes / sizeof(T);
  for (int32_t p = 0; p < num_partitions; ++p) {
    const uint32_t begin = static_cast<uint32_t>(starts[p]);
    const uint32_t end = cursors[p];
    const uint32_t from = std::max(begin, end & ~(kSlots - 1));
    const uint8_t* line = lines + static_cast<size_t>(p) * K * kLineBytes;
    for (int c = 0; c < K; ++c) {
      for (uint32_t d = from; d < end; ++d) {
        std::memcpy(columns[c].out + static_cast<size_t>(d) * sizeof(T),
                    line + c * kLineBytes + (d & (kSlots - 1)) * sizeof(T), sizeof(T));
      }
    }
  }
}

template <typename T, int K>
void ScatterGroupBest(bool portable, const WriteCombiningScatter::Column* columns,
                      const PartitionId* ids, int64_t rows, uint32_t* cursors, uint8_t* lines) {
#if defined(SABOT_HAVE_AVX512_KERNEL)
  if (!portable && HasAvx512()) return ScatterGroupAvx512<T, K>(columns, ids, rows, cursors, lines);
#endif
  ScatterGroup<T, K>(columns, ids, rows, cursors, lines);
}

template <typename T>
void ScatterWidth(bool portable, const WriteCombiningScatter::Column* columns, size_t k,
                  const PartitionId* ids, int64_t rows, uint32_t* cursors, uint8_t* lines) {
  switch (k) {
    case 1:
      return ScatterGroupBest<T, 1>(portable, columns, ids, rows, cursors, lines);
    case 2:
      return ScatterGroupBest<T, 2>(portable, columns, ids, rows, cursors, lines);
    case 3:
      return ScatterGroupBest<T, 3>(portable, columns, ids, rows, cursors, lines);
    default:
      return ScatterGroupBest<T, 4>(portable, columns, ids, rows, cursors, lines);
  }
}

template <typename T>
void WriteLastLinesWidth(const WriteCombiningScatter::Column* columns, size_t k,
                         const int64_t* starts, const uint32_t* cursors, int32_t num_partitions,
                         const uint8_t* lines) {
  switch (k) {
    case 1:
      return WriteLastLines<T, 1>(columns, starts, cursors, num_partitions, lines);
    case 2:
      return WriteLastLines<T, 2>(columns, starts, cursors, num_partitions, lines);
    case 3:
      return WriteLastLines<T, 3>(columns, starts, cursors, num_partitions, lines);
    default:
      return WriteLastLines<T, 4>(columns, starts, cursors, num_partitions, lines);
  }
}

// Calls fn.template operator()<T>() with T the value type of `width` bytes.
template <typename Fn>
void DispatchWidth(int64_t width, Fn&& fn) {
  switch (width) {
    case 1:
      return fn.template operator()<uint8_t>();
    case 2:
      return fn.template operator()<uint16_t>();
    case 4:
      return fn.template operator()<uint32_t>();
    case 8:
      return fn.template operator()<uint64_t>();
    default:
      return fn.template operator()<Bytes16>();
  }
}

}  // namespace

bool WriteCombiningScatter::SupportsWidth(int64_t width) {
  return width == 1 || width == 2 || width == 4 || width == 8 || width == 16;
}

bool WriteCombiningScatter::Pays(int64_t rows, int64_t row_bytes, int32_t num_partitions) {
  return num_partitions >= kMinCombinedPartitions && num_partitions <= kMaxCombinedPartitions &&
         rows >= kMinRowsPerPartition * num_partitions && rows * row_bytes >= kMinOutputBytes;
}

void WriteCombiningScatter::Scatter(int64_t width, const std::vector<Column>& columns,
                                    const PartitionId* ids, int64_t rows, const int64_t* starts,
                                    int32_t num_partitions) {
  const size_t partitions = static_cast<size_t>(num_partitions);
  lines_.resize(partitions * kMaxGroup);
  cursors_.resize(partitions);
  uint8_t* lines = reinterpret_cast<uint8_t*>(lines_.data());
  const bool portable = kernel_ == Kernel::kPortable;
  for (size_t first = 0; first < columns.size(); first += kMaxGroup) {
    const size_t k = std::min(kMaxGroup, columns.size() - first);
    const Column* group = columns.data() + first;
    for (size_t p = 0; p < partitions; ++p) cursors_[p] = static_cast<uint32_t>(starts[p]);
    DispatchWidth(width, [&]<typename T>() {
      ScatterWidth<T>(portable, group, k, ids, rows, cursors_.data(), lines);
      FenceStreams();
      WriteLastLinesWidth<T>(group, k, starts, cursors_.data(), num_partitions, lines);
    });
  }
}

}  // namespace sabot
