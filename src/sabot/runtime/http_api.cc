#include "sabot/runtime/http_api.h"

#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <utility>

#include <httplib.h>

#include "sabot/dataflow/job_file.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/runtime/cluster_json.h"
#include "sabot/runtime/prometheus_metrics.h"
#include "sabot/runtime/web/web_assets.h"

namespace sabot {

namespace {

using Clock = std::chrono::system_clock;

constexpr const char* kJsonType = "application/json";
constexpr const char* kJobsPath = "/api/v1/jobs";
constexpr const char* kAgentsPath = "/api/v1/agents";
constexpr const char* kMetricsPath = "/metrics";
constexpr std::string_view kJobPathPrefix = "/api/v1/jobs/";

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string LowerCase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The media type of a Content-Type header, without parameters, lower case.
std::string MediaType(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && std::isspace(static_cast<unsigned char>(type.back()))) {
    type.remove_suffix(1);
  }
  while (!type.empty() && std::isspace(static_cast<unsigned char>(type.front()))) {
    type.remove_prefix(1);
  }
  return LowerCase(type);
}

bool IsYamlType(const std::string& type) {
  return type == "application/yaml" || type == "application/x-yaml" || type == "text/yaml" ||
         type == "text/x-yaml";
}

void SetJson(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(std::move(body), kJsonType);
}

void SetError(httplib::Response& res, int status, std::string_view message) {
  SetJson(res, status, ErrorJson(message));
}

void SetStatusError(httplib::Response& res, const arrow::Status& status) {
  SetError(res, HttpStatusFor(status), status.message());
}

// The routes of the API and the methods each allows.
enum class Route { kNone, kAgents, kJobs, kJob, kMetrics };

Route RouteOf(const std::string& path, std::string* job_id) {
  if (path == kAgentsPath) return Route::kAgents;
  if (path == kJobsPath || path == std::string(kJobsPath) + "/") return Route::kJobs;
  if (path == kMetricsPath) return Route::kMetrics;
  if (path.size() > kJobPathPrefix.size() && path.starts_with(kJobPathPrefix)) {
    std::string id = path.substr(kJobPathPrefix.size());
    if (id.ends_with('/')) id.pop_back();
    if (!id.empty() && id.find('/') == std::string::npos) {
      *job_id = std::move(id);
      return Route::kJob;
    }
  }
  return Route::kNone;
}

const char* AllowedMethods(Route route) {
  switch (route) {
    case Route::kAgents:
    case Route::kMetrics:
      return "GET, HEAD";
    case Route::kJobs:
      return "GET, HEAD, POST";
    case Route::kJob:
      return "GET, HEAD, DELETE";
    case Route::kNone:
      break;
  }
  return "";
}

bool Allows(Route route, const std::string& method) {
  const std::string allowed = AllowedMethods(route);
  const std::string m = method == "HEAD" ? "GET" : method;
  size_t at = 0;
  while (at < allowed.size()) {
    size_t end = allowed.find(", ", at);
    if (end == std::string::npos) end = allowed.size();
    if (allowed.compare(at, end - at, m) == 0) return true;
    at = end + 2;
  }
  return false;
}

std::string DefaultMessage(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "not found";
    case 413:
      return "request body too large: at most " + std::to_string(kMaxHttpBodyBytes) +
             " bytes are accepted";
    case 414:
      return "request URI too long";
    default:
      break;
  }
  return "HTTP status " + std::to_string(status);
}

}  // namespace

int HttpStatusFor(const arrow::Status& status) {
  switch (status.code()) {
    case arrow::StatusCode::Invalid:
    case arrow::StatusCode::TypeError:
      return 400;
    case arrow::StatusCode::KeyError:
      return 404;
    case arrow::StatusCode::AlreadyExists:
      return 409;
    case arrow::StatusCode::CapacityError:
      return 503;
    default:
      return 500;
  }
}

bool IsPlanJsonBody(std::string_view content_type, std::string_view body) {
  const std::string type = MediaType(content_type);
  if (type == "application/json") return true;
  if (IsYamlType(type)) return false;
  for (char c : body) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    return c == '{';
  }
  return false;
}

arrow::Result<JobSubmission> ReadJobSubmission(std::string_view body,
                                               std::string_view content_type,
                                               std::string_view name,
                                               const std::string& base_directory) {
  JobSubmission submission;
  if (IsPlanJsonBody(content_type, body)) {
    ARROW_ASSIGN_OR_RAISE(LogicalPlan plan, PlanFromJson(body));
    ARROW_ASSIGN_OR_RAISE(submission.plan_json, PlanToJson(plan));
  } else {
    if (body.size() > static_cast<size_t>(kMaxJobFileBytes)) {
      return arrow::Status::Invalid("the job file in the request is ", body.size(),
                                    " bytes; at most ", kMaxJobFileBytes, " are read");
    }
    ARROW_ASSIGN_OR_RAISE(JobFile job, ParseJobFile(body, "request body", base_directory));
    ARROW_ASSIGN_OR_RAISE(submission.plan_json, PlanToJson(job.plan));
    submission.name = job.name;
    submission.memory_budget_bytes = job.options.memory_budget_bytes.value_or(0);
    submission.state_budget_bytes = job.options.state_budget_bytes.value_or(0);
  }
  if (!name.empty()) submission.name = std::string(name);
  return submission;
}

// ---------------------------------------------------------------------------------------------

class HttpApi::Impl {
 public:
  Impl(ClusterView* view, HttpApiOptions options, std::string base_directory)
      : view_(view), options_(std::move(options)), base_directory_(std::move(base_directory)) {}

  ~Impl() { Stop(); }

  arrow::Status Listen() {
    const bool tls = !options_.tls_cert_file.empty();
    if (tls) {
      std::vector<std::string> files = {options_.tls_cert_file, options_.tls_key_file};
      if (!options_.tls_client_ca_file.empty()) files.push_back(options_.tls_client_ca_file);
      for (const std::string& file : files) {
        std::ifstream in(file);
        if (!in) return arrow::Status::IOError("HTTP API: cannot read TLS file '", file, "'");
      }
      server_ = std::make_unique<httplib::SSLServer>(
          options_.tls_cert_file.c_str(), options_.tls_key_file.c_str(),
          options_.tls_client_ca_file.empty() ? nullptr : options_.tls_client_ca_file.c_str());
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    if (!server_->is_valid()) {
      return arrow::Status::IOError("HTTP API: cannot load the TLS certificate '",
                                    options_.tls_cert_file, "' and key '", options_.tls_key_file,
                                    "' (PEM files of a matching pair expected)");
    }
    scheme_ = tls ? "https" : "http";
    const size_t threads = static_cast<size_t>(options_.threads);
    server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // SO_REUSEADDR only: the library's default, SO_REUSEPORT, would let a second server bind
    // the same port and silently share its connections.
    server_->set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server_->set_payload_max_length(static_cast<size_t>(kMaxHttpBodyBytes));
    // An idle keep-alive connection holds a thread, and Stop waits for it: 1 s keeps Stop quick
    // while a page polling every 500 ms still reuses its connection.
    server_->set_keep_alive_timeout(1);
    server_->set_read_timeout(5);
    server_->set_write_timeout(5);
    server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return Authorize(req, res);
    });
    httplib::Server::HandlerWithResponse fill_error = [](const httplib::Request&,
                                                         httplib::Response& res) {
      // Our handlers set their own bodies; fill those the library answered by itself
      // (413 for a too large body, 400 for a malformed request, 404 when nothing matched).
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      SetError(res, res.status, DefaultMessage(res.status));
      return httplib::Server::HandlerResponse::Handled;
    };
    server_->set_error_handler(std::move(fill_error));
    server_->set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
          std::string what = "unknown exception";
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          SetError(res, 500, "internal error: " + what);
        });
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      Dispatch(req, res);
    };
    server_->Get(".*", handler);
    server_->Post(".*", handler);
    server_->Put(".*", handler);
    server_->Patch(".*", handler);
    server_->Delete(".*", handler);
    server_->Options(".*", handler);

    if (options_.port == 0) {
      port_ = server_->bind_to_any_port(options_.host);
      if (port_ < 0) {
        return arrow::Status::IOError("HTTP API: cannot listen on ", options_.host,
                                      " (any port): the address is not available");
      }
    } else {
      if (!server_->bind_to_port(options_.host, options_.port)) {
        return arrow::Status::IOError("HTTP API: cannot listen on ", options_.host, ":",
                                      options_.port, ": the port is in use or the address is "
                                      "not available");
      }
      port_ = options_.port;
    }
    thread_ = std::thread([this] {
      server_->listen_after_bind();
      listen_returned_ = true;
    });
    // Stop() only stops a server that is running: wait until it is, so Stop never misses it.
    while (!server_->is_running() && !listen_returned_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (listen_returned_) {
      thread_.join();
      return arrow::Status::IOError("HTTP API: the server on ", options_.host, ":", port_,
                                    " stopped as it started");
    }
    return arrow::Status::OK();
  }

  // The first caller stops and joins; concurrent callers wait for it (std::call_once).
  void Stop() {
    std::call_once(stopped_, [this] {
      if (server_ != nullptr) server_->stop();
      if (thread_.joinable()) thread_.join();
    });
  }

  int32_t port() const { return port_; }
  std::string url() const {
    const bool v6 = options_.host.find(':') != std::string::npos;
    return scheme_ + "://" + (v6 ? "[" + options_.host + "]" : options_.host) + ":" +
           std::to_string(port_);
  }

 private:
  // Runs before the body is read: a request without the token gets 401 at once, and one that
  // would carry a body (POST, PUT, PATCH) but says neither its length nor that it is chunked gets
  // 411 at once (the library would read its body until the client closes the connection, holding
  // a server thread for the read timeout, then answer a bare 400).
  httplib::Server::HandlerResponse Authorize(const httplib::Request& req, httplib::Response& res) {
    const bool body_method = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
    if (body_method && !req.has_header("Content-Length") &&
        !req.has_header("Transfer-Encoding")) {
      res.set_header("Connection", "close");
      SetError(res, 411, req.method + " " + req.path +
                             " without a Content-Length header (or a chunked Transfer-Encoding): "
                             "send the body's length, 0 for none");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (options_.token.empty()) return httplib::Server::HandlerResponse::Unhandled;
    // The page, its script and style sheet hold no cluster data (see http_api.h).
    if ((req.method == "GET" || req.method == "HEAD") && FindWebAsset(req.path) != nullptr) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string expected = "Bearer " + options_.token;
    if (!req.has_header("Authorization")) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"sabot\"");
      SetError(res, 401, "missing bearer token (Authorization: Bearer <token>)");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!ConstantTimeEquals(req.get_header_value("Authorization"), expected)) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"sabot\", error=\"invalid_token\"");
      SetError(res, 401, "invalid bearer token");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  void Dispatch(const httplib::Request& req, httplib::Response& res) {
    const bool read = req.method == "GET" || req.method == "HEAD";
    if (read) {
      if (const WebAsset* asset = FindWebAsset(req.path)) {
        ServeAsset(*asset, res);
        return;
      }
    }
    std::string job_id;
    const Route route = RouteOf(req.path, &job_id);
    if (route == Route::kNone) {
      SetError(res, 404, "no route " + req.method + " " + req.path +
                             " (the API is under /api/v1: agents, jobs, jobs/{id}; metrics at "
                             "/metrics; the live view at /)");
      return;
    }
    if (!Allows(route, req.method)) {
      res.set_header("Allow", AllowedMethods(route));
      SetError(res, 405, "method " + req.method + " is not allowed on " + req.path +
                             " (allowed: " + AllowedMethods(route) + ")");
      return;
    }
    const Clock::time_point now = Clock::now();
    switch (route) {
      case Route::kAgents:
        SetJson(res, 200, AgentsJson(view_->Agents(), now));
        return;
      case Route::kMetrics:
        res.status = 200;
        res.set_header("Cache-Control", "no-store");
        res.set_content(RenderPrometheusMetrics(view_->Agents(), view_->Jobs(), now),
                        std::string(kPrometheusContentType).c_str());
        return;
      case Route::kJobs:
        if (read) {
          SetJson(res, 200, JobsJson(view_->Jobs()));
        } else {
          SubmitJob(req, res);
        }
        return;
      case Route::kJob:
        if (read) {
          auto job = view_->Job(job_id);
          if (!job.ok()) return SetStatusError(res, job.status());
          SetJson(res, 200, JobJson(*job, now));
        } else {
          CancelJob(job_id, res);
        }
        return;
      case Route::kNone:
        return;
    }
  }

  void ServeAsset(const WebAsset& asset, httplib::Response& res) {
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    res.set_content(std::string(asset.body), std::string(asset.content_type).c_str());
  }

  void SubmitJob(const httplib::Request& req, httplib::Response& res) {
    const std::string content_type = req.get_header_value("Content-Type");
    if (!IsPlanJsonBody(content_type, req.body) &&
        req.body.size() > static_cast<size_t>(kMaxJobFileBytes)) {
      return SetError(res, 413, "the job file in the request is " +
                                    std::to_string(req.body.size()) + " bytes; at most " +
                                    std::to_string(kMaxJobFileBytes) + " are read");
    }
    if (req.body.empty()) {
      return SetError(res, 400,
                      "empty request body: send a YAML job file (Content-Type: application/yaml) "
                      "or a plan JSON (Content-Type: application/json)");
    }
    auto submission = ReadJobSubmission(req.body, content_type, req.get_param_value("name"),
                                        base_directory_);
    if (!submission.ok()) return SetStatusError(res, submission.status());
    auto id = view_->Submit(*submission);
    if (!id.ok()) return SetStatusError(res, id.status());
    res.set_header("Location", std::string(kJobPathPrefix) + *id);
    SetJson(res, 201, SubmittedJobJson(*id));
  }

  void CancelJob(const std::string& job_id, httplib::Response& res) {
    arrow::Status cancelled = view_->Cancel(job_id);
    if (!cancelled.ok()) return SetStatusError(res, cancelled);
    auto job = view_->Job(job_id);
    if (!job.ok()) return SetStatusError(res, job.status());
    SetJson(res, 202, JobSummaryJson(*job));
  }

  ClusterView* const view_;
  const HttpApiOptions options_;
  const std::string base_directory_;
  std::unique_ptr<httplib::Server> server_;
  std::string scheme_ = "http";
  int32_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  std::once_flag stopped_;
};

HttpApi::HttpApi(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpApi::~HttpApi() { Stop(); }

arrow::Result<std::unique_ptr<HttpApi>> HttpApi::Start(ClusterView* view,
                                                       const HttpApiOptions& options) {
  if (view == nullptr) return arrow::Status::Invalid("HTTP API: no cluster view given");
  if (options.port < 0 || options.port > 65535) {
    return arrow::Status::Invalid("HTTP API: port ", options.port, " is out of range (0..65535)");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return arrow::Status::Invalid(
        "HTTP API: TLS needs both a certificate file and a key file (given: ",
        options.tls_cert_file.empty() ? "key only" : "certificate only", ")");
  }
  if (!options.tls_client_ca_file.empty() && options.tls_cert_file.empty()) {
    return arrow::Status::Invalid(
        "HTTP API: client certificates (mutual TLS) need HTTPS: give a certificate and a key");
  }
  if (options.threads < 1) {
    return arrow::Status::Invalid("HTTP API: threads must be >= 1, got ", options.threads);
  }
  if (options.host.empty()) return arrow::Status::Invalid("HTTP API: empty host");
  std::string base_directory = options.base_directory;
  if (base_directory.empty()) {
    std::error_code error;
    base_directory = std::filesystem::current_path(error).string();
    if (error) {
      return arrow::Status::IOError("HTTP API: cannot read the working directory: ",
                                    error.message());
    }
  }
  auto impl = std::make_unique<Impl>(view, options, std::move(base_directory));
  ARROW_RETURN_NOT_OK(impl->Listen());
  return std::unique_ptr<HttpApi>(new HttpApi(std::move(impl)));
}

int32_t HttpApi::port() const { return impl_->port(); }

std::string HttpApi::url() const { return impl_->url(); }

void HttpApi::Stop() { impl_->Stop(); }

}  // namespace sabot
