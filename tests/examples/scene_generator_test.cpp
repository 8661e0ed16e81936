// The segmentation scene generator: folder layouts, label values and the
// void band, colour and id mappings, determinism, refusing a used folder.
#include <gtest/gtest.h>

#include <unistd.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "examples/segmentation/scene_generator.h"
#include "gpulab/core/error.h"
#include "tests/support/test_util.h"

namespace gpulab::examples {
namespace {
namespace fs = std::filesystem;

constexpr int kTinyCount = 12;  // 7 train, 2 val, 3 test (0.6 / 0.2 / 0.2)
constexpr int kTinyWidth = 64;
constexpr int kTinyHeight = 48;

SceneOptions tiny_scene_options(SceneLayout layout) {
  return SceneOptions()
      .count(kTinyCount)
      .width(kTinyWidth)
      .height(kTinyHeight)
      .seed(7)
      .layout(layout)
      .fashion_mnist_dir(testing::fashion_mnist_dir());
}

// One tiny set per layout, written once for the whole suite.
const std::string& tiny_scene_set(SceneLayout layout) {
  struct TinySet {
    testing::TempDir dir;
    std::string root;
  };
  static std::map<SceneLayout, std::unique_ptr<TinySet>> sets;
  auto& set = sets[layout];
  if (!set) {
    auto fresh = std::make_unique<TinySet>();
    fresh->root = fresh->dir / "set";
    write_scenes(fresh->root, tiny_scene_options(layout));
    set = std::move(fresh);
  }
  return set->root;
}

// Paths relative to `root` of every regular file under it, sorted.
std::set<std::string> scene_set_files(const std::string& root) {
  std::set<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files.insert(fs::relative(e.path(), root).string());
  }
  return files;
}

std::string scene_stem(int index) {
  char stem[32];
  std::snprintf(stem, sizeof(stem), "scene_%05d", index);
  return stem;
}

std::vector<std::string> scene_split_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// RGB (3 channels) or grey exactly as stored.
cv::Mat read_scene_png(const std::string& path) {
  cv::Mat m = cv::imread(path, cv::IMREAD_UNCHANGED);
  EXPECT_FALSE(m.empty()) << path;
  if (m.channels() == 3) cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  return m;
}

// Scene `index`'s split in a tiny set: 7 train, 2 val, 3 test.
const char* tiny_split_of(int index) {
  return index < 7 ? "train" : index < 9 ? "val" : "test";
}

}  // namespace

TEST(SceneGeneratorTest, GenericLayoutHasImagesMasksClassesAndSplits) {
  const std::string root = tiny_scene_set(SceneLayout::kGeneric);
  std::set<std::string> expected = {"classes.txt", "scenes.json", "splits/train.txt",
                                    "splits/val.txt", "splits/test.txt"};
  for (int i = 0; i < kTinyCount; ++i) {
    expected.insert("images/" + scene_stem(i) + ".png");
    expected.insert("masks/" + scene_stem(i) + ".png");
  }
  EXPECT_EQ(scene_set_files(root), expected);
  EXPECT_EQ(scene_split_lines(root + "/classes.txt"), scene_class_names());
  std::vector<std::string> all;
  for (const char* split : {"train", "val", "test"}) {
    for (const auto& stem : scene_split_lines(root + "/splits/" + split + ".txt")) {
      all.push_back(stem);
      EXPECT_STREQ(tiny_split_of(std::stoi(stem.substr(6))), split) << stem;
    }
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kTinyCount));
  for (int i = 0; i < kTinyCount; ++i) EXPECT_EQ(all[i], scene_stem(i));
  const auto meta = nlohmann::json::parse(testing::read_bytes(root + "/scenes.json"));
  EXPECT_EQ(meta["format_version"], 1);
  EXPECT_EQ(meta["layout"], "generic");
  EXPECT_EQ(meta["scenes_per_split"]["train"], 7);
}

TEST(SceneGeneratorTest, MasksHoldClassIdsWithAnObjectAndAVoidBandInEveryScene) {
  const std::string root = tiny_scene_set(SceneLayout::kGeneric);
  std::set<int> classes_seen;
  for (int i = 0; i < kTinyCount; ++i) {
    const cv::Mat image = read_scene_png(root + "/images/" + scene_stem(i) + ".png");
    const cv::Mat mask = read_scene_png(root + "/masks/" + scene_stem(i) + ".png");
    ASSERT_EQ(image.type(), CV_8UC3);
    ASSERT_EQ(mask.type(), CV_8UC1);
    ASSERT_EQ(image.size(), cv::Size(kTinyWidth, kTinyHeight));
    ASSERT_EQ(mask.size(), image.size());
    int object_pixels = 0, void_pixels = 0, touching = 0;
    for (int y = 0; y < mask.rows; ++y) {
      for (int x = 0; x < mask.cols; ++x) {
        const int v = mask.at<uint8_t>(y, x);
        ASSERT_TRUE(v < kSceneNumClasses || v == kSceneVoid) << scene_stem(i) << ": " << v;
        object_pixels += v >= 1 && v < kSceneNumClasses;
        void_pixels += v == kSceneVoid;
        if (v != kSceneVoid) classes_seen.insert(v);
        // The band: two 8-neighbours with different labels never touch
        // without a void pixel between them.
        for (int dy = 0; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) {
            if ((dy == 0 && dx <= 0) || y + dy >= mask.rows || x + dx < 0 || x + dx >= mask.cols) {
              continue;
            }
            const int w = mask.at<uint8_t>(y + dy, x + dx);
            touching += v != w && v != kSceneVoid && w != kSceneVoid;
          }
        }
      }
    }
    EXPECT_GT(object_pixels, 0) << scene_stem(i);
    EXPECT_GT(void_pixels, 0) << scene_stem(i);
    EXPECT_EQ(touching, 0) << scene_stem(i);
  }
  EXPECT_GE(classes_seen.size(), 5u);  // background and several garments
}

TEST(SceneGeneratorTest, CamVidLabelsUseOnlyTheColoursOfClassesJson) {
  const std::string root = tiny_scene_set(SceneLayout::kCamVid);
  std::set<std::string> expected = {"classes.json", "scenes.json", "splits/train.txt",
                                    "splits/val.txt", "splits/test.txt"};
  for (int i = 0; i < kTinyCount; ++i) {
    expected.insert("images/" + scene_stem(i) + ".png");
    expected.insert("labels/" + scene_stem(i) + "_L.png");
  }
  EXPECT_EQ(scene_set_files(root), expected);

  const auto classes = nlohmann::json::parse(testing::read_bytes(root + "/classes.json"));
  ASSERT_EQ(classes.size(), static_cast<size_t>(kSceneNumClasses));
  std::map<std::array<int, 3>, int> class_of_colour;
  for (int c = 0; c < kSceneNumClasses; ++c) {
    EXPECT_EQ(classes[c]["name"], scene_class_names()[c]);
    EXPECT_EQ(classes[c]["display"].size(), 3u);
    EXPECT_EQ(classes[c]["colors"].size(), c == 0 ? 2u : 1u);  // background groups two
    for (const auto& rgb : classes[c]["colors"]) {
      EXPECT_TRUE(
          class_of_colour
              .emplace(std::array<int, 3>{rgb[0].get<int>(), rgb[1].get<int>(), rgb[2].get<int>()},
                       c)
              .second);
    }
  }
  // Same seed, same scenes in every layout: the colours decode to the generic masks.
  const std::string generic = tiny_scene_set(SceneLayout::kGeneric);
  std::set<std::array<int, 3>> background_colours;
  for (int i = 0; i < kTinyCount; ++i) {
    const cv::Mat image = read_scene_png(root + "/images/" + scene_stem(i) + ".png");
    const cv::Mat label = read_scene_png(root + "/labels/" + scene_stem(i) + "_L.png");
    const cv::Mat mask = read_scene_png(generic + "/masks/" + scene_stem(i) + ".png");
    ASSERT_EQ(label.type(), CV_8UC3);
    ASSERT_EQ(label.size(), image.size());
    int wrong = 0;
    for (int y = 0; y < label.rows; ++y) {
      for (int x = 0; x < label.cols; ++x) {
        const cv::Vec3b px = label.at<cv::Vec3b>(y, x);
        const std::array<int, 3> rgb = {px[0], px[1], px[2]};
        const int id = mask.at<uint8_t>(y, x);
        if (rgb == std::array<int, 3>{0, 0, 0}) {
          wrong += id != kSceneVoid;
          continue;
        }
        const auto it = class_of_colour.find(rgb);
        ASSERT_NE(it, class_of_colour.end())
            << scene_stem(i) << ": colour " << rgb[0] << "," << rgb[1] << "," << rgb[2];
        wrong += it->second != id;
        if (id == 0) {
          background_colours.insert(rgb);
          const auto& top = classes[0]["colors"][0];
          EXPECT_EQ(
              rgb == (std::array<int, 3>{top[0].get<int>(), top[1].get<int>(), top[2].get<int>()}),
              y < label.rows / 2);
        }
      }
    }
    EXPECT_EQ(wrong, 0) << scene_stem(i);
  }
  EXPECT_EQ(background_colours.size(), 2u);
}

TEST(SceneGeneratorTest, CityscapesLabelIdsAndTrainIdsFollowTheMapping) {
  const std::string root = tiny_scene_set(SceneLayout::kCityscapes);
  const std::string generic = tiny_scene_set(SceneLayout::kGeneric);
  std::set<std::string> expected = {"scenes.json"};
  for (int i = 0; i < kTinyCount; ++i) {
    const std::string city = i % 2 == 0 ? "aachen" : "bremen";
    char name[64];
    std::snprintf(name, sizeof(name), "%s_000000_%06d", city.c_str(), i);
    const std::string dir = std::string(tiny_split_of(i)) + "/" + city + "/" + name;
    expected.insert("leftImg8bit/" + dir + "_leftImg8bit.png");
    expected.insert("gtFine/" + dir + "_gtFine_labelIds.png");
    expected.insert("gtFine/" + dir + "_gtFine_labelTrainIds.png");

    const cv::Mat image = read_scene_png(root + "/leftImg8bit/" + dir + "_leftImg8bit.png");
    const cv::Mat label_ids = read_scene_png(root + "/gtFine/" + dir + "_gtFine_labelIds.png");
    const cv::Mat train_ids = read_scene_png(root + "/gtFine/" + dir + "_gtFine_labelTrainIds.png");
    const cv::Mat mask = read_scene_png(generic + "/masks/" + scene_stem(i) + ".png");
    ASSERT_EQ(label_ids.type(), CV_8UC1);
    ASSERT_EQ(train_ids.type(), CV_8UC1);
    ASSERT_EQ(label_ids.size(), image.size());
    ASSERT_EQ(train_ids.size(), image.size());
    int wrong = 0;
    for (int y = 0; y < mask.rows; ++y) {
      for (int x = 0; x < mask.cols; ++x) {
        const int id = mask.at<uint8_t>(y, x);
        const int label_id = label_ids.at<uint8_t>(y, x);
        const int train_id = train_ids.at<uint8_t>(y, x);
        if (id == kSceneVoid) {
          wrong += label_id != kCityscapesVoidLabelId || train_id != kCityscapesVoidTrainId;
        } else {
          wrong += label_id != kCityscapesMapping[id].label_id ||
                   train_id != kCityscapesMapping[id].train_id;
        }
      }
    }
    EXPECT_EQ(wrong, 0) << name;
  }
  EXPECT_EQ(scene_set_files(root), expected);
  // The mapping: road first, 11 distinct train classes of the 19.
  std::set<int> train_ids;
  for (const auto& c : kCityscapesMapping) train_ids.insert(c.train_id);
  EXPECT_EQ(train_ids.size(), static_cast<size_t>(kSceneNumClasses));
  EXPECT_EQ(kCityscapesMapping[0].label_id, 7);
  EXPECT_EQ(kCityscapesMapping[0].train_id, 0);
}

TEST(SceneGeneratorTest, SameSeedWritesIdenticalBytes) {
  const std::string first = tiny_scene_set(SceneLayout::kGeneric);
  testing::TempDir dir;
  fs::create_directories(dir / "again");  // an existing empty folder is fine
  write_scenes(dir / "again", tiny_scene_options(SceneLayout::kGeneric));
  const auto files = scene_set_files(first);
  ASSERT_EQ(scene_set_files(dir / "again"), files);
  for (const auto& f : files) {
    EXPECT_EQ(testing::read_bytes(first + "/" + f), testing::read_bytes(dir / ("again/" + f))) << f;
  }
  EXPECT_FALSE(fs::exists(dir / "again.partial-" + std::to_string(::getpid())));

  write_scenes(dir / "other", tiny_scene_options(SceneLayout::kGeneric).seed(8));
  EXPECT_NE(testing::read_bytes(first + "/images/scene_00000.png"),
            testing::read_bytes(dir / "other/images/scene_00000.png"));
}

TEST(SceneGeneratorTest, RejectsANonEmptyOutputFolderNamingIt) {
  testing::TempDir dir;
  testing::write_bytes(dir / "used/notes.txt", "keep me");
  const std::string message = testing::error_of(
      [&] { write_scenes(dir / "used", tiny_scene_options(SceneLayout::kGeneric)); });
  EXPECT_NE(message.find(dir / "used"), std::string::npos) << message;
  EXPECT_NE(message.find("not empty"), std::string::npos) << message;
  EXPECT_EQ(testing::read_bytes(dir / "used/notes.txt"), "keep me");
  EXPECT_EQ(scene_set_files(dir.path()).size(), 1u);  // no partial folder left behind
}

TEST(SceneGeneratorTest, MissingInputsNameTheDebianPackage) {
  testing::TempDir dir;
  const std::string no_fashion = testing::error_of([&] {
    write_scenes(dir / "a",
                 tiny_scene_options(SceneLayout::kGeneric).fashion_mnist_dir(dir / "nothing"));
  });
  EXPECT_NE(no_fashion.find("dataset-fashion-mnist"), std::string::npos) << no_fashion;
  EXPECT_NE(no_fashion.find(dir / "nothing"), std::string::npos) << no_fashion;
  const std::string no_photos = testing::error_of([&] {
    write_scenes(dir / "b", tiny_scene_options(SceneLayout::kGeneric)
                                .photo_dirs(std::vector<std::string>{dir / "nothing"}));
  });
  EXPECT_NE(no_photos.find("opencv-doc"), std::string::npos) << no_photos;
  EXPECT_FALSE(fs::exists(dir / "a"));
  EXPECT_FALSE(fs::exists(dir / "b"));
}

TEST(SceneGeneratorTest, RejectsBadOptionsAndLayoutNames) {
  testing::TempDir dir;
  const auto options = tiny_scene_options(SceneLayout::kGeneric);
  EXPECT_NE(testing::error_of([&] {
              write_scenes(dir / "a", SceneOptions(options).train_fraction(0.9));
            }).find("sum to 1"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] {
              write_scenes(dir / "a", SceneOptions(options).min_objects(3).max_objects(2));
            }).find("objects per scene"),
            std::string::npos);
  EXPECT_EQ(parse_scene_layout("CamVid"), SceneLayout::kCamVid);
  EXPECT_NE(testing::error_of([] { parse_scene_layout("ade20k"); }).find("cityscapes"),
            std::string::npos);
}

}  // namespace gpulab::examples
