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
  if (target_block_rows < 1) {
    return arrow::Status::Invalid("target_block_rows must be >= 1, got ", target_block_rows);
  }
  if (target_block_bytes < 1) {
    return arrow::Status::Invalid("target_block_bytes must be >= 1, got ", target_block_bytes);
  }
  if (buffer_timeout.count() < 0) {
    return arrow::Status::Invalid("buffer_timeout must be >= 0 ms, got ", buffer_timeout.count());
  }
  if (exclusive_credits < 1) {
    return arrow::Status::Invalid("exclusive_credits must be >= 1, got ", exclusive_credits);
  }
  if (floating_credits < 0) {
    return arrow::Status::Invalid("floating_credits must be >= 0, got ", floating_credits);
  }
  if (timeout.count() < 1) {
    return arrow::Status::Invalid("timeout must be >= 1 ms, got ", timeout.count());
  }
  return arrow::Status::OK();
}

}  // namespace sabot
