#include "sabot/runtime/control_actions.h"

#include <charconv>
#include <limits>
#include <optional>
#include <string_view>

#include <set>

#include <arrow/util/compression.h>

#include "sabot/common/ids.h"
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

namespace {

// The most bytes of one agent location.
constexpr size_t kMaxLocationBytes = 512;

arrow::Result<int64_t> GetNonNegative(const ControlMessage& message, const std::string& name) {
  ARROW_ASSIGN_OR_RAISE(int64_t value, message.GetInt(name));
  if (value < 0) {
    return arrow::Status::Invalid("control field ", QuoteInput(name), " must be >= 0, got ",
                                  value);
  }
  return value;
}

// A list field of at most `limit` items.
arrow::Result<std::vector<int64_t>> GetList(const ControlMessage& message, const std::string& name,
                                            int64_t limit) {
  ARROW_ASSIGN_OR_RAISE(std::string text, message.Get(name));
  const int64_t items = text.empty() ? 0 : 1 + std::count(text.begin(), text.end(), ',');
  if (items > limit) {
    return arrow::Status::Invalid("control field ", QuoteInput(name), " has ", items,
                                  " items; at most ", limit, " are accepted");
  }
  return message.GetInts(name);
}

}  // namespace

namespace {

// "task_attempts": one attempt (0 to 2^31 - 1) per task of the job.
arrow::Result<std::vector<int64_t>> GetTaskAttempts(const ControlMessage& message,
                                                    size_t num_tasks) {
  ARROW_ASSIGN_OR_RAISE(auto attempts, GetList(message, "task_attempts", kMaxDeployedTasks));
  if (attempts.size() != num_tasks) {
    return arrow::Status::Invalid("control field 'task_attempts' has ", attempts.size(),
                                  " entries; the job has ", num_tasks, " tasks");
  }
  for (size_t t = 0; t < attempts.size(); ++t) {
    if (attempts[t] < 0 || attempts[t] > std::numeric_limits<int32_t>::max()) {
      return arrow::Status::Invalid("task ", t, "'s attempt ", attempts[t], " is out of range");
    }
  }
  return attempts;
}

}  // namespace

void PutTaskDeployment(const TaskDeployment& deployment, ControlMessage* message) {
  message->Set("job_id", deployment.job_id);
  message->SetBytes("plan", *arrow::Buffer::FromString(deployment.plan_json));
  message->SetInt("memory_budget", deployment.memory_budget);
  message->SetInt("state_budget", deployment.state_budget_per_task);
  message->SetInt("threads", deployment.threads);
  message->SetInt("stall_timeout_ms", deployment.stall_timeout_ms);
  const ShuffleOptions& shuffle = deployment.shuffle;
  message->SetInt("compression", static_cast<int64_t>(shuffle.compression));
  message->SetInt("target_block_rows", shuffle.target_block_rows);
  message->SetInt("target_block_bytes", shuffle.target_block_bytes);
  message->SetInt("buffer_timeout_ms", shuffle.buffer_timeout.count());
  message->SetInt("exclusive_credits", shuffle.exclusive_credits);
  message->SetInt("floating_credits", shuffle.floating_credits);
  message->SetInt("shuffle_timeout_ms", shuffle.timeout.count());
  std::string agents;
  for (const std::string& agent : deployment.agents) agents += (agents.empty() ? "" : " ") + agent;
  message->Set("agents", std::move(agents));
  message->SetInts("task_agents", deployment.task_agents);
  message->SetInts("tasks", deployment.tasks);
  if (deployment.lineage) message->SetInt("lineage", 1);
  if (!deployment.task_attempts.empty()) {
    message->SetInts("task_attempts", deployment.task_attempts);
  }
  if (!deployment.checkpoint_job.empty()) {
    message->Set("checkpoint_job", deployment.checkpoint_job);
    message->SetBytes("checkpoint_directory",
                      *arrow::Buffer::FromString(deployment.checkpoint_directory));
    message->SetInt("checkpoint_retained", deployment.checkpoint_retained);
    message->SetInt("restore_checkpoint", deployment.restore_checkpoint);
  }
}

arrow::Result<TaskDeployment> GetTaskDeployment(const ControlMessage& message) {
  TaskDeployment out;
  ARROW_ASSIGN_OR_RAISE(out.job_id, message.Get("job_id"));
  ARROW_RETURN_NOT_OK(ValidateId(out.job_id, "job id"));
  ARROW_ASSIGN_OR_RAISE(auto plan, message.GetBytes("plan"));
  out.plan_json = plan->ToString();
  ARROW_ASSIGN_OR_RAISE(out.memory_budget, GetNonNegative(message, "memory_budget"));
  ARROW_ASSIGN_OR_RAISE(out.state_budget_per_task, GetNonNegative(message, "state_budget"));
  ARROW_ASSIGN_OR_RAISE(int64_t threads, GetNonNegative(message, "threads"));
  if (threads > 1024) {
    return arrow::Status::Invalid("control field 'threads' must be at most 1024, got ", threads);
  }
  out.threads = static_cast<int32_t>(threads);
  ARROW_ASSIGN_OR_RAISE(out.stall_timeout_ms, GetNonNegative(message, "stall_timeout_ms"));
  ShuffleOptions& shuffle = out.shuffle;
  ARROW_ASSIGN_OR_RAISE(int64_t compression, message.GetInt("compression"));
  ARROW_ASSIGN_OR_RAISE(shuffle.compression, ShuffleCompressionFromCode(compression));
  ARROW_ASSIGN_OR_RAISE(shuffle.target_block_rows, message.GetInt("target_block_rows"));
  ARROW_ASSIGN_OR_RAISE(shuffle.target_block_bytes, message.GetInt("target_block_bytes"));
  ARROW_ASSIGN_OR_RAISE(int64_t buffer_ms, GetNonNegative(message, "buffer_timeout_ms"));
  shuffle.buffer_timeout = std::chrono::milliseconds(buffer_ms);
  ARROW_ASSIGN_OR_RAISE(int64_t exclusive, message.GetInt("exclusive_credits"));
  ARROW_ASSIGN_OR_RAISE(int64_t floating, message.GetInt("floating_credits"));
  if (exclusive < 0 || exclusive > (1 << 20) || floating < 0 || floating > (1 << 20)) {
    return arrow::Status::Invalid("credits out of range: exclusive ", exclusive, ", floating ",
                                  floating);
  }
  shuffle.exclusive_credits = static_cast<int32_t>(exclusive);
  shuffle.floating_credits = static_cast<int32_t>(floating);
  ARROW_ASSIGN_OR_RAISE(int64_t timeout_ms, GetNonNegative(message, "shuffle_timeout_ms"));
  shuffle.timeout = std::chrono::milliseconds(timeout_ms);
  ARROW_RETURN_NOT_OK(shuffle.Validate());

  ARROW_ASSIGN_OR_RAISE(std::string agents, message.Get("agents"));
  size_t start = 0;
  while (start < agents.size()) {
    size_t end = agents.find(' ', start);
    if (end == std::string::npos) end = agents.size();
    std::string agent = agents.substr(start, end - start);
    start = end + 1;
    if (agent.empty() || agent.size() > kMaxLocationBytes) {
      return arrow::Status::Invalid("agent location ", QuoteInput(agent),
                                    " is empty or longer than ", kMaxLocationBytes, " bytes");
    }
    if (static_cast<int64_t>(out.agents.size()) >= kMaxDeployAgents) {
      return arrow::Status::Invalid("a deployment names at most ", kMaxDeployAgents, " agents");
    }
    out.agents.push_back(std::move(agent));
  }
  if (out.agents.empty()) return arrow::Status::Invalid("a deployment names no agent");
  ARROW_ASSIGN_OR_RAISE(out.task_agents, GetList(message, "task_agents", kMaxDeployedTasks));
  for (size_t t = 0; t < out.task_agents.size(); ++t) {
    if (out.task_agents[t] < 0 ||
        out.task_agents[t] >= static_cast<int64_t>(out.agents.size())) {
      return arrow::Status::IndexError("task ", t, "'s agent ", out.task_agents[t],
                                       " is out of range: the deployment names ",
                                       out.agents.size(), " agents");
    }
  }
  ARROW_ASSIGN_OR_RAISE(out.tasks, GetList(message, "tasks", kMaxDeployedTasks));
  std::set<int64_t> seen;
  for (int64_t task : out.tasks) {
    if (task < 0 || task >= static_cast<int64_t>(out.task_agents.size())) {
      return arrow::Status::IndexError("task ", task, " is out of range: the job has ",
                                       out.task_agents.size(), " tasks");
    }
    if (!seen.insert(task).second) {
      return arrow::Status::Invalid("task ", task, " appears twice in the deployment");
    }
  }
  if (message.Has("lineage")) {
    ARROW_ASSIGN_OR_RAISE(int64_t lineage, message.GetInt("lineage"));
    out.lineage = lineage != 0;
  }
  if (message.Has("task_attempts")) {
    ARROW_ASSIGN_OR_RAISE(out.task_attempts, GetTaskAttempts(message, out.task_agents.size()));
  }
  if (message.Has("checkpoint_job")) {
    ARROW_ASSIGN_OR_RAISE(out.checkpoint_job, message.Get("checkpoint_job"));
    ARROW_RETURN_NOT_OK(ValidateId(out.checkpoint_job, "checkpoint job name"));
    ARROW_ASSIGN_OR_RAISE(auto directory, message.GetBytes("checkpoint_directory"));
    out.checkpoint_directory = directory->ToString();
    if (out.checkpoint_directory.empty() || out.checkpoint_directory.size() > 4096) {
      return arrow::Status::Invalid("the checkpoint directory of job '", out.job_id,
                                    "' is empty or longer than 4096 bytes");
    }
    ARROW_ASSIGN_OR_RAISE(int64_t retained, message.GetInt("checkpoint_retained"));
    if (retained < 1 || retained > 1000) {
      return arrow::Status::Invalid("control field 'checkpoint_retained' must be 1 to 1000, got ",
                                    retained);
    }
    out.checkpoint_retained = static_cast<int32_t>(retained);
    ARROW_ASSIGN_OR_RAISE(out.restore_checkpoint, GetNonNegative(message, "restore_checkpoint"));
  }
  return out;
}

namespace {

// Snapshot acks as text, one line per ack and one per file (the fields tab-separated):
//   A <task> <id>                      an ack without error (its files follow)
//   D <task> <id>                      the ack of a task that had ended (no files)
//   F <task> <id> <bytes> <crc32c> <path>
//   E <task> <id> <code> <message>     a failed snapshot
// A message's tabs and line breaks are written as spaces.
std::string EncodeSnapshotAcks(const std::vector<SnapshotAck>& acks) {
  std::string text;
  for (const SnapshotAck& ack : acks) {
    const std::string head = std::to_string(ack.task) + "\t" + std::to_string(ack.id);
    if (!ack.error.ok()) {
      std::string message = ack.error.message();
      for (char& c : message) {
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
      }
      text += "E\t" + head + "\t" + std::to_string(static_cast<int>(ack.error.code())) + "\t" +
              message + "\n";
      continue;
    }
    text += (ack.finished ? "D\t" : "A\t") + head + "\n";
    for (const SnapshotAckFile& file : ack.files) {
      text += "F\t" + head + "\t" + std::to_string(file.bytes) + "\t" +
              std::to_string(file.crc32c) + "\t" + file.path + "\n";
    }
  }
  return text;
}

arrow::Result<int64_t> ParseAckInt(std::string_view text, std::string_view what,
                                   int64_t min = 0) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < min) {
    return arrow::Status::Invalid("snapshot ack field '", what, "' is not a count: ",
                                  QuoteInput(text));
  }
  return value;
}

arrow::Result<std::vector<SnapshotAck>> DecodeSnapshotAcks(std::string_view text) {
  std::vector<SnapshotAck> acks;
  int64_t lines = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    if (end == std::string_view::npos) {
      return arrow::Status::Invalid("the snapshot acks do not end with a line break");
    }
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    if (++lines > kMaxSnapshotAckLines) {
      return arrow::Status::Invalid("a job status has more than ", kMaxSnapshotAckLines,
                                    " snapshot ack lines");
    }
    std::vector<std::string_view> fields;
    const size_t limit = line.empty() ? 0 : (line[0] == 'E' ? 5 : 6);
    while (fields.size() + 1 < limit) {
      size_t tab = line.find('\t');
      if (tab == std::string_view::npos) break;
      fields.push_back(line.substr(0, tab));
      line.remove_prefix(tab + 1);
    }
    fields.push_back(line);
    const std::string_view kind = fields[0];
    const size_t expected =
        kind == "A" || kind == "D" ? 3 : kind == "E" ? 5 : kind == "F" ? 6 : 0;
    if (expected == 0 || fields.size() != expected) {
      return arrow::Status::Invalid("snapshot ack line ", lines, " is malformed");
    }
    // A failed snapshot may not know its task (-1).
    ARROW_ASSIGN_OR_RAISE(int64_t task, ParseAckInt(fields[1], "task", kind == "E" ? -1 : 0));
    ARROW_ASSIGN_OR_RAISE(int64_t id, ParseAckInt(fields[2], "checkpoint id"));
    if (kind == "F") {
      if (acks.empty() || acks.back().task != task || acks.back().id != id ||
          !acks.back().error.ok() || acks.back().finished) {
        return arrow::Status::Invalid("snapshot ack line ", lines, " names a file of task ", task,
                                      " of checkpoint ", id, " outside its ack");
      }
      ARROW_ASSIGN_OR_RAISE(int64_t bytes, ParseAckInt(fields[3], "bytes"));
      ARROW_ASSIGN_OR_RAISE(int64_t crc, ParseAckInt(fields[4], "crc32c"));
      if (crc > 0xFFFFFFFFLL || fields[5].empty()) {
        return arrow::Status::Invalid("snapshot ack line ", lines, " is malformed");
      }
      acks.back().files.push_back(
          {std::string(fields[5]), bytes, static_cast<uint32_t>(crc)});
      continue;
    }
    SnapshotAck ack;
    ack.task = task;
    ack.id = id;
    ack.finished = kind == "D";
    if (kind == "E") {
      ARROW_ASSIGN_OR_RAISE(int64_t code, ParseAckInt(fields[3], "code"));
      if (code == 0 || code > static_cast<int64_t>(arrow::StatusCode::AlreadyExists)) {
        code = static_cast<int64_t>(arrow::StatusCode::UnknownError);
      }
      ack.error = arrow::Status(static_cast<arrow::StatusCode>(code), std::string(fields[4]));
    }
    acks.push_back(std::move(ack));
  }
  return acks;
}

}  // namespace

void PutJobStatus(const JobStatusReport& report, ControlMessage* message) {
  message->SetInt("done", report.done ? 1 : 0);
  message->SetInt("busy", report.busy ? 1 : 0);
  message->SetInt("signature", report.signature);
  message->SetInt("failure_code", static_cast<int64_t>(report.failure.code()));
  message->Set("failure", report.failure.ok() ? "" : report.failure.message());
  message->SetInt("failed_task", report.failed_task);
  message->SetInts("task_index", report.task_index);
  message->SetInts("task_finished", report.task_finished);
  message->SetInts("task_rows_in", report.task_rows_in);
  message->SetInts("task_rows_out", report.task_rows_out);
  std::vector<int64_t> ids, rows_in, rows_out, busy, late, spilled, watermark;
  for (const OperatorReport& op : report.operators) {
    ids.push_back(op.id);
    rows_in.push_back(op.rows_in);
    rows_out.push_back(op.rows_out);
    busy.push_back(op.busy.count());
    late.push_back(op.late_rows);
    spilled.push_back(op.state_spilled_bytes);
    watermark.push_back(op.watermark);
  }
  message->SetInts("op_id", ids);
  message->SetInts("op_tasks", report.operator_tasks);
  message->SetInts("op_rows_in", rows_in);
  message->SetInts("op_rows_out", rows_out);
  message->SetInts("op_busy_ns", busy);
  message->SetInts("op_late_rows", late);
  message->SetInts("op_state_spilled", spilled);
  message->SetInts("op_watermark", watermark);
  std::vector<int64_t> bytes, bytes_spilled, blocks_spilled, blocked, rows, writer_blocked;
  std::vector<int64_t> channel_bytes;
  for (const EdgeReport& edge : report.edges) {
    for (int32_t i = 0; i < edge.num_writers; ++i) {
      for (int32_t j = 0; j < edge.num_partitions; ++j) {
        const bool known = static_cast<size_t>(i) < edge.channel_bytes.size() &&
                           static_cast<size_t>(j) < edge.channel_bytes[i].size();
        channel_bytes.push_back(known ? edge.channel_bytes[i][j] : 0);
      }
    }
    for (int32_t w = 0; w < edge.num_writers; ++w) {
      writer_blocked.push_back(static_cast<size_t>(w) < edge.writer_blocked.size()
                                   ? edge.writer_blocked[w].count()
                                   : 0);
    }
    bytes.push_back(edge.bytes);
    bytes_spilled.push_back(edge.bytes_spilled);
    blocks_spilled.push_back(edge.blocks_spilled);
    blocked.push_back(edge.blocked.count());
    for (const auto& row : edge.rows) rows.insert(rows.end(), row.begin(), row.end());
  }
  message->SetInts("edge_bytes", bytes);
  message->SetInts("edge_bytes_spilled", bytes_spilled);
  message->SetInts("edge_blocks_spilled", blocks_spilled);
  message->SetInts("edge_blocked_ns", blocked);
  message->SetInts("edge_rows", rows);
  message->SetInts("edge_writer_blocked_ns", writer_blocked);
  message->SetInts("edge_channel_bytes", channel_bytes);
  message->SetInt("peak_memory_bytes", report.peak_memory_bytes);
  message->SetInt("memory_budget_bytes", report.memory_budget_bytes);
  message->SetInt("peak_rss_bytes", report.peak_rss_bytes);
  if (!report.snapshots.empty()) {
    message->SetBytes("snapshots", *arrow::Buffer::FromString(EncodeSnapshotAcks(report.snapshots)));
  }
}

arrow::Result<JobStatusReport> GetJobStatus(
    const ControlMessage& message, const std::vector<std::pair<int32_t, int32_t>>& edge_shapes) {
  JobStatusReport out;
  ARROW_ASSIGN_OR_RAISE(int64_t done, message.GetInt("done"));
  out.done = done != 0;
  ARROW_ASSIGN_OR_RAISE(int64_t busy, message.GetInt("busy"));
  out.busy = busy != 0;
  ARROW_ASSIGN_OR_RAISE(out.signature, message.GetInt("signature"));
  ARROW_ASSIGN_OR_RAISE(int64_t code, message.GetInt("failure_code"));
  ARROW_ASSIGN_OR_RAISE(std::string failure, message.Get("failure"));
  if (code != 0) {
    if (code < 0 || code > static_cast<int64_t>(arrow::StatusCode::AlreadyExists)) {
      code = static_cast<int64_t>(arrow::StatusCode::UnknownError);
    }
    out.failure = arrow::Status(static_cast<arrow::StatusCode>(code), failure);
  }
  ARROW_ASSIGN_OR_RAISE(out.failed_task, message.GetInt("failed_task"));
  ARROW_ASSIGN_OR_RAISE(out.task_index, GetList(message, "task_index", kMaxDeployedTasks));
  ARROW_ASSIGN_OR_RAISE(out.task_finished, GetList(message, "task_finished", kMaxDeployedTasks));
  ARROW_ASSIGN_OR_RAISE(out.task_rows_in, GetList(message, "task_rows_in", kMaxDeployedTasks));
  ARROW_ASSIGN_OR_RAISE(out.task_rows_out, GetList(message, "task_rows_out", kMaxDeployedTasks));
  const size_t tasks = out.task_index.size();
  if (out.task_finished.size() != tasks || out.task_rows_in.size() != tasks ||
      out.task_rows_out.size() != tasks) {
    return arrow::Status::Invalid("the task lists of a job status differ in length");
  }
  std::vector<std::vector<int64_t>> ops;
  for (const char* name : {"op_id", "op_tasks", "op_rows_in", "op_rows_out", "op_busy_ns",
                           "op_late_rows", "op_state_spilled", "op_watermark"}) {
    ARROW_ASSIGN_OR_RAISE(auto list, GetList(message, name, kMaxDeployedTasks));
    if (!ops.empty() && list.size() != ops[0].size()) {
      return arrow::Status::Invalid("the operator lists of a job status differ in length");
    }
    ops.push_back(std::move(list));
  }
  for (size_t i = 0; i < ops[0].size(); ++i) {
    OperatorReport op;
    op.id = ops[0][i];
    op.rows_in = ops[2][i];
    op.rows_out = ops[3][i];
    op.busy = std::chrono::nanoseconds(ops[4][i]);
    op.late_rows = ops[5][i];
    op.state_spilled_bytes = ops[6][i];
    op.watermark = ops[7][i];
    out.operators.push_back(std::move(op));
    out.operator_tasks.push_back(ops[1][i]);
  }
  std::vector<std::vector<int64_t>> edges;
  for (const char* name : {"edge_bytes", "edge_bytes_spilled", "edge_blocks_spilled",
                           "edge_blocked_ns"}) {
    ARROW_ASSIGN_OR_RAISE(auto list, GetList(message, name, kMaxDeployedTasks));
    if (list.size() != edge_shapes.size()) {
      return arrow::Status::Invalid("a job status has ", list.size(), " edges in ",
                                    QuoteInput(name), "; the job has ", edge_shapes.size());
    }
    edges.push_back(std::move(list));
  }
  int64_t cells = 0;
  for (const auto& [writers, partitions] : edge_shapes) cells += int64_t{writers} * partitions;
  ARROW_ASSIGN_OR_RAISE(auto rows, GetList(message, "edge_rows", cells));
  if (static_cast<int64_t>(rows.size()) != cells) {
    return arrow::Status::Invalid("a job status has ", rows.size(), " edge row cells; the job's ",
                                  "edges have ", cells);
  }
  std::vector<int64_t> channel_bytes;
  if (message.Has("edge_channel_bytes")) {
    ARROW_ASSIGN_OR_RAISE(channel_bytes, GetList(message, "edge_channel_bytes", cells));
    if (static_cast<int64_t>(channel_bytes.size()) != cells) {
      return arrow::Status::Invalid("a job status has ", channel_bytes.size(),
                                    " channel byte cells; the job's edges have ", cells);
    }
  }
  int64_t writers = 0;
  for (const auto& shape : edge_shapes) writers += shape.first;
  std::vector<int64_t> writer_blocked;
  if (message.Has("edge_writer_blocked_ns")) {
    ARROW_ASSIGN_OR_RAISE(writer_blocked, GetList(message, "edge_writer_blocked_ns", writers));
    if (static_cast<int64_t>(writer_blocked.size()) != writers) {
      return arrow::Status::Invalid("a job status has ", writer_blocked.size(),
                                    " writer blocked times; the job's edges have ", writers,
                                    " writers");
    }
  }
  size_t next = 0;
  size_t next_writer = 0;
  for (size_t k = 0; k < edge_shapes.size(); ++k) {
    EdgeReport edge;
    edge.bytes = edges[0][k];
    edge.bytes_spilled = edges[1][k];
    edge.blocks_spilled = edges[2][k];
    edge.blocked = std::chrono::nanoseconds(edges[3][k]);
    edge.num_writers = edge_shapes[k].first;
    edge.num_partitions = edge_shapes[k].second;
    edge.rows.assign(edge.num_writers, std::vector<int64_t>(edge.num_partitions, 0));
    edge.channel_bytes.assign(edge.num_writers, std::vector<int64_t>(edge.num_partitions, 0));
    for (int32_t i = 0; i < edge.num_writers; ++i) {
      for (int32_t j = 0; j < edge.num_partitions; ++j) {
        if (!channel_bytes.empty()) edge.channel_bytes[i][j] = channel_bytes[next];
        edge.rows[i][j] = rows[next++];
      }
    }
    edge.writer_blocked.assign(edge.num_writers, std::chrono::nanoseconds(0));
    for (auto& blocked : edge.writer_blocked) {
      if (!writer_blocked.empty()) blocked = std::chrono::nanoseconds(writer_blocked[next_writer]);
      ++next_writer;
    }
    out.edges.push_back(std::move(edge));
  }
  ARROW_ASSIGN_OR_RAISE(out.peak_memory_bytes, message.GetInt("peak_memory_bytes"));
  ARROW_ASSIGN_OR_RAISE(out.memory_budget_bytes, message.GetInt("memory_budget_bytes"));
  if (message.Has("peak_rss_bytes")) {
    ARROW_ASSIGN_OR_RAISE(out.peak_rss_bytes, message.GetInt("peak_rss_bytes"));
  }
  if (message.Has("snapshots")) {
    ARROW_ASSIGN_OR_RAISE(auto acks, message.GetBytes("snapshots"));
    ARROW_ASSIGN_OR_RAISE(out.snapshots, DecodeSnapshotAcks(std::string_view(
                                             reinterpret_cast<const char*>(acks->data()),
                                             static_cast<size_t>(acks->size()))));
  }
  return out;
}

void PutWriterRelocations(const TaskDeployment& deployment, ControlMessage* message) {
  message->Set("job_id", deployment.job_id);
  std::string agents;
  for (const std::string& agent : deployment.agents) agents += (agents.empty() ? "" : " ") + agent;
  message->Set("agents", std::move(agents));
  message->SetInts("task_agents", deployment.task_agents);
  message->SetInts("task_attempts", deployment.task_attempts);
}

arrow::Result<TaskDeployment> GetWriterRelocations(const ControlMessage& message) {
  // The same fields as a deployment's, checked the same way: a deployment with no plan, budget or
  // tasks around them.
  ControlMessage full = message;
  full.SetBytes("plan", *arrow::Buffer::FromString(""));
  full.SetInt("memory_budget", 0);
  full.SetInt("state_budget", 0);
  full.SetInt("threads", 0);
  full.SetInt("stall_timeout_ms", 0);
  const ShuffleOptions defaults;
  full.SetInt("compression", static_cast<int64_t>(defaults.compression));
  full.SetInt("target_block_rows", defaults.target_block_rows);
  full.SetInt("target_block_bytes", defaults.target_block_bytes);
  full.SetInt("buffer_timeout_ms", defaults.buffer_timeout.count());
  full.SetInt("exclusive_credits", defaults.exclusive_credits);
  full.SetInt("floating_credits", defaults.floating_credits);
  full.SetInt("shuffle_timeout_ms", defaults.timeout.count());
  full.SetInts("tasks", {});
  if (!message.Has("task_attempts")) {
    return arrow::Status::Invalid("control field 'task_attempts' is missing");
  }
  return GetTaskDeployment(full);
}

}  // namespace sabot
