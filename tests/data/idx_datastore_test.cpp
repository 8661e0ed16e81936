// IDX folders: split selection, class names, image/label agreement.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/data/datastore.h"
#include "gpulab/data/idx_datastore.h"
#include "tests/support/test_util.h"

namespace gpulab::data {

TEST(IdxDatastoreTest, TrainUsesTrainFilesAndTestUsesT10kFiles) {
  testing::TempDir dir;
  testing::write_idx_split(dir.path(), "train", torch::full({5, 4, 4}, 10, torch::kUInt8),
                           torch::tensor({0, 1, 2, 3, 9}), /*gzip=*/true);
  testing::write_idx_split(dir.path(), "t10k", torch::full({3, 4, 4}, 20, torch::kUInt8),
                           torch::tensor({1, 1, 0}), /*gzip=*/false);
  ASSERT_TRUE(is_idx_folder(dir.path()));
  Dataset train = load_idx_folder(dir.path(), IdxSplit::kTrain);
  Dataset test = load_idx_folder(dir.path(), IdxSplit::kTest);
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{5, 1, 4, 4}));
  EXPECT_EQ(test.size(), 3);
  EXPECT_EQ(train.images.max().item<int>(), 10);
  EXPECT_EQ(test.images.max().item<int>(), 20);
  EXPECT_EQ(train.label_spec.names.size(), 10u);
  EXPECT_EQ(train.targets[4].item<int64_t>(), 9);
}

TEST(IdxDatastoreTest, RejectsImageAndLabelCountMismatch) {
  testing::TempDir dir;
  testing::write_idx_split(dir.path(), "train", torch::zeros({4, 2, 2}, torch::kUInt8),
                           torch::tensor({0, 1, 2}), false);
  try {
    load_idx_folder(dir.path(), IdxSplit::kTrain);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find("4 images"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("3 labels"), std::string::npos) << e.what();
  }
}

TEST(IdxDatastoreTest, ClassNamesComeFromClassesTxt) {
  testing::TempDir dir;
  testing::write_idx_split(dir.path(), "train", torch::zeros({2, 2, 2}, torch::kUInt8),
                           torch::tensor({0, 1}), false);
  testing::write_bytes(dir / "classes.txt", "cat\ndog\n");
  EXPECT_EQ(load_idx_folder(dir.path(), IdxSplit::kTrain).label_spec.names,
            (std::vector<std::string>{"cat", "dog"}));
}

TEST(IdxDatastoreTest, FashionMnistFolderGetsItsClassNames) {
  Dataset ds = load_idx_folder(testing::fashion_mnist_dir(), IdxSplit::kTest);
  EXPECT_EQ(ds.size(), 10000);
  EXPECT_EQ(ds.label_spec.names[9], "Ankle boot");
}

TEST(IdxDatastoreTest, MissingLabelsFileIsNamed) {
  testing::TempDir dir;
  testing::write_bytes(dir / "train-images-idx3-ubyte",
                       testing::idx_bytes({1, 2, 2}, {0, 0, 0, 0}));
  try {
    load_idx_folder(dir.path(), IdxSplit::kTrain);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("train-labels-idx1-ubyte"), std::string::npos);
  }
}

TEST(DatastoreTest, MissingPathIsNotFound) {
  try {
    load_datastore("/nonexistent/data", DatastoreOptions());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/data"), std::string::npos);
  }
}

// Regression: --channels 3 was silently ignored for IDX data, so ImageNet
// (RGB) weights could not be used on Fashion-MNIST.
TEST(DatastoreTest, IdxGreyImagesAreReplicatedToRgbOnRequest) {
  testing::TempDir dir;
  const auto images = torch::arange(2 * 4 * 4, torch::kInt32).reshape({2, 4, 4}).to(torch::kUInt8);
  testing::write_idx_split(dir.path(), "train", images, torch::tensor({0, 1}), /*gzip=*/false);
  const Dataset grey = load_datastore(dir.path(), DatastoreOptions()).dataset;
  const Dataset rgb = load_datastore(dir.path(), DatastoreOptions().channels(3)).dataset;
  EXPECT_EQ(grey.images.sizes(), (std::vector<int64_t>{2, 1, 4, 4}));
  ASSERT_EQ(rgb.images.sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
  for (int64_t c = 0; c < 3; ++c) EXPECT_TRUE(torch::equal(rgb.images.select(1, c), images));
  EXPECT_EQ(load_datastore(dir.path(), DatastoreOptions().height(4).width(4)).dataset.height(), 4);
  try {
    load_datastore(dir.path(), DatastoreOptions().height(8).width(8));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("is an IDX folder of 4x4 images"), std::string::npos)
        << e.what();
  }
}

}  // namespace gpulab::data
