#include "sabot/runtime/cluster_json.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/partition/partition_spec.h"

namespace sabot {

namespace {

// Keys keep the order they are written in, so the documented order is what clients see.
using Json = nlohmann::ordered_json;
using Clock = std::chrono::system_clock;

constexpr int64_t kNoWatermark = std::numeric_limits<int64_t>::min();
constexpr int64_t kEndOfInput = std::numeric_limits<int64_t>::max();

std::string Dump(const Json& json) {
  // Invalid UTF-8 (an error message quoting hostile input) becomes U+FFFD instead of throwing.
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

double Seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

Json TimeJson(Clock::time_point time) {
  if (time == Clock::time_point{}) return nullptr;
  return FormatTimestamp(time);
}

std::string LowerCase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Json MatrixJson(const std::vector<std::vector<int64_t>>& matrix) {
  Json rows = Json::array();
  for (const auto& row : matrix) rows.push_back(row);
  return rows;
}

int64_t MatrixSum(const std::vector<std::vector<int64_t>>& matrix) {
  int64_t sum = 0;
  for (const auto& row : matrix) {
    for (int64_t value : row) sum += value;
  }
  return sum;
}

int64_t SinkRows(const JobInfo& job) {
  int64_t rows = 0;
  for (const OperatorReport& op : job.operators) {
    if (IsSink(op.kind)) rows += op.rows_out;
  }
  return rows;
}

Json SummaryJson(const JobInfo& job) {
  Json j = Json::object();
  j["id"] = job.id;
  j["name"] = job.name;
  j["state"] = JobStateName(job.state);
  j["error"] = job.error;
  j["submitted_at"] = TimeJson(job.submitted_at);
  j["finished_at"] = job.finished_at ? TimeJson(*job.finished_at) : Json(nullptr);
  j["elapsed_seconds"] = Seconds(job.elapsed);
  Json tasks = Json::object();
  tasks["total"] = job.tasks.size();
  for (JobState state : {JobState::kCreated, JobState::kScheduled, JobState::kRunning,
                         JobState::kFinished, JobState::kFailed, JobState::kCancelled}) {
    int64_t count = 0;
    for (const TaskInfo& task : job.tasks) count += task.state == state ? 1 : 0;
    tasks[std::string(JobStateName(state))] = count;
  }
  j["task_states"] = std::move(tasks);
  j["rows_out"] = SinkRows(job);
  // Recovery of a job with checkpoints (docs/fault-tolerance.md, "Distributed recovery").
  Json recovery = Json::object();
  recovery["attempts"] = job.recovery.attempts;
  recovery["restarts"] = job.recovery.restarts;
  recovery["checkpoints_completed"] = job.recovery.checkpoints_completed;
  recovery["checkpoints_failed"] = job.recovery.checkpoints_failed;
  recovery["last_checkpoint"] = job.recovery.last_checkpoint;
  recovery["restored_checkpoint"] = job.recovery.restored_checkpoint;
  Json times = Json::array();
  for (auto time : job.recovery.recovery_times) times.push_back(Seconds(time));
  recovery["recovery_seconds"] = std::move(times);
  recovery["last_failure"] = job.recovery.last_failure;
  j["recovery"] = std::move(recovery);
  return j;
}

Json TaskJson(const TaskInfo& task) {
  Json j = Json::object();
  j["chain"] = task.chain;
  j["subtask"] = task.subtask;
  j["operator"] = task.operator_name;
  j["agent_id"] = task.agent_id;
  j["agent_location"] = task.agent_location;
  j["state"] = JobStateName(task.state);
  j["error"] = task.error;
  j["rows_in"] = task.rows_in;
  j["rows_out"] = task.rows_out;
  return j;
}

// The figures of one operator, added to `j`.
void AddOperatorFigures(const OperatorReport& op, Clock::time_point now, Json& j) {
  j["rows_in"] = op.rows_in;
  j["rows_out"] = op.rows_out;
  j["busy_seconds"] = Seconds(op.busy);
  j["state_spilled_bytes"] = op.state_spilled_bytes;
  j["late_rows"] = op.late_rows;
  const bool has_watermark = op.watermark != kNoWatermark && op.watermark != kEndOfInput;
  j["watermark_ms"] = has_watermark ? Json(op.watermark) : Json(nullptr);
  j["input_ended"] = op.watermark == kEndOfInput;
  if (has_watermark) {
    const int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    j["watermark_lag_seconds"] = static_cast<double>(now_ms - op.watermark) / 1000.0;
  } else {
    j["watermark_lag_seconds"] = nullptr;
  }
}

// The figures of one shuffle edge, added to `j`.
void AddEdgeFigures(const EdgeReport& edge, Json& j) {
  j["rows"] = MatrixJson(edge.rows);
  j["bytes"] = MatrixJson(edge.channel_bytes);
  Json blocked = Json::array();
  for (std::chrono::nanoseconds b : edge.writer_blocked) blocked.push_back(Seconds(b));
  j["writer_blocked_seconds"] = std::move(blocked);
  j["total_rows"] = MatrixSum(edge.rows);
  // A running job's `bytes` and `blocked` count only the writers that finished (the shuffle's
  // statistics are summed as writers close), while its channels and writers are live: the
  // totals are never less than what the channels and writers show.
  j["total_bytes"] = std::max(edge.bytes, MatrixSum(edge.channel_bytes));
  std::chrono::nanoseconds writers_blocked{0};
  for (std::chrono::nanoseconds b : edge.writer_blocked) writers_blocked += b;
  j["bytes_spilled"] = edge.bytes_spilled;
  j["blocks_spilled"] = edge.blocks_spilled;
  j["blocked_seconds"] = Seconds(std::max(edge.blocked, writers_blocked));
  j["skew"] = edge.skew();
}

Json OperatorFromReport(const OperatorReport& op, Clock::time_point now) {
  Json j = Json::object();
  j["id"] = op.id;
  j["name"] = op.name;
  j["kind"] = OperatorKindName(op.kind);
  j["parallelism"] = op.parallelism;
  j["chain"] = nullptr;
  AddOperatorFigures(op, now, j);
  return j;
}

Json EdgeFromReport(const EdgeReport& edge) {
  Json j = Json::object();
  j["shuffle_id"] = edge.shuffle_id;
  j["from"] = edge.from;
  j["to"] = edge.to;
  j["type"] = edge.type;
  j["chained"] = edge.chained;
  j["num_writers"] = edge.num_writers;
  j["num_partitions"] = edge.num_partitions;
  return j;
}

// The figures of the shuffle edge `shuffle_id` (from -> to) among the job's: by its id, by its
// id prefixed with the job's ("<job>.s0.a.b", as an executor names the shuffle), or by its
// operators; nullptr when the runner has reported none yet.
const EdgeReport* FindEdgeFigures(const JobInfo& job, const std::string& shuffle_id,
                                  const std::string& from, const std::string& to) {
  for (const EdgeReport& edge : job.edges) {
    if (!edge.chained && edge.shuffle_id == shuffle_id) return &edge;
  }
  for (const EdgeReport& edge : job.edges) {
    if (!edge.chained && edge.shuffle_id.ends_with("." + shuffle_id)) return &edge;
  }
  for (const EdgeReport& edge : job.edges) {
    if (!edge.chained && edge.from == from && edge.to == to) return &edge;
  }
  return nullptr;
}

// The graph and figures of `job` from its plan; nullopt when the plan cannot be read.
struct GraphParts {
  Json chains = Json::array();
  Json graph_operators = Json::array();
  Json graph_edges = Json::array();
  Json operators = Json::array();  // with figures
  Json edges = Json::array();      // shuffle edges with figures
};

std::optional<GraphParts> PartsFromPlan(const JobInfo& job, Clock::time_point now) {
  if (job.plan_json.empty()) return std::nullopt;
  auto plan = PlanFromJson(job.plan_json);
  if (!plan.ok()) return std::nullopt;
  auto graph = ExecutionGraph::Make(*plan);
  if (!graph.ok()) return std::nullopt;

  // Operators' figures by name (unique in a plan).
  std::map<std::string, const OperatorReport*> op_figures;
  for (const OperatorReport& op : job.operators) op_figures[op.name] = &op;

  GraphParts parts;
  for (const ChainSpec& chain : graph->chains()) {
    Json c = Json::object();
    c["id"] = chain.id;
    c["name"] = chain.name;
    Json names = Json::array();
    for (OperatorId id : chain.operators) names.push_back(plan->FindOperator(id)->name);
    c["operators"] = std::move(names);
    c["parallelism"] = chain.parallelism;
    parts.chains.push_back(std::move(c));
  }
  for (const OperatorSpec& spec : plan->operators()) {
    std::optional<int32_t> chain = graph->ChainOf(spec.id);
    if (!chain) continue;  // a key_by: folded into its edge
    Json g = Json::object();
    g["id"] = spec.id;
    g["name"] = spec.name;
    g["kind"] = OperatorKindName(spec.kind());
    g["parallelism"] = spec.parallelism;
    g["chain"] = *chain;
    parts.graph_operators.push_back(g);
    OperatorReport figures;
    auto it = op_figures.find(spec.name);
    if (it != op_figures.end()) figures = *it->second;
    AddOperatorFigures(figures, now, g);
    parts.operators.push_back(std::move(g));
  }
  for (const GraphEdge& edge : graph->edges()) {
    Json g = Json::object();
    g["shuffle_id"] = edge.shuffle_id;
    g["from"] = plan->FindOperator(edge.from_operator)->name;
    g["to"] = plan->FindOperator(edge.to_operator)->name;
    g["input"] = edge.input;
    g["type"] = LowerCase(EdgeTypeName(edge.type));
    g["mode"] = ShuffleModeName(edge.mode);
    g["keys"] = edge.keys;
    g["key_by"] =
        edge.key_by ? Json(plan->FindOperator(*edge.key_by)->name) : Json(nullptr);
    g["chained"] = edge.chained;
    g["num_writers"] = edge.num_writers;
    g["num_partitions"] = edge.num_partitions;
    parts.graph_edges.push_back(g);
    if (edge.chained) continue;
    const EdgeReport* found =
        FindEdgeFigures(job, edge.shuffle_id, plan->FindOperator(edge.from_operator)->name,
                        plan->FindOperator(edge.to_operator)->name);
    AddEdgeFigures(found != nullptr ? *found : EdgeReport{}, g);
    parts.edges.push_back(std::move(g));
  }
  return parts;
}

GraphParts PartsFromFigures(const JobInfo& job, Clock::time_point now) {
  GraphParts parts;
  for (const OperatorReport& op : job.operators) {
    Json g = OperatorFromReport(op, now);
    Json bare = Json::object();
    for (const char* key : {"id", "name", "kind", "parallelism", "chain"}) bare[key] = g[key];
    parts.graph_operators.push_back(std::move(bare));
    parts.operators.push_back(std::move(g));
  }
  for (const EdgeReport& edge : job.edges) {
    Json g = EdgeFromReport(edge);
    parts.graph_edges.push_back(g);
    if (edge.chained) continue;
    AddEdgeFigures(edge, g);
    parts.edges.push_back(std::move(g));
  }
  return parts;
}

}  // namespace

std::string FormatTimestamp(Clock::time_point time) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  int64_t seconds = ms / 1000;
  int64_t millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[96];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return text;
}

std::string AgentsJson(const std::vector<AgentInfo>& agents, Clock::time_point now) {
  Json list = Json::array();
  for (const AgentInfo& agent : agents) {
    Json j = Json::object();
    j["id"] = agent.id;
    j["location"] = agent.location;
    j["state"] = agent.lost ? "lost" : "up";
    j["slots"] = agent.slots;
    j["slots_used"] = agent.slots_used;
    j["registered_at"] = TimeJson(agent.registered_at);
    j["last_heartbeat"] = TimeJson(agent.last_heartbeat);
    j["heartbeat_age_seconds"] =
        agent.last_heartbeat == Clock::time_point{}
            ? Json(nullptr)
            : Json(std::chrono::duration<double>(now - agent.last_heartbeat).count());
    j["memory_budget_bytes"] = agent.memory_budget_bytes;
    j["memory_used_bytes"] = agent.memory_used_bytes;
    list.push_back(std::move(j));
  }
  Json body = Json::object();
  body["agents"] = std::move(list);
  return Dump(body);
}

std::string JobsJson(const std::vector<JobInfo>& jobs) {
  Json list = Json::array();
  for (const JobInfo& job : jobs) list.push_back(SummaryJson(job));
  Json body = Json::object();
  body["jobs"] = std::move(list);
  return Dump(body);
}

std::string JobSummaryJson(const JobInfo& job) { return Dump(SummaryJson(job)); }

std::string JobJson(const JobInfo& job, Clock::time_point now) {
  Json j = SummaryJson(job);
  std::optional<GraphParts> from_plan = PartsFromPlan(job, now);
  GraphParts parts = from_plan ? std::move(*from_plan) : PartsFromFigures(job, now);
  Json graph = Json::object();
  graph["chains"] = std::move(parts.chains);
  graph["operators"] = std::move(parts.graph_operators);
  graph["edges"] = std::move(parts.graph_edges);
  j["graph"] = std::move(graph);
  Json tasks = Json::array();
  for (const TaskInfo& task : job.tasks) tasks.push_back(TaskJson(task));
  j["tasks"] = std::move(tasks);
  j["operators"] = std::move(parts.operators);
  j["edges"] = std::move(parts.edges);
  Json memory = Json::object();
  memory["peak_bytes"] = job.peak_memory_bytes;
  memory["budget_bytes"] = job.memory_budget_bytes;
  j["memory"] = std::move(memory);
  j["explain"] = job.explain;
  return Dump(j);
}

std::string ErrorJson(std::string_view message) {
  Json j = Json::object();
  j["error"] = std::string(message);
  return Dump(j);
}

std::string SubmittedJobJson(const std::string& id) {
  Json j = Json::object();
  j["id"] = id;
  j["url"] = "/api/v1/jobs/" + id;
  return Dump(j);
}

}  // namespace sabot
