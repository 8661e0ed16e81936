// `gpulab serve` end to end on loopback: libcurl against the real server
// (auth, listing, path safety, ranges, submit, log, 20 concurrent submits,
// metrics, a killed server), and the web page in headless Chromium.
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/support/test_util.h"

namespace gpulab {
namespace {
namespace fs = std::filesystem;

struct SrvReply {
  long status = 0;
  std::string body;
  std::string headers;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

size_t srv_append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One request with libcurl. `path_as_is` keeps "..".
SrvReply srv_http(const std::string& method, const std::string& url, const std::string& token = "",
                  const std::string& body = "", const std::vector<std::string>& headers = {},
                  bool path_as_is = false) {
  SrvReply reply;
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  if (!token.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + token).c_str());
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, path_as_is ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, srv_append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, srv_append);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  const CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return reply;
}

// `gpulab serve --port 0` with GPULAB_HOME=home; stopped (SIGTERM) when destroyed.
class SrvServer {
 public:
  SrvServer(const std::string& home, const std::vector<std::string>& extra = {})
      : home_(home), log_(home + "-serve.log") {
    fs::create_directories(home);
    fs::remove(log_);  // a restarted server's log must not show the old URL
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setenv("GPULAB_HOME", home.c_str(), 1);
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<std::string> args = {testing::gpulab_binary(), "serve", "--port", "0"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until && url_.empty()) {
      const std::string text = fs::exists(log_) ? testing::read_bytes(log_) : "";
      const size_t at = text.find("http://127.0.0.1:");
      const size_t end = text.find('/', at + 17);
      if (at != std::string::npos && end != std::string::npos) url_ = text.substr(at, end - at);
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (url_.empty()) ADD_FAILURE() << "gpulab serve did not start:\n" << testing::read_bytes(log_);
  }
  ~SrvServer() { stop(SIGTERM); }
  void stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  const std::string& url() const { return url_; }
  std::string write_token() const {
    std::string t = testing::read_bytes(home_ + "/serve-token");
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t;
  }
  std::string log() const { return testing::read_bytes(log_); }

 private:
  std::string home_, log_, url_;
  pid_t pid_ = -1;
};

const char* kSrvSpec =
    "name: srv-tiny\n"
    "command: [sh, -c, \"echo hi; mkdir -p run; "
    "printf '{\\\"iteration\\\":1,\\\"loss\\\":0.5,\\\"learn_rate\\\":0.1}\\\\n"
    "{\\\"iteration\\\":2,\\\"loss\\\":0.25,\\\"learn_rate\\\":0.05}\\\\n' > run/history.jsonl; "
    "printf 0123456789 > run/digits.txt\"]\n";

std::string srv_submit(const SrvServer& s, const std::string& spec = kSrvSpec) {
  const auto r = srv_http("POST", s.url() + "/api/executions", s.write_token(), spec);
  EXPECT_EQ(r.status, 201) << r.body;
  return r.status == 201 ? r.json()["id"].get<std::string>() : "";
}

std::string srv_wait_ended(const SrvServer& s, const std::string& id, double seconds = 15) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::string state;
  while (std::chrono::steady_clock::now() < until) {
    state = srv_http("GET", s.url() + "/api/executions/" + id).json()["state"];
    if (state == "finished" || state == "failed" || state == "stopped") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return state;
}

}  // namespace

TEST(CliServeTest, SubmitsFollowsAndServesOutputs) {
  testing::TempDir dir;
  SrvServer s(dir / "home");
  ASSERT_FALSE(s.url().empty());
  EXPECT_EQ(fs::status(dir / "home/serve-token").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto r = srv_http("GET", s.url() + "/api/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["status"], "ok");

  EXPECT_EQ(srv_http("POST", s.url() + "/api/executions", "", kSrvSpec).status, 401);
  r = srv_http("POST", s.url() + "/api/executions", s.write_token(),
               "name: x\ncommand: [true]\nhardware: {type: tpu}\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.json()["error"].get<std::string>().find("hardware.type"), std::string::npos)
      << r.body;

  const std::string id = srv_submit(s);
  ASSERT_FALSE(id.empty());
  // Follow the log until the execution ends.
  r = srv_http("GET", s.url() + "/api/executions/" + id + "/log?follow=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(" hi\n"), std::string::npos) << r.body;
  EXPECT_EQ(srv_wait_ended(s, id), "finished");

  r = srv_http("GET", s.url() + "/api/executions/" + id + "/outputs");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["outputs"].size(), 2u) << r.body;
  const std::string out = s.url() + "/api/executions/" + id + "/outputs/";
  r = srv_http("GET", out + "run/digits.txt", "", "", {"Range: bytes=2-4"});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "234");
  EXPECT_NE(r.headers.find("Content-Range: bytes 2-4/10"), std::string::npos) << r.headers;
  r = srv_http("GET", out + "run/history.jsonl");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"loss\":0.25"), std::string::npos) << r.body;

  // Paths never leave outputs/: "..", an absolute path, a symlink out.
  fs::create_symlink(dir / "home/serve-token",
                     dir / ("home/executions/" + id + "/outputs/run/token-link"));
  for (const std::string bad : {"../spec.yaml", "run/../../log", "%2e%2e/spec.yaml", "/etc/passwd",
                                "run/token-link", "run/%2e%2e/%2e%2e/log"}) {
    r = srv_http("GET", out + bad, "", "", {}, true);
    EXPECT_EQ(r.status, 404) << bad << ": " << r.body;
    EXPECT_TRUE(r.json().contains("error")) << bad;
  }
  r = srv_http("GET", s.url() + "/api/executions/ffffffffffff");
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.json().contains("error"));
  EXPECT_EQ(srv_http("POST", s.url() + "/api/executions/" + id + "/stop").status, 401);
  r = srv_http("POST", s.url() + "/api/executions/" + id + "/stop", s.write_token());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["stopped_now"], false);

  r = srv_http("GET", s.url() + "/api/executions?state=finished&name=srv-tiny&limit=1");
  EXPECT_EQ(r.json()["total"], 1);
  EXPECT_EQ(r.json()["executions"][0]["id"], id);
  r = srv_http("GET", s.url() + "/metrics");
  EXPECT_NE(r.body.find("gpulab_executions{state=\"finished\"} 1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("route=\"/api/executions\",code=\"401\"} 1"), std::string::npos) << r.body;
}

TEST(CliServeTest, TwentyConcurrentSubmissionsGetDistinctIds) {
  testing::TempDir dir;
  SrvServer s(dir / "home");
  ASSERT_FALSE(s.url().empty());
  const std::string spec = "name: srv-many\ncommand: [true]\n";
  std::vector<std::future<SrvReply>> replies;
  for (int i = 0; i < 20; ++i) {
    replies.push_back(std::async(std::launch::async, [&] {
      return srv_http("POST", s.url() + "/api/executions", s.write_token(), spec);
    }));
  }
  std::set<std::string> ids;
  for (auto& f : replies) {
    const auto r = f.get();
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status == 201) ids.insert(r.json()["id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), 20u);
  const auto r = srv_http("GET", s.url() + "/api/executions?name=srv-many");
  EXPECT_EQ(r.json()["total"], 20);
}

TEST(CliServeTest, TokenFileGuardsReadsAndAKilledServerLosesNothing) {
  testing::TempDir dir;
  testing::write_bytes(dir / "token", "s3cret-token\nignored\n");
  std::string id;
  {
    SrvServer s(dir / "home", {"--token-file", dir / "token"});
    ASSERT_FALSE(s.url().empty());
    EXPECT_EQ(srv_http("GET", s.url() + "/api/executions").status, 401);
    EXPECT_EQ(srv_http("GET", s.url() + "/metrics").status, 401);
    EXPECT_EQ(srv_http("GET", s.url() + "/api/health").status, 200);
    auto r = srv_http("POST", s.url() + "/api/executions", "s3cret-token",
                      "name: srv-slow\ncommand: [sh, -c, 'sleep 1; echo done > done.txt']\n");
    ASSERT_EQ(r.status, 201) << r.body;
    id = r.json()["id"];
    s.stop(SIGKILL);  // the execution runs on without the server
  }
  SrvServer s(dir / "home", {"--token-file", dir / "token"});
  ASSERT_FALSE(s.url().empty());
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  std::string state;
  while (std::chrono::steady_clock::now() < until && state != "finished") {
    state = srv_http("GET", s.url() + "/api/executions/" + id, "s3cret-token").json()["state"];
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(state, "finished");
  const auto r =
      srv_http("GET", s.url() + "/api/executions/" + id + "/outputs/done.txt", "s3cret-token");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "done\n");
}

// The page in Debian's chromium driven by puppeteer-core (tests/support/browser).
TEST(CliServeTest, WebPageShowsOutputsAndCurves) {
  const std::string browser_dir = std::string(GPULAB_SOURCE_DIR) + "/tests/support/browser";
  ASSERT_TRUE(fs::exists("/usr/bin/chromium"))
      << "the web page test needs Debian's chromium: apt-get install -y "
         "--no-install-recommends chromium (scripts/install-deps.sh installs it)";
  ASSERT_TRUE(fs::exists(browser_dir + "/node_modules/puppeteer-core"))
      << "the web page test needs node and puppeteer-core: run scripts/install-deps.sh (it runs "
         "'npm ci --omit=dev' in tests/support/browser)";
  testing::TempDir dir;
  SrvServer s(dir / "home");
  ASSERT_FALSE(s.url().empty());
  const std::string id = srv_submit(s);
  ASSERT_EQ(srv_wait_ended(s, id), "finished");
  const auto r = testing::run_shell("node '" + browser_dir + "/check_page.js' '" + s.url() +
                                    "/?id=" + id + "' 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["title"], "srv-tiny (" + id + ")");
  EXPECT_NE(j["rows"].dump().find(id), std::string::npos) << j.dump();
  EXPECT_NE(j["links"].dump().find("run/history.jsonl"), std::string::npos) << j.dump();
  EXPECT_NE(j["links"].dump().find("/api/executions/" + id + "/outputs/run/digits.txt"),
            std::string::npos)
      << j.dump();
  EXPECT_NE(j["charts"].dump().find("\"run/loss\""), std::string::npos) << j.dump();
  EXPECT_NE(j["charts"].dump().find("\"run/learn_rate\""), std::string::npos) << j.dump();
  for (const auto& c : j["charts"]) EXPECT_EQ(c["points"], 2) << j.dump();
  EXPECT_NE(j["log"].get<std::string>().find(" hi"), std::string::npos) << j.dump();
}

}  // namespace gpulab
