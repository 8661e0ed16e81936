// gpulab train --data s3://… against a real S3-compatible server (s3rver on
// loopback, SigV4 checked): trains, records the URL and never a credential,
// reuses the cache, and fails clearly on a wrong secret or a dead endpoint.
#include <gtest/gtest.h>

#include <chrono>
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
    server_ = std::make_unique<S3rverServer>(std::vector<std::string>{"seed"});
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
