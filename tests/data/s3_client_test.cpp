// S3Client against a real S3-compatible server (s3rver on loopback, SigV4
// signatures checked): listing, pagination, signed GET/PUT, and the errors
// users see for wrong credentials, a wrong region, a missing bucket and an
// unreachable endpoint.
#include "gpulab/data/s3_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "gpulab/core/error.h"
#include "tests/support/s3rver_server.h"

namespace gpulab::data {
namespace {
using testing::S3rverServer;

class S3ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<S3rverServer>(std::vector<std::string>{"bkt"});
  }
  static void TearDownTestSuite() { server_.reset(); }

  static S3Options options() {
    S3Credentials c;
    c.access_key_id = S3rverServer::kAccessKey;
    c.secret_access_key = S3rverServer::kSecret;
    return S3Options()
        .endpoint(server_->endpoint())
        .region(S3rverServer::kRegion)
        .credentials(c)
        .http(HttpOptions().initial_backoff_s(0.01));
  }

  // The message of the Error that `fn` throws (and its kind).
  template <typename Fn>
  static std::string error_of(Fn fn, ErrorKind* kind = nullptr) {
    try {
      fn();
    } catch (const Error& e) {
      if (kind) *kind = e.kind();
      return e.what();
    }
    ADD_FAILURE() << "expected a gpulab::Error";
    return "";
  }

  static std::unique_ptr<S3rverServer> server_;
};
std::unique_ptr<S3rverServer> S3ClientTest::server_;

TEST(S3LocationTest, ParsesBucketAndPrefix) {
  auto a = S3Location::parse("s3://my-bucket/train/cats");
  EXPECT_EQ(a.bucket, "my-bucket");
  EXPECT_EQ(a.prefix, "train/cats");
  EXPECT_EQ(a.url(), "s3://my-bucket/train/cats");
  EXPECT_EQ(S3Location::parse("s3://bkt").prefix, "");
  EXPECT_THROW(S3Location::parse("https://bkt/x"), Error);
  EXPECT_THROW(S3Location::parse("s3://"), Error);
  EXPECT_THROW(S3Location::parse("s3://Upper_Case/x"), Error);
}

TEST(S3ListParserTest, ReadsKeysEtagsSizesAndEntities) {
  const std::string xml =
      "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated>"
      "<Contents><Key>p/a&amp;b &lt;1&gt; &#233;.png</Key><ETag>&quot;abc&quot;</ETag>"
      "<Size>12</Size></Contents><Contents><Key>p/c.png</Key><ETag>\"def\"</ETag><Size>3</Size>"
      "</Contents><NextContinuationToken>tok/+=</NextContinuationToken></ListBucketResult>";
  auto page = detail::parse_list_objects_v2(xml);
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key, "p/a&b <1> \xC3\xA9.png");
  EXPECT_EQ(page.objects[0].etag, "abc");
  EXPECT_EQ(page.objects[0].size, 12);
  EXPECT_EQ(page.objects[1].etag, "def");
  EXPECT_TRUE(page.truncated);
  EXPECT_EQ(page.next_token, "tok/+=");
  EXPECT_THROW(detail::parse_list_objects_v2("<Error><Code>X</Code></Error>"), Error);
}

TEST_F(S3ClientTest, PutThenSignedGetReturnsTheBytes) {
  S3Client s3("bkt", options());
  const std::string key = "get/a b+c&d=e.bin";
  const std::string etag = s3.put_object(key, "hello");
  EXPECT_EQ(etag, "5d41402abc4b2a76b9719d911017c592");  // MD5, as S3 reports it
  EXPECT_EQ(s3.get_object(key), "hello");
}

TEST_F(S3ClientTest, ListsEveryPageOfMaxKeys) {
  S3Client s3("bkt", options().max_keys(2));
  for (int i = 0; i < 5; ++i) s3.put_object("pages/k" + std::to_string(i), std::string(i + 1, 'x'));
  s3.put_object("pagesX/other", "not under the prefix");
  const int64_t lists_before = server_->count_requests("GET /bkt?");
  const auto objects = s3.list_objects("pages/");
  ASSERT_EQ(objects.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(objects[i].key, "pages/k" + std::to_string(i));
    EXPECT_EQ(objects[i].size, i + 1);
    EXPECT_EQ(objects[i].etag.size(), 32u);
  }
  // 5 keys in pages of 2: three signed ListObjectsV2 requests.
  EXPECT_EQ(server_->count_requests("GET /bkt?") - lists_before, 3);
}

TEST_F(S3ClientTest, WrongSecretIsA403WithoutRetries) {
  S3Options o = options();
  o.credentials().secret_access_key = "wrong-secret-Zq81";
  S3Client s3("bkt", o);
  ErrorKind kind{};
  const std::string message = error_of([&] { s3.list_objects("pages/"); }, &kind);
  EXPECT_EQ(kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(message.find("access denied by s3://bkt/pages/"), std::string::npos) << message;
  EXPECT_NE(message.find("HTTP 403 SignatureDoesNotMatch"), std::string::npos) << message;
  EXPECT_NE(message.find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << message;
  EXPECT_EQ(message.find("wrong-secret-Zq81"), std::string::npos) << message;
  EXPECT_EQ(s3.http().requests_sent(), 1);  // no retry storm
}

TEST_F(S3ClientTest, UnknownAccessKeyIsRefused) {
  S3Options o = options();
  o.credentials().access_key_id = "AKIANOBODY";
  const std::string message = error_of([&] { S3Client("bkt", o).get_object("get/a b+c&d=e.bin"); });
  EXPECT_NE(message.find("HTTP 403 InvalidAccessKeyId"), std::string::npos) << message;
  EXPECT_EQ(message.find(S3rverServer::kSecret), std::string::npos) << message;
}

TEST_F(S3ClientTest, MissingCredentialsSayHowToSetThem) {
  S3Options o = options();
  o.credentials(S3Credentials());
  const std::string message = error_of([&] { S3Client("bkt", o).list_objects(""); });
  EXPECT_NE(message.find("HTTP 403 AccessDenied"), std::string::npos) << message;
  EXPECT_NE(message.find("no credentials are set"), std::string::npos) << message;
}

TEST_F(S3ClientTest, SessionTokenIsSentAndSigned) {
  S3Options o = options();
  o.credentials().session_token = "token-value";
  // Each test may run in its own process with a fresh server: bring the object.
  S3Client("bkt", options()).put_object("token/a.bin", "hello");
  EXPECT_EQ(S3Client("bkt", o).get_object("token/a.bin"), "hello");
}

TEST_F(S3ClientTest, WrongRegionPointsAtAwsRegion) {
  const std::string message =
      error_of([&] { S3Client("bkt", options().region("eu-west-3")).list_objects(""); });
  EXPECT_NE(message.find("AWS_REGION"), std::string::npos) << message;
  EXPECT_NE(message.find("eu-west-3"), std::string::npos) << message;
}

TEST_F(S3ClientTest, MissingBucketAndKeyAreNotFound) {
  ErrorKind kind{};
  std::string message =
      error_of([&] { S3Client("no-such-bucket", options()).list_objects(""); }, &kind);
  EXPECT_EQ(kind, ErrorKind::kNotFound);
  EXPECT_NE(message.find("NoSuchBucket"), std::string::npos) << message;
  message = error_of([&] { S3Client("bkt", options()).get_object("nope.png"); }, &kind);
  EXPECT_EQ(kind, ErrorKind::kNotFound);
  EXPECT_NE(message.find("s3://bkt/nope.png"), std::string::npos) << message;
}

TEST_F(S3ClientTest, UnreachableEndpointIsNamedAfterBoundedRetries) {
  S3Options o = options().endpoint("http://127.0.0.1:1");
  o.http().max_attempts(3).initial_backoff_s(0.05);
  S3Client s3("bkt", o);
  const auto start = std::chrono::steady_clock::now();
  ErrorKind kind{};
  const std::string message = error_of([&] { s3.list_objects(""); }, &kind);
  EXPECT_EQ(kind, ErrorKind::kUnavailable);
  EXPECT_NE(message.find("127.0.0.1:1"), std::string::npos) << message;
  EXPECT_EQ(message.find(S3rverServer::kSecret), std::string::npos) << message;
  EXPECT_EQ(s3.http().requests_sent(), 3);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10);
}

}  // namespace
}  // namespace gpulab::data
