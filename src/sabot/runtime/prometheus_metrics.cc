#include "sabot/runtime/prometheus_metrics.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

namespace sabot {

namespace {

using Clock = std::chrono::system_clock;
using Labels = std::vector<std::pair<std::string, std::string>>;

constexpr int64_t kNoWatermark = std::numeric_limits<int64_t>::min();
constexpr int64_t kEndOfInput = std::numeric_limits<int64_t>::max();

double Seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

// HELP text escapes backslash and line feed only.
std::string EscapeHelp(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// One metric family: its HELP and TYPE lines and its samples, written together.
class Family {
 public:
  Family(std::string name, std::string type, std::string help)
      : name_(std::move(name)), type_(std::move(type)), help_(std::move(help)) {}

  void Add(const Labels& labels, double value) { AddText(labels, FormatSampleValue(value)); }
  void AddInt(const Labels& labels, int64_t value) { AddText(labels, std::to_string(value)); }

  void WriteTo(std::string& out) const {
    out += "# HELP " + name_ + " " + EscapeHelp(help_) + "\n";
    out += "# TYPE " + name_ + " " + type_ + "\n";
    out += samples_;
  }

 private:
  void AddText(const Labels& labels, const std::string& value) {
    samples_ += name_;
    if (!labels.empty()) {
      samples_ += '{';
      bool first = true;
      for (const auto& [key, label_value] : labels) {
        if (!first) samples_ += ',';
        first = false;
        samples_ += key + "=\"" + EscapeLabelValue(label_value) + "\"";
      }
      samples_ += '}';
    }
    samples_ += ' ' + value + '\n';
  }

  std::string name_;
  std::string type_;
  std::string help_;
  std::string samples_;
};

Labels With(Labels labels, std::string key, std::string value) {
  labels.emplace_back(std::move(key), std::move(value));
  return labels;
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[64];
  auto [end, error] = std::to_chars(text, text + sizeof(text), value);
  if (error != std::errc()) return "NaN";  // cannot happen with 64 characters
  return std::string(text, end);
}

std::string RenderPrometheusMetrics(const std::vector<AgentInfo>& agents,
                                    const std::vector<JobInfo>& jobs, Clock::time_point now) {
  Family agents_by_state("sabot_agents", "gauge",
                         "Agents registered with the coordinator, by state (up, lost).");
  Family agent_up("sabot_agent_up", "gauge",
                  "1 when the agent sends heartbeats, 0 once it is declared lost.");
  Family agent_slots("sabot_agent_slots", "gauge", "Task slots of the agent.");
  Family agent_slots_used("sabot_agent_slots_used", "gauge", "Task slots of the agent in use.");
  Family heartbeat_age("sabot_agent_heartbeat_age_seconds", "gauge",
                       "Seconds since the agent's last heartbeat.");
  Family pool_bytes("sabot_buffer_pool_bytes", "gauge",
                    "Bytes of the agent's shuffle buffer pool in use, as its last heartbeat said.");
  Family pool_budget("sabot_buffer_pool_budget_bytes", "gauge",
                     "The agent's shuffle memory budget in bytes.");
  Family jobs_by_state("sabot_jobs", "gauge", "Jobs known to the coordinator, by state.");
  Family job_info("sabot_job_info", "gauge", "1 for each job, labelled with its name and state.");
  Family job_elapsed("sabot_job_elapsed_seconds", "gauge", "Seconds the job has run.");
  Family job_peak("sabot_job_buffer_pool_peak_bytes", "gauge",
                  "Peak bytes of the job's shuffle buffer pools, summed over agents.");
  Family job_budget("sabot_job_buffer_pool_budget_bytes", "gauge",
                    "The job's shuffle memory budget in bytes, summed over agents.");
  Family tasks_by_state("sabot_tasks", "gauge", "Tasks of the job, by state.");
  Family task_rows_in("sabot_task_rows_in_total", "counter", "Rows the task took in.");
  Family task_rows_out("sabot_task_rows_out_total", "counter", "Rows the task put out.");
  Family op_rows_in("sabot_operator_rows_in_total", "counter",
                    "Rows the operator took in, summed over its tasks (sources: 0).");
  Family op_rows_out("sabot_operator_rows_out_total", "counter",
                     "Rows the operator put out, summed over its tasks (sinks: rows written).");
  Family op_busy("sabot_operator_busy_seconds_total", "counter",
                 "Seconds the operator's tasks spent processing in it.");
  Family op_late("sabot_operator_late_rows_total", "counter",
                 "Rows that arrived too late for their event-time window.");
  Family op_state_spill("sabot_operator_state_spill_bytes_total", "counter",
                        "Bytes of operator state spilled to disk.");
  Family watermark("sabot_watermark_timestamp_seconds", "gauge",
                   "The operator's event-time watermark, seconds since the epoch.");
  Family watermark_lag("sabot_watermark_lag_seconds", "gauge",
                       "Seconds the operator's event-time watermark is behind the wall clock.");
  Family edge_rows("sabot_edge_rows_total", "counter",
                   "Rows a writer task of a shuffle edge sent to a partition.");
  Family edge_bytes("sabot_edge_bytes_total", "counter",
                    "Block bytes a writer task of a shuffle edge sent to a partition (per edge "
                    "when the runner does not report channels).");
  Family edge_blocked("sabot_edge_blocked_seconds_total", "counter",
                      "Seconds writers of a shuffle edge waited for credit or memory admission "
                      "(backpressure), per writer task when reported.");
  Family edge_skew("sabot_edge_skew_ratio", "gauge",
                   "Largest partition's rows over the mean partition's (1 = even).");
  Family spill_bytes("sabot_spill_bytes_total", "counter",
                     "Bytes of shuffle blocks spilled to disk.");
  Family spill_blocks("sabot_spill_blocks_total", "counter",
                      "Shuffle blocks spilled to disk.");

  int64_t up = 0;
  int64_t lost = 0;
  for (const AgentInfo& agent : agents) {
    (agent.lost ? lost : up) += 1;
    const Labels labels = {{"agent", agent.id}};
    agent_up.AddInt(With(labels, "location", agent.location), agent.lost ? 0 : 1);
    agent_slots.AddInt(labels, agent.slots);
    agent_slots_used.AddInt(labels, agent.slots_used);
    if (agent.last_heartbeat != Clock::time_point{}) {
      heartbeat_age.Add(labels,
                        std::chrono::duration<double>(now - agent.last_heartbeat).count());
    }
    pool_bytes.AddInt(labels, agent.memory_used_bytes);
    pool_budget.AddInt(labels, agent.memory_budget_bytes);
  }
  agents_by_state.AddInt({{"state", "up"}}, up);
  agents_by_state.AddInt({{"state", "lost"}}, lost);

  constexpr JobState kStates[] = {JobState::kCreated,  JobState::kScheduled,
                                  JobState::kRunning,  JobState::kFinished,
                                  JobState::kFailed,   JobState::kCancelled,
                                  JobState::kRestarting};
  for (JobState state : kStates) {
    int64_t count = 0;
    for (const JobInfo& job : jobs) count += job.state == state ? 1 : 0;
    jobs_by_state.AddInt({{"state", std::string(JobStateName(state))}}, count);
  }

  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  for (const JobInfo& job : jobs) {
    const Labels job_labels = {{"job", job.id}};
    job_info.AddInt({{"job", job.id}, {"name", job.name},
                     {"state", std::string(JobStateName(job.state))}},
                    1);
    job_elapsed.Add(job_labels, Seconds(job.elapsed));
    job_peak.AddInt(job_labels, job.peak_memory_bytes);
    job_budget.AddInt(job_labels, job.memory_budget_bytes);
    for (JobState state : kStates) {
      int64_t count = 0;
      for (const TaskInfo& task : job.tasks) count += task.state == state ? 1 : 0;
      tasks_by_state.AddInt(With(job_labels, "state", std::string(JobStateName(state))), count);
    }
    for (const TaskInfo& task : job.tasks) {
      const Labels labels = {{"job", job.id},
                             {"operator", task.operator_name},
                             {"subtask", std::to_string(task.subtask)},
                             {"agent", task.agent_id}};
      task_rows_in.AddInt(labels, task.rows_in);
      task_rows_out.AddInt(labels, task.rows_out);
    }
    for (const OperatorReport& op : job.operators) {
      const Labels labels = With(job_labels, "operator", op.name);
      op_rows_in.AddInt(labels, op.rows_in);
      op_rows_out.AddInt(labels, op.rows_out);
      op_busy.Add(labels, Seconds(op.busy));
      op_late.AddInt(labels, op.late_rows);
      op_state_spill.AddInt(labels, op.state_spilled_bytes);
      if (op.watermark != kNoWatermark && op.watermark != kEndOfInput) {
        watermark.Add(labels, static_cast<double>(op.watermark) / 1000.0);
        watermark_lag.Add(labels, static_cast<double>(now_ms - op.watermark) / 1000.0);
      }
    }
    for (const EdgeReport& edge : job.edges) {
      if (edge.chained) continue;
      const Labels labels = With(job_labels, "edge", edge.shuffle_id);
      for (size_t i = 0; i < edge.rows.size(); ++i) {
        for (size_t j = 0; j < edge.rows[i].size(); ++j) {
          edge_rows.AddInt(With(With(labels, "writer", std::to_string(i)), "partition",
                                std::to_string(j)),
                           edge.rows[i][j]);
        }
      }
      if (edge.channel_bytes.empty()) {
        edge_bytes.AddInt(labels, edge.bytes);
      } else {
        for (size_t i = 0; i < edge.channel_bytes.size(); ++i) {
          for (size_t j = 0; j < edge.channel_bytes[i].size(); ++j) {
            edge_bytes.AddInt(With(With(labels, "writer", std::to_string(i)), "partition",
                                   std::to_string(j)),
                              edge.channel_bytes[i][j]);
          }
        }
      }
      if (edge.writer_blocked.empty()) {
        edge_blocked.Add(labels, Seconds(edge.blocked));
      } else {
        for (size_t i = 0; i < edge.writer_blocked.size(); ++i) {
          edge_blocked.Add(With(labels, "writer", std::to_string(i)),
                           Seconds(edge.writer_blocked[i]));
        }
      }
      edge_skew.Add(labels, edge.skew());
      spill_bytes.AddInt(labels, edge.bytes_spilled);
      spill_blocks.AddInt(labels, edge.blocks_spilled);
    }
  }

  std::string out;
  for (const Family* family :
       {&agents_by_state, &agent_up, &agent_slots, &agent_slots_used, &heartbeat_age,
        &pool_bytes, &pool_budget, &jobs_by_state, &job_info, &job_elapsed, &job_peak,
        &job_budget, &tasks_by_state, &task_rows_in, &task_rows_out, &op_rows_in, &op_rows_out,
        &op_busy, &op_late, &op_state_spill, &watermark, &watermark_lag, &edge_rows, &edge_bytes,
        &edge_blocked, &edge_skew, &spill_bytes, &spill_blocks}) {
    family->WriteTo(out);
  }
  return out;
}

}  // namespace sabot
