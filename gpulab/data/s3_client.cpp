// S3 requests: path- or virtual-hosted-style URLs, curl's SigV4 signing, and
// a minimal ListObjectsV2 XML reader (only the elements we use).
#include "gpulab/data/s3_client.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "gpulab/core/error.h"

namespace gpulab::data {
namespace {

// Text of the first <tag>…</tag> at or after `from` and before `end`.
bool element(const std::string& xml, const std::string& tag, size_t from, size_t end,
             std::string* out) {
  const std::string open = "<" + tag + ">";
  const auto b = xml.find(open, from);
  if (b == std::string::npos || b >= end) return false;
  const auto e = xml.find("</" + tag + ">", b);
  if (e == std::string::npos || e > end) return false;
  *out = xml.substr(b + open.size(), e - b - open.size());
  return true;
}

// The <Code> of an S3 error body, letters and digits only (the body itself
// can echo request details, so it never goes into a message).
std::string error_code(const std::string& body) {
  std::string code;
  if (!element(body, "Code", 0, body.size(), &code)) return "";
  code.erase(
      std::remove_if(code.begin(), code.end(), [](unsigned char c) { return !std::isalnum(c); }),
      code.end());
  return code.substr(0, 64);
}

std::string unquote(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return etag;
}

}  // namespace

S3Location S3Location::parse(const std::string& url) {
  GPULAB_CHECK(url.rfind("s3://", 0) == 0, ErrorKind::kInvalidArgument,
               "expected an s3://BUCKET[/PREFIX] URL, got '{}'", url);
  const std::string rest = url.substr(5);
  const auto slash = rest.find('/');
  S3Location loc;
  loc.bucket = rest.substr(0, slash);
  loc.prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  const bool valid_bucket =
      loc.bucket.size() >= 3 && loc.bucket.size() <= 63 &&
      std::all_of(loc.bucket.begin(), loc.bucket.end(), [](unsigned char c) {
        return std::islower(c) || std::isdigit(c) || c == '-' || c == '.' || c == '_';
      });
  GPULAB_CHECK(valid_bucket, ErrorKind::kInvalidArgument,
               "'{}': the bucket name must be 3 to 63 lower-case letters, digits, '-' or '.'", url);
  return loc;
}

std::string S3Location::url() const {
  return prefix.empty() ? "s3://" + bucket : "s3://" + bucket + "/" + prefix;
}

S3Client::S3Client(std::string bucket, S3Options options)
    : bucket_(std::move(bucket)), options_(std::move(options)), http_(options_.http()) {
  while (!options_.endpoint().empty() && options_.endpoint().back() == '/')
    options_.endpoint().pop_back();
  GPULAB_CHECK(options_.endpoint().empty() || options_.endpoint().find("://") != std::string::npos,
               ErrorKind::kInvalidArgument,
               "S3 endpoint must be a URL like http://127.0.0.1:9000, got '{}'",
               redact_url(options_.endpoint()));
  GPULAB_CHECK(options_.max_keys() >= 1 && options_.max_keys() <= 1000, ErrorKind::kInvalidArgument,
               "S3 max_keys must be in 1..1000, got {}", options_.max_keys());
  const auto& c = options_.credentials();
  GPULAB_CHECK(c.access_key_id.empty() == c.secret_access_key.empty(), ErrorKind::kInvalidArgument,
               "S3 credentials need both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; only {} is "
               "set",
               c.access_key_id.empty() ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
}

std::string S3Client::endpoint() const {
  if (!options_.endpoint().empty()) return redact_url(options_.endpoint());
  return "https://s3." + options_.region() + ".amazonaws.com";
}

// Path-style for custom endpoints and dotted bucket names (TLS wildcards do
// not cover them); virtual-hosted style on AWS otherwise.
std::string S3Client::bucket_url() const {
  if (!options_.endpoint().empty()) return options_.endpoint() + "/" + bucket_;
  if (bucket_.find('.') != std::string::npos) return endpoint() + "/" + bucket_;
  return "https://" + bucket_ + ".s3." + options_.region() + ".amazonaws.com";
}

std::string S3Client::object_url(const std::string& key) const {
  return bucket_url() + "/" + uri_encode(key, true);
}

HttpRequest S3Client::signed_request(std::string method, std::string url) const {
  HttpRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  const auto& c = options_.credentials();
  if (c.empty()) return r;
  // curl signs the query string as given (7.88) and uses this header as the
  // payload hash, so queries are built sorted and bodies are not hashed.
  r.headers.push_back("x-amz-content-sha256: UNSIGNED-PAYLOAD");
  if (!c.session_token.empty()) r.headers.push_back("x-amz-security-token: " + c.session_token);
  r.aws_sigv4 = "aws:amz:" + options_.region() + ":s3";
  r.aws_userpwd = c.access_key_id + ":" + c.secret_access_key;
  return r;
}

void S3Client::fail(const HttpResponse& r, const std::string& what) const {
  const std::string code = error_code(r.body);
  const std::string status =
      code.empty() ? fmt::format("HTTP {}", r.status) : fmt::format("HTTP {} {}", r.status, code);
  if (r.status == 403 || r.status == 401) {
    GPULAB_FAIL(ErrorKind::kInvalidArgument, "access denied by {} ({}) at {}: {}", what, status,
                endpoint(),
                options_.credentials().empty()
                    ? "no credentials are set; set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
                    : "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN, "
                      "AWS_REGION)");
  }
  if (r.status == 301 || code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect") {
    GPULAB_FAIL(ErrorKind::kInvalidArgument,
                "{} refused the request ({}) at {}: is AWS_REGION right (now '{}')?", what, status,
                endpoint(), options_.region());
  }
  if (r.status == 404) {
    GPULAB_FAIL(ErrorKind::kNotFound, "{} not found ({}) at {}{}", what, status, endpoint(),
                code == "NoSuchBucket" ? ": the bucket does not exist" : "");
  }
  if (r.status == 429 || r.status >= 500) {
    GPULAB_FAIL(ErrorKind::kUnavailable, "{} failed with {} at {} after {} tries", what, status,
                endpoint(), r.attempts);
  }
  GPULAB_FAIL(ErrorKind::kIo, "{} failed with {} at {}", what, status, endpoint());
}

std::vector<S3Object> S3Client::list_objects(const std::string& prefix) const {
  const std::string what = S3Location{bucket_, prefix}.url();
  std::vector<S3Object> objects;
  std::string token;
  for (int page = 0;; ++page) {
    // Parameters in canonical (sorted) order, values RFC 3986-encoded.
    std::string query;
    if (!token.empty()) query += "continuation-token=" + uri_encode(token, false) + "&";
    query += "list-type=2&max-keys=" + std::to_string(options_.max_keys());
    if (!prefix.empty()) query += "&prefix=" + uri_encode(prefix, false);
    HttpResponse r = http_.perform(signed_request("GET", bucket_url() + "?" + query));
    if (r.status != 200) fail(r, what);
    detail::ListPage p = detail::parse_list_objects_v2(r.body);
    for (auto& o : p.objects) objects.push_back(std::move(o));
    if (!p.truncated) break;
    GPULAB_CHECK(!p.next_token.empty(), ErrorKind::kCorruptData,
                 "listing {}: page {} is truncated but has no NextContinuationToken", what, page);
    token = p.next_token;
  }
  return objects;
}

std::string S3Client::get_object(const std::string& key) const {
  HttpResponse r = http_.perform(signed_request("GET", object_url(key)));
  if (r.status != 200) fail(r, S3Location{bucket_, key}.url());
  return std::move(r.body);
}

std::string S3Client::get_object_to_file(const std::string& key, const std::string& path) const {
  HttpResponse r = http_.perform(signed_request("GET", object_url(key)), path);
  if (r.status != 200) fail(r, S3Location{bucket_, key}.url());
  return unquote(r.header("etag"));
}

std::string S3Client::put_object(const std::string& key, const std::string& bytes,
                                 const std::string& content_type) const {
  HttpRequest req = signed_request("PUT", object_url(key));
  req.headers.push_back("Content-Type: " + content_type);
  req.body = bytes;
  HttpResponse r = http_.perform(req);
  if (r.status != 200) fail(r, S3Location{bucket_, key}.url());
  return unquote(r.header("etag"));
}

namespace detail {

std::string xml_unescape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    const auto semi = text.find(';', i);
    GPULAB_CHECK(semi != std::string::npos && semi - i <= 10, ErrorKind::kCorruptData,
                 "XML: unterminated entity in '{}'", text);
    const std::string name = text.substr(i + 1, semi - i - 1);
    if (name == "amp") {
      out += '&';
    } else if (name == "lt") {
      out += '<';
    } else if (name == "gt") {
      out += '>';
    } else if (name == "quot") {
      out += '"';
    } else if (name == "apos") {
      out += '\'';
    } else if (name.size() > 1 && name[0] == '#') {
      const bool hex = name[1] == 'x' || name[1] == 'X';
      const unsigned long cp = std::strtoul(name.c_str() + (hex ? 2 : 1), nullptr, hex ? 16 : 10);
      // UTF-8 encode the code point.
      if (cp < 0x80) {
        out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    } else {
      GPULAB_FAIL(ErrorKind::kCorruptData, "XML: unknown entity '&{};'", name);
    }
    i = semi;
  }
  return out;
}

ListPage parse_list_objects_v2(const std::string& xml) {
  GPULAB_CHECK(xml.find("<ListBucketResult") != std::string::npos, ErrorKind::kCorruptData,
               "S3 listing: expected a <ListBucketResult> document, got {} bytes starting '{}'",
               xml.size(), xml.substr(0, 60));
  ListPage page;
  size_t pos = 0;
  while (true) {
    const auto b = xml.find("<Contents>", pos);
    if (b == std::string::npos) break;
    const auto e = xml.find("</Contents>", b);
    GPULAB_CHECK(e != std::string::npos, ErrorKind::kCorruptData,
                 "S3 listing: unterminated <Contents>");
    S3Object o;
    std::string text;
    GPULAB_CHECK(element(xml, "Key", b, e, &text), ErrorKind::kCorruptData,
                 "S3 listing: <Contents> without <Key>");
    o.key = xml_unescape(text);
    if (element(xml, "ETag", b, e, &text)) o.etag = unquote(xml_unescape(text));
    if (element(xml, "Size", b, e, &text)) o.size = std::strtoll(text.c_str(), nullptr, 10);
    page.objects.push_back(std::move(o));
    pos = e;
  }
  // The trailing elements sit outside <Contents>; search after the last one.
  std::string text;
  if (element(xml, "IsTruncated", 0, xml.size(), &text)) page.truncated = text == "true";
  if (element(xml, "NextContinuationToken", 0, xml.size(), &text))
    page.next_token = xml_unescape(text);
  return page;
}

}  // namespace detail
}  // namespace gpulab::data
