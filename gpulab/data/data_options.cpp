// Parsing and checking data_options.
#include "gpulab/data/data_options.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "gpulab/core/error.h"

namespace gpulab::data {
namespace {

enum class Type { kInteger, kBoolean, kText, kList };

// data_options keys that are not transforms, with the JSON type each takes.
const std::vector<std::pair<std::string, Type>> kDataKeys = {{"image_size", Type::kText},
                                                             {"channels", Type::kInteger},
                                                             {"skip_bad_files", Type::kBoolean},
                                                             {"limit", Type::kInteger},
                                                             {"classes", Type::kList},
                                                             {"per_class", Type::kInteger},
                                                             {"cache_dir", Type::kText},
                                                             {"fetch_threads", Type::kInteger},
                                                             {"loader", Type::kText},
                                                             {"loader_threads", Type::kInteger},
                                                             {"prefetch", Type::kInteger},
                                                             {"max_pixels", Type::kInteger}};

const Type* type_of(const std::string& key) {
  for (const auto& [name, type] : kDataKeys) {
    if (name == key) return &type;
  }
  return nullptr;
}

// Class names or indices. YAML reads `classes: [5, 6]` as numbers, and so it
// reads --classes 5,6 in the spec.yaml of runs made before "5" was quoted.
std::vector<std::string> classes_from(const nlohmann::json& d) {
  std::vector<std::string> classes;
  if (!d.contains("classes")) return classes;
  nlohmann::json list = d["classes"];
  if (list.is_string()) {
    // `classes: cat,dog` in a config file, as on the command line.
    std::vector<std::string> names;
    std::stringstream text(list.get<std::string>());
    for (std::string name; std::getline(text, name, ',');) names.push_back(name);
    list = names;
  }
  GPULAB_CHECK(list.is_array(), ErrorKind::kInvalidArgument,
               "data option classes must be a list of class names or indices, got {}", list.dump());
  for (const auto& c : list) {
    GPULAB_CHECK(c.is_string() || c.is_number_integer(), ErrorKind::kInvalidArgument,
                 "data option classes must be class names or indices, got {}", c.dump());
    classes.push_back(c.is_string() ? c.get<std::string>() : c.dump());
  }
  return classes;
}

}  // namespace

bool is_data_option(const std::string& key) {
  return type_of(key) != nullptr || is_transform_key(key);
}

void check_data_option(const std::string& key, const nlohmann::json& value,
                       const std::string& origin) {
  if (is_transform_key(key)) {
    try {
      TransformOptions scratch;
      apply_transform_json(scratch, nlohmann::json{{key, value}});
      scratch.validate();
    } catch (const Error& e) {
      throw Error(e.kind(), fmt::format("{}: {}", origin, e.what()));
    } catch (const nlohmann::json::exception&) {
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "{}: '{}' cannot be {}", origin, key, value.dump());
    }
    return;
  }
  const Type* type = type_of(key);
  if (type == nullptr) {
    std::vector<std::string> valid;
    for (const auto& kv : kDataKeys) valid.push_back(kv.first);
    GPULAB_FAIL(ErrorKind::kInvalidArgument,
                "{}: unknown data option '{}'; valid: {}, and the transforms ({})", origin, key,
                fmt::join(valid, ", "),
                "resize, center_crop, random_resized_crop, … as docs/cli.md lists");
  }
  const bool ok = (*type == Type::kInteger && value.is_number_integer()) ||
                  (*type == Type::kBoolean && value.is_boolean()) ||
                  (*type == Type::kText && value.is_string()) ||
                  (*type == Type::kList && (value.is_array() || value.is_string()));
  static const char* const kExpected[] = {"an integer", "true or false", "text",
                                          "a list of class names or indices"};
  GPULAB_CHECK(ok, ErrorKind::kInvalidArgument, "{}: data option '{}' must be {}, got {}", origin,
               key, kExpected[static_cast<int>(*type)], value.dump());
}

std::pair<int, int> parse_image_size(const std::string& text) {
  int h = 0, w = 0;
  char x = 0;
  GPULAB_CHECK(std::sscanf(text.c_str(), "%d%c%d", &h, &x, &w) == 3 && (x == 'x' || x == 'X') &&
                   h > 0 && w > 0,
               ErrorKind::kInvalidArgument, "image_size must look like 28x28, got '{}'", text);
  return {h, w};
}

DataOptions DataOptions::from_json(const nlohmann::json& d, const std::string& origin) {
  GPULAB_CHECK(d.is_object(), ErrorKind::kInvalidArgument,
               "{}: data_options must be a mapping of option: value, got {}", origin, d.dump());
  for (auto it = d.begin(); it != d.end(); ++it) check_data_option(it.key(), it.value(), origin);
  DataOptions o;
  const std::string size = d.value("image_size", std::string());
  if (!size.empty()) std::tie(o.height, o.width) = parse_image_size(size);
  o.channels = d.value("channels", 0);
  o.skip_bad_files = d.value("skip_bad_files", false);
  o.limit = d.value("limit", int64_t{0});
  o.classes = classes_from(d);
  o.per_class = d.value("per_class", int64_t{0});
  o.cache_dir = d.value("cache_dir", std::string());
  o.fetch_threads = d.value("fetch_threads", 8);
  for (auto it = d.begin(); it != d.end(); ++it) {
    if (is_transform_key(it.key())) o.transforms[it.key()] = it.value();
  }
  o.loader = d.value("loader", std::string("auto"));
  o.loader_threads = d.value("loader_threads", 0);
  o.prefetch = d.value("prefetch", 4);
  o.max_pixels = d.value("max_pixels", int64_t{0});
  GPULAB_CHECK(o.channels == 0 || o.channels == 1 || o.channels == 3, ErrorKind::kInvalidArgument,
               "data option channels must be 1 or 3, got {}", o.channels);
  GPULAB_CHECK(o.limit >= 0 && o.per_class >= 0, ErrorKind::kInvalidArgument,
               "data options limit and per_class must be >= 0, got {} and {}", o.limit,
               o.per_class);
  GPULAB_CHECK(o.fetch_threads >= 1, ErrorKind::kInvalidArgument,
               "data option fetch_threads must be >= 1, got {}", o.fetch_threads);
  GPULAB_CHECK(o.loader == "auto" || o.loader == "stream" || o.loader == "resident",
               ErrorKind::kInvalidArgument,
               "data option loader must be auto, stream or resident, got '{}'", o.loader);
  GPULAB_CHECK(o.loader_threads >= 0 && o.prefetch >= 1 && o.max_pixels >= 0,
               ErrorKind::kInvalidArgument,
               "data options loader_threads must be >= 0, prefetch >= 1 and max_pixels >= 0; got "
               "{}, {}, {}",
               o.loader_threads, o.prefetch, o.max_pixels);
  return o;
}

DatastoreOptions DataOptions::datastore(IdxSplit split) const {
  DatastoreOptions o;
  o.idx_split(split).channels(channels).skip_bad_files(skip_bad_files).max_pixels(pixel_limit());
  o.height(height).width(width);
  return o;
}

TransformOptions DataOptions::base_transforms() const {
  TransformOptions t;
  t.channels(channels).height(height).width(width);
  apply_transform_json(t, transforms);
  return t;
}

}  // namespace gpulab::data
