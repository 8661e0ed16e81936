// The REST API without sockets: routing, auth, listing, path safety, ranges,
// metrics (tests/integration/cli_serve_test.cpp covers the real server).
#include "gpulab/serve/rest_api.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/lab/execution_store.h"
#include "tests/support/test_util.h"

namespace gpulab::serve {
namespace {
namespace fs = std::filesystem;

const char* kSrvToken = "t0ken";

HttpRequest srv_request(const std::string& method, const std::string& path,
                        const std::string& token = "") {
  HttpRequest r;
  r.method = method;
  const size_t q = path.find('?');
  r.path = path.substr(0, q);
  if (q != std::string::npos) r.query = parse_query(path.substr(q + 1));
  if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
  return r;
}

// A lab home with `n` executions named a/b alternately, the odd ones finished.
std::vector<std::string> srv_fill(const std::string& home, int n) {
  lab::ExecutionStore store(home);
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    lab::Execution e;
    e.name = i % 2 ? "b" : "a";
    ids.push_back(store.create(e).id);
    if (i % 2) store.transition(ids.back(), lab::ExecutionState::kFinished, "", 0);
  }
  return ids;
}

struct SrvApi {
  testing::TempDir dir;
  std::unique_ptr<RestApi> api;
  explicit SrvApi(bool token_for_reads = false) {
    api = std::make_unique<RestApi>(
        RestApiOptions(dir / "home", "/bin/false", kSrvToken).token_for_reads(token_for_reads));
  }
  HttpResponse call(HttpRequest r) { return api->handle(r); }
  nlohmann::json json(HttpRequest r) { return nlohmann::json::parse(api->handle(r).body); }
};

}  // namespace

TEST(RouterTest, MatchesParamsAndTheRestOfThePath) {
  Router router;
  router.add("GET", "/a/{id}", [](HttpRequest&) { return HttpResponse::json(200, "1"); });
  router.add("GET", "/a/{id}/f/{path*}", [](HttpRequest&) { return HttpResponse::json(200, "2"); });
  auto r = srv_request("GET", "/a/x1/f/run/history.jsonl");
  auto m = router.match(r);
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.pattern, "/a/{id}/f/{path*}");
  EXPECT_EQ(r.params["id"], "x1");
  EXPECT_EQ(r.params["path"], "run/history.jsonl");
  r = srv_request("GET", "/a/");
  EXPECT_EQ(router.match(r).handler, nullptr);
  r = srv_request("POST", "/a/x1");
  m = router.match(r);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(parse_query("a=1&b=x%20y+z&c")["b"], "x y z");
}

TEST(ByteRangeTest, ParsesSingleRanges) {
  auto r = parse_byte_range("bytes=2-5", 10);
  EXPECT_EQ(r.kind, ByteRange::kPartial);
  EXPECT_EQ(r.offset, 2);
  EXPECT_EQ(r.length, 4);
  r = parse_byte_range("bytes=7-", 10);
  EXPECT_EQ(r.offset, 7);
  EXPECT_EQ(r.length, 3);
  r = parse_byte_range("bytes=-4", 10);
  EXPECT_EQ(r.offset, 6);
  EXPECT_EQ(r.length, 4);
  r = parse_byte_range("bytes=5-100", 10);
  EXPECT_EQ(r.length, 5);
  EXPECT_EQ(parse_byte_range("bytes=10-", 10).kind, ByteRange::kUnsatisfiable);
  EXPECT_EQ(parse_byte_range("bytes=1-2,4-5", 10).kind, ByteRange::kWhole);
  EXPECT_EQ(parse_byte_range("", 10).kind, ByteRange::kWhole);
  EXPECT_EQ(parse_byte_range("bytes=x-", 10).kind, ByteRange::kWhole);
}

TEST(RestApiTest, ListsFiltersAndPaginates) {
  SrvApi s;
  const auto ids = srv_fill(s.dir / "home", 5);
  auto j = s.json(srv_request("GET", "/api/executions"));
  EXPECT_EQ(j["total"], 5);
  EXPECT_EQ(j["executions"].size(), 5u);
  j = s.json(srv_request("GET", "/api/executions?state=finished"));
  EXPECT_EQ(j["total"], 2);
  j = s.json(srv_request("GET", "/api/executions?name=a&limit=2&offset=1"));
  EXPECT_EQ(j["total"], 3);
  EXPECT_EQ(j["executions"].size(), 2u);
  EXPECT_EQ(j["limit"], 2);
  auto bad = s.call(srv_request("GET", "/api/executions?state=sleeping"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(nlohmann::json::parse(bad.body).contains("error"));
  EXPECT_EQ(s.call(srv_request("GET", "/api/executions?limit=0")).status, 400);
  j = s.json(srv_request("GET", "/api/executions/" + ids[1]));
  EXPECT_EQ(j["id"], ids[1]);
  EXPECT_EQ(j["state"], "finished");
}

TEST(RestApiTest, UnknownIdsAndRoutesAreJson404) {
  SrvApi s;
  for (const char* path : {"/api/executions/ffffffffffff", "/api/executions/ffffffffffff/log",
                           "/api/executions/ffffffffffff/outputs", "/api/nothing",
                           "/api/executions/..%2F..%2Fx/outputs"}) {
    const auto r = s.call(srv_request("GET", path));
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_TRUE(nlohmann::json::parse(r.body).contains("error")) << path;
  }
  EXPECT_EQ(s.call(srv_request("DELETE", "/api/executions")).status, 405);
}

TEST(RestApiTest, WritesNeedTheTokenAndReadsWhenAsked) {
  SrvApi open_reads;
  const auto ids = srv_fill(open_reads.dir / "home", 1);
  EXPECT_EQ(open_reads.call(srv_request("POST", "/api/executions")).status, 401);
  EXPECT_EQ(open_reads.call(srv_request("POST", "/api/executions", "wrong")).status, 401);
  EXPECT_EQ(open_reads.call(srv_request("POST", "/api/executions/" + ids[0] + "/stop")).status,
            401);
  // With the token, an empty body is a 400, not a 401.
  EXPECT_EQ(open_reads.call(srv_request("POST", "/api/executions", kSrvToken)).status, 400);
  EXPECT_EQ(open_reads.call(srv_request("GET", "/api/executions")).status, 200);

  SrvApi closed(true);
  EXPECT_EQ(closed.call(srv_request("GET", "/api/executions")).status, 401);
  EXPECT_EQ(closed.call(srv_request("GET", "/metrics")).status, 401);
  EXPECT_EQ(closed.call(srv_request("GET", "/api/executions", kSrvToken)).status, 200);
  EXPECT_EQ(
      closed.call(srv_request("GET", std::string("/api/executions?access_token=") + kSrvToken))
          .status,
      200);
  EXPECT_EQ(closed.call(srv_request("GET", "/api/health")).status, 200);
}

TEST(RestApiTest, OutputPathsNeverLeaveTheOutputsFolder) {
  SrvApi s;
  const auto ids = srv_fill(s.dir / "home", 1);
  const std::string outputs = s.dir / "home/executions/" + ids[0] + "/outputs";
  testing::write_bytes(outputs + "/run/a.txt", "0123456789");
  testing::write_bytes(s.dir / "home/secret.txt", "secret");
  testing::write_bytes(s.dir / "home/executions/" + ids[0] + "/spec-copy", "spec");
  fs::create_symlink(s.dir / "home/secret.txt", outputs + "/link-out");
  fs::create_symlink(s.dir / "home", outputs + "/dir-out");
  fs::create_symlink("run/a.txt", outputs + "/link-in");
  const std::string base = "/api/executions/" + ids[0] + "/outputs/";
  auto r = s.call(srv_request("GET", base + "run/a.txt"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.file_length, 10);
  EXPECT_EQ(s.call(srv_request("GET", base + "link-in")).status, 200);
  for (const std::string bad :
       {"../spec-copy", "run/../../spec-copy", "/etc/passwd", "link-out", "dir-out/secret.txt",
        "run", "missing.txt", "run/./../../../secret.txt"}) {
    r = s.call(srv_request("GET", base + bad));
    EXPECT_EQ(r.status, 404) << bad;
    EXPECT_TRUE(r.file_path.empty()) << bad;
  }
  auto list = s.json(srv_request("GET", base.substr(0, base.size() - 1)));
  ASSERT_EQ(list["outputs"].size(), 1u) << list.dump();  // symlinks are not listed
  EXPECT_EQ(list["outputs"][0]["path"], "run/a.txt");
}

TEST(RestApiTest, RangeRequestsAnswer206) {
  SrvApi s;
  const auto ids = srv_fill(s.dir / "home", 1);
  testing::write_bytes(s.dir / "home/executions/" + ids[0] + "/outputs/a.bin", "0123456789");
  auto req = srv_request("GET", "/api/executions/" + ids[0] + "/outputs/a.bin");
  req.headers["range"] = "bytes=3-5";
  auto r = s.call(req);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.file_offset, 3);
  EXPECT_EQ(r.file_length, 3);
  EXPECT_EQ(r.header("Content-Range"), "bytes 3-5/10");
  req.headers["range"] = "bytes=20-";
  EXPECT_EQ(s.call(req).status, 416);
}

TEST(RestApiTest, LogOfAnEndedExecutionStreamsItsText) {
  SrvApi s;
  const auto ids = srv_fill(s.dir / "home", 2);
  testing::write_bytes(s.dir / "home/executions/" + ids[1] + "/log", "line 1\nline 2\n");
  auto r = s.call(srv_request("GET", "/api/executions/" + ids[1] + "/log?follow=1"));
  ASSERT_TRUE(r.stream);
  struct Sink : BodyWriter {
    std::string text;
    bool write(const char* d, size_t n) override {
      text.append(d, n);
      return true;
    }
  } sink;
  r.stream(sink);  // finished: follow ends once drained
  EXPECT_EQ(sink.text, "line 1\nline 2\n");
}

TEST(RestApiTest, MetricsCountExecutionsRequestsAndErrors) {
  SrvApi s;
  srv_fill(s.dir / "home", 3);
  s.call(srv_request("GET", "/api/executions"));
  s.call(srv_request("GET", "/api/executions/ffffffffffff"));
  s.call(srv_request("POST", "/api/executions"));
  const auto text = s.call(srv_request("GET", "/metrics")).body;
  EXPECT_NE(text.find("gpulab_executions{state=\"finished\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("gpulab_executions{state=\"pending\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("gpulab_http_requests_total{method=\"GET\",route=\"/api/executions\","
                      "code=\"200\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("gpulab_http_errors_total{route=\"/api/executions/{id}\",code=\"404\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("gpulab_http_errors_total{route=\"/api/executions\",code=\"401\"} 1"),
            std::string::npos)
      << text;
}

}  // namespace gpulab::serve
