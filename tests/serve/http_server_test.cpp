// The HTTP facade on loopback: more requests than it handles at once are
// answered 503 at once, never queued; the ones in progress still finish.
#include "gpulab/serve/http_server.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "gpulab/data/http_client.h"

namespace gpulab::serve {
namespace {

struct HsGate {
  std::mutex mutex;
  std::condition_variable changed;
  int waiting = 0;
  bool open = false;
};

TEST(HttpServerTest, OverloadIsAnswered503AtOnceAndTheRequestsInProgressFinish) {
  HsGate gate;
  HttpServer server(HttpServerOptions().host("127.0.0.1").port(0).threads(6).max_in_flight(2),
                    [&](HttpRequest& request) {
                      if (request.path == "/block") {
                        std::unique_lock<std::mutex> lock(gate.mutex);
                        ++gate.waiting;
                        gate.changed.notify_all();
                        gate.changed.wait(lock, [&] { return gate.open; });
                      }
                      return HttpResponse::json(200, "{\"ok\": true}");
                    });
  server.start();
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const data::HttpClient client(data::HttpOptions().max_attempts(1).timeout_s(30));
  auto get = [&](const std::string& path) {
    data::HttpRequest r;
    r.url = base + path;
    return client.perform(r);
  };
  std::vector<long> blocked_status(2, 0);
  std::vector<std::thread> blocked;
  for (int i = 0; i < 2; ++i) {
    blocked.emplace_back([&, i] { blocked_status[i] = get("/block").status; });
  }
  {
    std::unique_lock<std::mutex> lock(gate.mutex);
    gate.changed.wait(lock, [&] { return gate.waiting == 2; });
  }
  const data::HttpResponse busy = get("/other");
  EXPECT_EQ(busy.status, 503) << busy.body;
  EXPECT_EQ(busy.header("retry-after"), "1");
  EXPECT_NE(busy.body.find("server busy"), std::string::npos) << busy.body;
  {
    std::lock_guard<std::mutex> lock(gate.mutex);
    gate.open = true;
  }
  gate.changed.notify_all();
  for (auto& t : blocked) t.join();
  EXPECT_EQ(blocked_status, (std::vector<long>{200, 200}));
  EXPECT_EQ(get("/other").status, 200);  // room again
  server.stop();
}

}  // namespace
}  // namespace gpulab::serve
