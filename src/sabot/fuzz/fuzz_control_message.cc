// libFuzzer target: the control-message parser an agent runs on every control action
// (runtime/control_message.h, control_actions.h), the checks of a run request against a
// registered shuffle (Agent's CheckRunRequest), and of a dataflow deployment (GetTaskDeployment)
// and a job status reply (GetJobStatus).
//
// Properties: no crash or undefined behaviour; a decoded message encodes to text that decodes
// to the same message;
// every error message is short printable ASCII; a request that passes the checks names tasks in
// range and sizes within GeneratedJob's bounds.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sabot/runtime/agent.h"
#include "sabot/runtime/control_actions.h"
#include "sabot/runtime/control_message.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

void RequirePrintableAndShort(const arrow::Status& status) {
  if (status.ok()) return;
  Require(status.message().size() < 4096);
  for (char c : status.message()) {
    Require(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f);
  }
}

const sabot::ShuffleDescriptor& Registered() {
  static const sabot::ShuffleDescriptor descriptor = [] {
    sabot::GeneratedJob job;
    sabot::ShuffleDescriptor d;
    d.shuffle_id = "s";
    d.spec = job.MakeSpec(sabot::EdgeType::kHash, 4).ValueOrDie();
    d.schema = sabot::GeneratedSchema(job.data);
    d.num_writers = 3;
    return d;
  }();
  return descriptor;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto message = sabot::ControlMessage::Decode(text);
  if (!message.ok()) {
    Require(message.status().IsInvalid());
    RequirePrintableAndShort(message.status());
    return 0;
  }
  // Encoding writes the fields sorted by name: what it writes decodes to the same message.
  const std::string encoded = message->Encode();
  auto again = sabot::ControlMessage::Decode(encoded);
  Require(again.ok() && again->Encode() == encoded);
  auto job = sabot::GetGeneratedJob(*message);
  RequirePrintableAndShort(job.status());
  RequirePrintableAndShort(sabot::GetWriterLocations(*message).status());
  RequirePrintableAndShort(sabot::GetShuffleStats(*message).status());
  if (message->Has("descriptor")) {
    RequirePrintableAndShort(message->GetBytes("descriptor").status());
  }
  // A dataflow deployment (sabot.deploy_tasks) and a job status reply: a deployment that passes
  // the checks names agents and tasks in range, each task once.
  auto deployment = sabot::GetTaskDeployment(*message);
  RequirePrintableAndShort(deployment.status());
  if (deployment.ok()) {
    Require(!deployment->agents.empty());
    for (int64_t agent : deployment->task_agents) {
      Require(agent >= 0 && agent < static_cast<int64_t>(deployment->agents.size()));
    }
    for (int64_t task : deployment->tasks) {
      Require(task >= 0 && task < static_cast<int64_t>(deployment->task_agents.size()));
    }
  }
  auto status = sabot::GetJobStatus(*message, {{2, 3}, {1, 1}});
  RequirePrintableAndShort(status.status());
  if (status.ok()) {
    Require(status->edges.size() == 2 && status->edges[0].rows.size() == 2 &&
            status->edges[0].rows[0].size() == 3);
  }
  auto tasks = message->GetInts("tasks");
  RequirePrintableAndShort(tasks.status());
  if (!job.ok() || !tasks.ok()) return 0;
  Require(job->total_rows() <= sabot::GeneratedJob::kMaxTotalRows);
  for (bool writers : {true, false}) {
    auto checked = sabot::CheckRunRequest(*message, Registered(), *job, *tasks, writers);
    RequirePrintableAndShort(checked.status());
    if (!checked.ok()) continue;
    const int32_t limit = writers ? Registered().num_writers : Registered().num_partitions();
    for (int32_t task : checked->first) Require(task >= 0 && task < limit);
    for (const auto& location : checked->second) {
      Require(location.writer_task >= 0 && location.writer_task < Registered().num_writers);
    }
  }
  return 0;
}
