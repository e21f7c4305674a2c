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

namespace {

// Invalid naming the option unless low <= value <= high.
arrow::Status CheckBetween(const char* name, int64_t value, int64_t low, int64_t high,
                           const char* unit = "") {
  if (value >= low && value <= high) return arrow::Status::OK();
  return arrow::Status::Invalid(name, " must be between ", low, " and ", high, unit, ", got ",
                                value, unit);
}

}  // namespace

arrow::Result<arrow::Compression::type> ShuffleCompressionFromCode(int64_t code) {
  for (auto type : {arrow::Compression::UNCOMPRESSED, arrow::Compression::LZ4_FRAME,
                    arrow::Compression::ZSTD}) {
    if (code == static_cast<int64_t>(type)) return type;
  }
  return arrow::Status::Invalid("shuffle compression must be none (",
                                static_cast<int>(arrow::Compression::UNCOMPRESSED), "), lz4 (",
                                static_cast<int>(arrow::Compression::LZ4_FRAME), ") or zstd (",
                                static_cast<int>(arrow::Compression::ZSTD), "), got code ", code);
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
  ARROW_RETURN_NOT_OK(CheckBetween("target_block_rows", target_block_rows, 1, kMaxBlockRows));
  ARROW_RETURN_NOT_OK(CheckBetween("target_block_bytes", target_block_bytes, 1, kMaxBlockBytes));
  ARROW_RETURN_NOT_OK(
      CheckBetween("buffer_timeout", buffer_timeout.count(), 0, kMaxTimeoutMs, " ms"));
  ARROW_RETURN_NOT_OK(CheckBetween("exclusive_credits", exclusive_credits, 1, kMaxCredits));
  ARROW_RETURN_NOT_OK(CheckBetween("floating_credits", floating_credits, 0, kMaxCredits));
  ARROW_RETURN_NOT_OK(CheckBetween("timeout", timeout.count(), 1, kMaxTimeoutMs, " ms"));
  return arrow::Status::OK();
}

}  // namespace sabot
