// libFuzzer target: the plan JSON reader (dataflow/plan_json.h), which agents will run on plans
// the coordinator ships and `sabot run` on converted job files.
//
// Properties: no crash or undefined behaviour; errors are Invalid with printable ASCII messages
// of bounded length; what reads is a valid plan that writes to JSON which reads back to an equal
// plan and writes to the same text, and whose execution graph can be made (or is refused as too
// large) and explained.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/explain.h"
#include "sabot/dataflow/plan_json.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

bool Printable(std::string_view text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto plan = sabot::PlanFromJson(text);
  if (!plan.ok()) {
    Require(plan.status().IsInvalid());
    Require(Printable(plan.status().message()));
    Require(plan.status().message().size() < 2048);
    return 0;
  }
  Require(plan->Validate().ok());
  auto json = sabot::PlanToJson(*plan);
  Require(json.ok());  // the reader took only valid UTF-8 strings
  auto again = sabot::PlanFromJson(*json);
  Require(again.ok() && again->Equals(*plan));
  auto rewritten = sabot::PlanToJson(*again);
  Require(rewritten.ok() && *rewritten == *json);
  auto graph = sabot::ExecutionGraph::Make(*plan);
  if (!graph.ok()) {  // only a plan whose key_by folding expands past kMaxGraphEdges
    Require(graph.status().IsInvalid());
    return 0;
  }
  Require(!sabot::Explain(*graph).empty());
  return 0;
}
