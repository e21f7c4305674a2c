#pragma once

// The client side of the coordinator's control actions (cluster_actions.h): what agents
// (registration, heartbeats) and the `sabot submit`, `sabot jobs` and `sabot cancel` commands
// call.

#include <memory>
#include <string>
#include <vector>

#include <arrow/result.h>

#include "sabot/runtime/cluster_state.h"
#include "sabot/runtime/control_message.h"
#include "sabot/runtime/coordinator.h"
#include "sabot/transport/shuffle_client.h"

namespace sabot {

// Talks to one coordinator at `uri` ("grpc+tcp://host:port" or "grpc+tls://host:port") over
// Flight DoAction, with the TLS settings and token of `options`. Each call is one action, not
// retried; an error is the coordinator's refusal (its message) or why it could not be reached,
// prefixed with "coordinator at <uri>: ". A connection that failed is dropped, so the next
// call reconnects (to a restarted coordinator too).
//
// Thread safety: safe for concurrent use.
class CoordinatorClient {
 public:
  static arrow::Result<std::unique_ptr<CoordinatorClient>> Make(std::string uri,
                                                                ShuffleClientOptions options);

  const std::string& uri() const { return uri_; }

  arrow::Result<AgentRegistrationReply> RegisterAgent(const AgentRegistrationRequest& request);
  // False when the coordinator does not know `agent_id` (it must register again).
  arrow::Result<bool> Heartbeat(const std::string& agent_id, int64_t memory_budget_bytes,
                                int64_t memory_used_bytes);
  // The new job's id.
  arrow::Result<std::string> Submit(const JobSubmission& job);
  arrow::Result<std::vector<JobInfo>> ListJobs();
  arrow::Result<JobInfo> GetJob(const std::string& job_id);
  // The job's state after the request.
  arrow::Result<JobState> Cancel(const std::string& job_id);
  arrow::Result<std::vector<AgentInfo>> ListAgents();

 private:
  CoordinatorClient(std::string uri, std::unique_ptr<ShuffleClient> client)
      : uri_(std::move(uri)), client_(std::move(client)) {}
  arrow::Result<ControlMessage> Call(std::string_view type, const ControlMessage& request);

  const std::string uri_;
  std::unique_ptr<ShuffleClient> client_;
};

// The message of a status returned by CoordinatorClient, without the transport's decorations
// (the gRPC detail Flight appends): what a command prints.
std::string CoordinatorErrorText(const arrow::Status& status);

}  // namespace sabot
