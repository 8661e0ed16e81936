// The executions store: a row round-trips every column, lists filter and
// page, 20 concurrent writers all get distinct ids, ended rows stay ended.
#include "gpulab/lab/execution_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "gpulab/core/error.h"
#include "tests/support/test_util.h"

namespace gpulab::lab {
namespace fs = std::filesystem;

TEST(ExecutionStoreTest, ARowRoundTripsEveryColumn) {
  testing::TempDir home;
  ExecutionStore store(home.path());
  Execution e;
  e.name = "train";
  e.runner = "local";
  e.host = "box";
  e.pid = 42;
  e.hardware = "gpu:1";
  e.spec_hash = std::string(64, 'a');
  e.gpulab_version = "1.2.3";
  const Execution created = store.create(e);
  EXPECT_EQ(created.id.size(), 12u);
  EXPECT_EQ(created.state, ExecutionState::kPending);
  for (const char* sub : {"inputs", "mounts", "outputs"}) {
    EXPECT_TRUE(fs::is_directory(store.dir(created.id) + "/" + sub)) << sub;
  }
  Execution u = store.get(created.id);
  EXPECT_EQ(u.name, "train");
  EXPECT_EQ(u.hardware, "gpu:1");
  EXPECT_FALSE(u.exit_code.has_value());
  u.state = ExecutionState::kRunning;
  u.started_at = 100.5;
  u.child_pid = 43;
  u.input_digests = {{"style.jpg", "sha256:abc"}};
  store.update(u);
  EXPECT_TRUE(store.transition(u.id, ExecutionState::kFinished, "", 0));
  const Execution got = store.get(u.id);
  EXPECT_EQ(got.state, ExecutionState::kFinished);
  EXPECT_EQ(got.started_at, 100.5);
  EXPECT_GT(got.finished_at, 0);
  EXPECT_EQ(got.exit_code, 0);
  EXPECT_EQ(got.child_pid, 43);
  EXPECT_EQ(got.input_digests["style.jpg"], "sha256:abc");
  EXPECT_EQ(got.spec_hash, std::string(64, 'a'));
  EXPECT_EQ(got.to_json()["state"], "finished");
  // A second connection (as another process would open) sees the same.
  ExecutionStore again(home.path());
  EXPECT_EQ(again.get(u.id).gpulab_version, "1.2.3");
  EXPECT_NE(testing::error_of([&] { again.get("nope"); }).find("no execution 'nope'"),
            std::string::npos);
  store.remove(u.id);
  EXPECT_FALSE(store.find(u.id).has_value());
  EXPECT_FALSE(fs::exists(store.dir(u.id)));
}

TEST(ExecutionStoreTest, EndedExecutionsNeverChangeState) {
  testing::TempDir home;
  ExecutionStore store(home.path());
  const auto e = store.create(Execution{});
  EXPECT_TRUE(store.transition(e.id, ExecutionState::kFailed, "boom", 3));
  EXPECT_FALSE(store.transition(e.id, ExecutionState::kFinished, "", 0));
  const auto got = store.get(e.id);
  EXPECT_EQ(got.state, ExecutionState::kFailed);
  EXPECT_EQ(got.message, "boom");
  EXPECT_EQ(got.exit_code, 3);
}

TEST(ExecutionStoreTest, ListsFilterByStateAndNameAndPage) {
  testing::TempDir home;
  ExecutionStore store(home.path());
  for (int i = 0; i < 7; ++i) {
    Execution e;
    e.name = i % 2 ? "odd" : "even";
    const auto c = store.create(e);
    if (i < 3) store.transition(c.id, ExecutionState::kFinished, "", 0);
  }
  EXPECT_EQ(store.count(), 7);
  EXPECT_EQ(store.count(ExecutionFilter().name("odd")), 3);
  EXPECT_EQ(store.count(ExecutionFilter().state("finished")), 3);
  EXPECT_EQ(store.count(ExecutionFilter().state("finished").name("even")), 2);
  std::set<std::string> seen;
  for (int offset = 0; offset < 7; offset += 3) {
    for (const auto& e : store.list(ExecutionFilter().limit(3).offset(offset))) seen.insert(e.id);
  }
  EXPECT_EQ(seen.size(), 7u);
  const auto all = store.list();
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GE(all[i - 1].created_at, all[i].created_at);
  EXPECT_NE(testing::error_of([&] {
              store.list(ExecutionFilter().state("done"));
            }).find("expected one of pending, fetching, running, finished, failed, stopped"),
            std::string::npos);
}

TEST(ExecutionStoreTest, TwentyConcurrentWritersAreAllRecordedWithDistinctIds) {
  testing::TempDir home;
  { ExecutionStore create_schema(home.path()); }
  std::vector<std::string> ids(20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 20; ++t) {
    threads.emplace_back([&, t] {
      ExecutionStore store(home.path());  // one connection per thread
      Execution e;
      e.name = "w" + std::to_string(t);
      ids[t] = store.create(e).id;
      store.transition(ids[t], ExecutionState::kFetching);
      store.transition(ids[t], ExecutionState::kFinished, "", 0);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 20u);
  ExecutionStore store(home.path());
  EXPECT_EQ(store.count(ExecutionFilter().state("finished")), 20);
}

}  // namespace gpulab::lab
