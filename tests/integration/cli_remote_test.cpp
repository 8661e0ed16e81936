// gpulab train --data s3://… against a real S3-compatible server (s3rver on
// loopback, SigV4 checked): trains, records the URL and never a credential,
// reuses the cache, and fails clearly on a wrong secret or a dead endpoint.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "gpulab/data/s3_client.h"
#include "tests/support/s3rver_server.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace {
using testing::run_gpulab;
using testing::S3rverServer;
using testing::ScopedEnv;

class CliRemoteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<S3rverServer>(std::vector<std::string>{"seed"},
                                             std::vector<std::string>{"pub"});
    data::S3Credentials c;
    c.access_key_id = S3rverServer::kAccessKey;
    c.secret_access_key = S3rverServer::kSecret;
    data::S3Client s3("seed", data::S3Options()
                                  .endpoint(server_->endpoint())
                                  .region(S3rverServer::kRegion)
                                  .credentials(c));
    // Two classes of 8x8 grey PNGs: dark and bright.
    for (int i = 0; i < 12; ++i) {
      s3.put_object("images/dark/" + std::to_string(i) + ".png",
                    testing::png_bytes(8, 8, static_cast<uint8_t>(10 + i)));
      s3.put_object("images/bright/" + std::to_string(i) + ".png",
                    testing::png_bytes(8, 8, static_cast<uint8_t>(240 - i)));
    }
    // The same images over plain http from a public bucket, as a URL list.
    data::S3Client pub("pub", data::S3Options()
                                  .endpoint(server_->endpoint())
                                  .region(S3rverServer::kRegion)
                                  .credentials(c));
    std::string list;
    for (int i = 0; i < 6; ++i) {
      for (const char* label : {"dark", "bright"}) {
        const std::string key = std::string(label) + "/" + std::to_string(i) + ".png";
        pub.put_object(key, testing::png_bytes(8, 8, label[0] == 'd' ? 10 + i : 240 - i));
        list += server_->endpoint() + "/pub/" + key + "\n";
      }
    }
    pub.put_object("list.txt", list);
    // A class folder with a file that is not an image.
    s3.put_object("bad/cat/0.png", testing::png_bytes(8, 8, 10));
    s3.put_object("bad/cat/notimg.png", "not a PNG");
    s3.put_object("bad/dog/0.png", testing::png_bytes(8, 8, 240));
  }
  static void TearDownTestSuite() { server_.reset(); }

  // AWS_* variables for the server, as a seed hands them to its workers.
  std::vector<std::unique_ptr<ScopedEnv>> aws_env(const std::string& secret,
                                                  const std::string& endpoint = "") {
    std::vector<std::unique_ptr<ScopedEnv>> env;
    env.push_back(std::make_unique<ScopedEnv>("AWS_ACCESS_KEY_ID", S3rverServer::kAccessKey));
    env.push_back(std::make_unique<ScopedEnv>("AWS_SECRET_ACCESS_KEY", secret));
    env.push_back(std::make_unique<ScopedEnv>("AWS_SESSION_TOKEN", "", false));
    env.push_back(std::make_unique<ScopedEnv>("AWS_REGION", S3rverServer::kRegion));
    env.push_back(std::make_unique<ScopedEnv>("AWS_ENDPOINT_URL",
                                              endpoint.empty() ? server_->endpoint() : endpoint));
    return env;
  }

  std::vector<std::string> train_args(const std::string& out) {
    return {"train",
            "--data",
            "s3://seed/images",
            "--model",
            "basic_cnn",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--env",
            "cpu",
            "--out",
            dir_ / out,
            "--cache-dir",
            dir_ / "cache",
            "--fetch-threads",
            "4"};
  }

  static std::unique_ptr<S3rverServer> server_;
  testing::TempDir dir_;
};
std::unique_ptr<S3rverServer> CliRemoteTest::server_;

TEST_F(CliRemoteTest, TrainsFromS3AndRecordsTheUrlNotTheSecret) {
  auto env = aws_env(S3rverServer::kSecret);
  auto r = run_gpulab(train_args("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Fetched 24 objects"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("from s3://seed/images in"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(0 cached)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'s3://seed/images'"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(S3rverServer::kSecret), std::string::npos) << r.output;
  const std::string spec = testing::read_bytes(dir_ / "run/spec.yaml");
  EXPECT_NE(spec.find("s3://seed/images"), std::string::npos) << spec;
  EXPECT_EQ(spec.find(S3rverServer::kSecret), std::string::npos) << spec;
  EXPECT_EQ(spec.find(S3rverServer::kAccessKey), std::string::npos) << spec;
  EXPECT_EQ(spec.find("/views/"), std::string::npos) << spec;  // not the cache folder

  // Same data again: listed, not downloaded.
  const int64_t gets = server_->count_requests("GET /seed/images/");
  auto again = run_gpulab(train_args("run2"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("(24 cached)"), std::string::npos) << again.output;
  EXPECT_EQ(server_->count_requests("GET /seed/images/"), gets);
}

TEST_F(CliRemoteTest, TransformsOfS3DataGoThroughTheStreamingLoader) {
  auto env = aws_env(S3rverServer::kSecret);
  auto args = train_args("crop");
  args.insert(args.end(), {"--random-resized-crop", "4", "--rand-x-reflection"});
  auto r = run_gpulab(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Training data: 's3://seed/images' (image-folder"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("streaming)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("24 images to 1x4x4"), std::string::npos) << r.output;  // the crop
  const std::string spec = testing::read_bytes(dir_ / "crop/spec.yaml");
  EXPECT_NE(spec.find("random_resized_crop"), std::string::npos) << spec;
  EXPECT_NE(spec.find("data: s3://seed/images"), std::string::npos) << spec;
}

TEST_F(CliRemoteTest, BenchLoaderReadsS3Data) {
  auto env = aws_env(S3rverServer::kSecret);
  const std::string json = dir_ / "bench.json";
  auto r = run_gpulab({"bench", "loader", "--data", "s3://seed/images", "--threads", "2",
                       "--batch-size", "4", "--batches", "3", "--random-resized-crop", "6",
                       "--cache-dir", dir_ / "cache", "--json", json});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string out = testing::read_bytes(json);
  EXPECT_NE(out.find("\"images\": 12"), std::string::npos) << out;
  EXPECT_NE(out.find("\"data\": \"s3://seed/images\""), std::string::npos) << out;
}

TEST_F(CliRemoteTest, ATokenInAUrlListUrlAppearsNowhere) {
  const std::string secret = "tok-5ecret-Zq81";
  const std::string url = server_->endpoint() + "/pub/list.txt?token=" + secret;
  auto r =
      run_gpulab({"train", "--data", url, "--model", "basic_cnn", "--epochs", "1", "--batch-size",
                  "4", "--env", "cpu", "--out", dir_ / "tok", "--cache-dir", dir_ / "cache"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("token=REDACTED"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(secret), std::string::npos) << r.output;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_ / "tok")) {
    if (!entry.is_regular_file()) continue;
    const std::string bytes = testing::read_bytes(entry.path().string());
    EXPECT_EQ(bytes.find(secret), std::string::npos) << entry.path();
  }
  EXPECT_NE(testing::read_bytes(dir_ / "tok/spec.yaml").find("token=REDACTED"), std::string::npos);
  // Regression: evaluate printed the URL as given in --json and its errors.
  auto e = run_gpulab({"evaluate", "--model", dir_ / "tok", "--data", url, "--env", "cpu", "--json",
                       dir_ / "tok-eval.json", "--cache-dir", dir_ / "cache"});
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_EQ(e.output.find(secret), std::string::npos) << e.output;
  EXPECT_EQ(testing::read_bytes(dir_ / "tok-eval.json").find(secret), std::string::npos);
}

TEST_F(CliRemoteTest, PredictsASingleImageByUrl) {
  auto env = aws_env(S3rverServer::kSecret);
  auto trained = run_gpulab(train_args("for-predict"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string http = server_->endpoint() + "/pub/dark/0.png";
  auto r = run_gpulab({"predict", "--model", dir_ / "for-predict", "--input", http, "--env", "cpu",
                       "--cache-dir", dir_ / "cache"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(http), std::string::npos) << r.output;  // named by its URL
  auto s3 =
      run_gpulab({"predict", "--model", dir_ / "for-predict", "--input",
                  "s3://seed/images/bright/3.png", "--env", "cpu", "--cache-dir", dir_ / "cache"});
  ASSERT_EQ(s3.exit_code, 0) << s3.output;
  EXPECT_NE(s3.output.find("s3://seed/images/bright/3.png"), std::string::npos) << s3.output;
}

TEST_F(CliRemoteTest, ABadRemoteImageIsNamedByItsUrl) {
  auto env = aws_env(S3rverServer::kSecret);
  for (const char* loader : {"resident", "stream"}) {
    auto args = train_args(std::string("bad-") + loader);
    args[2] = "s3://seed/bad";
    args.insert(args.end(), {"--loader", loader});
    auto r = run_gpulab(args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("(from s3://seed/bad/cat/notimg.png)"), std::string::npos)
        << loader << ": " << r.output;
  }
}

TEST_F(CliRemoteTest, WrongSecretIsOneClear403) {
  auto env = aws_env("not-the-secret-Vw3");
  const int64_t before = static_cast<int64_t>(server_->requests().size());
  auto r = run_gpulab(train_args("bad"));
  EXPECT_EQ(r.signal, 0) << r.output;
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("access denied by s3://seed/images/"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("HTTP 403 SignatureDoesNotMatch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("not-the-secret-Vw3"), std::string::npos) << r.output;
  EXPECT_EQ(static_cast<int64_t>(server_->requests().size()) - before, 1);  // no retries
}

TEST_F(CliRemoteTest, UnreachableEndpointIsNamedWithinBoundedTime) {
  auto env = aws_env(S3rverServer::kSecret, "http://127.0.0.1:1");
  const auto start = std::chrono::steady_clock::now();
  auto r = run_gpulab(train_args("dead"));
  EXPECT_EQ(r.signal, 0) << r.output;
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot reach http://127.0.0.1:1/seed"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(S3rverServer::kSecret), std::string::npos) << r.output;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 60);
}

}  // namespace
}  // namespace gpulab
