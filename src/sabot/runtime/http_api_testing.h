#pragma once

// Test support for the HTTP API (http_api.h): a ClusterView kept in memory, and a sample running
// job whose figures are a documented function of a generation number, so a test (C++ or the
// browser test, tests/http_live_view_test.py) can compute independently what the API and the
// page must show. Not for production use.

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/runtime/cluster_state.h"

namespace sabot {

// A ClusterView over values held in memory. Submit records the submission and adds a created
// job ("job-1", "job-2", ...) unless an error was set; Cancel marks a job that has not ended
// cancelled. A live job (SetLiveJob) is made afresh on every read: Job(id) advances its
// generation by one and returns make(generation); Jobs() shows make(current generation).
// Thread safety: every method may be called concurrently (one mutex; `make` runs outside it).
class FakeClusterView : public ClusterView {
 public:
  std::vector<AgentInfo> Agents() const override;
  std::vector<JobInfo> Jobs() const override;
  arrow::Result<JobInfo> Job(const std::string& id) const override;
  arrow::Result<std::string> Submit(const JobSubmission& job) override;
  arrow::Status Cancel(const std::string& id) override;

  void SetAgents(std::vector<AgentInfo> agents);
  // Adds `job` as the newest job.
  void AddJob(JobInfo job);
  // The next Submit calls fail with `status` (OK: they succeed again).
  void SetSubmitError(arrow::Status status);
  // Makes `id` a live job (the newest) whose value is make(generation); generation starts at 0.
  void SetLiveJob(std::string id, std::function<arrow::Result<JobInfo>(int64_t)> make);
  int64_t live_generation() const;

  std::vector<JobSubmission> submissions() const;
  std::vector<std::string> cancelled() const;

 private:
  mutable std::mutex mutex_;
  std::vector<AgentInfo> agents_;
  std::vector<JobInfo> jobs_;  // newest first
  arrow::Status submit_error_;
  std::vector<JobSubmission> submissions_;
  std::vector<std::string> cancelled_;
  std::string live_id_;
  std::function<arrow::Result<JobInfo>(int64_t)> live_make_;
  mutable int64_t live_generation_ = 0;
};

// The job file of the live sample job (operators source x3 -> key_by -> sums x4 -> narrow x2 ->
// write): two shuffle edges, s0.source.sums (HASH 3 x 4) and s1.sums.narrow (REBALANCE 4 x 2);
// narrow -> write is chained.
extern const char* const kLiveSampleJobYaml;

// The live sample job at generation g, state running, with id `id`. Its figures, in full (the
// browser test recomputes them from this description):
//   s0.source.sums (3 x 4): rows[i][j] = 1000 (i + 1) + 100 j + g (10 (i + 1) + j + 1), plus
//     500 g when j = 3 (a hot partition); except rows[1][2] = 777 for every g (a stalled
//     channel). channel_bytes[i][j] = 24 rows[i][j]. writer_blocked[i] = 100 g (i + 1) ms.
//   s1.sums.narrow (4 x 2): rows[i][j] = 50 g (i + 1) + 7 j; channel_bytes = 16 rows;
//     writer_blocked[i] = 0.
//   Edge totals: bytes = sum of channel_bytes, blocked = sum of writer_blocked, no spill.
//   Operators: source rows_out = s0's total rows; sums rows_in = the same, rows_out = s1's total;
//     narrow rows_in = rows_out = s1's total; write rows_in = rows_out = s1's total; busy g ms;
//     source watermark: none; sums watermark 1700000000000 + 1000 g ms.
//   Tasks: every task running, on agent-(subtask % 2 + 1), rows_in/out 0.
//   elapsed = 500 g ms, submitted at 1700000000000 ms since the epoch.
arrow::Result<JobInfo> MakeLiveSampleJob(const std::string& id, int64_t generation);

// Two agents, "agent-1" (up) and "agent-2" (lost), with 4 slots each.
std::vector<AgentInfo> SampleAgents();

}  // namespace sabot
