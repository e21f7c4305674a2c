#include "sabot/runtime/shuffle_job.h"

#include <climits>
#include <fstream>
#include <thread>

#include "sabot/common/batch_bytes.h"
#include "sabot/common/error_detail.h"
#include "sabot/common/logging.h"
#include "sabot/common/process_memory.h"
#include <arrow/array.h>

#include "sabot/dataflow/generator_source.h"
#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/memory/spill_manager.h"
#include "sabot/runtime/agent_process.h"
#include "sabot/runtime/control_actions.h"
#include "sabot/runtime/distributed_job.h"

namespace sabot {

namespace {

using Clock = std::chrono::steady_clock;

// Calls `report` every 200 ms with `read()`'s figures until destroyed.
class ProgressTicker {
 public:
  ProgressTicker(const ProgressCallback& report, std::function<std::pair<int64_t, int64_t>()> read)
      : report_(report), read_(std::move(read)) {
    if (report_) thread_ = std::thread([this] { Loop(); });
  }
  ~ProgressTicker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return done_; })) {
      lock.unlock();
      auto [written, read] = read_();
      report_(written, read);
      lock.lock();
    }
  }

  // A copy: callers pass temporaries (a lambda made into a ProgressCallback for the call).
  const ProgressCallback report_;
  std::function<std::pair<int64_t, int64_t>()> read_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The agent processes of one job, stopped together however the job ends: all at once, SIGTERM
// then SIGKILL after a grace period (StopAgents). An agent that exits cleanly removes its own
// spill folder; the folders of those that could not (killed, by SIGKILL or otherwise) are
// removed here once they are reaped.
class AgentFleet {
 public:
  explicit AgentFleet(std::string spill_dir) : spill_dir_(std::move(spill_dir)) {}
  ~AgentFleet() { Stop(); }

  void Add(std::unique_ptr<AgentProcess> agent) { agents_.push_back(std::move(agent)); }

  void Stop() {
    std::vector<AgentProcess*> all;
    for (auto& agent : agents_) all.push_back(agent.get());
    StopAgents(all);
    for (size_t i = 0; i < agents_.size(); ++i) {
      auto removed = RemoveSpillRootsOf(spill_dir_, agents_[i]->pid());
      if (!removed.ok()) {
        SABOT_LOG(kWarning) << "agent-" << i << " (pid " << agents_[i]->pid()
                            << "): " << removed.status().ToString();
        continue;
      }
      for (const auto& root : *removed) {
        SABOT_LOG(kWarning) << "removed the spill folder " << root << " of agent-" << i
                            << " (pid " << agents_[i]->pid() << "), which ended without "
                            << "removing it (killed?)";
      }
    }
    agents_.clear();
  }

 private:
  const std::string spill_dir_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

ShuffleDescriptor MakeDescriptor(const ShuffleJobOptions& options,
                                 std::shared_ptr<const PartitionSpec> spec) {
  ShuffleDescriptor descriptor;
  descriptor.shuffle_id = "shuffle-job";
  descriptor.spec = std::move(spec);
  descriptor.schema = GeneratedSchema(options.job.data);
  descriptor.num_writers = options.job.num_writers;
  descriptor.options = options.shuffle;
  return descriptor;
}

arrow::Result<ShuffleJobReport> RunLocal(const ShuffleJobOptions& options,
                                         std::shared_ptr<const PartitionSpec> spec,
                                         GeneratedShuffleCheck* check,
                                         const ProgressCallback& progress,
                                         ShuffleRunCancellation* cancellation) {
  EngineOptions engine_options;
  engine_options.mode = EngineMode::kLocal;
  engine_options.manager = options.manager;
  ARROW_ASSIGN_OR_RAISE(auto engine, Engine::Make(engine_options));
  ShuffleManager* manager = engine->shuffle_manager();
  ShuffleDescriptor descriptor = MakeDescriptor(options, spec);
  ARROW_RETURN_NOT_OK(manager->RegisterShuffle(descriptor));
  std::vector<TaskIndex> writers;
  for (TaskIndex w = 0; w < options.job.num_writers; ++w) writers.push_back(w);
  std::vector<PartitionId> partitions;
  for (PartitionId p = 0; p < options.num_partitions; ++p) partitions.push_back(p);
  ShuffleProgress live;
  ShuffleRunReport run;
  {
    ProgressTicker ticker(progress, [&] {
      return std::make_pair(live.rows_written.load(), live.rows_read.load());
    });
    ARROW_ASSIGN_OR_RAISE(run, RunGeneratedShuffle(manager, descriptor.shuffle_id, options.job,
                                                   writers, partitions, {}, check, &live,
                                                   cancellation, options.timing));
  }
  ARROW_ASSIGN_OR_RAISE(ShuffleStats stats, manager->Stats(descriptor.shuffle_id));
  ShuffleJobReport report;
  report.mode = "local";
  report.rows = run.rows_written;
  report.bytes = run.bytes_written;
  report.elapsed = run.elapsed;
  report.partition_rows = run.partition_rows;
  report.bytes_spilled = stats.bytes_spilled;
  report.blocks_spilled = stats.blocks_spilled;
  report.time_blocked = stats.time_blocked;
  report.peak_memory = manager->pool()->peak_bytes();
  report.memory_budget = manager->pool()->budget();
  report.peak_rss = {PeakResidentBytes()};
  report.generate_elapsed = run.generate_elapsed;
  report.bytes_kept = run.bytes_kept;
  report.check_elapsed = run.check_elapsed;
  report.cpu_elapsed = run.cpu_elapsed;
  report.page_faults = run.page_faults;
  ARROW_RETURN_NOT_OK(manager->Release(descriptor.shuffle_id));
  return report;
}

// The local `sabot shuffle` as a dataflow job: a generator source of the shuffle table (N tasks,
// writer w generating exactly GeneratedJob's batches of writer w) -> the edge -> a verify sink
// (M tasks), unchained so that even FORWARD is a shuffle. The same plan as a job file's
// (examples/shuffle.yaml), run by the local executor.
arrow::Result<LogicalPlan> GeneratedShufflePlan(const ShuffleJobOptions& options,
                                                const PartitionSpec& spec) {
  const GeneratorSourceParams source =
      ShuffleTableParams(options.job.data, options.job.total_rows());
  PlanBuilder builder;
  builder.SetOptions(PlanOptions{.shuffle_mode = options.shuffle.mode, .chaining = false});
  Stream generated = builder.Source(source, options.job.num_writers, "generate");
  switch (options.edge) {
    case EdgeType::kHash:
      generated = generated.PartitionByHash({"key"});
      break;
    case EdgeType::kRange: {
      std::vector<std::vector<BoundaryValue>> boundaries;
      const auto& keys = std::static_pointer_cast<arrow::Int64Array>(spec.boundaries()->column(0));
      for (int64_t i = 0; i < keys->length(); ++i) boundaries.push_back({keys->Value(i)});
      generated = generated.PartitionByRange({"key"}, std::move(boundaries));
      break;
    }
    case EdgeType::kRebalance:
      generated = generated.Rebalance();
      break;
    case EdgeType::kBroadcast:
      generated = generated.Broadcast();
      break;
    case EdgeType::kForward:
      generated = generated.Forward();
      break;
  }
  generated.Sink(VerifySinkParams{}, options.num_partitions, "verify");
  return builder.Build();
}

// The figures of the `sabot shuffle` dataflow job (generate -> edge -> verify) from its report.
arrow::Result<ShuffleJobReport> ShuffleReportOf(const ShuffleJobOptions& options,
                                                const JobReport& job) {
  const EdgeReport& edge = job.edges.front();
  ShuffleJobReport report;
  report.rows = job.operators.front().rows_out;
  report.rows_verified = job.operators.back().rows_in;
  // The table has fixed-width columns only: every row has the bytes of batch 0's rows.
  ARROW_ASSIGN_OR_RAISE(auto first, options.job.WriterBatch(0, 0));
  report.bytes = first->num_rows() == 0
                     ? 0
                     : BatchBufferBytes(*first) / first->num_rows() * report.rows;
  report.elapsed = job.wall;
  report.partition_rows.assign(options.num_partitions, 0);
  for (const auto& writer : edge.rows) {
    for (int32_t p = 0; p < options.num_partitions && p < static_cast<int32_t>(writer.size()); ++p) {
      report.partition_rows[p] += writer[p];
    }
  }
  report.bytes_spilled = edge.bytes_spilled;
  report.blocks_spilled = edge.blocks_spilled;
  report.time_blocked = edge.blocked;
  report.peak_memory = job.peak_memory_bytes;
  report.memory_budget = job.memory_budget_bytes;
  return report;
}

arrow::Result<ShuffleJobReport> RunLocalJobOf(const ShuffleJobOptions& options,
                                              const PartitionSpec& spec,
                                              const ProgressCallback& progress,
                                              ShuffleRunCancellation* cancellation) {
  ARROW_ASSIGN_OR_RAISE(LogicalPlan plan, GeneratedShufflePlan(options, spec));
  LocalExecutorOptions executor;
  executor.job_id = "shuffle";
  executor.threads = 0;  // the machine's cores
  executor.memory_budget = options.manager.memory_budget;
  executor.spill_directory = options.manager.spill.directory;
  executor.shuffle = options.shuffle;
  std::atomic<bool> cancelled{false};
  executor.cancel = &cancelled;
  if (progress) {
    executor.progress_interval = std::chrono::milliseconds(200);
    executor.on_progress = [&](const JobProgress& now) {
      progress(now.operators.front().rows_out, now.operators.back().rows_in);
    };
  }
  int64_t subscription = -1;
  if (cancellation != nullptr) {
    subscription = cancellation->Subscribe([&](const arrow::Status&) { cancelled = true; });
  }
  arrow::Result<JobReport> ran = RunLocalJob(plan, executor);
  if (cancellation != nullptr) cancellation->Unsubscribe(subscription);
  if (!ran.ok() && cancellation != nullptr && !cancellation->cause().ok()) {
    return cancellation->cause();
  }
  ARROW_RETURN_NOT_OK(ran.status());
  ARROW_ASSIGN_OR_RAISE(ShuffleJobReport report, ShuffleReportOf(options, *ran));
  report.mode = "local";
  report.peak_rss = {PeakResidentBytes()};
  return report;
}

// `sabot shuffle --agents K`: the same dataflow job as locally (GeneratedShufflePlan), run by the
// distributed job driver on K agent processes started on loopback; each agent's verify sink
// tasks check the partitions they read, and the commit checks none is missing.
arrow::Result<ShuffleJobReport> RunDistributed(const ShuffleJobOptions& options,
                                               const PartitionSpec& spec,
                                               const ProgressCallback& progress,
                                               ShuffleRunCancellation* cancellation) {
  const int32_t k = options.num_agents;
  std::string binary = options.agent_binary;
  if (binary.empty()) {
    ARROW_ASSIGN_OR_RAISE(binary, CurrentExecutable());
  }
  ARROW_ASSIGN_OR_RAISE(std::string spill_dir, ResolveSpillDirectory(options.agent_spill_dir));
  ARROW_ASSIGN_OR_RAISE(LogicalPlan plan, GeneratedShufflePlan(options, spec));
  // For the agents' heartbeat while they start and while the job runs (pings), each bounded, so
  // an agent that hangs holds up nothing for long.
  ShuffleClientOptions ping_options;
  ping_options.call_timeout = std::chrono::seconds(10);
  ARROW_ASSIGN_OR_RAISE(auto ping_client, ShuffleClient::Make(ping_options));
  AgentFleet agents(spill_dir);
  std::vector<std::string> locations;
  auto ping = [&] {
    for (const auto& location : locations) {
      ControlMessage request;
      request.Set("shuffle_id", "shuffle");
      (void)ping_client->Action(location, kActionProgress, request.Encode());
    }
  };
  for (int32_t i = 0; i < k; ++i) {
    // The agents started so far hear from the job manager while the others start (their
    // --control-timeout-s counts from their start).
    ping();
    std::vector<std::string> args = {"agent", "--host", "127.0.0.1", "--port", "0",
                                     "--agent-id", "agent-" + std::to_string(i),
                                     "--spill-dir", spill_dir, "--control-timeout-s",
                                     std::to_string(options.agent_control_timeout.count())};
    args.insert(args.end(), options.agent_args.begin(), options.agent_args.end());
    ARROW_ASSIGN_OR_RAISE(auto agent, AgentProcess::Start(binary, args));
    locations.push_back(agent->location());
    agents.Add(std::move(agent));
    if (cancellation != nullptr) ARROW_RETURN_NOT_OK(cancellation->cause());
  }
  // Enough slots that the job fits: slot sharing needs max(N, M) slots over the K agents.
  const int32_t needed = std::max(options.job.num_writers, options.num_partitions);
  std::vector<AgentEndpoint> endpoints;
  for (int32_t i = 0; i < k; ++i) {
    endpoints.push_back({"agent-" + std::to_string(i), locations[i], (needed + k - 1) / k});
  }
  DistributedJobOptions job_options;
  job_options.job_id = "shuffle";
  job_options.memory_budget = 0;  // each agent's own (--memory-budget-mib)
  job_options.shuffle = options.shuffle;
  job_options.stall_timeout = std::chrono::milliseconds(0);  // the shuffle's timeout bounds waits
  std::atomic<bool> cancelled{false};
  job_options.cancel = &cancelled;
  int64_t subscription = -1;
  if (cancellation != nullptr) {
    subscription = cancellation->Subscribe([&](const arrow::Status&) { cancelled = true; });
  }
  std::atomic<int64_t> rows_written{0}, rows_read{0};
  job_options.progress_interval = std::chrono::milliseconds(200);
  job_options.on_progress = [&](const JobInfo& info) {
    if (info.operators.empty()) return;
    rows_written = info.operators.front().rows_out;
    rows_read = info.operators.back().rows_in;
  };
  std::vector<AgentJobFigures> figures;
  job_options.agent_figures = &figures;
  arrow::Result<JobReport> ran;
  {
    // The progress line, and a ping of every agent (those without tasks too) as its heartbeat.
    ProgressTicker ticker(
        [&](int64_t written, int64_t read) {
          if (progress) progress(written, read);
        },
        [&] {
          ping();
          return std::make_pair(rows_written.load(), rows_read.load());
        });
    ran = RunDistributedJob(plan, endpoints, job_options);
  }
  if (cancellation != nullptr) cancellation->Unsubscribe(subscription);
  if (!ran.ok() && cancellation != nullptr && !cancellation->cause().ok()) {
    return cancellation->cause();
  }
  ARROW_RETURN_NOT_OK(ran.status());
  ARROW_ASSIGN_OR_RAISE(ShuffleJobReport report, ShuffleReportOf(options, *ran));
  report.mode = "distributed (" + std::to_string(k) + " agents)";
  report.peak_memory = 0;
  for (const AgentJobFigures& agent : figures) {
    report.peak_rss.push_back(agent.peak_rss_bytes);
    report.peak_budget.push_back(agent.peak_budget_bytes);
    if (agent.memory_budget_bytes > 0) report.memory_budget = agent.memory_budget_bytes;
  }
  for (const auto& location : locations) {
    (void)ping_client->Action(location, kActionShutdown, "");
  }
  agents.Stop();
  return report;
}

}  // namespace

arrow::Result<BenchMemory> BenchMemoryOf(const ShuffleJobOptions& options) {
  ARROW_RETURN_NOT_OK(options.job.Validate());
  BenchMemory memory;
  if (options.job.total_rows() == 0) return memory;
  ARROW_ASSIGN_OR_RAISE(auto first, options.job.WriterBatch(0, 0));
  const int64_t batches = options.job.num_writers * options.job.batches_per_writer;
  const int64_t batch_bytes = BatchBufferBytes(*first);
  int64_t bytes = 0;
  if (__builtin_mul_overflow(batch_bytes, batches, &bytes)) bytes = INT64_MAX;
  memory.input_bytes = bytes;
  // Validate() bounds the writers (kMaxPartitions) and a batch's rows, so this cannot overflow.
  const int64_t pinned = 2 * int64_t{options.job.num_writers} * batch_bytes;
  memory.output_bytes = bytes > INT64_MAX - pinned ? INT64_MAX : bytes + pinned;
  return memory;
}

int64_t AvailableMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string name;
  int64_t kib = 0;
  std::string unit;
  while (meminfo >> name >> kib >> unit) {
    if (name == "MemAvailable:") return kib * 1024;
  }
  return -1;
}

arrow::Status ValidateBench(const ShuffleJobOptions& options) {
  const int64_t memory_limit = options.bench_memory_limit;
  if (options.num_agents > 0) {
    return arrow::Status::Invalid(
        "the benchmark (--bench) runs in local mode only: with agents, each agent generates its "
        "writers' batches in its own process when its task call arrives, inside the job's clock, "
        "and nothing holds them there beforehand; run it without agents");
  }
  ARROW_ASSIGN_OR_RAISE(BenchMemory memory, BenchMemoryOf(options));
  auto mib = [](int64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; };
  const auto room = static_cast<int64_t>(static_cast<double>(options.manager.memory_budget) *
                                         (1 - ShuffleManager::kReservableFraction));
  if (memory.output_bytes > room) {
    return arrow::Status::Invalid(
        "the benchmark (--bench) keeps every batch the readers receive until the check after "
        "the clock: ", mib(memory.output_bytes), " of shuffle output in the memory budget, which "
        "leaves ", mib(room), " beside the writers' working sets (budget ",
        mib(options.manager.memory_budget), "); raise the memory budget or shuffle fewer rows");
  }
  const int64_t held = memory.input_bytes > INT64_MAX - memory.output_bytes
                           ? INT64_MAX
                           : memory.input_bytes + memory.output_bytes;
  const int64_t limit = memory_limit > 0 ? memory_limit : AvailableMemoryBytes();
  if (limit >= 0 && held > limit) {
    return arrow::Status::Invalid(
        "the benchmark (--bench) holds the whole input (", mib(memory.input_bytes),
        ", generated before the clock) and output (", mib(memory.output_bytes),
        ", checked after it) at once: ", mib(held), ", more than ",
        memory_limit > 0 ? "the limit of " + mib(limit)
                         : "the " + mib(limit) + " this machine has available",
        "; shuffle fewer rows");
  }
  return arrow::Status::OK();
}

arrow::Result<ShuffleJobReport> RunShuffleJob(const ShuffleJobOptions& options,
                                              const ProgressCallback& progress,
                                              ShuffleRunCancellation* cancellation) {
  ARROW_RETURN_NOT_OK(options.job.Validate());
  if (options.timing == GeneratedRunTiming::kShuffleOnly) {
    ARROW_RETURN_NOT_OK(ValidateBench(options));
  }
  ARROW_RETURN_NOT_OK(ValidateCount(options.num_partitions, "number of partitions"));
  if (options.num_agents < 0 || options.num_agents > kMaxAgents) {
    return arrow::Status::Invalid("number of agents must be between 0 (local mode) and ",
                                  kMaxAgents, ", got ", options.num_agents);
  }
  ARROW_ASSIGN_OR_RAISE(auto spec, options.job.MakeSpec(options.edge, options.num_partitions));
  if (options.num_agents > 0 && options.job.total_rows() == 0) {
    // An empty table has no row to move, and a generator source of no rows cannot be said (0
    // rows is an unbounded source): nothing runs, and nothing is missing.
    ShuffleJobReport report;
    report.mode = "distributed (" + std::to_string(options.num_agents) + " agents)";
    report.partition_rows.assign(options.num_partitions, 0);
    return report;
  }
  if (options.num_agents > 0) {
    // A dataflow job on the agents: their verify sinks check every row and that none is missing.
    return RunDistributed(options, *spec, progress, cancellation);
  }
  if (options.timing == GeneratedRunTiming::kEndToEnd && options.job.total_rows() > 0) {
    // The job's verify sink checks every row (and that none is missing) before it returns.
    return RunLocalJobOf(options, *spec, progress, cancellation);
  }
  ARROW_ASSIGN_OR_RAISE(auto check, GeneratedShuffleCheck::Make(options.job, spec));
  ShuffleJobReport report;
  ARROW_ASSIGN_OR_RAISE(report, RunLocal(options, spec, check.get(), progress, cancellation));
  ARROW_RETURN_NOT_OK(check->Finish());
  report.rows_verified = check->rows_checked();
  return report;
}

}  // namespace sabot
