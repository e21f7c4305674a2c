#include "sabot/runtime/prometheus_metrics.h"

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "sabot/runtime/http_api_testing.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using std::chrono::milliseconds;
using TimePoint = std::chrono::system_clock::time_point;

constexpr int64_t kEpochMs = 1700000000000;

// One sample line, read back by a parser written from the exposition format's description.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

// Parses `text`; fails the test on a line that breaks the format's rules: a sample before its
// family's HELP and TYPE, a family whose samples are not together, an unknown TYPE, a counter
// not ending in _total, a bad escape.
std::vector<Sample> Parse(const std::string& text, std::map<std::string, std::string>* types) {
  std::vector<Sample> samples;
  std::set<std::string> closed;  // families whose block ended
  std::string current;
  std::set<std::string> helped;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    EXPECT_FALSE(line.empty()) << "empty line";
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(closed.count(name), 0u) << "family " << name << " appears twice";
      if (!current.empty() && current != name) closed.insert(current);
      current = name;
      helped.insert(name);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' '));
      std::string type = rest.substr(rest.find(' ') + 1);
      EXPECT_EQ(name, current) << "TYPE without HELP: " << line;
      EXPECT_TRUE(type == "counter" || type == "gauge") << line;
      if (type == "counter") {
        EXPECT_TRUE(name.size() > 6 && name.substr(name.size() - 6) == "_total") << name;
      }
      (*types)[name] = type;
      continue;
    }
    Sample sample;
    size_t at = 0;
    while (at < line.size() && line[at] != '{' && line[at] != ' ') sample.name += line[at++];
    EXPECT_EQ(sample.name, current) << "sample outside its family block: " << line;
    EXPECT_EQ(types->count(sample.name), 1u) << "sample without TYPE: " << line;
    if (at < line.size() && line[at] == '{') {
      ++at;
      while (at < line.size() && line[at] != '}') {
        std::string key;
        while (line[at] != '=') key += line[at++];
        at += 2;  // ="
        std::string value;
        while (line[at] != '"') {
          if (line[at] == '\\') {
            char next = line[at + 1];
            if (next == 'n') {
              value += '\n';
            } else if (next == '\\' || next == '"') {
              value += next;
            } else {
              ADD_FAILURE() << "bad escape in " << line;
            }
            at += 2;
          } else {
            value += line[at++];
          }
        }
        ++at;  // closing quote
        if (line[at] == ',') ++at;
        sample.labels[key] = value;
      }
      ++at;  // }
    }
    EXPECT_EQ(line[at], ' ') << line;
    sample.value = line.substr(at + 1);
    samples.push_back(std::move(sample));
  }
  return samples;
}

std::string ValueOf(const std::vector<Sample>& samples, const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  std::string found;
  int matches = 0;
  for (const Sample& s : samples) {
    if (s.name == name && s.labels == labels) {
      found = s.value;
      ++matches;
    }
  }
  EXPECT_LE(matches, 1) << name << " has duplicate series";
  return matches == 1 ? found : "<absent>";
}

TEST(PrometheusMetricsTest, LabelValuesAndNumbersAreWrittenByTheFormatsRules) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(FormatSampleValue(1), "1");
  EXPECT_EQ(FormatSampleValue(0.25), "0.25");
  EXPECT_EQ(FormatSampleValue(1e21), "1e+21");
  EXPECT_EQ(FormatSampleValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(PrometheusMetricsTest, ClusterAndLiveJobMetrics) {
  const int64_t g = 3;
  ASSERT_OK_AND_ASSIGN(JobInfo live, MakeLiveSampleJob("live-1", g));
  JobInfo finished;
  finished.id = "job-2";
  finished.name = "odd \"name\"\nhere";
  finished.state = JobState::kFinished;
  const std::string text = RenderPrometheusMetrics(
      SampleAgents(), {live, finished}, TimePoint(milliseconds(kEpochMs + 10000)));
  std::map<std::string, std::string> types;
  const std::vector<Sample> samples = Parse(text, &types);

  EXPECT_EQ(ValueOf(samples, "sabot_agents", {{"state", "up"}}), "1");
  EXPECT_EQ(ValueOf(samples, "sabot_agents", {{"state", "lost"}}), "1");
  EXPECT_EQ(ValueOf(samples, "sabot_agent_up",
                    {{"agent", "agent-2"}, {"location", "grpc+tcp://127.0.0.1:47001"}}),
            "0");
  EXPECT_EQ(ValueOf(samples, "sabot_agent_heartbeat_age_seconds", {{"agent", "agent-1"}}), "9");
  EXPECT_EQ(ValueOf(samples, "sabot_buffer_pool_bytes", {{"agent", "agent-2"}}),
            std::to_string(2 << 20));
  EXPECT_EQ(ValueOf(samples, "sabot_jobs", {{"state", "running"}}), "1");
  EXPECT_EQ(ValueOf(samples, "sabot_jobs", {{"state", "finished"}}), "1");
  EXPECT_EQ(ValueOf(samples, "sabot_jobs", {{"state", "failed"}}), "0");
  EXPECT_EQ(ValueOf(samples, "sabot_jobs", {{"state", "restarting"}}), "0");
  EXPECT_EQ(ValueOf(samples, "sabot_job_info",
                    {{"job", "job-2"}, {"name", "odd \"name\"\nhere"}, {"state", "finished"}}),
            "1");
  EXPECT_EQ(ValueOf(samples, "sabot_tasks", {{"job", "live-1"}, {"state", "running"}}), "9");

  // Every channel of both edges, against the documented formula.
  int64_t s0_total = 0;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 4; ++j) {
      int64_t rows = 1000 * (i + 1) + 100 * j + g * (10 * (i + 1) + j + 1) +
                     (j == 3 ? 500 * g : 0);
      if (i == 1 && j == 2) rows = 777;
      s0_total += rows;
      const std::map<std::string, std::string> labels = {
          {"job", "live-1"}, {"edge", "s0.source.sums"},
          {"writer", std::to_string(i)}, {"partition", std::to_string(j)}};
      EXPECT_EQ(ValueOf(samples, "sabot_edge_rows_total", labels), std::to_string(rows));
      EXPECT_EQ(ValueOf(samples, "sabot_edge_bytes_total", labels), std::to_string(24 * rows));
    }
    EXPECT_EQ(ValueOf(samples, "sabot_edge_blocked_seconds_total",
                      {{"job", "live-1"}, {"edge", "s0.source.sums"},
                       {"writer", std::to_string(i)}}),
              FormatSampleValue(static_cast<double>(100 * g * (i + 1)) / 1000.0));
  }
  EXPECT_EQ(ValueOf(samples, "sabot_edge_rows_total",
                    {{"job", "live-1"}, {"edge", "s1.sums.narrow"}, {"writer", "3"},
                     {"partition", "1"}}),
            std::to_string(50 * g * 4 + 7));
  EXPECT_EQ(ValueOf(samples, "sabot_spill_bytes_total",
                    {{"job", "live-1"}, {"edge", "s0.source.sums"}}),
            "0");
  EXPECT_EQ(ValueOf(samples, "sabot_operator_rows_out_total",
                    {{"job", "live-1"}, {"operator", "source"}}),
            std::to_string(s0_total));
  EXPECT_EQ(ValueOf(samples, "sabot_watermark_lag_seconds",
                    {{"job", "live-1"}, {"operator", "sums"}}),
            std::to_string(10 - g));
  // No watermark yet: no lag sample.
  EXPECT_EQ(ValueOf(samples, "sabot_watermark_lag_seconds",
                    {{"job", "live-1"}, {"operator", "source"}}),
            "<absent>");
  EXPECT_EQ(types["sabot_edge_rows_total"], "counter");
  EXPECT_EQ(types["sabot_buffer_pool_bytes"], "gauge");
}

TEST(PrometheusMetricsTest, EdgesWithoutChannelFiguresHaveOneSeriesPerEdge) {
  JobInfo job;
  job.id = "j";
  EdgeReport edge;
  edge.shuffle_id = "s0.a.b";
  edge.num_writers = 1;
  edge.num_partitions = 2;
  edge.rows = {{3, 4}};
  edge.bytes = 700;
  edge.blocked = milliseconds(1500);
  edge.bytes_spilled = 64;
  edge.blocks_spilled = 1;
  job.edges.push_back(edge);
  EdgeReport chained;
  chained.chained = true;
  job.edges.push_back(chained);
  std::map<std::string, std::string> types;
  const std::vector<Sample> samples =
      Parse(RenderPrometheusMetrics({}, {job}, TimePoint{}), &types);
  EXPECT_EQ(ValueOf(samples, "sabot_edge_bytes_total", {{"job", "j"}, {"edge", "s0.a.b"}}), "700");
  EXPECT_EQ(ValueOf(samples, "sabot_edge_blocked_seconds_total",
                    {{"job", "j"}, {"edge", "s0.a.b"}}),
            "1.5");
  EXPECT_EQ(ValueOf(samples, "sabot_spill_blocks_total", {{"job", "j"}, {"edge", "s0.a.b"}}),
            "1");
  EXPECT_EQ(ValueOf(samples, "sabot_edge_skew_ratio", {{"job", "j"}, {"edge", "s0.a.b"}}),
            FormatSampleValue(4.0 / 3.5));
  int chained_samples = 0;
  for (const Sample& s : samples) {
    chained_samples += s.labels.count("edge") && s.labels.at("edge").empty();
  }
  EXPECT_EQ(chained_samples, 0);
  EXPECT_EQ(ValueOf(samples, "sabot_agents", {{"state", "up"}}), "0");
}

}  // namespace
}  // namespace sabot
