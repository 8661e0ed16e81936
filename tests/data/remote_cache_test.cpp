// RemoteCache: one file per (source, key, ETag), fetched once, in parallel;
// views lay cached files out as folders.
#include "gpulab/data/remote_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "tests/support/test_util.h"

namespace gpulab::data {
namespace {
namespace fs = std::filesystem;

TEST(RemoteCacheTest, PathDependsOnSourceKeyAndEtag) {
  testing::TempDir dir;
  RemoteCache cache(RemoteCacheOptions(dir.path()));
  const std::string a = cache.path_for({"s3://b", "x/1.png", "e1"});
  EXPECT_EQ(a, cache.path_for({"s3://b", "x/1.png", "e1"}));
  EXPECT_NE(a, cache.path_for({"s3://b", "x/1.png", "e2"}));
  EXPECT_NE(a, cache.path_for({"s3://c", "x/1.png", "e1"}));
  EXPECT_NE(a, cache.path_for({"s3://b", "x/2.png", "e1"}));
  EXPECT_EQ(fs::path(a).extension(), ".png");
  EXPECT_EQ(a.rfind(dir.path(), 0), 0u);
}

TEST(RemoteCacheTest, FetchesOnlyWhatIsMissingAndRefetchesChangedEtags) {
  testing::TempDir dir;
  RemoteCache cache(RemoteCacheOptions(dir.path()).threads(4));
  std::atomic<int> calls{0};
  auto fetch = [&](const CacheEntry& e, const std::string& path) {
    ++calls;
    core::write_file_atomic(path, e.key + "@" + e.etag);
  };
  std::vector<CacheEntry> entries;
  for (int i = 0; i < 20; ++i) entries.push_back({"src", "k" + std::to_string(i), "v1"});
  CacheFetchStats stats;
  auto paths = cache.fetch_all(entries, fetch, &stats);
  EXPECT_EQ(calls.load(), 20);
  EXPECT_EQ(stats.fetched, 20);
  EXPECT_EQ(stats.cached, 0);
  EXPECT_EQ(testing::read_bytes(paths[7]), "k7@v1");

  calls = 0;
  entries[7].etag = "v2";
  paths = cache.fetch_all(entries, fetch, &stats);
  EXPECT_EQ(calls.load(), 1);  // only the changed object
  EXPECT_EQ(stats.fetched, 1);
  EXPECT_EQ(stats.cached, 19);
  EXPECT_EQ(testing::read_bytes(paths[7]), "k7@v2");
  EXPECT_EQ(stats.bytes, 10 * 5 + 10 * 6);  // "k7@v1" .. "k19@v1"
}

TEST(RemoteCacheTest, UnknownVersionIsAlwaysFetched) {
  testing::TempDir dir;
  RemoteCache cache(RemoteCacheOptions(dir.path()));
  int calls = 0;
  auto fetch = [&](const CacheEntry&, const std::string& path) {
    ++calls;
    core::write_file_atomic(path, "x");
  };
  cache.fetch_all({{"http", "http://h/a.png", ""}}, fetch);
  cache.fetch_all({{"http", "http://h/a.png", ""}}, fetch);
  EXPECT_EQ(calls, 2);
}

TEST(RemoteCacheTest, FetchesInParallel) {
  testing::TempDir dir;
  RemoteCache cache(RemoteCacheOptions(dir.path()).threads(4));
  std::mutex m;
  std::set<std::thread::id> threads;
  std::vector<CacheEntry> entries;
  for (int i = 0; i < 16; ++i) entries.push_back({"s", std::to_string(i), "e"});
  cache.fetch_all(entries, [&](const CacheEntry&, const std::string& path) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    {
      std::lock_guard<std::mutex> lock(m);
      threads.insert(std::this_thread::get_id());
    }
    core::write_file_atomic(path, "x");
  });
  EXPECT_EQ(threads.size(), 4u);
}

TEST(RemoteCacheTest, FirstErrorIsRethrown) {
  testing::TempDir dir;
  RemoteCache cache(RemoteCacheOptions(dir.path()).threads(3));
  std::vector<CacheEntry> entries;
  for (int i = 0; i < 10; ++i) entries.push_back({"s", std::to_string(i), "e"});
  try {
    cache.fetch_all(entries, [&](const CacheEntry& e, const std::string& path) {
      GPULAB_CHECK(e.key != "4", ErrorKind::kNotFound, "object {} is gone", e.key);
      core::write_file_atomic(path, "x");
    });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_STREQ(e.what(), "object 4 is gone");
  }
}

TEST(RemoteCacheTest, ViewLinksCachedFilesUnderTheirNamesOnce) {
  testing::TempDir dir;
  RemoteCache cache(RemoteCacheOptions(dir.path()));
  auto paths = cache.fetch_all(
      {{"s", "a", "1"}, {"s", "b", "1"}},
      [](const CacheEntry& e, const std::string& path) { core::write_file_atomic(path, e.key); });
  const std::string view = cache.make_view(paths, {"cat/1.png", "dog/deep/2.png"});
  EXPECT_EQ(testing::read_bytes(view + "/cat/1.png"), "a");
  EXPECT_EQ(testing::read_bytes(view + "/dog/deep/2.png"), "b");
  EXPECT_EQ(cache.make_view(paths, {"cat/1.png", "dog/deep/2.png"}), view);
  EXPECT_NE(cache.make_view(paths, {"cat/1.png", "dog/3.png"}), view);
}

// Regression: a file without a version was downloaded again, but the view
// built from the first download was reused and served the old bytes.
TEST(RemoteCacheTest, ViewOfARefetchedUnversionedFileShowsItsNewBytes) {
  testing::TempDir dir;
  RemoteCache cache(RemoteCacheOptions(dir.path()));
  std::string served = "old";
  auto fetch = [&](const CacheEntry&, const std::string& path) {
    core::write_file_atomic(path, served);
  };
  const std::vector<CacheEntry> entries = {{"http", "http://h/x.png", ""}};
  const std::string first = cache.make_view(cache.fetch_all(entries, fetch), {"cat/x.png"});
  EXPECT_EQ(testing::read_bytes(first + "/cat/x.png"), "old");
  served = "new";
  const std::string second = cache.make_view(cache.fetch_all(entries, fetch), {"cat/x.png"});
  EXPECT_EQ(testing::read_bytes(second + "/cat/x.png"), "new");
}

TEST(RemoteCacheTest, ThreadsMustBePositive) {
  testing::TempDir dir;
  EXPECT_THROW(RemoteCache(RemoteCacheOptions(dir.path()).threads(0)), Error);
}

}  // namespace
}  // namespace gpulab::data
