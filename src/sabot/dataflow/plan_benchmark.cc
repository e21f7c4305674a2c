// plan_benchmark: runs a plan (its JSON form, docs/plan-format.md) on the local executor over
// in-memory tables, several times, and prints what each run did as one JSON object per line.
// The benchmarks of the stateful operators (scripts/bench_stateful.py, docs/performance.md)
// drive it: they write their data once as Arrow IPC files, and this program, like each engine it
// is compared with, loads them whole into memory before any clock starts; the plan's
// table_sources read them by name (`--table NAME=FILE`).
//
//   plan_benchmark --plan window.json --table transactions=tx.arrow --runs 3 --threads 2
//
// Each line: {"run", "wall_s" (around RunLocalJob: binding and running), "cpu_s" (the process's
// user + system time over the same span, getrusage), "job_wall_s" (the job report's), "rows_in"
// (rows the sources read), "peak_memory_bytes", "operators": [{"name", "kind", "parallelism",
// "rows_in", "rows_out", "busy_s"}], "edges": [{"shuffle_id", "from", "to", "type", "chained",
// "writers", "partitions", "rows", "bytes", "bytes_spilled", "blocked_s"}]}. Console sinks
// (the benchmarks' counting sinks, max_rows 0) print into a discarded buffer. A failed run is a
// line {"run", "error"} and the next run goes on. Exit status: 0, 1 when a run failed, 2 for bad
// arguments or inputs (the error on stderr).

#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/table.h>
#include <nlohmann/json.hpp>

#include "sabot/common/arrow_init.h"
#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/plan_json.h"

namespace sabot {
namespace {

using Json = nlohmann::ordered_json;

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The whole IPC file in memory (read, not mapped), as its record batches.
arrow::Result<std::shared_ptr<arrow::Table>> LoadIpcFile(const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path));
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int i = 0; i < reader->num_record_batches(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto batch, reader->ReadRecordBatch(i));
    batches.push_back(std::move(batch));
  }
  return arrow::Table::FromRecordBatches(reader->schema(), std::move(batches));
}

Json ReportJson(const JobReport& report) {
  Json j = Json::object();
  j["job_wall_s"] = Seconds(report.wall);
  j["peak_memory_bytes"] = report.peak_memory_bytes;
  int64_t rows_in = 0;
  Json operators = Json::array();
  for (const OperatorReport& op : report.operators) {
    if (IsSource(op.kind)) rows_in += op.rows_out;
    Json o = Json::object();
    o["name"] = op.name;
    o["kind"] = OperatorKindName(op.kind);
    o["parallelism"] = op.parallelism;
    o["rows_in"] = op.rows_in;
    o["rows_out"] = op.rows_out;
    o["busy_s"] = Seconds(op.busy);
    operators.push_back(std::move(o));
  }
  j["rows_in"] = rows_in;
  j["operators"] = std::move(operators);
  Json edges = Json::array();
  for (const EdgeReport& edge : report.edges) {
    Json e = Json::object();
    e["shuffle_id"] = edge.shuffle_id;
    e["from"] = edge.from;
    e["to"] = edge.to;
    e["type"] = edge.type;
    e["chained"] = edge.chained;
    e["writers"] = edge.num_writers;
    e["partitions"] = edge.num_partitions;
    e["rows"] = edge.total_rows();
    e["bytes"] = edge.bytes;
    e["bytes_spilled"] = edge.bytes_spilled;
    e["blocked_s"] = Seconds(edge.blocked);
    edges.push_back(std::move(e));
  }
  j["edges"] = std::move(edges);
  return j;
}

struct Options {
  std::string plan_path;
  std::vector<std::string> tables;
  int32_t runs = 3;
  int32_t threads = 0;
  int64_t memory_budget_mib = 256;
  int32_t stall_timeout_s = 30;
};

int Run(const Options& options) {
  auto fail = [](const std::string& what, const arrow::Status& status, int code) {
    std::cerr << "plan_benchmark: " << what << ": " << status.ToString() << "\n";
    return code;
  };
  std::ifstream in(options.plan_path);
  if (!in) return fail(options.plan_path, arrow::Status::IOError("cannot open"), 2);
  std::stringstream text;
  text << in.rdbuf();
  auto plan = PlanFromJson(text.str());
  if (!plan.ok()) return fail(options.plan_path, plan.status(), 2);

  auto provided = std::make_shared<ProvidedTables>();
  for (const std::string& spec : options.tables) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return fail("--table " + spec, arrow::Status::Invalid("expected NAME=FILE.arrow"), 2);
    }
    auto table = LoadIpcFile(spec.substr(eq + 1));
    if (!table.ok()) return fail(spec.substr(eq + 1), table.status(), 2);
    arrow::Status added = provided->Add(spec.substr(0, eq), *table);
    if (!added.ok()) return fail("--table " + spec, added, 2);
  }

  bool failed = false;
  for (int32_t run = 1; run <= options.runs; ++run) {
    LocalExecutorOptions executor;
    executor.job_id = "bench";
    executor.threads = options.threads;
    executor.memory_budget = options.memory_budget_mib << 20;
    executor.stall_timeout = std::chrono::seconds(options.stall_timeout_s);
    executor.tables = provided;
    std::ostringstream console;  // counting sinks' lines, not wanted
    executor.console = &console;
    const double cpu_before = ProcessCpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    auto report = RunLocalJob(*plan, executor);
    const auto wall = std::chrono::steady_clock::now() - start;
    const double cpu = ProcessCpuSeconds() - cpu_before;
    Json j = Json::object();
    j["run"] = run;
    if (!report.ok()) {
      // Reported, and the next run goes on: a benchmark measures what works and says what not.
      failed = true;
      j["error"] = report.status().ToString();
      std::cout << j.dump() << std::endl;
      continue;
    }
    j["wall_s"] = Seconds(wall);
    j["cpu_s"] = cpu;
    const Json figures = ReportJson(*report);
    for (const auto& [key, value] : figures.items()) j[key] = value;
    std::cout << j.dump() << std::endl;
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace sabot

int main(int argc, char** argv) {
  CLI::App app{"Runs a plan (JSON) over in-memory tables loaded from Arrow IPC files; one JSON "
               "line per run"};
  sabot::Options options;
  app.add_option("--plan", options.plan_path, "The plan, JSON (docs/plan-format.md)")->required();
  app.add_option("--table", options.tables,
                 "NAME=FILE: an Arrow IPC file loaded into memory and provided as NAME to the "
                 "plan's table sources (repeatable)");
  app.add_option("--runs", options.runs, "Runs of the job")->check(CLI::Range(1, 1000));
  app.add_option("--threads", options.threads, "Worker threads (0: the machine's cores)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--memory-budget-mib", options.memory_budget_mib,
                 "The job's shuffle memory budget, MiB")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app.add_option("--stall-timeout-s", options.stall_timeout_s,
                 "A run that moves no row for this long fails (LocalExecutorOptions)")
      ->check(CLI::Range(1, 3600));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  arrow::Status init = sabot::InitializeArrow();
  if (!init.ok()) {
    std::cerr << "plan_benchmark: cannot initialize Arrow: " << init.ToString() << "\n";
    return 1;
  }
  return sabot::Run(options);
}
