// s3:// prefixes and URL lists as cached image folders, against s3rver.
#include "gpulab/data/remote_datastore.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "gpulab/core/error.h"
#include "gpulab/data/datastore.h"
#include "tests/support/s3rver_server.h"
#ifdef GPULAB_WITH_OPENCV
#include "gpulab/data/image_decode.h"
#endif

namespace gpulab::data {
namespace {
namespace fs = std::filesystem;
using testing::S3rverServer;

class RemoteDatastoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<S3rverServer>(std::vector<std::string>{"data"},
                                             std::vector<std::string>{"pub"});
    S3Credentials c;
    c.access_key_id = S3rverServer::kAccessKey;
    c.secret_access_key = S3rverServer::kSecret;
    s3_ = S3Options().endpoint(server_->endpoint()).region(S3rverServer::kRegion).credentials(c);
  }
  RemoteDataOptions options() const {
    return RemoteDataOptions(cache_.path()).fetch_threads(3).s3(s3_);
  }
  void upload_images(const std::string& prefix) {
    S3Client s3("data", s3_);
    for (int i = 0; i < 3; ++i) {
      s3.put_object(prefix + "cat/" + std::to_string(i) + ".png", testing::png_bytes(6, 5, 10));
      s3.put_object(prefix + "dog/sub/" + std::to_string(i) + ".PNG",
                    testing::png_bytes(6, 5, 200));
    }
    s3.put_object(prefix + "README.txt", "not an image");
    s3.put_object(prefix + "loose.png", testing::png_bytes(6, 5, 0));  // no class folder
  }
  int64_t object_gets() const {
    int64_t n = 0;
    for (const auto& r : server_->requests())
      n += r.rfind("GET /data/", 0) == 0 && r.find("?") == std::string::npos;
    return n;
  }

  std::unique_ptr<S3rverServer> server_;
  S3Options s3_;
  testing::TempDir cache_;
};

TEST_F(RemoteDatastoreTest, S3PrefixBecomesAnImageFolderAndIsCached) {
  upload_images("train/");
  RemoteData first = fetch_remote_dataset("s3://data/train", options());
  EXPECT_EQ(first.stats.objects, 6);
  EXPECT_EQ(first.stats.fetched, 6);
  EXPECT_EQ(first.skipped, 2);
  EXPECT_TRUE(fs::is_regular_file(first.local_path + "/cat/0.png"));
  EXPECT_TRUE(fs::is_regular_file(first.local_path + "/dog/sub/2.PNG"));
  EXPECT_EQ(object_gets(), 6);
  EXPECT_NE(first.summary().find("Fetched 6 objects"), std::string::npos) << first.summary();
  EXPECT_NE(first.summary().find("from s3://data/train in"), std::string::npos);
  EXPECT_NE(first.summary().find("(0 cached)"), std::string::npos) << first.summary();
#ifdef GPULAB_WITH_OPENCV
  if (!decodes_jpeg_only()) {  // the objects are PNG files
    LoadedData loaded = load_datastore(first.local_path, DatastoreOptions());
    EXPECT_EQ(loaded.dataset.size(), 6);
    EXPECT_EQ(loaded.dataset.label_spec.names, (std::vector<std::string>{"cat", "dog"}));
  }
#endif

  // Second time: a listing, no object GETs, the same folder.
  RemoteData second = fetch_remote_dataset("s3://data/train/", options());
  EXPECT_EQ(second.stats.cached, 6);
  EXPECT_EQ(second.stats.fetched, 0);
  EXPECT_EQ(object_gets(), 6);
  EXPECT_EQ(second.local_path, first.local_path);

  // A changed object (new ETag) is fetched again, and only it.
  S3Client("data", s3_).put_object("train/cat/1.png", testing::png_bytes(6, 5, 99));
  RemoteData third = fetch_remote_dataset("s3://data/train", options());
  EXPECT_EQ(third.stats.fetched, 1);
  EXPECT_EQ(object_gets(), 7);
  EXPECT_EQ(testing::read_bytes(third.local_path + "/cat/1.png"), testing::png_bytes(6, 5, 99));
}

TEST_F(RemoteDatastoreTest, EmptyPrefixIsNotFound) {
  try {
    fetch_remote_dataset("s3://data/nothing-here", options());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("no objects under s3://data/nothing-here/"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(RemoteDatastoreTest, PrefixWithoutClassFoldersIsExplained) {
  S3Client("data", s3_).put_object("flat/a.png", testing::png_bytes(2, 2, 1));
  try {
    fetch_remote_dataset("s3://data/flat", options());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inside a class folder"), std::string::npos) << e.what();
  }
}

TEST_F(RemoteDatastoreTest, WrongSecretFailsOnceWithoutTheSecret) {
  upload_images("train/");
  S3Options bad = s3_;
  bad.credentials().secret_access_key = "definitely-wrong-secret";
  const int64_t before = server_->requests().size();
  try {
    fetch_remote_dataset("s3://data/train", options().s3(bad));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("403"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("definitely-wrong-secret"), std::string::npos);
  }
  EXPECT_EQ(static_cast<int64_t>(server_->requests().size()) - before, 1);
}

TEST_F(RemoteDatastoreTest, SingleS3FileKeepsItsName) {
  S3Client("data", s3_).put_object("files/train-labels-idx1-ubyte.gz", "gz bytes");
  RemoteData file = fetch_remote_file("s3://data/files/train-labels-idx1-ubyte.gz", options());
  EXPECT_EQ(fs::path(file.local_path).filename(), "train-labels-idx1-ubyte.gz");
  EXPECT_EQ(testing::read_bytes(file.local_path), "gz bytes");
}

TEST_F(RemoteDatastoreTest, UrlListIsFetchedOverHttpAndCachedByEtag) {
  S3Client pub("pub", s3_);
  std::string list = "# two classes\n";
  for (int i = 0; i < 2; ++i) {
    pub.put_object("img/cat/" + std::to_string(i) + ".png", testing::png_bytes(4, 4, 50));
    pub.put_object("img/x" + std::to_string(i) + ".png", testing::png_bytes(4, 4, 150));
    list += server_->endpoint() + "/pub/img/cat/" + std::to_string(i) + ".png\n";
    list += server_->endpoint() + "/pub/img/x" + std::to_string(i) + ".png dog\n";
  }
  pub.put_object("lists/train.txt", list, "text/plain");
  const std::string url = server_->endpoint() + "/pub/lists/train.txt";
  auto image_gets = [&] {
    int64_t n = 0;
    for (const auto& r : server_->requests()) n += r.rfind("GET /pub/img/", 0) == 0;
    return n;
  };
  RemoteData first = fetch_remote_dataset(url, options());
  EXPECT_EQ(first.stats.fetched, 4);
  EXPECT_EQ(image_gets(), 4);
  EXPECT_EQ(fs::path(first.local_path).parent_path().filename(), "views");
  int cats = 0, dogs = 0;
  for (const auto& e : fs::directory_iterator(first.local_path + "/cat"))
    cats += e.is_regular_file();
  for (const auto& e : fs::directory_iterator(first.local_path + "/dog"))
    dogs += e.is_regular_file();
  EXPECT_EQ(cats, 2);
  EXPECT_EQ(dogs, 2);
  RemoteData second = fetch_remote_dataset(url, options());
  EXPECT_EQ(second.stats.cached, 4);
  EXPECT_EQ(image_gets(), 4);  // only HEADs the second time
  EXPECT_EQ(second.local_path, first.local_path);
}

// Regression: every URL got a HEAD first, and a 403 to it failed the fetch,
// though S3 URLs presigned for GET refuse HEAD and serve the GET.
TEST_F(RemoteDatastoreTest, UrlsPresignedForGetAreFetchedDespiteTheirRefusedHead) {
  S3Client pub("pub", s3_);
  std::string list;
  for (int i = 0; i < 2; ++i) {
    pub.put_object("signed/cat/" + std::to_string(i) + ".png", testing::png_bytes(4, 4, 50));
    list += server_->endpoint() + "/pub/signed/cat/" + std::to_string(i) +
            ".png?X-Amz-Signature=abc123\n";
  }
  pub.put_object("lists/signed.txt", list, "text/plain");
  RemoteData data = fetch_remote_dataset(server_->endpoint() + "/pub/lists/signed.txt", options());
  EXPECT_EQ(data.stats.fetched, 2);
  EXPECT_EQ(server_->count_requests("HEAD /pub/signed/cat/0.png"), 1);
  EXPECT_TRUE(fs::is_regular_file(data.local_path + "/cat/0000000-0.png"));
}

// Regression: one missing URL failed the whole list even under
// --skip-bad-files; it is now left out and named.
TEST_F(RemoteDatastoreTest, AMissingUrlIsLeftOutOnlyWhenAskedTo) {
  S3Client pub("pub", s3_);
  std::string list;
  for (int i = 0; i < 2; ++i) {
    pub.put_object("some/cat/" + std::to_string(i) + ".png", testing::png_bytes(4, 4, 50));
    list += server_->endpoint() + "/pub/some/cat/" + std::to_string(i) + ".png\n";
  }
  list += server_->endpoint() + "/pub/some/cat/gone.png\n";
  pub.put_object("lists/some.txt", list, "text/plain");
  const std::string url = server_->endpoint() + "/pub/lists/some.txt";
  try {
    fetch_remote_dataset(url, options());
    FAIL() << "expected a not-found error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("gone.png"), std::string::npos) << e.what();
  }
  RemoteData data = fetch_remote_dataset(url, options().skip_missing(true));
  EXPECT_EQ(data.stats.objects, 2);
  ASSERT_EQ(data.missing.size(), 1u);
  EXPECT_NE(data.missing[0].find("gone.png"), std::string::npos);
  EXPECT_FALSE(fs::exists(data.local_path + "/cat/0000002-gone.png"));
}

TEST_F(RemoteDatastoreTest, HttpDataMustBeAUrlList) {
  EXPECT_THROW(fetch_remote_dataset(server_->endpoint() + "/pub/img/", options()), Error);
}

TEST(UrlListTest, ParsesUrlsLabelsAndComments) {
  const auto items = detail::parse_url_list(
      "# images\nhttps://h/x/cat/1.jpg\n\n  http://h/2.png   big dog \r\nhttps://h/a/b/3.png?x=1\n",
      "list.txt");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].label, "cat");
  EXPECT_EQ(items[1].url, "http://h/2.png");
  EXPECT_EQ(items[1].label, "big dog");
  EXPECT_EQ(items[2].label, "b");
  EXPECT_THROW(detail::parse_url_list("ftp://h/x/1.png\n", "l"), Error);
  EXPECT_THROW(detail::parse_url_list("https://h/1.png\n", "l"), Error);  // no label
  EXPECT_THROW(detail::parse_url_list("# nothing\n", "l"), Error);
}

TEST(RemoteUrlTest, RecognisesRemoteSchemes) {
  EXPECT_TRUE(is_remote_url("s3://b/p"));
  EXPECT_TRUE(is_remote_url("https://h/list.txt"));
  EXPECT_TRUE(is_remote_url("HTTP://h/list.txt"));
  EXPECT_FALSE(is_remote_url("/data/s3://x"));
  EXPECT_FALSE(is_remote_url("data/train"));
}

}  // namespace
}  // namespace gpulab::data
