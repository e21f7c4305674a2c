#include <cstring>

#include <benchmark/benchmark.h>

#include "sabot/common/arrow_init.h"
#include "sabot/testing/benchmark_main.h"

namespace sabot::testing {

namespace {
bool smoke_run = false;
}  // namespace

bool IsSmokeRun() { return smoke_run; }

}  // namespace sabot::testing

// Google Benchmark's main, plus: Arrow is initialized first, and the flag --sabot_smoke (used
// by the test suite) asks benchmarks for tiny inputs so the run only proves they work.
int main(int argc, char** argv) {
  int kept = 0;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--sabot_smoke") == 0) {
      sabot::testing::smoke_run = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  arrow::Status status = sabot::InitializeArrow();
  if (!status.ok()) {
    fprintf(stderr, "cannot initialize Arrow: %s\n", status.ToString().c_str());
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
