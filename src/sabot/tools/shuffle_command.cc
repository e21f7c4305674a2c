#include "sabot/tools/shuffle_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <optional>
#include <thread>

#include <arrow/util/compression.h>

#include "sabot/memory/block_codec.h"
#include "sabot/runtime/shuffle_ceiling.h"
#include "sabot/runtime/shuffle_job.h"

namespace sabot {

namespace {

struct CommandOptions {
  int64_t rows = 4 * 1000 * 1000;
  int32_t writers = 4;
  int32_t partitions = 4;
  std::string edge = "hash";
  std::string mode = "pipelined";
  std::string keys = "uniform";
  double hot_key_fraction = 0.5;
  int64_t key_cardinality = 1 << 20;
  int32_t payload_columns = 3;
  int64_t batch_rows = 16 * 1024;
  int64_t block_kib = 256;
  std::string compression = "none";
  int32_t agents = 0;
  int64_t memory_budget_mib = 256;
  std::string spill_dir;
  bool no_ceiling = false;
  bool bench = false;
  int64_t bench_memory_mib = 0;
};

[[noreturn]] void Fail(const arrow::Status& status, int exit_code) {
  std::cerr << "sabot shuffle: " << status.CodeAsString() << ": " << status.message() << "\n";
  throw CLI::RuntimeError(exit_code);
}

arrow::Result<EdgeType> ParseEdge(const std::string& name) {
  if (name == "hash") return EdgeType::kHash;
  if (name == "range") return EdgeType::kRange;
  if (name == "rebalance") return EdgeType::kRebalance;
  if (name == "broadcast") return EdgeType::kBroadcast;
  if (name == "forward") return EdgeType::kForward;
  return arrow::Status::Invalid("--edge must be hash, range, rebalance, broadcast or forward, got '",
                                name, "'");
}

arrow::Result<ShuffleJobOptions> MakeJob(const CommandOptions& options) {
  ShuffleJobOptions job;
  if (options.writers < 1 || options.writers > kMaxPartitions) {
    return arrow::Status::Invalid("--writers must be between 1 and ", kMaxPartitions, ", got ",
                                  options.writers);
  }
  if (options.batch_rows < 1 || options.batch_rows > (int64_t{1} << 24)) {
    return arrow::Status::Invalid("--batch-rows must be between 1 and 16777216, got ",
                                  options.batch_rows);
  }
  if (options.rows < 0) return arrow::Status::Invalid("--rows must be >= 0, got ", options.rows);
  ARROW_RETURN_NOT_OK(ValidateCount(options.partitions, "--partitions"));
  if (options.agents < 0 || options.agents > kMaxAgents) {
    return arrow::Status::Invalid("--agents must be between 0 (local mode) and ", kMaxAgents,
                                  ", got ", options.agents);
  }
  if (options.keys != "uniform" && options.keys != "skewed") {
    return arrow::Status::Invalid("--keys must be uniform or skewed, got '", options.keys, "'");
  }
  if (!(options.hot_key_fraction >= 0 && options.hot_key_fraction <= 1)) {
    return arrow::Status::Invalid("--hot-key-fraction must be between 0 and 1, got ",
                                  options.hot_key_fraction);
  }
  if (options.payload_columns < 1 || options.payload_columns > 64) {
    return arrow::Status::Invalid("--payload-columns must be between 1 and 64, got ",
                                  options.payload_columns);
  }
  if (options.block_kib < 1) {
    return arrow::Status::Invalid("--block-kib must be >= 1, got ", options.block_kib);
  }
  if (options.memory_budget_mib < 1) {
    return arrow::Status::Invalid("--memory-budget-mib must be >= 1, got ",
                                  options.memory_budget_mib);
  }
  // Rows are split into whole batches per writer; the total is rounded up to fill them.
  const int64_t rows_per_writer = (options.rows + options.writers - 1) / options.writers;
  job.job.data.batch_rows = std::min(options.batch_rows, std::max<int64_t>(rows_per_writer, 1));
  job.job.batches_per_writer =
      (rows_per_writer + job.job.data.batch_rows - 1) / job.job.data.batch_rows;
  job.job.num_writers = options.writers;
  job.job.data.key_cardinality = options.key_cardinality;
  job.job.data.distribution =
      options.keys == "skewed" ? KeyDistribution::kSkewed : KeyDistribution::kUniform;
  job.job.data.hot_key_fraction = options.hot_key_fraction;
  job.job.data.payload_columns = options.payload_columns;
  ARROW_ASSIGN_OR_RAISE(job.edge, ParseEdge(options.edge));
  job.num_partitions = options.partitions;
  ARROW_ASSIGN_OR_RAISE(job.shuffle.mode, ParseShuffleMode(options.mode));
  ARROW_ASSIGN_OR_RAISE(job.shuffle.compression, ParseBlockCompression(options.compression));
  job.shuffle.target_block_bytes = options.block_kib * 1024;
  job.num_agents = options.agents;
  job.manager.memory_budget = options.memory_budget_mib << 20;
  job.manager.spill.directory = options.spill_dir;
  job.agent_args = {"--memory-budget-mib", std::to_string(options.memory_budget_mib)};
  job.agent_spill_dir = options.spill_dir;
  if (options.bench_memory_mib != 0 && !options.bench) {
    return arrow::Status::Invalid("--bench-memory-mib applies to --bench only");
  }
  if (options.bench) {
    if (options.no_ceiling) {
      return arrow::Status::Invalid("--bench measures the shuffle against the same-run memcpy "
                                    "ceiling; it cannot be combined with --no-ceiling");
    }
    if (options.bench_memory_mib < 0 || options.bench_memory_mib > (int64_t{1} << 40)) {
      return arrow::Status::Invalid("--bench-memory-mib must be between 0 (the memory this "
                                    "machine has available) and 2^40, got ",
                                    options.bench_memory_mib);
    }
    job.timing = GeneratedRunTiming::kShuffleOnly;
    job.bench_memory_limit = options.bench_memory_mib << 20;
    ARROW_RETURN_NOT_OK(ValidateBench(job));
  }
  return job;
}

std::string Human(double value, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T"};
  int i = 0;
  while (value >= 1000 && i < 4) {
    value /= 1000;
    ++i;
  }
  char text[64];
  std::snprintf(text, sizeof(text), "%.2f %s%s", value, prefixes[i], unit);
  return text;
}

// The ceilings measured after the job, in the same run (shuffle_ceiling.h).
struct Ceilings {
  std::optional<CeilingMeasurement> memcpy;
  std::optional<CeilingMeasurement> flight;  // distributed mode only
};

// "  ceiling    <what>, <parallelism> <unit>: <rate>; this shuffle <ratio> of it"
void PrintCeiling(const char* label, const char* what, const char* unit,
                  const CeilingMeasurement& ceiling, double shuffle_bytes_per_second) {
  const double rate = ceiling.bytes_per_second();
  std::printf("  %-10s %s, %d %s: %s/s; this shuffle %.2f of it\n", label, what,
              ceiling.parallelism, unit, Human(rate, "B").c_str(),
              rate > 0 ? shuffle_bytes_per_second / rate : 0.0);
}

void PrintReport(const CommandOptions& options, const ShuffleJobOptions& job,
                 const ShuffleJobReport& report, const Ceilings& ceilings) {
  const double seconds = std::chrono::duration<double>(report.elapsed).count();
  std::printf("shuffle %s, %s mode, %s edge, %d writers x %d partitions, %s keys\n",
              report.mode.c_str(), options.mode.c_str(), options.edge.c_str(), options.writers,
              options.partitions, options.keys.c_str());
  std::printf("  rows       %lld written, %lld verified (every row exactly once, right partition)\n",
              static_cast<long long>(report.rows), static_cast<long long>(report.rows_verified));
  std::printf("  bytes      %s generated\n", Human(static_cast<double>(report.bytes), "B").c_str());
  if (job.timing == GeneratedRunTiming::kShuffleOnly) {
    // What the clock leaves out, and the memory that costs.
    std::printf("  bench      only the shuffle timed: input generated before the clock (%.3f s, "
                "%s held), output kept by the readers (%s) and checked after it (%.3f s)\n",
                std::chrono::duration<double>(report.generate_elapsed).count(),
                Human(static_cast<double>(report.bytes), "B").c_str(),
                Human(static_cast<double>(report.bytes_kept), "B").c_str(),
                std::chrono::duration<double>(report.check_elapsed).count());
  }
  if (job.timing == GeneratedRunTiming::kShuffleOnly) {
    // The CPU time says what the shuffle cost even when other processes share the cores.
    std::printf("  time       %.3f s (the NxM shuffle alone; %.3f s of CPU in this process, "
                "%lld page faults)\n",
                seconds, std::chrono::duration<double>(report.cpu_elapsed).count(),
                static_cast<long long>(report.page_faults));
  } else {
    std::printf("  time       %.3f s\n", seconds);
  }
  const double bytes_per_second = seconds > 0 ? report.bytes / seconds : 0;
  if (seconds > 0) {
    std::printf("  throughput %s/s, %s/s\n", Human(report.rows / seconds, "rows").c_str(),
                Human(bytes_per_second, "B").c_str());
  }
  if (ceilings.memcpy) {
    PrintCeiling("ceiling", "memcpy of the same bytes", "threads", *ceilings.memcpy,
                 bytes_per_second);
  }
  if (ceilings.flight) {
    PrintCeiling("", "plain Arrow Flight DoGet of the same bytes over loopback", "streams",
                 *ceilings.flight, bytes_per_second);
  }
  std::printf("  spilled    %s in %lld blocks\n",
              Human(static_cast<double>(report.bytes_spilled), "B").c_str(),
              static_cast<long long>(report.blocks_spilled));
  std::printf("  blocked    %.3f s writers waited for credit or admission (summed over writers)\n",
              std::chrono::duration<double>(report.time_blocked).count());
  if (report.peak_memory > 0) {
    std::printf("  memory     peak %s of a %s budget\n",
                Human(static_cast<double>(report.peak_memory), "B").c_str(),
                Human(static_cast<double>(job.manager.memory_budget), "B").c_str());
  }
  // Peak resident memory of each process that held shuffle data, next to its budget.
  auto mib = [](int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  for (size_t i = 0; i < report.peak_rss.size(); ++i) {
    const bool local = report.peak_budget.empty();
    std::string who = local ? "this process" : "agent " + std::to_string(i);
    std::printf("  rss        %s: peak RSS %.1f MiB, budget %.1f MiB", who.c_str(),
                mib(report.peak_rss[i]), mib(report.memory_budget));
    if (!local) std::printf(" (budget pool peak %.1f MiB)", mib(report.peak_budget[i]));
    std::printf("\n");
  }
  int64_t max_rows = 0, total = 0;
  for (int64_t rows : report.partition_rows) {
    max_rows = std::max(max_rows, rows);
    total += rows;
  }
  const double mean = report.partition_rows.empty() ? 0 : double(total) / report.partition_rows.size();
  std::printf("  partitions rows per partition (max/mean skew %.2f):\n",
              mean > 0 ? max_rows / mean : 0.0);
  const size_t shown = std::min<size_t>(report.partition_rows.size(), 64);
  for (size_t p = 0; p < shown; ++p) {
    std::printf("    %4zu %12lld\n", p, static_cast<long long>(report.partition_rows[p]));
  }
  if (shown < report.partition_rows.size()) {
    std::printf("    ... %zu more partitions\n", report.partition_rows.size() - shown);
  }
}

// SIGTERM and SIGINT stop the job cleanly: the handler only writes the signal's number to a
// pipe (all it may do), whichever thread it interrupts; a watcher thread reads it and cancels
// the job, whose agents are then stopped and their spill folders removed before RunShuffleJob
// returns. A signal after the job (while the ceilings are measured) ends the command at once:
// nothing is left to clean up then. The command exits with 128 + the signal's number (130 for
// SIGINT, 143 for SIGTERM), as a shell reports a process a signal ended.
class SignalStop {
 public:
  explicit SignalStop(ShuffleRunCancellation* job) : job_(job) {
    if (pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) return;
    write_fd_.store(pipe_[1]);
    struct sigaction action {};
    action.sa_handler = &SignalStop::OnSignal;
    action.sa_flags = SA_RESTART;  // system calls the signal interrupts go on
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, &old_term_);
    sigaction(SIGINT, &action, &old_int_);
    watcher_ = std::thread([this] { Watch(); });
  }
  ~SignalStop() {
    if (!watcher_.joinable()) return;
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    write_fd_.store(-1);
    const char wake = 0;
    ARROW_UNUSED(write(pipe_[1], &wake, 1));
    watcher_.join();
    close(pipe_[0]);
    close(pipe_[1]);
  }
  // The signal received, or 0.
  int received() const { return received_.load(); }
  // From now on a signal ends the command at once.
  void JobDone() { job_done_.store(true); }

  static const char* Name(int signal) { return signal == SIGINT ? "SIGINT" : "SIGTERM"; }

 private:
  // Async-signal-safe: an atomic load and write(2); errno is kept for the interrupted code.
  static void OnSignal(int signal) {
    const int saved_errno = errno;
    const int fd = write_fd_.load();
    const char byte = static_cast<char>(signal);
    if (fd >= 0) ARROW_UNUSED(write(fd, &byte, 1));
    errno = saved_errno;
  }

  void Watch() {
    while (true) {
      pollfd fd{pipe_[0], POLLIN, 0};
      if (poll(&fd, 1, -1) < 0 && errno != EINTR) return;
      char byte = 0;
      if (read(pipe_[0], &byte, 1) != 1) continue;
      if (byte == 0) return;  // the destructor's wake-up
      const int signal = byte;
      if (received_.exchange(signal) != 0 || job_done_.load()) {
        // A second signal, or one after the job: no more waiting.
        std::fprintf(stderr, "sabot shuffle: stopped by %s\n", Name(signal));
        std::_Exit(128 + signal);
      }
      std::fprintf(stderr, "sabot shuffle: %s received: cancelling the job\n", Name(signal));
      job_->Cancel(arrow::Status::Cancelled("sabot shuffle received ", Name(signal)));
    }
  }

  static inline std::atomic<int> write_fd_{-1};
  ShuffleRunCancellation* job_;
  int pipe_[2] = {-1, -1};
  struct sigaction old_term_ {}, old_int_ {};
  std::atomic<int> received_{0};
  std::atomic<bool> job_done_{false};
  std::thread watcher_;
};

void Run(const CommandOptions& options) {
  auto job = MakeJob(options);
  if (!job.ok()) Fail(job.status(), 2);
  ShuffleRunCancellation cancellation;
  SignalStop signals(&cancellation);
  const int64_t total = job->job.total_rows();
  ProgressCallback progress;
  if (isatty(STDERR_FILENO)) {
    progress = [total](int64_t written, int64_t read) {
      std::fprintf(stderr, "\r  %lld / %lld rows written, %lld read   ",
                   static_cast<long long>(written), static_cast<long long>(total),
                   static_cast<long long>(read));
      std::fflush(stderr);
    };
  }
  auto report = RunShuffleJob(*job, progress, &cancellation);
  signals.JobDone();
  if (progress) std::fprintf(stderr, "\r%70s\r", "");
  if (const int signal = signals.received(); signal != 0) {
    std::cerr << "sabot shuffle: stopped by " << SignalStop::Name(signal) << ": the job was "
              << "cancelled" << (options.agents > 0 ? ", its agents stopped" : "")
              << " and its spill files removed\n";
    throw CLI::RuntimeError(128 + signal);
  }
  if (!report.ok()) Fail(report.status(), 1);
  Ceilings ceilings;
  if (!options.no_ceiling) {
    // As many threads or streams as writers, up to the cores: the shuffle's own parallelism.
    const int32_t cores = static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
    const int32_t parallelism = std::min(job->job.num_writers, cores);
    auto copied = MeasureMemcpyCeiling(job->job, parallelism);
    if (!copied.ok()) Fail(copied.status(), 1);
    ceilings.memcpy = *copied;
    if (options.agents > 0) {
      auto streamed = MeasureFlightCeiling(job->job, parallelism);
      if (!streamed.ok()) Fail(streamed.status(), 1);
      ceilings.flight = *streamed;
    }
  }
  PrintReport(options, *job, *report, ceilings);
}

}  // namespace

void AddShuffleCommand(CLI::App& app) {
  auto options = std::make_shared<CommandOptions>();
  auto* command = app.add_subcommand(
      "shuffle", "Run and verify an NxM shuffle of a generated table (local or --agents K)");
  command->add_option("--rows", options->rows, "Rows in the generated table")->capture_default_str();
  command->add_option("--writers", options->writers, "Upstream (writer) tasks, N")
      ->capture_default_str();
  command->add_option("--partitions", options->partitions, "Downstream partitions/readers, M")
      ->capture_default_str();
  command->add_option("--edge", options->edge, "hash, range, rebalance, broadcast or forward")
      ->capture_default_str();
  command->add_option("--mode", options->mode, "pipelined or blocking")->capture_default_str();
  command->add_option("--keys", options->keys, "Key distribution: uniform or skewed")
      ->capture_default_str();
  command->add_option("--hot-key-fraction", options->hot_key_fraction,
                      "With --keys skewed: the fraction of rows with the one hot key")
      ->capture_default_str();
  command->add_option("--key-cardinality", options->key_cardinality, "Distinct keys")
      ->capture_default_str();
  command->add_option("--payload-columns", options->payload_columns,
                      "int64 payload columns besides the key (payload width)")
      ->capture_default_str();
  command->add_option("--batch-rows", options->batch_rows, "Rows per generated batch")
      ->capture_default_str();
  command->add_option("--block-kib", options->block_kib, "Target size of a sealed block, KiB")
      ->capture_default_str();
  command->add_option("--compression", options->compression, "none, lz4 or zstd")
      ->capture_default_str();
  command->add_option("--agents", options->agents,
                      "0: local mode; K: distributed across K agent processes on loopback")
      ->capture_default_str();
  command->add_option("--memory-budget-mib", options->memory_budget_mib,
                      "Memory budget of each agent (or of the local process), MiB")
      ->capture_default_str();
  command->add_option("--spill-dir", options->spill_dir,
                      "Directory for spill files (default: the system's temporary directory)");
  command->add_flag("--no-ceiling", options->no_ceiling,
                    "Skip the same-run ceilings printed after the job (memcpy of the same bytes; "
                    "with --agents, also a plain Arrow Flight stream of them)");
  command->add_flag("--bench", options->bench,
                    "Time the NxM shuffle alone (local mode): every writer's batches generated "
                    "before the clock starts and held in memory, every batch the readers receive "
                    "kept and checked after it stops; refused when input and output do not fit "
                    "(--bench-memory-mib, the memory budget)");
  command->add_option("--bench-memory-mib", options->bench_memory_mib,
                      "With --bench: the most input plus output it may hold, MiB (0: the memory "
                      "this machine has available)")
      ->capture_default_str();
  command->callback([options] { Run(*options); });
}

}  // namespace sabot
