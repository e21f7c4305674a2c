#pragma once

// The coordinator's control actions (docs/cluster.md, *The control actions*): their names, and
// the JSON form in which their replies carry agents and jobs. Agents register and heartbeat
// through them; `sabot submit`, `sabot jobs` and `sabot cancel` submit, list and cancel jobs.
// Every request and reply body is a ControlMessage (control_message.h); a job or a list of
// agents or jobs travels inside one as a base64 field holding the JSON below. Pure functions;
// safe for concurrent use.

#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>

#include "sabot/dataflow/job_report.h"
#include "sabot/runtime/cluster_state.h"

namespace sabot {

// An agent joins the cluster. Request: location, slots, name (its --agent-id),
// memory_budget_bytes, memory_used_bytes. Reply: agent_id, heartbeat_interval_ms,
// agent_timeout_ms.
inline constexpr std::string_view kActionRegisterAgent = "sabot.cluster.register_agent";
// An agent is alive. Request: agent_id, memory_budget_bytes, memory_used_bytes. Reply: status,
// "ok", or "unknown" when the coordinator does not know the agent (it restarted, or declared
// the agent lost): the agent registers again.
inline constexpr std::string_view kActionHeartbeat = "sabot.cluster.heartbeat";
// Request: plan (base64 of the plan's JSON, plan_json.h), name, memory_budget_bytes,
// state_budget_bytes. Reply: job_id.
inline constexpr std::string_view kActionSubmitJob = "sabot.cluster.submit_job";
// Request: empty. Reply: jobs (base64 of a JSON array of jobs, newest first, without their plan
// and explain text).
inline constexpr std::string_view kActionListJobs = "sabot.cluster.list_jobs";
// Request: job_id. Reply: job (base64 of the job's JSON, with its plan and explain text).
inline constexpr std::string_view kActionGetJob = "sabot.cluster.get_job";
// Request: job_id. Reply: job_id, state (the job's state after the request).
inline constexpr std::string_view kActionCancelJob = "sabot.cluster.cancel_job";
// Request: empty. Reply: agents (base64 of a JSON array of agents, in registration order).
inline constexpr std::string_view kActionListAgents = "sabot.cluster.list_agents";

// JSON text of one job. `with_plan` false leaves out plan_json and explain.
std::string JobInfoToJson(const JobInfo& job, bool with_plan = true);
std::string JobInfosToJson(const std::vector<JobInfo>& jobs, bool with_plan = false);
// Invalid, naming the field, for text JobInfoToJson would not write.
arrow::Result<JobInfo> JobInfoFromJson(std::string_view text);
arrow::Result<std::vector<JobInfo>> JobInfosFromJson(std::string_view text);

std::string AgentInfosToJson(const std::vector<AgentInfo>& agents);
arrow::Result<std::vector<AgentInfo>> AgentInfosFromJson(std::string_view text);

// What `sabot run` prints at the end of a job, from what the coordinator knows of a finished
// job: its operators, edges, wall time and memory; named by the job's name (its id when it
// has none), as `sabot run` names a job.
JobReport ReportOf(const JobInfo& job);
// A progress snapshot of a running job, for ProgressRenderer (job_report_format.h).
JobProgress ProgressOf(const JobInfo& job);

}  // namespace sabot
