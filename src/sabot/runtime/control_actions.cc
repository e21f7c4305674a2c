#include "sabot/runtime/control_actions.h"

#include <charconv>
#include <optional>
#include <string_view>

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

// A task index or attempt: decimal digits only, at most 2^31 - 1.
std::optional<int32_t> ParseIndex(std::string_view text) {
  int32_t value = 0;
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

void PutGeneratedJob(const GeneratedJob& job, ControlMessage* message) {
  message->SetInt("batch_rows", job.data.batch_rows);
  message->SetInt("key_cardinality", job.data.key_cardinality);
  message->SetInt("skewed", job.data.distribution == KeyDistribution::kSkewed ? 1 : 0);
  // The hot fraction travels as parts per million: exact enough, and an integer.
  message->SetInt("hot_key_ppm", static_cast<int64_t>(job.data.hot_key_fraction * 1e6));
  message->SetInt("string_key", job.data.string_key ? 1 : 0);
  message->SetInt("payload_columns", job.data.payload_columns);
  message->SetInt("seed", static_cast<int64_t>(job.data.seed));
  message->SetInt("num_writers", job.num_writers);
  message->SetInt("batches_per_writer", job.batches_per_writer);
}

arrow::Result<GeneratedJob> GetGeneratedJob(const ControlMessage& message) {
  GeneratedJob job;
  ARROW_ASSIGN_OR_RAISE(job.data.batch_rows, message.GetInt("batch_rows"));
  ARROW_ASSIGN_OR_RAISE(job.data.key_cardinality, message.GetInt("key_cardinality"));
  ARROW_ASSIGN_OR_RAISE(int64_t skewed, message.GetInt("skewed"));
  job.data.distribution = skewed ? KeyDistribution::kSkewed : KeyDistribution::kUniform;
  ARROW_ASSIGN_OR_RAISE(int64_t hot_ppm, message.GetInt("hot_key_ppm"));
  job.data.hot_key_fraction = static_cast<double>(hot_ppm) / 1e6;
  ARROW_ASSIGN_OR_RAISE(int64_t string_key, message.GetInt("string_key"));
  job.data.string_key = string_key != 0;
  ARROW_ASSIGN_OR_RAISE(int64_t payload_columns, message.GetInt("payload_columns"));
  job.data.payload_columns = static_cast<int32_t>(payload_columns);
  ARROW_ASSIGN_OR_RAISE(int64_t seed, message.GetInt("seed"));
  job.data.seed = static_cast<uint64_t>(seed);
  ARROW_ASSIGN_OR_RAISE(int64_t writers, message.GetInt("num_writers"));
  job.num_writers = static_cast<int32_t>(writers);
  ARROW_ASSIGN_OR_RAISE(job.batches_per_writer, message.GetInt("batches_per_writer"));
  ARROW_RETURN_NOT_OK(job.Validate());
  return job;
}

void PutWriterLocations(const std::vector<WriterLocation>& locations, ControlMessage* message) {
  std::string text;
  for (size_t i = 0; i < locations.size(); ++i) {
    if (i > 0) text += ' ';
    text += std::to_string(locations[i].writer_task) + ":" +
            std::to_string(locations[i].attempt) + "@" + locations[i].agent;
  }
  message->Set("upstream", std::move(text));
}

arrow::Result<std::vector<WriterLocation>> GetWriterLocations(const ControlMessage& message) {
  ARROW_ASSIGN_OR_RAISE(std::string text, message.Get("upstream"));
  std::vector<WriterLocation> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    start = end + 1;
    size_t colon = item.find(':');
    size_t at = item.find('@');
    if (colon == std::string::npos || at == std::string::npos || colon > at) {
      return arrow::Status::Invalid("upstream item ", QuoteInput(item),
                                    " is not task:attempt@location");
    }
    WriterLocation location;
    auto task = ParseIndex(std::string_view(item).substr(0, colon));
    auto attempt = ParseIndex(std::string_view(item).substr(colon + 1, at - colon - 1));
    if (!task || !attempt) {
      return arrow::Status::Invalid("upstream item ", QuoteInput(item),
                                    " has a bad task or attempt (decimal digits, < 2^31)");
    }
    location.writer_task = *task;
    location.attempt = *attempt;
    location.agent = item.substr(at + 1);
    out.push_back(std::move(location));
  }
  return out;
}

void PutShuffleStats(const ShuffleStats& stats, ControlMessage* message) {
  message->Set("shuffle_id", stats.shuffle_id);
  message->SetInt("writers_finished", stats.writers_finished);
  message->SetInt("rows_written", stats.rows_written);
  message->SetInt("blocks_written", stats.blocks_written);
  message->SetInt("bytes_written", stats.bytes_written);
  message->SetInts("partition_rows", stats.partition_rows);
  message->SetInts("partition_bytes", stats.partition_bytes);
  message->SetInt("bytes_spilled", stats.bytes_spilled);
  message->SetInt("blocks_spilled", stats.blocks_spilled);
  message->SetInt("time_blocked_ns", stats.time_blocked.count());
}

arrow::Result<ShuffleStats> GetShuffleStats(const ControlMessage& message) {
  ShuffleStats stats;
  ARROW_ASSIGN_OR_RAISE(stats.shuffle_id, message.Get("shuffle_id"));
  ARROW_ASSIGN_OR_RAISE(int64_t finished, message.GetInt("writers_finished"));
  stats.writers_finished = static_cast<int32_t>(finished);
  ARROW_ASSIGN_OR_RAISE(stats.rows_written, message.GetInt("rows_written"));
  ARROW_ASSIGN_OR_RAISE(stats.blocks_written, message.GetInt("blocks_written"));
  ARROW_ASSIGN_OR_RAISE(stats.bytes_written, message.GetInt("bytes_written"));
  ARROW_ASSIGN_OR_RAISE(stats.partition_rows, message.GetInts("partition_rows"));
  ARROW_ASSIGN_OR_RAISE(stats.partition_bytes, message.GetInts("partition_bytes"));
  ARROW_ASSIGN_OR_RAISE(stats.bytes_spilled, message.GetInt("bytes_spilled"));
  ARROW_ASSIGN_OR_RAISE(stats.blocks_spilled, message.GetInt("blocks_spilled"));
  ARROW_ASSIGN_OR_RAISE(int64_t blocked, message.GetInt("time_blocked_ns"));
  stats.time_blocked = std::chrono::nanoseconds(blocked);
  return stats;
}

}  // namespace sabot
