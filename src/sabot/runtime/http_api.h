#pragma once

// The coordinator's HTTP API and live view (docs/http-api.md): a REST API with JSON bodies over
// a ClusterView, Prometheus metrics, and a web page for a person watching a job.
//
//   GET    /api/v1/agents       the agents (cluster_json.h: AgentsJson)
//   GET    /api/v1/jobs         every job, newest first (JobsJson)
//   POST   /api/v1/jobs         submit a job: a YAML job file or a plan JSON -> 201 {"id", "url"}
//   GET    /api/v1/jobs/{id}    one job: graph, tasks, figures (JobJson)
//   DELETE /api/v1/jobs/{id}    cancel it -> 202 with the job's summary
//   GET    /metrics             Prometheus text format (prometheus_metrics.h)
//   GET    /                    the live view (and its script and style sheet)
//
// Errors are {"error": "..."} with 400 (bad request or bad job, naming the operator), 401
// (token missing or wrong), 404 (no such route or job), 405 (method not allowed; Allow header),
// 409 (the cluster refused the job as a conflict), 411 (POST without Content-Length),
// 413 (body too large), 503 (not enough free slots in the cluster) and 500 otherwise.
//
// Auth: with a token set, every API route and /metrics needs "Authorization: Bearer <token>"
// (compared in constant time), as the control plane does. The page itself and its script and
// style are served without it: they hold no cluster data, and a browser cannot put a header on
// a navigation; the page reads the token from its URL fragment (#token=...) or a field and sends
// it with every request it makes.
//
// Lifecycle: Start binds and listens (the port is open when it returns) and serves on its own
// threads until Stop or destruction. Stop closes the listening socket, finishes the requests
// being served and joins the threads (an idle keep-alive connection is closed within 1 s, a
// client that stalls mid-request within 5 s); it is idempotent. The ClusterView must outlive
// the HttpApi (until Stop returned). Thread safety: port(), url() and Stop() may be called from
// any thread; the view is called concurrently from the server's threads (ClusterView promises
// that is safe).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/runtime/cluster_state.h"

namespace sabot {

struct HttpApiOptions {
  std::string host = "127.0.0.1";  // the address to listen on ("0.0.0.0": every interface)
  int32_t port = 0;                // 0: any free port (see HttpApi::port())
  // Bearer token every API request must carry; empty: no authentication.
  std::string token;
  // PEM files: both set -> HTTPS; both empty -> plain HTTP; one alone is an error.
  std::string tls_cert_file;
  std::string tls_key_file;
  // PEM roots; set (with tls_cert_file): mutual TLS, a client must present a certificate they
  // sign or its handshake fails (the cluster's verify_clients).
  std::string tls_client_ca_file;
  // Relative paths in a submitted YAML job file are resolved against this directory; empty:
  // the process's working directory when Start is called.
  std::string base_directory;
  // Threads serving requests (each keep-alive connection holds one while it is open).
  int32_t threads = 8;
};

// The largest request body accepted (a plan JSON's limit); larger bodies get 413. YAML job
// files have their own, smaller limit (kMaxJobFileBytes), also answered with 413.
inline constexpr int64_t kMaxHttpBodyBytes = 16 << 20;

class HttpApi {
 public:
  // Starts serving `view` (not owned; must outlive the returned object). Invalid for bad
  // options (a port out of range, one TLS file without the other, threads < 1); IOError when
  // the TLS files cannot be loaded or the address cannot be bound, naming host and port.
  static arrow::Result<std::unique_ptr<HttpApi>> Start(ClusterView* view,
                                                       const HttpApiOptions& options);

  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // The port it listens on (the one chosen when options.port was 0).
  int32_t port() const;
  // "http://127.0.0.1:8080" or "https://...": where a browser or curl reaches it.
  std::string url() const;
  // Stops serving; returns once no request is being handled. Idempotent.
  void Stop();

 private:
  class Impl;
  explicit HttpApi(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The HTTP status for an error of the ClusterView or of reading a submitted job: Invalid and
// TypeError 400, KeyError 404, AlreadyExists 409, CapacityError 503, everything else 500.
int HttpStatusFor(const arrow::Status& status);

// Whether a POST /api/v1/jobs body is a plan JSON (true) or a YAML job file (false): the
// Content-Type decides (application/json; application/yaml, application/x-yaml, text/yaml),
// otherwise the body does: a plan JSON starts with '{' after white space.
bool IsPlanJsonBody(std::string_view content_type, std::string_view body);

// Reads a POST /api/v1/jobs body into a submission. A YAML job file is read with ParseJobFile,
// its relative paths resolved against `base_directory`; its `job:` name and the memory_budget
// and state_budget of its `options:` come with it (other options are the local runner's and are
// ignored). A plan JSON is validated with PlanFromJson and named "job". A non-empty `name` (the
// request's ?name=) names the job either way. Invalid naming the operator (and, for a job file,
// its line and column; for a plan, the JSON path) for a bad job, and for a YAML body over
// kMaxJobFileBytes. Capacity is not checked here: that is the view's to judge.
arrow::Result<JobSubmission> ReadJobSubmission(std::string_view body,
                                               std::string_view content_type,
                                               std::string_view name,
                                               const std::string& base_directory);

}  // namespace sabot
