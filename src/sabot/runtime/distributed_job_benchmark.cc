// Runs one job file locally and on K agent processes (RunDistributedJob over loopback), several
// times each in the same run, and prints the wall and CPU time of every run, their medians, and
// the distributed figure as a ratio of the local one. Used by scripts/bench-distributed.sh
// (docs/performance.md, "Distributed shuffle edge (issue 12)").
//
//   sabot_distributed_bench JOB.yaml [--agents K] [--runs N] [--sabot PATH] [--threads T]
//                           [--rows R] [--block-kib B]
//   sabot_distributed_bench --edge [--runs N] [--credits C]
//
// --rows R replaces the job's generator row counts (lines `rows: N`) with R, to size the job;
// --block-kib B sets the shuffles' target block size (ShuffleOptions::target_block_bytes).
// The job's relative paths (sources, sinks) resolve under a scratch directory that is removed
// at the end. CPU time: getrusage(RUSAGE_SELF) for the local runs (the job runs in this
// process); for the distributed runs, this process (the driver) plus every agent process's
// utime + stime from /proc/<pid>/stat, read before and after each run. Agents are started once,
// before the first distributed run, and stopped at the end.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "sabot/common/arrow_init.h"
#include "sabot/common/process_memory.h"
#include "sabot/dataflow/job_file.h"
#include "sabot/dataflow/local_executor.h"
#include "sabot/runtime/agent_process.h"
#include "sabot/runtime/distributed_job.h"
#include "sabot/runtime/shuffle_ceiling.h"

namespace fs = std::filesystem;

namespace sabot {
namespace {

struct Options {
  std::string job_file;
  int32_t agents = 2;
  int32_t runs = 3;
  int32_t threads = 0;
  std::string sabot = SABOT_BINARY_PATH;
  int64_t rows = 0;  // > 0: the generator sources' `rows:` replaced with this
  int32_t block_kib = 0;  // > 0: the shuffles' target block size (ShuffleOptions)
  bool edge = false;
  int32_t credits = 2;
};

double Seconds(const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; }

double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return Seconds(usage.ru_utime) + Seconds(usage.ru_stime);
}

// utime + stime of process `pid` (fields 14 and 15 of /proc/<pid>/stat), in seconds.
arrow::Result<double> ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: count after its ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) {
    return arrow::Status::IOError("cannot read /proc/", pid, "/stat");
  }
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double LoadAverage() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

// The job file at `path`, its relative paths under `base`; with rows > 0, every line whose first
// key is `rows:` (the generator sources' row counts) says `rows: <rows>` instead.
arrow::Result<JobFile> Load(const std::string& path, const fs::path& base, int64_t rows) {
  std::ifstream in(path);
  if (!in) return arrow::Status::IOError("cannot read job file '", path, "'");
  std::string text, line;
  int32_t replaced = 0;
  while (std::getline(in, line)) {
    const size_t key = line.find_first_not_of(' ');
    if (rows > 0 && key != std::string::npos && line.compare(key, 5, "rows:") == 0) {
      line = line.substr(0, key) + "rows: " + std::to_string(rows);
      ++replaced;
    }
    text += line + "\n";
  }
  if (rows > 0 && replaced == 0) {
    return arrow::Status::Invalid("--rows: job file '", path, "' has no `rows:` line");
  }
  return ParseJobFile(text, path, base.string());
}

struct Figures {
  std::vector<double> wall, cpu;
  int64_t rows_out = 0;  // the last operator's rows out, to check both modes did the same work
  int64_t edge_rows = 0;   // rows and block bytes through the job's shuffle edges (last run)
  int64_t edge_bytes = 0;
};

void TakeEdges(const JobReport& report, Figures* figures) {
  figures->edge_rows = 0;
  figures->edge_bytes = 0;
  for (const EdgeReport& edge : report.edges) {
    if (edge.chained) continue;
    figures->edge_rows += edge.total_rows();
    figures->edge_bytes += edge.bytes;
  }
}

void PrintRun(const char* mode, int32_t run, double wall, double cpu) {
  std::printf("  %-8s run %d: %.3f s wall, %.3f s CPU, load %.1f\n", mode, run, wall, cpu,
              LoadAverage());
  std::fflush(stdout);
}

// --edge: the distributed shuffle edge alone against plain Flight, alternating, `runs` times:
// the table `sabot shuffle` generates by default (4 writers x 62 batches of 16,384 rows x 32 B,
// 130 MB), over 2 streams (MeasureFlightCeiling) and 2 pipelined Flight channels
// (MeasurePipelinedFlightEdge), CPU time of this process (both ends are in it) while each moved
// the bytes (the setup before the clock, generating and encoding, is left out).
arrow::Status MainEdge(const Options& options) {
  GeneratedJob job;
  job.num_writers = 4;
  job.data.batch_rows = 16 * 1024;
  job.batches_per_writer = (1000 * 1000 + job.data.batch_rows - 1) / job.data.batch_rows;
  job.data.key_cardinality = 1 << 20;
  job.data.payload_columns = 3;
  ARROW_RETURN_NOT_OK(job.Validate());
  const int32_t streams = 2;
  std::printf("edge: %lld rows, %d streams, %d exclusive credits per channel; load average %.1f, "
              "%ld cores\n", static_cast<long long>(job.total_rows()), streams, options.credits,
              LoadAverage(), sysconf(_SC_NPROCESSORS_ONLN));
  std::vector<double> flight_rate, edge_rate, flight_cpu, edge_cpu, ratios;
  for (int32_t run = 0; run < options.runs; ++run) {
    ARROW_ASSIGN_OR_RAISE(CeilingMeasurement flight, MeasureFlightCeiling(job, streams));
    ARROW_ASSIGN_OR_RAISE(CeilingMeasurement edge,
                          MeasurePipelinedFlightEdge(job, streams, options.credits));
    if (edge.rows != flight.rows || edge.bytes != flight.bytes) {
      return arrow::Status::Invalid("the edge moved ", edge.rows, " rows (", edge.bytes,
                                    " B), plain Flight ", flight.rows, " (", flight.bytes, " B)");
    }
    flight_rate.push_back(flight.bytes_per_second() / 1e9);
    edge_rate.push_back(edge.bytes_per_second() / 1e9);
    flight_cpu.push_back(std::chrono::duration<double>(flight.cpu).count());
    edge_cpu.push_back(std::chrono::duration<double>(edge.cpu).count());
    ratios.push_back(edge_rate.back() / flight_rate.back());
    std::printf("  run %d: plain Flight %.2f GB/s (%.3f s CPU), Sabot edge %.2f GB/s (%.3f s CPU):"
                " %.2f of Flight; load %.1f\n", run + 1, flight_rate.back(), flight_cpu.back(),
                edge_rate.back(), edge_cpu.back(), ratios.back(), LoadAverage());
    std::fflush(stdout);
  }
  std::printf("result edge: plain Flight %.2f GB/s, %.3f s CPU; Sabot pipelined edge %.2f GB/s, "
              "%.3f s CPU; %.2f of Flight (median of the runs' ratios; goal >= 0.8)\n",
              Median(flight_rate), Median(flight_cpu), Median(edge_rate), Median(edge_cpu),
              Median(ratios));
  return arrow::Status::OK();
}

arrow::Status Main(const Options& options) {
  ARROW_RETURN_NOT_OK(InitializeArrow());
  if (options.edge) return MainEdge(options);
  const fs::path scratch =
      fs::temp_directory_path() / ("sabot-distbench-" + std::to_string(getpid()));
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{scratch};
  fs::create_directories(scratch / "local");
  fs::create_directories(scratch / "agents");
  ARROW_ASSIGN_OR_RAISE(JobFile local_job, Load(options.job_file, scratch / "local", options.rows));
  ARROW_ASSIGN_OR_RAISE(JobFile agents_job, Load(options.job_file, scratch / "agents", options.rows));
  ARROW_RETURN_NOT_OK(CheckDistributedPlan(agents_job.plan));
  std::printf("job %s (%s%s): %d runs locally, then %d on %d agents; load average %.1f, "
              "%ld cores\n", local_job.name.c_str(), options.job_file.c_str(),
              options.rows > 0 ? (", rows: " + std::to_string(options.rows)).c_str() : "",
              options.runs, options.runs,
              options.agents, LoadAverage(), sysconf(_SC_NPROCESSORS_ONLN));

  Figures local;
  for (int32_t run = 0; run < options.runs; ++run) {
    LocalExecutorOptions executor;
    executor.job_id = local_job.name;
    executor.threads = options.threads;
    executor.memory_budget = local_job.options.memory_budget_bytes.value_or(256LL << 20);
    executor.state_budget_per_task = local_job.options.state_budget_bytes.value_or(0);
    executor.spill_directory = (scratch / "local-spill").string();
    if (options.block_kib > 0) executor.shuffle.target_block_bytes = options.block_kib * 1024LL;
    fs::create_directories(executor.spill_directory);
    const double cpu0 = SelfCpuSeconds();
    const auto t0 = std::chrono::steady_clock::now();
    ARROW_ASSIGN_OR_RAISE(JobReport report, RunLocalJob(local_job.plan, executor));
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = SelfCpuSeconds() - cpu0;
    local.wall.push_back(wall);
    local.cpu.push_back(cpu);
    local.rows_out = report.operators.empty() ? 0 : report.operators.back().rows_out;
    TakeEdges(report, &local);
    PrintRun("local", run + 1, wall, cpu);
  }

  std::vector<std::unique_ptr<AgentProcess>> agents;
  std::vector<AgentEndpoint> endpoints;
  for (int32_t a = 0; a < options.agents; ++a) {
    const std::string id = "agent-" + std::to_string(a);
    const fs::path spill = scratch / ("spill-" + id);
    fs::create_directories(spill);
    ARROW_ASSIGN_OR_RAISE(auto agent,
                          AgentProcess::Start(options.sabot, {"agent", "--host", "127.0.0.1",
                                                              "--port", "0", "--agent-id", id,
                                                              "--spill-dir", spill.string()}));
    endpoints.push_back({id, agent->location(), 64});
    agents.push_back(std::move(agent));
  }
  auto agents_cpu = [&]() -> arrow::Result<double> {
    double total = SelfCpuSeconds();
    for (const auto& agent : agents) {
      ARROW_ASSIGN_OR_RAISE(double cpu, ProcessCpuSeconds(agent->pid()));
      total += cpu;
    }
    return total;
  };
  Figures distributed;
  arrow::Status status;
  for (int32_t run = 0; run < options.runs && status.ok(); ++run) {
    DistributedJobOptions job;
    job.job_id = agents_job.name.substr(0, 20) + "-" + std::to_string(run);
    job.memory_budget = 0;
    job.state_budget_per_task = agents_job.options.state_budget_bytes.value_or(0);
    job.threads = options.threads;
    if (options.block_kib > 0) job.shuffle.target_block_bytes = options.block_kib * 1024LL;
    ARROW_ASSIGN_OR_RAISE(double cpu0, agents_cpu());
    const auto t0 = std::chrono::steady_clock::now();
    auto report = RunDistributedJob(agents_job.plan, endpoints, job);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!report.ok()) {
      status = report.status();
      break;
    }
    ARROW_ASSIGN_OR_RAISE(double cpu1, agents_cpu());
    distributed.wall.push_back(wall);
    distributed.cpu.push_back(cpu1 - cpu0);
    distributed.rows_out = report->operators.empty() ? 0 : report->operators.back().rows_out;
    TakeEdges(*report, &distributed);
    PrintRun("agents", run + 1, wall, cpu1 - cpu0);
  }
  std::vector<AgentProcess*> raw;
  for (const auto& agent : agents) raw.push_back(agent.get());
  StopAgents(raw);
  ARROW_RETURN_NOT_OK(status);
  if (local.rows_out != distributed.rows_out) {
    return arrow::Status::Invalid("the local runs' last operator emitted ", local.rows_out,
                                  " rows, the distributed runs' ", distributed.rows_out);
  }
  const double local_wall = Median(local.wall), agents_wall = Median(distributed.wall);
  std::printf("result %s local: %.3f s wall (median), %.3f s CPU; rows out %lld; shuffle edges "
              "%lld rows, %.1f MB of blocks\n", local_job.name.c_str(), local_wall,
              Median(local.cpu), static_cast<long long>(local.rows_out),
              static_cast<long long>(local.edge_rows), local.edge_bytes / 1e6);
  std::printf("result %s %d agents: %.3f s wall (median), %.3f s CPU; %.2f of local speed; "
              "shuffle edges %lld rows, %.1f MB of blocks\n", local_job.name.c_str(),
              options.agents, agents_wall, Median(distributed.cpu),
              agents_wall > 0 ? local_wall / agents_wall : 0.0,
              static_cast<long long>(distributed.edge_rows), distributed.edge_bytes / 1e6);
  return arrow::Status::OK();
}

}  // namespace
}  // namespace sabot

int main(int argc, char** argv) {
  // The allocator settings of the `sabot` agents (freed memory returned at once), so the edge
  // measured here allocates as it does in an agent.
  sabot::ReturnFreedMemoryPromptly(argv);
  sabot::Options options;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto usage = [] {
    std::cerr << "usage: sabot_distributed_bench --edge [--runs N] [--credits C]\n"
                 "       sabot_distributed_bench JOB.yaml [--agents K] [--runs N] "
                 "[--threads T] [--rows R] [--block-kib B] [--sabot PATH]\n";
    return 2;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&](int32_t* out) {
      if (i + 1 >= args.size()) return false;
      *out = std::atoi(args[++i].c_str());
      return true;
    };
    if (args[i] == "--agents") {
      if (!value(&options.agents) || options.agents < 1 || options.agents > 64) return usage();
    } else if (args[i] == "--runs") {
      if (!value(&options.runs) || options.runs < 1) return usage();
    } else if (args[i] == "--threads") {
      if (!value(&options.threads) || options.threads < 0) return usage();
    } else if (args[i] == "--block-kib") {
      if (!value(&options.block_kib) || options.block_kib < 1) return usage();
    } else if (args[i] == "--edge") {
      options.edge = true;
    } else if (args[i] == "--credits") {
      if (!value(&options.credits) || options.credits < 1) return usage();
    } else if (args[i] == "--rows") {
      if (i + 1 >= args.size()) return usage();
      options.rows = std::atoll(args[++i].c_str());
      if (options.rows < 1) return usage();
    } else if (args[i] == "--sabot") {
      if (i + 1 >= args.size()) return usage();
      options.sabot = args[++i];
    } else if (options.job_file.empty() && !args[i].empty() && args[i][0] != '-') {
      options.job_file = args[i];
    } else {
      return usage();
    }
  }
  if (options.job_file.empty() && !options.edge) return usage();
  auto status = sabot::Main(options);
  if (!status.ok()) {
    std::cerr << "sabot_distributed_bench: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}
