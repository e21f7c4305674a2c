#include "sabot/runtime/coordinator_client.h"

#include <arrow/buffer.h>
#include <arrow/flight/types.h>

#include "sabot/common/quoted_input.h"
#include "sabot/runtime/cluster_actions.h"

namespace sabot {

arrow::Result<std::unique_ptr<CoordinatorClient>> CoordinatorClient::Make(
    std::string uri, ShuffleClientOptions options) {
  if (uri.rfind("grpc+tcp://", 0) != 0 && uri.rfind("grpc+tls://", 0) != 0 &&
      uri.rfind("grpc://", 0) != 0) {
    return arrow::Status::Invalid("the coordinator's address ", QuoteInput(uri),
                                  " is not grpc+tcp://host:port or grpc+tls://host:port");
  }
  ARROW_ASSIGN_OR_RAISE(auto client, ShuffleClient::Make(std::move(options)));
  return std::unique_ptr<CoordinatorClient>(new CoordinatorClient(std::move(uri), std::move(client)));
}

arrow::Result<ControlMessage> CoordinatorClient::Call(std::string_view type,
                                                      const ControlMessage& request) {
  auto reply = client_->Action(uri_, type, request.Encode());
  if (!reply.ok()) {
    client_->Evict(uri_);
    return reply.status().WithMessage("coordinator at ", uri_, ": ", reply.status().message());
  }
  auto decoded = ControlMessage::Decode(*reply);
  if (!decoded.ok()) {
    return decoded.status().WithMessage("coordinator at ", uri_, ": malformed reply to ", type,
                                        ": ", decoded.status().message());
  }
  return decoded;
}

arrow::Result<AgentRegistrationReply> CoordinatorClient::RegisterAgent(
    const AgentRegistrationRequest& request) {
  ControlMessage message;
  message.Set("location", request.location);
  message.SetInt("slots", request.slots);
  message.Set("name", request.name);
  message.SetInt("memory_budget_bytes", request.memory_budget_bytes);
  message.SetInt("memory_used_bytes", request.memory_used_bytes);
  ARROW_ASSIGN_OR_RAISE(auto reply, Call(kActionRegisterAgent, message));
  AgentRegistrationReply out;
  ARROW_ASSIGN_OR_RAISE(out.agent_id, reply.Get("agent_id"));
  ARROW_ASSIGN_OR_RAISE(int64_t interval, reply.GetInt("heartbeat_interval_ms"));
  ARROW_ASSIGN_OR_RAISE(int64_t timeout, reply.GetInt("agent_timeout_ms"));
  if (interval <= 0 || timeout <= 0) {
    return arrow::Status::Invalid("coordinator at ", uri_, ": heartbeat interval ", interval,
                                  " ms and agent timeout ", timeout, " ms must be positive");
  }
  out.heartbeat_interval = std::chrono::milliseconds(interval);
  out.agent_timeout = std::chrono::milliseconds(timeout);
  return out;
}

arrow::Result<bool> CoordinatorClient::Heartbeat(const std::string& agent_id,
                                                 int64_t memory_budget_bytes,
                                                 int64_t memory_used_bytes) {
  ControlMessage message;
  message.Set("agent_id", agent_id);
  message.SetInt("memory_budget_bytes", memory_budget_bytes);
  message.SetInt("memory_used_bytes", memory_used_bytes);
  ARROW_ASSIGN_OR_RAISE(auto reply, Call(kActionHeartbeat, message));
  ARROW_ASSIGN_OR_RAISE(auto status, reply.Get("status"));
  return status == "ok";
}

arrow::Result<std::string> CoordinatorClient::Submit(const JobSubmission& job) {
  ControlMessage message;
  message.SetBytes("plan", *arrow::Buffer::FromString(job.plan_json));
  message.Set("name", job.name);
  message.SetInt("memory_budget_bytes", job.memory_budget_bytes);
  message.SetInt("state_budget_bytes", job.state_budget_bytes);
  ARROW_ASSIGN_OR_RAISE(auto reply, Call(kActionSubmitJob, message));
  return reply.Get("job_id");
}

arrow::Result<std::vector<JobInfo>> CoordinatorClient::ListJobs() {
  ARROW_ASSIGN_OR_RAISE(auto reply, Call(kActionListJobs, ControlMessage()));
  ARROW_ASSIGN_OR_RAISE(auto jobs, reply.GetBytes("jobs"));
  return JobInfosFromJson(jobs->ToString());
}

arrow::Result<JobInfo> CoordinatorClient::GetJob(const std::string& job_id) {
  ControlMessage message;
  message.Set("job_id", job_id);
  ARROW_ASSIGN_OR_RAISE(auto reply, Call(kActionGetJob, message));
  ARROW_ASSIGN_OR_RAISE(auto job, reply.GetBytes("job"));
  return JobInfoFromJson(job->ToString());
}

arrow::Result<JobState> CoordinatorClient::Cancel(const std::string& job_id) {
  ControlMessage message;
  message.Set("job_id", job_id);
  ARROW_ASSIGN_OR_RAISE(auto reply, Call(kActionCancelJob, message));
  ARROW_ASSIGN_OR_RAISE(auto state, reply.Get("state"));
  return ParseJobState(state);
}

arrow::Result<std::vector<AgentInfo>> CoordinatorClient::ListAgents() {
  ARROW_ASSIGN_OR_RAISE(auto reply, Call(kActionListAgents, ControlMessage()));
  ARROW_ASSIGN_OR_RAISE(auto agents, reply.GetBytes("agents"));
  return AgentInfosFromJson(agents->ToString());
}

std::string CoordinatorErrorText(const arrow::Status& status) {
  std::string message = status.message();
  // Flight appends ". Detail: <gRPC status>" and the like after the server's message.
  for (std::string_view marker : {". Detail: ", ". gRPC client debug context: "}) {
    const size_t at = message.find(marker);
    if (at != std::string::npos) message.resize(at);
  }
  // A refusal by the transport (Unauthenticated, Unauthorized, Unavailable, ...) says so, then
  // the server's message; the coordinator's own refusals are their message alone.
  if (auto detail = arrow::flight::FlightStatusDetail::UnwrapStatus(status)) {
    const std::string code = detail->ToString();
    if (detail->code() != arrow::flight::FlightStatusCode::Internal &&
        message.find(code) == std::string::npos) {
      // After "coordinator at <uri>: " when the message starts so.
      const size_t after = message.rfind("coordinator at ", 0) == 0 ? message.find(": ") : std::string::npos;
      message.insert(after == std::string::npos ? 0 : after + 2, code + ": ");
    }
  }
  return message;
}

}  // namespace sabot
