// A test program for the live view's browser test (tests/http_live_view_test.py): serves the
// HTTP API over a FakeClusterView holding two agents, an old job and the live sample job
// "live-1" (http_api_testing.h), whose figures advance one generation on every read of
// GET /api/v1/jobs/live-1.
//
//   http_api_test_server --generation-file PATH [--token TOKEN]
//
// Prints "port N" on stdout once it listens. After each read of the live job it writes the
// generation just served to PATH (whole, by rename), so the test knows which figures the page
// got last. Serves until its stdin is closed, then stops and exits 0.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>

#include "sabot/runtime/http_api.h"
#include "sabot/runtime/http_api_testing.h"

namespace sabot {
namespace {

// The fake view that tells the test which generation of the live job it served last.
class RecordingView : public FakeClusterView {
 public:
  explicit RecordingView(std::string path) : path_(std::move(path)) {}

  arrow::Result<JobInfo> Job(const std::string& id) const override {
    // One reader at a time, so the file always holds the generation served last (a test
    // program: the lock is held over a small file write on purpose).
    std::lock_guard<std::mutex> lock(mutex_);
    auto job = FakeClusterView::Job(id);
    if (job.ok() && id == "live-1") {
      const std::string temp = path_ + ".tmp";
      {
        std::ofstream out(temp, std::ios::trunc);
        out << live_generation() << "\n";
      }
      std::filesystem::rename(temp, path_);
    }
    return job;
  }

 private:
  const std::string path_;
  mutable std::mutex mutex_;
};

int Main(int argc, char** argv) {
  std::string generation_file;
  HttpApiOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--generation-file" && i + 1 < argc) {
      generation_file = argv[++i];
    } else if (arg == "--token" && i + 1 < argc) {
      options.token = argv[++i];
    } else {
      std::cerr << "usage: http_api_test_server --generation-file PATH [--token TOKEN]\n";
      return 2;
    }
  }
  if (generation_file.empty()) {
    std::cerr << "http_api_test_server: --generation-file is required\n";
    return 2;
  }
  RecordingView view(generation_file);
  view.SetAgents(SampleAgents());
  JobInfo old;
  old.id = "old-1";
  old.name = "yesterday";
  old.state = JobState::kFinished;
  view.AddJob(old);
  view.SetLiveJob("live-1", [](int64_t g) { return MakeLiveSampleJob("live-1", g); });
  auto api = HttpApi::Start(&view, options);
  if (!api.ok()) {
    std::cerr << "http_api_test_server: " << api.status().ToString() << "\n";
    return 1;
  }
  std::cout << "port " << (*api)->port() << std::endl;
  while (std::cin.get() != EOF) {
  }
  (*api)->Stop();
  return 0;
}

}  // namespace
}  // namespace sabot

int main(int argc, char** argv) { return sabot::Main(argc, argv); }
