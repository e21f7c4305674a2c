#include "sabot/shuffle/shuffle_options.h"

#include <arrow/status.h>
#include <arrow/util/compression.h>

namespace sabot {

std::string_view ShuffleModeName(ShuffleMode mode) {
  return mode == ShuffleMode::kPipelined ? "pipelined" : "blocking";
}

arrow::Result<ShuffleMode> ParseShuffleMode(std::string_view name) {
  if (name == "pipelined") return ShuffleMode::kPipelined;
  if (name == "blocking") return ShuffleMode::kBlocking;
  return arrow::Status::Invalid("unknown shuffle mode '", name,
                                "' (expected 'pipelined' or 'blocking')");
}

ShuffleOptions::ShuffleOptions() : compression(arrow::Compression::UNCOMPRESSED) {}

arrow::Status ShuffleOptions::Validate() const {
  if (compression != arrow::Compression::UNCOMPRESSED &&
      compression != arrow::Compression::LZ4_FRAME && compression != arrow::Compression::ZSTD) {
    return arrow::Status::Invalid("shuffle compression must be none, lz4 or zstd, got ",
                                  arrow::util::Codec::GetCodecAsString(compression));
  }
  constexpr int64_t kMaxBlockRows = int64_t{1} << 31;
  constexpr int64_t kMaxBlockBytes = int64_t{1} << 30;
  constexpr int64_t kMaxTimeoutMs = int64_t{7} * 24 * 3600 * 1000;  // a week
  constexpr int32_t kMaxCredits = 1 << 16;
  if (target_block_rows < 1 || target_block_rows > kMaxBlockRows) {
    return arrow::Status::Invalid("target_block_rows must be between 1 and ", kMaxBlockRows,
                                  ", got ", target_block_rows);
  }
  if (target_block_bytes < 1 || target_block_bytes > kMaxBlockBytes) {
    return arrow::Status::Invalid("target_block_bytes must be between 1 and ", kMaxBlockBytes,
                                  ", got ", target_block_bytes);
  }
  if (buffer_timeout.count() < 0 || buffer_timeout.count() > kMaxTimeoutMs) {
    return arrow::Status::Invalid("buffer_timeout must be between 0 and ", kMaxTimeoutMs,
                                  " ms, got ", buffer_timeout.count());
  }
  if (exclusive_credits < 1 || exclusive_credits > kMaxCredits) {
    return arrow::Status::Invalid("exclusive_credits must be between 1 and ", kMaxCredits,
                                  ", got ", exclusive_credits);
  }
  if (floating_credits < 0 || floating_credits > kMaxCredits) {
    return arrow::Status::Invalid("floating_credits must be between 0 and ", kMaxCredits,
                                  ", got ", floating_credits);
  }
  if (timeout.count() < 1 || timeout.count() > kMaxTimeoutMs) {
    return arrow::Status::Invalid("timeout must be between 1 and ", kMaxTimeoutMs, " ms, got ",
                                  timeout.count());
  }
  return arrow::Status::OK();
}

}  // namespace sabot
