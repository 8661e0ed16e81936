// Indexing image folders at scale: the parallel walk, the index cache and its
// invalidation, and label counts / splits straight from the index.
#include <gtest/gtest.h>

#include <filesystem>

#include "gpulab/data/image_folder_index.h"
#include "tests/support/test_util.h"

namespace gpulab::data {
namespace {
namespace fs = std::filesystem;

// Classes c0..c4 with 3, 4, 5, 6, 7 (empty, never decoded) ".png" files.
void make_folder(const testing::TempDir& dir) {
  for (int c = 0; c < 5; ++c) {
    for (int i = 0; i < 3 + c; ++i) {
      testing::write_bytes(dir / ("c" + std::to_string(c) + "/f" + std::to_string(i) + ".png"), "");
    }
  }
}

}  // namespace

TEST(ImageFolderIndexTest, ParallelWalkMatchesOneThread) {
  testing::TempDir dir;
  make_folder(dir);
  auto one = index_image_folder(ImageFolderOptions(dir.path()).index_threads(1));
  auto many = index_image_folder(ImageFolderOptions(dir.path()).index_threads(4));
  EXPECT_EQ(one.files, many.files);
  EXPECT_EQ(one.labels, many.labels);
  EXPECT_EQ(many.label_spec.names, (std::vector<std::string>{"c0", "c1", "c2", "c3", "c4"}));
  EXPECT_EQ(many.size(), 25);
}

TEST(ImageFolderIndexTest, TheIndexIsCachedAndReused) {
  testing::TempDir dir;
  make_folder(dir);
  const auto options = ImageFolderOptions(dir.path()).cache_index(true);
  auto first = index_image_folder(options);
  EXPECT_FALSE(first.from_cache);
  EXPECT_TRUE(fs::exists(dir / ".gpulab-index.json"));
  EXPECT_EQ(index_cache_path(options), dir / ".gpulab-index.json");
  auto second = index_image_folder(options);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(first.files, second.files);
  EXPECT_EQ(first.labels, second.labels);
}

TEST(ImageFolderIndexTest, ChangingAClassFolderInvalidatesTheCache) {
  testing::TempDir dir;
  make_folder(dir);
  const auto options = ImageFolderOptions(dir.path()).cache_index(true);
  index_image_folder(options);
  testing::write_bytes(dir / "c2/new.png", "");
  // File systems with coarse timestamps: make the change visible.
  fs::last_write_time(dir / "c2", fs::last_write_time(dir / "c2") + std::chrono::seconds(5));
  auto after = index_image_folder(options);
  EXPECT_FALSE(after.from_cache);
  EXPECT_EQ(after.size(), 26);
}

// Regression: only the class folders' times were checked, so a file added
// to (or removed from) a folder inside a class folder went unnoticed.
TEST(ImageFolderIndexTest, ChangingANestedFolderInvalidatesTheCache) {
  testing::TempDir dir;
  make_folder(dir);
  testing::write_bytes(dir / "c1/sub/deep/n0.png", "");
  const auto options = ImageFolderOptions(dir.path()).cache_index(true);
  EXPECT_EQ(index_image_folder(options).size(), 26);
  EXPECT_TRUE(index_image_folder(options).from_cache);
  testing::write_bytes(dir / "c1/sub/deep/n1.png", "");
  const fs::path deep = dir / "c1/sub/deep";
  fs::last_write_time(deep, fs::last_write_time(deep) + std::chrono::seconds(5));
  auto after = index_image_folder(options);
  EXPECT_FALSE(after.from_cache);
  EXPECT_EQ(after.size(), 27);
}

// As torchvision: a symbolic link to a folder inside a class folder is
// followed, and a link that loops back is not walked twice.
TEST(ImageFolderIndexTest, FollowsLinkedFoldersOnceEach) {
  testing::TempDir dir;
  make_folder(dir);
  testing::TempDir outside;
  testing::write_bytes(outside / "x0.png", "");
  testing::write_bytes(outside / "x1.png", "");
  fs::create_directory_symlink(outside.path(), dir / "c0/linked");
  fs::create_directory_symlink(dir / "c0", dir / "c0/loop");
  auto index = index_image_folder(ImageFolderOptions(dir.path()));
  EXPECT_EQ(count_each_label(index), (std::vector<int64_t>{5, 4, 5, 6, 7}));
}

TEST(ImageFolderIndexTest, CountEachLabelFromTheIndex) {
  testing::TempDir dir;
  make_folder(dir);
  auto index = index_image_folder(ImageFolderOptions(dir.path()));
  EXPECT_EQ(count_each_label(index), (std::vector<int64_t>{3, 4, 5, 6, 7}));
  const std::string table = format_label_counts(index);
  EXPECT_NE(table.find("Label"), std::string::npos);
  EXPECT_NE(table.find("c4"), std::string::npos);
}

TEST(ImageFolderIndexTest, SplitEachLabelFromTheIndex) {
  testing::TempDir dir;
  make_folder(dir);
  auto index = index_image_folder(ImageFolderOptions(dir.path()));
  auto [first, rest] = split_each_label(index, 2, 0);
  EXPECT_EQ(count_each_label(first), (std::vector<int64_t>{2, 2, 2, 2, 2}));
  EXPECT_EQ(count_each_label(rest), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  // Files keep their labels.
  for (size_t i = 0; i < rest.files.size(); ++i) {
    EXPECT_NE(rest.files[i].find("/c" + std::to_string(rest.labels[i]) + "/"), std::string::npos);
  }
  auto picked = select_classes(index, {"c3", "1"});
  EXPECT_EQ(picked.label_spec.names, (std::vector<std::string>{"c3", "c1"}));
  EXPECT_EQ(count_each_label(picked), (std::vector<int64_t>{6, 4}));
  EXPECT_EQ(count_each_label(take_each_label(index, 4)), (std::vector<int64_t>{3, 4, 4, 4, 4}));
}

}  // namespace gpulab::data
