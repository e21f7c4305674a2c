#include "sabot/runtime/cluster_actions.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

using Json = nlohmann::json;
using std::chrono::system_clock;

int64_t MillisOf(system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
system_clock::time_point TimeOf(int64_t ms) {
  return system_clock::time_point(std::chrono::milliseconds(ms));
}

Json OperatorJson(const OperatorReport& op) {
  return Json{{"id", op.id},
              {"name", op.name},
              {"kind", std::string(OperatorKindName(op.kind))},
              {"parallelism", op.parallelism},
              {"rows_in", op.rows_in},
              {"rows_out", op.rows_out},
              {"busy_ns", op.busy.count()},
              {"state_spilled_bytes", op.state_spilled_bytes},
              {"watermark", op.watermark},
              {"late_rows", op.late_rows}};
}

Json EdgeJson(const EdgeReport& edge) {
  Json blocked = Json::array();
  for (auto b : edge.writer_blocked) blocked.push_back(b.count());
  return Json{{"shuffle_id", edge.shuffle_id},
              {"from", edge.from},
              {"to", edge.to},
              {"type", edge.type},
              {"chained", edge.chained},
              {"num_writers", edge.num_writers},
              {"num_partitions", edge.num_partitions},
              {"rows", edge.rows},
              {"bytes", edge.bytes},
              {"bytes_spilled", edge.bytes_spilled},
              {"blocks_spilled", edge.blocks_spilled},
              {"blocked_ns", edge.blocked.count()},
              {"channel_bytes", edge.channel_bytes},
              {"writer_blocked_ns", std::move(blocked)}};
}

Json TaskJson(const TaskInfo& task) {
  return Json{{"chain", task.chain},
              {"subtask", task.subtask},
              {"operator", task.operator_name},
              {"agent_id", task.agent_id},
              {"agent_location", task.agent_location},
              {"state", std::string(JobStateName(task.state))},
              {"error", task.error},
              {"rows_in", task.rows_in},
              {"rows_out", task.rows_out}};
}

Json JobJson(const JobInfo& job, bool with_plan) {
  Json tasks = Json::array(), operators = Json::array(), edges = Json::array();
  for (const auto& task : job.tasks) tasks.push_back(TaskJson(task));
  for (const auto& op : job.operators) operators.push_back(OperatorJson(op));
  for (const auto& edge : job.edges) edges.push_back(EdgeJson(edge));
  Json out{{"id", job.id},
           {"name", job.name},
           {"state", std::string(JobStateName(job.state))},
           {"error", job.error},
           {"submitted_at_ms", MillisOf(job.submitted_at)},
           {"tasks", std::move(tasks)},
           {"operators", std::move(operators)},
           {"edges", std::move(edges)},
           {"peak_memory_bytes", job.peak_memory_bytes},
           {"memory_budget_bytes", job.memory_budget_bytes},
           {"elapsed_ns", job.elapsed.count()}};
  if (job.finished_at) out["finished_at_ms"] = MillisOf(*job.finished_at);
  if (with_plan) {
    out["plan_json"] = job.plan_json;
    out["explain"] = job.explain;
  }
  return out;
}

Json AgentJson(const AgentInfo& agent) {
  return Json{{"id", agent.id},
              {"location", agent.location},
              {"slots", agent.slots},
              {"slots_used", agent.slots_used},
              {"lost", agent.lost},
              {"registered_at_ms", MillisOf(agent.registered_at)},
              {"last_heartbeat_ms", MillisOf(agent.last_heartbeat)},
              {"memory_budget_bytes", agent.memory_budget_bytes},
              {"memory_used_bytes", agent.memory_used_bytes}};
}

// The readers below throw nlohmann's exceptions for a missing field or a wrong type; the public
// functions turn them into Invalid.

OperatorReport OperatorFrom(const Json& j) {
  OperatorReport op;
  op.id = j.at("id").get<OperatorId>();
  op.name = j.at("name").get<std::string>();
  auto kind = ParseOperatorKind(j.at("kind").get<std::string>());
  if (!kind.ok()) throw std::invalid_argument(kind.status().message());
  op.kind = *kind;
  op.parallelism = j.at("parallelism").get<int32_t>();
  op.rows_in = j.at("rows_in").get<int64_t>();
  op.rows_out = j.at("rows_out").get<int64_t>();
  op.busy = std::chrono::nanoseconds(j.at("busy_ns").get<int64_t>());
  op.state_spilled_bytes = j.at("state_spilled_bytes").get<int64_t>();
  op.watermark = j.at("watermark").get<int64_t>();
  op.late_rows = j.at("late_rows").get<int64_t>();
  return op;
}

EdgeReport EdgeFrom(const Json& j) {
  EdgeReport edge;
  edge.shuffle_id = j.at("shuffle_id").get<std::string>();
  edge.from = j.at("from").get<std::string>();
  edge.to = j.at("to").get<std::string>();
  edge.type = j.at("type").get<std::string>();
  edge.chained = j.at("chained").get<bool>();
  edge.num_writers = j.at("num_writers").get<int32_t>();
  edge.num_partitions = j.at("num_partitions").get<int32_t>();
  edge.rows = j.at("rows").get<std::vector<std::vector<int64_t>>>();
  edge.bytes = j.at("bytes").get<int64_t>();
  edge.bytes_spilled = j.at("bytes_spilled").get<int64_t>();
  edge.blocks_spilled = j.at("blocks_spilled").get<int64_t>();
  edge.blocked = std::chrono::nanoseconds(j.at("blocked_ns").get<int64_t>());
  edge.channel_bytes = j.at("channel_bytes").get<std::vector<std::vector<int64_t>>>();
  for (int64_t ns : j.at("writer_blocked_ns").get<std::vector<int64_t>>()) {
    edge.writer_blocked.emplace_back(ns);
  }
  return edge;
}

JobState StateFrom(const Json& j) {
  auto state = ParseJobState(j.get<std::string>());
  if (!state.ok()) throw std::invalid_argument(state.status().message());
  return *state;
}

TaskInfo TaskFrom(const Json& j) {
  TaskInfo task;
  task.chain = j.at("chain").get<int32_t>();
  task.subtask = j.at("subtask").get<int32_t>();
  task.operator_name = j.at("operator").get<std::string>();
  task.agent_id = j.at("agent_id").get<std::string>();
  task.agent_location = j.at("agent_location").get<std::string>();
  task.state = StateFrom(j.at("state"));
  task.error = j.at("error").get<std::string>();
  task.rows_in = j.at("rows_in").get<int64_t>();
  task.rows_out = j.at("rows_out").get<int64_t>();
  return task;
}

JobInfo JobFrom(const Json& j) {
  JobInfo job;
  job.id = j.at("id").get<std::string>();
  job.name = j.at("name").get<std::string>();
  job.state = StateFrom(j.at("state"));
  job.error = j.at("error").get<std::string>();
  job.submitted_at = TimeOf(j.at("submitted_at_ms").get<int64_t>());
  if (j.contains("finished_at_ms")) job.finished_at = TimeOf(j.at("finished_at_ms").get<int64_t>());
  for (const auto& t : j.at("tasks")) job.tasks.push_back(TaskFrom(t));
  for (const auto& o : j.at("operators")) job.operators.push_back(OperatorFrom(o));
  for (const auto& e : j.at("edges")) job.edges.push_back(EdgeFrom(e));
  job.peak_memory_bytes = j.at("peak_memory_bytes").get<int64_t>();
  job.memory_budget_bytes = j.at("memory_budget_bytes").get<int64_t>();
  job.elapsed = std::chrono::nanoseconds(j.at("elapsed_ns").get<int64_t>());
  if (j.contains("plan_json")) job.plan_json = j.at("plan_json").get<std::string>();
  if (j.contains("explain")) job.explain = j.at("explain").get<std::string>();
  return job;
}

AgentInfo AgentFrom(const Json& j) {
  AgentInfo agent;
  agent.id = j.at("id").get<std::string>();
  agent.location = j.at("location").get<std::string>();
  agent.slots = j.at("slots").get<int32_t>();
  agent.slots_used = j.at("slots_used").get<int32_t>();
  agent.lost = j.at("lost").get<bool>();
  agent.registered_at = TimeOf(j.at("registered_at_ms").get<int64_t>());
  agent.last_heartbeat = TimeOf(j.at("last_heartbeat_ms").get<int64_t>());
  agent.memory_budget_bytes = j.at("memory_budget_bytes").get<int64_t>();
  agent.memory_used_bytes = j.at("memory_used_bytes").get<int64_t>();
  return agent;
}

template <typename T, typename F>
arrow::Result<T> Parse(std::string_view text, std::string_view what, F&& read) {
  try {
    return read(Json::parse(text));
  } catch (const std::exception& e) {
    return arrow::Status::Invalid("malformed ", what, " from the coordinator: ",
                                  SanitizeMessage(e.what(), 512));
  }
}

}  // namespace

std::string JobInfoToJson(const JobInfo& job, bool with_plan) {
  return JobJson(job, with_plan).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string JobInfosToJson(const std::vector<JobInfo>& jobs, bool with_plan) {
  Json out = Json::array();
  for (const auto& job : jobs) out.push_back(JobJson(job, with_plan));
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

arrow::Result<JobInfo> JobInfoFromJson(std::string_view text) {
  return Parse<JobInfo>(text, "job", [](const Json& j) { return JobFrom(j); });
}

arrow::Result<std::vector<JobInfo>> JobInfosFromJson(std::string_view text) {
  return Parse<std::vector<JobInfo>>(text, "job list", [](const Json& j) {
    std::vector<JobInfo> jobs;
    for (const auto& item : j) jobs.push_back(JobFrom(item));
    return jobs;
  });
}

std::string AgentInfosToJson(const std::vector<AgentInfo>& agents) {
  Json out = Json::array();
  for (const auto& agent : agents) out.push_back(AgentJson(agent));
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

arrow::Result<std::vector<AgentInfo>> AgentInfosFromJson(std::string_view text) {
  return Parse<std::vector<AgentInfo>>(text, "agent list", [](const Json& j) {
    std::vector<AgentInfo> agents;
    for (const auto& item : j) agents.push_back(AgentFrom(item));
    return agents;
  });
}

JobReport ReportOf(const JobInfo& job) {
  JobReport report;
  // The summary names the job as `sabot run` does: by its name.
  report.job_id = job.name.empty() ? job.id : job.name;
  report.wall = job.elapsed;
  report.operators = job.operators;
  report.edges = job.edges;
  report.peak_memory_bytes = job.peak_memory_bytes;
  report.memory_budget_bytes = job.memory_budget_bytes;
  // Checkpoints and restarts, as the local run's summary shows them.
  report.checkpoints.completed = job.recovery.checkpoints_completed;
  report.checkpoints.failed = job.recovery.checkpoints_failed;
  report.checkpoints.last_id = job.recovery.last_checkpoint;
  report.checkpoints.restarts = job.recovery.restarts;
  report.checkpoints.restored_from = job.recovery.restored_checkpoint;
  return report;
}

JobProgress ProgressOf(const JobInfo& job) {
  JobProgress progress;
  progress.elapsed = job.elapsed;
  progress.operators = job.operators;
  for (const auto& edge : job.edges) {
    if (!edge.chained) progress.edges.push_back(edge);
  }
  progress.tasks_total = static_cast<int32_t>(job.tasks.size());
  for (const auto& task : job.tasks) {
    if (task.state == TaskState::kRunning) ++progress.tasks_running;
    if (task.state == TaskState::kFinished) ++progress.tasks_finished;
  }
  return progress;
}

}  // namespace sabot
