#include "sabot/runtime/http_api.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "sabot/dataflow/job_file.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/runtime/http_api_testing.h"
#include "sabot/runtime/prometheus_metrics.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using Json = nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The error message of a JSON error body; fails the test when the body is not one.
std::string ErrorOf(const httplib::Result& res) {
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << res->body;
  Json body = Json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(body.is_object() && body.contains("error") && body["error"].is_string())
      << res->body;
  return body.is_object() && body.contains("error") ? body["error"].get<std::string>() : "";
}

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    view_.SetAgents(SampleAgents());
    view_.SetLiveJob("live-1", [](int64_t g) { return MakeLiveSampleJob("live-1", g); });
    JobInfo old;
    old.id = "old-1";
    old.name = "old";
    old.state = JobState::kRunning;
    view_.AddJob(old);
  }

  void StartApi(HttpApiOptions options = {}) {
    if (options.base_directory.empty()) options.base_directory = "/srv/jobs";
    ASSERT_OK_AND_ASSIGN(api_, HttpApi::Start(&view_, options));
    client_ = std::make_unique<httplib::Client>("127.0.0.1", api_->port());
    client_->set_read_timeout(30);
  }

  FakeClusterView view_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpApiTest, ListsAgentsAndJobs) {
  StartApi();
  EXPECT_NE(api_->port(), 0);
  EXPECT_EQ(api_->url(), "http://127.0.0.1:" + std::to_string(api_->port()));
  auto agents = client_->Get("/api/v1/agents");
  ASSERT_TRUE(agents);
  EXPECT_EQ(agents->status, 200);
  EXPECT_EQ(agents->get_header_value("Content-Type"), "application/json");
  Json body = Json::parse(agents->body);
  ASSERT_EQ(body["agents"].size(), 2u);
  EXPECT_EQ(body["agents"][1]["state"], "lost");

  auto jobs = client_->Get("/api/v1/jobs");
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->status, 200);
  body = Json::parse(jobs->body);
  ASSERT_EQ(body["jobs"].size(), 2u);
  EXPECT_EQ(body["jobs"][0]["id"], "live-1");  // newest first
  EXPECT_EQ(body["jobs"][1]["id"], "old-1");
}

TEST_F(HttpApiTest, OneJobHasItsGraphAndLiveFigures) {
  StartApi();
  for (int64_t g = 1; g <= 2; ++g) {
    auto res = client_->Get("/api/v1/jobs/live-1");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const Json body = Json::parse(res->body);
    EXPECT_EQ(body["graph"]["operators"].size(), 4u);
    EXPECT_EQ(body["edges"][0]["rows"][0][0], 1000 + g * 11);  // each read is a new generation
    EXPECT_EQ(body["edges"][0]["rows"][1][2], 777);
  }
  auto missing = client_->Get("/api/v1/jobs/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(ErrorOf(missing).find("nope"), std::string::npos);
}

TEST_F(HttpApiTest, CancelsJobs) {
  StartApi();
  auto res = client_->Delete("/api/v1/jobs/old-1");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  EXPECT_EQ(Json::parse(res->body)["state"], "cancelled");
  EXPECT_EQ(view_.cancelled(), std::vector<std::string>{"old-1"});
  // Cancelling a job that ended is OK and changes nothing.
  res = client_->Delete("/api/v1/jobs/old-1");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202);
  EXPECT_EQ(view_.cancelled().size(), 1u);
  res = client_->Delete("/api/v1/jobs/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(ErrorOf(res).find("nope"), std::string::npos);
}

TEST_F(HttpApiTest, SubmitsAYamlJobFileWithPathsResolvedAgainstTheBaseDirectory) {
  StartApi();
  const std::string yaml = ReadFile(std::string(SABOT_EXAMPLES_DIR) + "/seed-pipeline.yaml");
  ASSERT_FALSE(yaml.empty());
  auto res = client_->Post("/api/v1/jobs", yaml, "application/yaml");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(Json::parse(res->body)["id"], "job-1");
  EXPECT_EQ(Json::parse(res->body)["url"], "/api/v1/jobs/job-1");
  EXPECT_EQ(res->get_header_value("Location"), "/api/v1/jobs/job-1");
  ASSERT_EQ(view_.submissions().size(), 1u);
  const JobSubmission submitted = view_.submissions()[0];
  EXPECT_EQ(submitted.name, "seed-pipeline");
  // The same plan as the file read from /srv/jobs, compared as plans.
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, PlanFromJson(submitted.plan_json));
  ASSERT_OK_AND_ASSIGN(JobFile expected, ParseJobFile(yaml, "expected", "/srv/jobs"));
  EXPECT_EQ(plan.operators(), expected.plan.operators());
  EXPECT_NE(submitted.plan_json.find("/srv/jobs/out/seed-pipeline"), std::string::npos);

  // Sniffed without a Content-Type, named by ?name=.
  res = client_->Post("/api/v1/jobs?name=renamed", yaml, "text/plain");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(view_.submissions()[1].name, "renamed");
}

TEST_F(HttpApiTest, SubmitsAPlanJson) {
  StartApi();
  ASSERT_OK_AND_ASSIGN(JobFile file, ParseJobFile(kLiveSampleJobYaml, "sample", "/"));
  ASSERT_OK_AND_ASSIGN(std::string plan_json, PlanToJson(file.plan));
  auto res = client_->Post("/api/v1/jobs?name=from-json", plan_json, "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  ASSERT_EQ(view_.submissions().size(), 1u);
  EXPECT_EQ(view_.submissions()[0].name, "from-json");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, PlanFromJson(view_.submissions()[0].plan_json));
  EXPECT_EQ(plan.operators(), file.plan.operators());
  // Sniffed: a body starting with '{' is a plan.
  res = client_->Post("/api/v1/jobs", "  " + plan_json, "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201) << res->body;
}

TEST_F(HttpApiTest, BadJobsAre400NamingTheOperator) {
  StartApi();
  const std::string bad_yaml =
      "operators:\n"
      "  - name: gen\n"
      "    generator_source: {rows: 10}\n"
      "  - name: doubler\n"
      "    map: {colums: {x: \"key * 2\"}}\n";
  auto res = client_->Post("/api/v1/jobs", bad_yaml, "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  const std::string message = ErrorOf(res);
  EXPECT_NE(message.find("operator 'doubler'"), std::string::npos) << message;
  EXPECT_NE(message.find("request body:5:"), std::string::npos) << message;

  ASSERT_OK_AND_ASSIGN(JobFile file, ParseJobFile(kLiveSampleJobYaml, "sample", "/"));
  ASSERT_OK_AND_ASSIGN(std::string plan_json, PlanToJson(file.plan));
  const std::string needle = "\"parallelism\": 4";
  ASSERT_NE(plan_json.find(needle), std::string::npos);
  plan_json.replace(plan_json.find(needle), needle.size(), "\"parallelism\": 0");
  res = client_->Post("/api/v1/jobs", plan_json, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(ErrorOf(res).find("operator 'sums'"), std::string::npos) << res->body;

  res = client_->Post("/api/v1/jobs", "{not json", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  ErrorOf(res);
  res = client_->Post("/api/v1/jobs", "", "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(ErrorOf(res).find("empty request body"), std::string::npos);
  EXPECT_TRUE(view_.submissions().empty());
}

TEST_F(HttpApiTest, CapacityAndConflictsFromTheView) {
  StartApi();
  const std::string yaml = kLiveSampleJobYaml;
  view_.SetSubmitError(arrow::Status::CapacityError("job needs 9 slots, 8 are free"));
  auto res = client_->Post("/api/v1/jobs", yaml, "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(ErrorOf(res), "job needs 9 slots, 8 are free");
  view_.SetSubmitError(arrow::Status::AlreadyExists("job 'live-view' is running"));
  res = client_->Post("/api/v1/jobs", yaml, "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 409);
  view_.SetSubmitError(arrow::Status::IOError("disk on fire"));
  res = client_->Post("/api/v1/jobs", yaml, "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(ErrorOf(res), "disk on fire");
}

TEST_F(HttpApiTest, UnknownRoutesAndMethods) {
  StartApi();
  auto res = client_->Get("/api/v1/nothing");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  ErrorOf(res);
  res = client_->Put("/api/v1/jobs", "x", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD, POST");
  ErrorOf(res);
  res = client_->Delete("/api/v1/agents");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD");
  res = client_->Post("/api/v1/jobs/live-1", "x", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD, DELETE");
  res = client_->Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
}

// Sends `request` as it is over a new connection and returns the response's status line.
std::string RawStatusLine(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[512];
  while (response.find("\r\n") == std::string::npos) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return response.substr(0, response.find("\r\n"));
}

// A POST/PUT/PATCH that says neither its length nor chunked (curl -X POST without data) is
// answered 411 at once, not read until the connection closes and answered a bare 400.
TEST_F(HttpApiTest, BodyWithoutLengthIs411) {
  StartApi();
  for (const std::string method : {"POST", "PUT", "PATCH"}) {
    EXPECT_EQ(RawStatusLine(api_->port(), method + " /api/v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n"),
              "HTTP/1.1 411 Length Required")
        << method;
  }
  // With a length of 0 the request reaches the API, which names what is missing.
  auto res = client_->Post("/api/v1/jobs", "", "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(ErrorOf(res).find("empty request body"), std::string::npos);
  EXPECT_TRUE(view_.submissions().empty());
}

TEST_F(HttpApiTest, TooLargeBodiesAre413) {
  StartApi();
  // Over the server's limit: refused while reading.
  std::string huge(static_cast<size_t>(kMaxHttpBodyBytes) + 1, ' ');
  auto res = client_->Post("/api/v1/jobs", huge, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(ErrorOf(res).find("too large"), std::string::npos);
  // A YAML job file over its own limit.
  std::string big_yaml = "# " + std::string(static_cast<size_t>(kMaxJobFileBytes), 'x') + "\n";
  res = client_->Post("/api/v1/jobs", big_yaml, "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(ErrorOf(res).find("job file"), std::string::npos);
  EXPECT_TRUE(view_.submissions().empty());
}

TEST_F(HttpApiTest, MetricsInThePrometheusTextFormat) {
  StartApi();
  auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kPrometheusContentType);
  EXPECT_NE(res->body.find("# TYPE sabot_edge_rows_total counter\n"), std::string::npos);
  EXPECT_NE(res->body.find("sabot_edge_rows_total{job=\"live-1\",edge=\"s0.source.sums\","
                           "writer=\"1\",partition=\"2\"} 777\n"),
            std::string::npos);
  EXPECT_NE(res->body.find("sabot_agents{state=\"lost\"} 1\n"), std::string::npos);
}

TEST_F(HttpApiTest, ServesTheLiveViewPage) {
  StartApi();
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<script src=\"live_view.js\"></script>"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
  auto script = client_->Get("/live_view.js");
  ASSERT_TRUE(script);
  EXPECT_EQ(script->status, 200);
  EXPECT_EQ(script->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_NE(script->body.find("/api/v1/jobs"), std::string::npos);
  auto style = client_->Get("/live_view.css");
  ASSERT_TRUE(style);
  EXPECT_EQ(style->get_header_value("Content-Type"), "text/css; charset=utf-8");
  // No external URL anywhere in the page (it must work without the Internet).
  for (const std::string* body : {&page->body, &script->body, &style->body}) {
    EXPECT_EQ(body->find("https://"), std::string::npos);
    EXPECT_EQ(body->find("//cdn"), std::string::npos);
  }
}

TEST_F(HttpApiTest, TokenProtectsEveryApiRoute) {
  HttpApiOptions options;
  options.token = "s3cret";
  StartApi(options);
  struct Call {
    std::string method, path;
  };
  for (const Call& call : std::vector<Call>{{"GET", "/api/v1/agents"},
                                            {"GET", "/api/v1/jobs"},
                                            {"POST", "/api/v1/jobs"},
                                            {"GET", "/api/v1/jobs/live-1"},
                                            {"DELETE", "/api/v1/jobs/old-1"},
                                            {"GET", "/metrics"},
                                            {"GET", "/api/v1/unknown"}}) {
    for (const std::string& header : {std::string(), std::string("Bearer wrong"),
                                      std::string("Bearer s3cret2"), std::string("s3cret")}) {
      httplib::Headers headers;
      if (!header.empty()) headers.emplace("Authorization", header);
      httplib::Result res =
          call.method == "GET"    ? client_->Get(call.path.c_str(), headers)
          : call.method == "POST" ? client_->Post(call.path.c_str(), headers, kLiveSampleJobYaml,
                                                  "application/yaml")
                                  : client_->Delete(call.path.c_str(), headers);
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 401) << call.method << " " << call.path << " with '" << header << "'";
      EXPECT_NE(res->get_header_value("WWW-Authenticate").find("Bearer"), std::string::npos);
      EXPECT_NE(ErrorOf(res).find("token"), std::string::npos);
    }
  }
  EXPECT_TRUE(view_.submissions().empty());
  EXPECT_TRUE(view_.cancelled().empty());

  httplib::Headers good = {{"Authorization", "Bearer s3cret"}};
  auto res = client_->Get("/api/v1/jobs", good);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = client_->Post("/api/v1/jobs", good, kLiveSampleJobYaml, "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201);
  res = client_->Get("/metrics", good);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  // The page holds no data and loads without the token; it sends the token itself.
  res = client_->Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpApiTest, BadOptionsAndBusyPorts) {
  HttpApiOptions options;
  options.tls_cert_file = "/nonexistent/cert.pem";
  ASSERT_RAISES_WITH(Invalid, "both a certificate file and a key file",
                     HttpApi::Start(&view_, options));
  options.tls_key_file = "/nonexistent/key.pem";
  ASSERT_RAISES_WITH(IOError, "/nonexistent/cert.pem", HttpApi::Start(&view_, options));
  ASSERT_RAISES_WITH(Invalid, "port 70000", HttpApi::Start(&view_, HttpApiOptions{.port = 70000}));
  ASSERT_RAISES_WITH(Invalid, "no cluster view", HttpApi::Start(nullptr, HttpApiOptions{}));
  StartApi();
  HttpApiOptions same;
  same.port = api_->port();
  ASSERT_RAISES_WITH(IOError, std::to_string(api_->port()), HttpApi::Start(&view_, same));
  // Stop is idempotent, and a stopped API answers nothing.
  const int port = api_->port();
  api_->Stop();
  api_->Stop();
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(2);
  EXPECT_FALSE(after.Get("/api/v1/jobs"));
}

TEST_F(HttpApiTest, HeadAndOptions) {
  StartApi();
  auto res = client_->Head("/api/v1/jobs");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(res->body.empty());
  res = client_->Options("/api/v1/jobs");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
}

TEST_F(HttpApiTest, ConcurrentClientsWhileTheJobChanges) {
  StartApi();
  const int port = api_->port();
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([port, t, &good] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(t % 2 == 0);
      for (int i = 0; i < 25; ++i) {
        const char* path = i % 3 == 0 ? "/api/v1/jobs/live-1" : i % 3 == 1 ? "/metrics"
                                                                            : "/api/v1/jobs";
        auto res = client.Get(path);
        if (!res || res->status != 200) continue;
        if (path[1] == 'a' && Json::parse(res->body, nullptr, false).is_discarded()) continue;
        ++good;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 100);
  // Each read of the live job was one generation.
  EXPECT_EQ(view_.live_generation(), 4 * 9);
}

TEST(HttpApiRequestTest, BodyKindFromContentTypeOrFirstCharacter) {
  EXPECT_TRUE(IsPlanJsonBody("application/json; charset=utf-8", "operators: []"));
  EXPECT_FALSE(IsPlanJsonBody("application/yaml", "{\"operators\": []}"));
  EXPECT_FALSE(IsPlanJsonBody("Text/YAML", "{}"));
  EXPECT_TRUE(IsPlanJsonBody("", " \n\t{\"sabot_plan_version\": 1}"));
  EXPECT_FALSE(IsPlanJsonBody("text/plain", "job: x"));
  EXPECT_FALSE(IsPlanJsonBody("", ""));
}

TEST(HttpApiRequestTest, JobFileOptionsTravelWithTheSubmission) {
  const std::string yaml =
      "job: budgeted\n"
      "options: {memory_budget: 64MiB, state_budget: 1MiB, threads: 3}\n"
      "operators:\n"
      "  - generator_source: {rows: 10}\n"
      "  - parquet_sink: out/x\n";
  ASSERT_OK_AND_ASSIGN(JobSubmission submission,
                       ReadJobSubmission(yaml, "application/yaml", "", "/data"));
  EXPECT_EQ(submission.name, "budgeted");
  EXPECT_EQ(submission.memory_budget_bytes, 64 << 20);
  EXPECT_EQ(submission.state_budget_bytes, 1 << 20);
  EXPECT_NE(submission.plan_json.find("\"/data/out/x\""), std::string::npos)
      << submission.plan_json;
  ASSERT_OK_AND_ASSIGN(submission, ReadJobSubmission(yaml, "", "other", "/data"));
  EXPECT_EQ(submission.name, "other");
  ASSERT_RAISES_WITH(Invalid, "request body:", ReadJobSubmission("operators: 3\n", "", "", "/"));
  ASSERT_RAISES_WITH(Invalid, "sabot_plan_version", ReadJobSubmission("{}", "", "", "/"));
}

TEST(HttpApiRequestTest, StatusCodesForErrors) {
  EXPECT_EQ(HttpStatusFor(arrow::Status::Invalid("x")), 400);
  EXPECT_EQ(HttpStatusFor(arrow::Status::TypeError("x")), 400);
  EXPECT_EQ(HttpStatusFor(arrow::Status::KeyError("x")), 404);
  EXPECT_EQ(HttpStatusFor(arrow::Status::AlreadyExists("x")), 409);
  EXPECT_EQ(HttpStatusFor(arrow::Status::CapacityError("x")), 503);
  EXPECT_EQ(HttpStatusFor(arrow::Status::IOError("x")), 500);
}

TEST(HttpApiTlsTest, ServesHttpsWithTheGivenCertificate) {
  std::string pattern = (std::filesystem::temp_directory_path() / "sabot-http-tls-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  const std::string command =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
      " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + dir + "/key.pem -out " +
      dir + "/cert.pem > " + dir + "/openssl.log 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  FakeClusterView view;
  view.SetAgents(SampleAgents());
  HttpApiOptions options;
  options.tls_cert_file = dir + "/cert.pem";
  options.tls_key_file = dir + "/key.pem";
  options.token = "t";
  ASSERT_OK_AND_ASSIGN(auto api, HttpApi::Start(&view, options));
  EXPECT_EQ(api->url(), "https://127.0.0.1:" + std::to_string(api->port()));
  {
    httplib::SSLClient client("127.0.0.1", api->port());
    client.set_ca_cert_path(options.tls_cert_file.c_str());
    client.enable_server_certificate_verification(true);
    auto res = client.Get("/api/v1/agents", {{"Authorization", "Bearer t"}});
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(Json::parse(res->body)["agents"].size(), 2u);
  }
  {
    // Plain HTTP to the TLS port gets no answer.
    httplib::Client plain("127.0.0.1", api->port());
    plain.set_read_timeout(5);
    auto res = plain.Get("/api/v1/agents", {{"Authorization", "Bearer t"}});
    EXPECT_TRUE(!res || res->status != 200);
  }
  // A key that does not match the certificate.
  std::ofstream(dir + "/bad.pem") << "not a key\n";
  options.tls_key_file = dir + "/bad.pem";
  ASSERT_RAISES_WITH(IOError, "cannot load the TLS certificate", HttpApi::Start(&view, options));
  api->Stop();
  std::filesystem::remove_all(dir);
}

// verify_clients: the HTTP API, like every server of the cluster, accepts only clients that
// present a certificate signed by the given roots.
TEST(HttpApiTlsTest, MutualTlsRefusesClientsWithoutACertificate) {
  std::string pattern = (std::filesystem::temp_directory_path() / "sabot-http-mtls-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  for (const std::string name : {"server", "client"}) {
    const std::string command =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
        " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + dir + "/" + name +
        "-key.pem -out " + dir + "/" + name + ".pem > " + dir + "/openssl.log 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  FakeClusterView view;
  view.SetAgents(SampleAgents());
  HttpApiOptions options;
  options.tls_cert_file = dir + "/server.pem";
  options.tls_key_file = dir + "/server-key.pem";
  // The client's self-signed certificate is the root that signs it.
  options.tls_client_ca_file = dir + "/client.pem";
  ASSERT_OK_AND_ASSIGN(auto api, HttpApi::Start(&view, options));
  {
    httplib::SSLClient client("127.0.0.1", api->port());
    client.set_ca_cert_path(options.tls_cert_file.c_str());
    client.enable_server_certificate_verification(true);
    auto res = client.Get("/api/v1/agents");
    EXPECT_FALSE(res) << "a client without a certificate was answered " << res->status;
  }
  {
    httplib::SSLClient client("127.0.0.1", api->port(), dir + "/client.pem",
                              dir + "/client-key.pem");
    client.set_ca_cert_path(options.tls_cert_file.c_str());
    client.enable_server_certificate_verification(true);
    auto res = client.Get("/api/v1/agents");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
  }
  api->Stop();
  // Client certificates without HTTPS, and an unreadable roots file.
  HttpApiOptions plain;
  plain.tls_client_ca_file = dir + "/client.pem";
  ASSERT_RAISES_WITH(Invalid, "need HTTPS", HttpApi::Start(&view, plain));
  options.tls_client_ca_file = dir + "/missing.pem";
  ASSERT_RAISES_WITH(IOError, "missing.pem", HttpApi::Start(&view, options));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sabot
