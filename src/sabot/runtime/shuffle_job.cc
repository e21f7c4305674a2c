#include "sabot/runtime/shuffle_job.h"

#include <cctype>
#include <climits>
#include <fstream>
#include <future>
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

namespace sabot {

namespace {

using Clock = std::chrono::steady_clock;

// How long the job manager waits, once a job is cancelled, for its task calls to return before
// it stops the agents that still hold them.
constexpr auto kCancelledCallsGrace = std::chrono::seconds(10);

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

  const ProgressCallback& report_;
  std::function<std::pair<int64_t, int64_t>()> read_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Of several tasks' failures, the one that explains the others: a task that failed on its own
// rather than one cancelled because another failed (a writer whose reader went away, say).
class RootCause {
 public:
  void Add(arrow::Status status) {
    if (status.ok()) return;
    if (first_.ok()) first_ = status;
    if (cause_.ok() && !status.IsCancelled()) cause_ = std::move(status);
  }
  arrow::Status status() const { return cause_.ok() ? first_ : cause_; }

 private:
  arrow::Status first_;
  arrow::Status cause_;
};

// The tasks an agent runs: of `count` tasks spread over `num_agents`, those t with
// t % num_agents == agent.
std::vector<int32_t> TasksOfAgent(int32_t agent, int32_t count, int32_t num_agents) {
  std::vector<int32_t> tasks;
  for (int32_t t = agent; t < count; t += num_agents) tasks.push_back(t);
  return tasks;
}

// A failed task call to an agent, in the terms of the shuffle: which shuffle, which agent and
// which of its tasks (writer tasks, or the partitions it reads). An agent's own error already
// names the partition and writer that failed; a call that failed as a whole (the agent died, the
// connection broke) names every task the agent was running.
arrow::Status TaskCallFailed(const arrow::Status& status, const std::string& shuffle_id,
                             const std::string& agent, bool writers,
                             const std::vector<int32_t>& tasks) {
  ShuffleErrorContext where{.shuffle_id = shuffle_id, .agent = agent};
  // The message, not a ShuffleErrorDetail: an agent's error crosses Flight as code and text.
  const std::string& message = status.message();
  // "writer 3" or "partition 1", not "the writer was cancelled".
  auto names = [&](const std::string& word) {
    for (size_t at = message.find(word); at != std::string::npos; at = message.find(word, at + 1)) {
      const size_t digit = at + word.size();
      if (digit < message.size() && std::isdigit(static_cast<unsigned char>(message[digit]))) {
        return true;
      }
    }
    return false;
  };
  const bool names_task = names("writer ") || names("partition ");
  if (names_task || tasks.empty()) return WithShuffleContext(status, where);
  if (tasks.size() == 1) {
    if (writers) {
      where.writer_task = tasks[0];
    } else {
      where.partition_id = tasks[0];
    }
    return WithShuffleContext(status, where);
  }
  std::string list;
  for (int32_t t : tasks) list += (list.empty() ? "" : ", ") + std::to_string(t);
  arrow::Status named(status.code(),
                      (writers ? "writer tasks " : "partitions ") + list + ": " + message,
                      status.detail());
  return WithShuffleContext(named, where);
}

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
  const JobReport& job = *ran;
  const EdgeReport& edge = job.edges.front();
  ShuffleJobReport report;
  report.mode = "local";
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
  report.peak_rss = {PeakResidentBytes()};
  return report;
}

arrow::Result<ShuffleJobReport> RunDistributed(const ShuffleJobOptions& options,
                                               std::shared_ptr<const PartitionSpec> spec,
                                               GeneratedShuffleCheck* check,
                                               const ProgressCallback& progress,
                                               ShuffleRunCancellation* cancellation) {
  const int32_t k = options.num_agents;
  std::string binary = options.agent_binary;
  if (binary.empty()) {
    ARROW_ASSIGN_OR_RAISE(binary, CurrentExecutable());
  }
  ARROW_ASSIGN_OR_RAISE(std::string spill_dir, ResolveSpillDirectory(options.agent_spill_dir));
  ShuffleClientOptions client_options;
  client_options.call_timeout = std::chrono::hours(2);  // task actions last as long as the job
  ARROW_ASSIGN_OR_RAISE(auto client, ShuffleClient::Make(client_options));
  // For short calls (pings, progress, cancellations): each bounded, so an agent that hangs
  // holds up nothing for long.
  ShuffleClientOptions cancel_options;
  cancel_options.call_timeout = std::chrono::seconds(10);
  ARROW_ASSIGN_OR_RAISE(auto cancel_client, ShuffleClient::Make(cancel_options));
  ShuffleDescriptor descriptor = MakeDescriptor(options, spec);
  AgentFleet agents(spill_dir);
  std::vector<std::string> locations;
  for (int32_t i = 0; i < k; ++i) {
    // The agents started so far hear from the job manager while the others start (their
    // --control-timeout-s counts from their start).
    for (const auto& location : locations) {
      ControlMessage ping;
      ping.Set("shuffle_id", descriptor.shuffle_id);
      (void)cancel_client->Action(location, kActionProgress, ping.Encode());
    }
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
  ARROW_ASSIGN_OR_RAISE(auto descriptor_bytes, descriptor.Serialize());
  for (const auto& location : locations) {
    ControlMessage request;
    request.SetBytes("descriptor", *descriptor_bytes);
    request.Set("job_id", "shuffle-job");
    ARROW_RETURN_NOT_OK(WithShuffleContext(
        client->Action(location, kActionRegisterShuffle, request.Encode()).status(),
        {.shuffle_id = descriptor.shuffle_id, .agent = location}));
  }

  std::vector<WriterLocation> upstream;
  for (TaskIndex w = 0; w < options.job.num_writers; ++w) upstream.push_back({w, 0, locations[w % k]});
  auto task_request = [&](int32_t agent, bool writers) {
    ControlMessage request;
    request.Set("shuffle_id", descriptor.shuffle_id);
    PutGeneratedJob(options.job, &request);
    const int32_t count = writers ? options.job.num_writers : options.num_partitions;
    std::vector<int32_t> tasks = TasksOfAgent(agent, count, k);
    request.SetInts("tasks", std::vector<int64_t>(tasks.begin(), tasks.end()));
    if (!writers) PutWriterLocations(upstream, &request);
    return request.Encode();
  };
  auto launch = [&](bool writers) {
    std::vector<std::future<arrow::Result<std::string>>> calls;
    for (int32_t i = 0; i < k; ++i) {
      calls.push_back(std::async(std::launch::async, [&, i, writers] {
        return client->Action(locations[i], writers ? kActionRunWriters : kActionRunReaders,
                              task_request(i, writers));
      }));
    }
    return calls;
  };
  auto poll_progress = [&] {
    int64_t written = 0, read = 0;
    for (const auto& location : locations) {
      ControlMessage request;
      request.Set("shuffle_id", descriptor.shuffle_id);
      auto reply = cancel_client->Action(location, kActionProgress, request.Encode());
      if (!reply.ok()) continue;
      auto message = ControlMessage::Decode(*reply);
      if (!message.ok()) continue;
      written += message->GetInt("rows_written").ValueOr(0);
      read += message->GetInt("rows_read").ValueOr(0);
    }
    return std::make_pair(written, read);
  };

  ShuffleJobReport report;
  report.mode = "distributed (" + std::to_string(k) + " agents)";
  report.partition_rows.assign(options.num_partitions, 0);
  auto start = Clock::now();
  RootCause failures;
  // At the first failure every agent cancels the shuffle's tasks: the others would otherwise
  // wait for the failed task's streams until their timeout. Sent to all agents at once, each
  // call bounded (cancel_client: an agent that hangs must not hold up the others).
  bool cancelled = false;
  Clock::time_point cancelled_at;
  bool agents_stopped = false;
  // `status` is already in the shuffle's terms (TaskCallFailed, or the job's cancellation with
  // the shuffle named); `location` is the failed task's agent, empty when the job itself was
  // cancelled.
  auto fail = [&](const arrow::Status& status, const std::string& location) {
    failures.Add(status);
    if (cancelled) return;
    cancelled = true;
    cancelled_at = Clock::now();
    const std::string reason =
        location.empty() ? "the job was cancelled: " + status.message()
                         : "cancelled because a task on agent " + location + " failed";
    std::vector<std::future<void>> sent;
    for (const auto& agent : locations) {
      sent.push_back(std::async(std::launch::async, [&, agent] {
        ControlMessage request;
        request.Set("shuffle_id", descriptor.shuffle_id);
        request.Set("reason", reason);
        (void)cancel_client->Action(agent, kActionCancelShuffle, request.Encode());
      }));
    }
    for (auto& call : sent) call.get();
  };
  auto take_writers = [&](const std::string& reply) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto message, ControlMessage::Decode(reply));
    report.rows += message.GetInt("rows_written").ValueOr(0);
    report.bytes += message.GetInt("bytes_written").ValueOr(0);
    return arrow::Status::OK();
  };
  auto take_readers = [&](const std::string& reply) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto message, ControlMessage::Decode(reply));
    ARROW_ASSIGN_OR_RAISE(auto rows, message.GetInts("partition_rows"));
    for (size_t p = 0; p < rows.size() && p < report.partition_rows.size(); ++p) {
      report.partition_rows[p] += rows[p];
    }
    ARROW_ASSIGN_OR_RAISE(auto counts, message.GetInts("counts"));
    return check->MergeCounts(counts);
  };
  // The task calls in flight: writers' and readers', one per agent each.
  struct Call {
    std::future<arrow::Result<std::string>> reply;
    bool writers;
    size_t agent;
  };
  std::vector<Call> calls;
  auto start_calls = [&](bool writers) {
    auto started = launch(writers);
    for (size_t i = 0; i < started.size(); ++i) calls.push_back({std::move(started[i]), writers, i});
  };
  // Waits for every call in flight, in the order they finish; any failure (of the call, or of
  // what it replied) fails the job at once.
  auto wait_all = [&] {
    while (!calls.empty()) {
      if (cancellation != nullptr && !cancelled && cancellation->cancelled()) {
        fail(WithShuffleContext(cancellation->cause(), {.shuffle_id = descriptor.shuffle_id}), "");
      }
      // Cancelled tasks return at once; an agent whose calls still have not returned long after
      // is stuck (stopped, deadlocked): stopping the agents (SIGKILL after the grace period)
      // fails its calls, so the job never waits for their two-hour call timeout.
      if (cancelled && !agents_stopped && Clock::now() - cancelled_at > kCancelledCallsGrace) {
        agents_stopped = true;
        SABOT_LOG(kWarning) << calls.size() << " task call(s) still running "
                            << std::chrono::duration_cast<std::chrono::seconds>(
                                   kCancelledCallsGrace).count()
                            << " s after the job was cancelled: stopping the agents";
        agents.Stop();
      }
      bool any_ready = false;
      for (size_t i = 0; i < calls.size();) {
        if (calls[i].reply.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
          ++i;
          continue;
        }
        any_ready = true;
        Call call = std::move(calls[i]);
        calls.erase(calls.begin() + static_cast<std::ptrdiff_t>(i));
        const std::string& location = locations[call.agent];
        auto reply = call.reply.get();
        arrow::Status taken = !reply.ok()       ? reply.status()
                              : call.writers ? take_writers(*reply)
                                             : take_readers(*reply);
        if (!taken.ok()) {
          const int32_t count = call.writers ? options.job.num_writers : options.num_partitions;
          fail(TaskCallFailed(taken, descriptor.shuffle_id, location, call.writers,
                              TasksOfAgent(static_cast<int32_t>(call.agent), count, k)),
               location);
        }
      }
      if (!any_ready) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  // The progress polls are also the agents' heartbeat (--control-timeout-s): they run even
  // when nobody displays progress.
  const ProgressCallback heartbeat = progress ? progress : [](int64_t, int64_t) {};
  {
    ProgressTicker ticker(heartbeat, poll_progress);
    // Pipelined readers must consume while writers produce; blocking readers start after.
    start_calls(/*writers=*/true);
    if (options.shuffle.mode == ShuffleMode::kPipelined) start_calls(/*writers=*/false);
    wait_all();
    if (options.shuffle.mode == ShuffleMode::kBlocking && failures.status().ok()) {
      start_calls(/*writers=*/false);
      wait_all();
    }
  }
  report.elapsed = Clock::now() - start;
  ARROW_RETURN_NOT_OK(failures.status());
  for (const auto& location : locations) {
    // An agent lost after its tasks finished still fails the job, named.
    auto collect = [&]() -> arrow::Status {
      ControlMessage request;
      request.Set("shuffle_id", descriptor.shuffle_id);
      ARROW_ASSIGN_OR_RAISE(auto reply,
                            client->Action(location, kActionShuffleStats, request.Encode()));
      ARROW_ASSIGN_OR_RAISE(auto message, ControlMessage::Decode(reply));
      ARROW_ASSIGN_OR_RAISE(ShuffleStats stats, GetShuffleStats(message));
      report.bytes_spilled += stats.bytes_spilled;
      report.blocks_spilled += stats.blocks_spilled;
      report.time_blocked += stats.time_blocked;
      report.peak_rss.push_back(message.GetInt("peak_rss_bytes").ValueOr(-1));
      report.peak_budget.push_back(message.GetInt("peak_budget_bytes").ValueOr(-1));
      report.memory_budget = message.GetInt("memory_budget_bytes").ValueOr(0);
      ControlMessage release;
      release.Set("job_id", "shuffle-job");
      return client->Action(location, kActionReleaseJob, release.Encode()).status();
    };
    ARROW_RETURN_NOT_OK(
        WithShuffleContext(collect(), {.shuffle_id = descriptor.shuffle_id, .agent = location}));
  }
  for (const auto& location : locations) {
    (void)client->Action(location, kActionShutdown, "");
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
  if (options.num_agents == 0 && options.timing == GeneratedRunTiming::kEndToEnd) {
    // The job's verify sink checks every row (and that none is missing) before it returns.
    return RunLocalJobOf(options, *spec, progress, cancellation);
  }
  ARROW_ASSIGN_OR_RAISE(auto check, GeneratedShuffleCheck::Make(options.job, spec));
  ShuffleJobReport report;
  if (options.num_agents == 0) {
    ARROW_ASSIGN_OR_RAISE(report, RunLocal(options, spec, check.get(), progress, cancellation));
  } else {
    ARROW_ASSIGN_OR_RAISE(report, RunDistributed(options, spec, check.get(), progress, cancellation));
  }
  ARROW_RETURN_NOT_OK(check->Finish());
  report.rows_verified = check->rows_checked();
  return report;
}

}  // namespace sabot
