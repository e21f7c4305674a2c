#include "sabot/runtime/http_api_testing.h"

#include <algorithm>
#include <utility>

#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/job_file.h"
#include "sabot/dataflow/plan_json.h"

namespace sabot {

std::vector<AgentInfo> FakeClusterView::Agents() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return agents_;
}

std::vector<JobInfo> FakeClusterView::Jobs() const {
  std::vector<JobInfo> jobs;
  std::string live_id;
  std::function<arrow::Result<JobInfo>(int64_t)> make;
  int64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs = jobs_;
    live_id = live_id_;
    make = live_make_;
    generation = live_generation_;
  }
  if (make) {
    auto live = make(generation);
    if (live.ok()) jobs.insert(jobs.begin(), std::move(*live));
  }
  return jobs;
}

arrow::Result<JobInfo> FakeClusterView::Job(const std::string& id) const {
  std::function<arrow::Result<JobInfo>(int64_t)> make;
  int64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (live_make_ && id == live_id_) {
      make = live_make_;
      generation = ++live_generation_;
    } else {
      for (const JobInfo& job : jobs_) {
        if (job.id == id) return job;
      }
      return arrow::Status::KeyError("no job '", id, "'");
    }
  }
  return make(generation);
}

arrow::Result<std::string> FakeClusterView::Submit(const JobSubmission& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!submit_error_.ok()) return submit_error_;
  submissions_.push_back(job);
  JobInfo info;
  info.id = "job-" + std::to_string(submissions_.size());
  info.name = job.name.empty() ? "job" : job.name;
  info.plan_json = job.plan_json;
  info.state = JobState::kCreated;
  jobs_.insert(jobs_.begin(), info);
  return info.id;
}

arrow::Status FakeClusterView::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (JobInfo& job : jobs_) {
    if (job.id != id) continue;
    if (!IsFinal(job.state)) {
      job.state = JobState::kCancelled;
      cancelled_.push_back(id);
    }
    return arrow::Status::OK();
  }
  return arrow::Status::KeyError("no job '", id, "'");
}

void FakeClusterView::SetAgents(std::vector<AgentInfo> agents) {
  std::lock_guard<std::mutex> lock(mutex_);
  agents_ = std::move(agents);
}

void FakeClusterView::AddJob(JobInfo job) {
  std::lock_guard<std::mutex> lock(mutex_);
  jobs_.insert(jobs_.begin(), std::move(job));
}

void FakeClusterView::SetSubmitError(arrow::Status status) {
  std::lock_guard<std::mutex> lock(mutex_);
  submit_error_ = std::move(status);
}

void FakeClusterView::SetLiveJob(std::string id,
                                 std::function<arrow::Result<JobInfo>(int64_t)> make) {
  std::lock_guard<std::mutex> lock(mutex_);
  live_id_ = std::move(id);
  live_make_ = std::move(make);
  live_generation_ = 0;
}

int64_t FakeClusterView::live_generation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return live_generation_;
}

std::vector<JobSubmission> FakeClusterView::submissions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return submissions_;
}

std::vector<std::string> FakeClusterView::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_;
}

// ---------------------------------------------------------------------------------------------

const char* const kLiveSampleJobYaml = R"(job: live-view
operators:
  - name: source
    generator_source: {table: transactions, rows: 1000000, key_cardinality: 1000}
    parallelism: 3
  - key_by: [user_id]
  - name: sums
    aggregate: [sum(amount), count(*)]
    parallelism: 4
  - name: narrow
    map:
      columns: {twice: "count * 2"}
    parallelism: 2
  - name: write
    parquet_sink: /tmp/sabot-live-view-sample
)";

namespace {

using std::chrono::milliseconds;

constexpr int64_t kSampleEpochMs = 1700000000000;

int64_t Sum(const std::vector<std::vector<int64_t>>& matrix) {
  int64_t sum = 0;
  for (const auto& row : matrix) {
    for (int64_t v : row) sum += v;
  }
  return sum;
}

}  // namespace

arrow::Result<JobInfo> MakeLiveSampleJob(const std::string& id, int64_t g) {
  ARROW_ASSIGN_OR_RAISE(JobFile file, ParseJobFile(kLiveSampleJobYaml, "live sample", "/"));
  ARROW_ASSIGN_OR_RAISE(ExecutionGraph graph, ExecutionGraph::Make(file.plan));
  JobInfo job;
  job.id = id;
  job.name = file.name;
  job.state = JobState::kRunning;
  job.submitted_at = std::chrono::system_clock::time_point(milliseconds(kSampleEpochMs));
  job.elapsed = milliseconds(500 * g);
  ARROW_ASSIGN_OR_RAISE(job.plan_json, PlanToJson(file.plan));
  job.explain = "live sample job";
  job.peak_memory_bytes = 1 << 20;
  job.memory_budget_bytes = 64 << 20;

  for (const TaskSpec& task : graph.tasks()) {
    TaskInfo info;
    info.chain = task.chain;
    info.subtask = task.subtask;
    info.operator_name = graph.chains()[task.chain].name;
    info.agent_id = "agent-" + std::to_string(task.subtask % 2 + 1);
    info.agent_location = "grpc+tcp://127.0.0.1:" + std::to_string(47000 + task.subtask % 2);
    info.state = TaskState::kRunning;
    job.tasks.push_back(std::move(info));
  }

  for (size_t index : graph.shuffle_edges()) {
    const GraphEdge& edge = graph.edges()[index];
    EdgeReport report;
    report.shuffle_id = edge.shuffle_id;
    report.from = file.plan.FindOperator(edge.from_operator)->name;
    report.to = file.plan.FindOperator(edge.to_operator)->name;
    report.type = edge.type == EdgeType::kHash ? "hash" : "rebalance";
    report.num_writers = edge.num_writers;
    report.num_partitions = edge.num_partitions;
    const bool first = job.edges.empty();
    const int64_t per_row_bytes = first ? 24 : 16;
    report.rows.assign(edge.num_writers, std::vector<int64_t>(edge.num_partitions, 0));
    report.channel_bytes = report.rows;
    for (int64_t i = 0; i < edge.num_writers; ++i) {
      for (int64_t j = 0; j < edge.num_partitions; ++j) {
        int64_t rows;
        if (first) {
          rows = 1000 * (i + 1) + 100 * j + g * (10 * (i + 1) + j + 1) + (j == 3 ? 500 * g : 0);
          if (i == 1 && j == 2) rows = 777;
        } else {
          rows = 50 * g * (i + 1) + 7 * j;
        }
        report.rows[i][j] = rows;
        report.channel_bytes[i][j] = per_row_bytes * rows;
      }
      report.writer_blocked.push_back(first ? milliseconds(100 * g * (i + 1)) : milliseconds(0));
    }
    report.bytes = Sum(report.channel_bytes);
    for (auto b : report.writer_blocked) report.blocked += b;
    job.edges.push_back(std::move(report));
  }
  if (job.edges.size() != 2) {
    return arrow::Status::Invalid("the live sample job should have 2 shuffle edges, has ",
                                  job.edges.size());
  }
  const int64_t s0 = job.edges[0].total_rows();
  const int64_t s1 = job.edges[1].total_rows();
  for (const OperatorSpec& spec : file.plan.operators()) {
    if (spec.kind() == OperatorKind::kKeyBy) continue;
    OperatorReport op;
    op.id = spec.id;
    op.name = spec.name;
    op.kind = spec.kind();
    op.parallelism = spec.parallelism;
    op.busy = milliseconds(g);
    if (spec.name == "source") {
      op.rows_out = s0;
    } else if (spec.name == "sums") {
      op.rows_in = s0;
      op.rows_out = s1;
      op.watermark = kSampleEpochMs + 1000 * g;
    } else {
      op.rows_in = s1;
      op.rows_out = s1;
    }
    job.operators.push_back(std::move(op));
  }
  return job;
}

std::vector<AgentInfo> SampleAgents() {
  std::vector<AgentInfo> agents(2);
  for (int i = 0; i < 2; ++i) {
    agents[i].id = "agent-" + std::to_string(i + 1);
    agents[i].location = "grpc+tcp://127.0.0.1:" + std::to_string(47000 + i);
    agents[i].slots = 4;
    agents[i].slots_used = 2 + i;
    agents[i].lost = i == 1;
    agents[i].registered_at = std::chrono::system_clock::time_point(milliseconds(kSampleEpochMs));
    agents[i].last_heartbeat =
        std::chrono::system_clock::time_point(milliseconds(kSampleEpochMs + 1000));
    agents[i].memory_budget_bytes = 256 << 20;
    agents[i].memory_used_bytes = (i + 1) << 20;
  }
  return agents;
}

}  // namespace sabot
