#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <arrow/result.h>
#include <arrow/util/type_fwd.h>

namespace sabot {

// How readers and writers of a shuffle meet (DESIGN.md, "Two shuffle modes").
enum class ShuffleMode {
  // Streaming: readers consume while writers produce, through credit-based channels.
  kPipelined,
  // Batch: writers materialize their output in their agent's block store (memory, then disk);
  // readers fetch it, and may fetch again, until the shuffle is released.
  kBlocking,
};

std::string_view ShuffleModeName(ShuffleMode mode);  // "pipelined" or "blocking"
arrow::Result<ShuffleMode> ParseShuffleMode(std::string_view name);

// The shuffle compression whose arrow::Compression::type value is `code`: UNCOMPRESSED,
// LZ4_FRAME or ZSTD; Invalid naming the code for anything else (checked before any cast).
arrow::Result<arrow::Compression::type> ShuffleCompressionFromCode(int64_t code);

// The per-shuffle choices every agent of a job must agree on; part of a ShuffleDescriptor.
struct ShuffleOptions {
  ShuffleMode mode = ShuffleMode::kPipelined;
  // Compression of IPC bodies on the wire and on disk: UNCOMPRESSED, LZ4_FRAME or ZSTD.
  arrow::Compression::type compression;
  // A writer's partition buffer seals a block at this many rows or bytes.
  int64_t target_block_rows = 64 * 1024;
  int64_t target_block_bytes = 256 * 1024;
  // Sealing what waited this long in a buffer, for latency in streaming jobs; 0 disables.
  std::chrono::milliseconds buffer_timeout{5};
  // Pipelined channels: credits each reader grants per channel, and floating credits shared by
  // the channels of one reader (lent to channels whose writers report a backlog).
  int32_t exclusive_credits = 2;
  int32_t floating_credits = 8;
  // Bound on every wait (credit, data, a writer that never starts); then an error, never a hang.
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};

  ShuffleOptions();
  // Invalid naming the first field out of range.
  arrow::Status Validate() const;
};

}  // namespace sabot
