// Transforms against hand-computed results, and the per-sample random plans.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/data/transforms.h"

namespace gpulab::data {
namespace {

// [2, 3, 1]: 1 2 3 / 4 5 6.
at::Tensor two_by_three() {
  return torch::arange(1, 7, torch::kUInt8).view({2, 3, 1});
}

SamplePlan identity_plan(int h, int w) {
  SamplePlan p;
  p.crop = {0, 0, w, h};
  p.out_height = h;
  p.out_width = w;
  return p;
}

std::vector<int> values(const at::Tensor& t) {
  auto c = t.to(torch::kInt32).contiguous().flatten();
  return std::vector<int>(c.data_ptr<int>(), c.data_ptr<int>() + c.numel());
}

}  // namespace

TEST(TransformsTest, XReflectionMirrorsColumns) {
  SamplePlan p = identity_plan(2, 3);
  p.flip_x = true;
  EXPECT_EQ(values(apply_sample_plan(two_by_three(), p)), (std::vector<int>{3, 2, 1, 6, 5, 4}));
}

TEST(TransformsTest, YReflectionMirrorsRows) {
  SamplePlan p = identity_plan(2, 3);
  p.flip_y = true;
  EXPECT_EQ(values(apply_sample_plan(two_by_three(), p)), (std::vector<int>{4, 5, 6, 1, 2, 3}));
}

TEST(TransformsTest, TranslationByOnePixelShiftsWithZeroFill) {
  SamplePlan p = identity_plan(2, 3);
  p.translate_x = 1;
  EXPECT_EQ(values(apply_sample_plan(two_by_three(), p)), (std::vector<int>{0, 1, 2, 0, 4, 5}));
  p.translate_x = 0;
  p.translate_y = -1;
  EXPECT_EQ(values(apply_sample_plan(two_by_three(), p)), (std::vector<int>{4, 5, 6, 0, 0, 0}));
}

TEST(TransformsTest, ReflectionWithTranslationMirrorsThenShifts) {
  SamplePlan p = identity_plan(2, 3);
  p.flip_x = true;
  p.translate_x = 1;
  EXPECT_EQ(values(apply_sample_plan(two_by_three(), p)), (std::vector<int>{0, 3, 2, 0, 6, 5}));
}

TEST(TransformsTest, CropTakesTheBoxAndScaleTwoDoublesAboutTheCentre) {
  auto img = torch::arange(0, 25, torch::kUInt8).view({5, 5, 1});
  SamplePlan p;
  p.crop = {1, 1, 3, 3};
  p.out_height = p.out_width = 3;
  EXPECT_EQ(values(apply_sample_plan(img, p)), (std::vector<int>{6, 7, 8, 11, 12, 13, 16, 17, 18}));
  // Scale 2 about the centre of a 3x3 grid: the centre pixel stays.
  p.scale_x = p.scale_y = 2;
  auto out = apply_sample_plan(img, p);
  EXPECT_EQ(out[1][1][0].item<int>(), 12);
}

TEST(TransformsTest, ResizeShorterThenCenterCropTakesTheMiddleSquare) {
  // torchvision's Resize(25) + CenterCrop(25) of a 50x100 (HxW) image: the
  // middle 50x50 of the source, resized to 25x25.
  const TransformOptions o =
      TransformOptions().resize_shorter(25).center_crop_height(25).center_crop_width(25);
  const SamplePlan p = plan_sample(o, 50, 100, 0);
  EXPECT_EQ(p.crop.x, 25);
  EXPECT_EQ(p.crop.y, 0);
  EXPECT_EQ(p.crop.width, 50);
  EXPECT_EQ(p.crop.height, 50);
  EXPECT_EQ(p.out_height, 25);
  EXPECT_EQ(p.out_width, 25);
  // Without a crop the aspect ratio is kept.
  EXPECT_EQ(TransformOptions().resize_shorter(25).output_size(50, 100),
            (std::array<int, 2>{25, 50}));
  EXPECT_THROW(TransformOptions().resize_shorter(25).resize_height(4).resize_width(4).validate(),
               Error);
}

TEST(TransformsTest, CenterCropCoordinates) {
  TransformOptions o;
  o.center_crop_height(3).center_crop_width(3);
  SamplePlan p = plan_sample(o, 5, 5, 0);
  EXPECT_EQ(p.crop.x, 1);
  EXPECT_EQ(p.crop.y, 1);
  EXPECT_EQ(p.crop.width, 3);
  EXPECT_EQ(p.out_height, 3);
  // Resize 10x10 then centre crop 6x6 = the middle 3x3 of the 5x5 source.
  o.resize_height(10).resize_width(10).center_crop_height(6).center_crop_width(6);
  p = plan_sample(o, 5, 5, 0);
  EXPECT_EQ(p.crop.x, 1);
  EXPECT_EQ(p.crop.width, 3);
  EXPECT_EQ(p.out_width, 6);
  // Offsets round half to even like torchvision: (8 - 3) / 2 = 2.5 -> 2.
  o = TransformOptions().center_crop_height(3).center_crop_width(3);
  p = plan_sample(o, 8, 8, 0);
  EXPECT_EQ(p.crop.x, 2);
}

TEST(TransformsTest, BrightnessAndContrastFollowTorchvision) {
  auto img = torch::full({2, 2, 3}, 100, torch::kUInt8);
  img[0][0].fill_(200);
  SamplePlan p = identity_plan(2, 2);
  p.brightness = 0.5;
  auto out = apply_sample_plan(img, p);
  EXPECT_EQ(out[0][0][0].item<int>(), 100);
  EXPECT_EQ(out[1][1][2].item<int>(), 50);
  // Contrast 0: every pixel becomes the grey mean (200 + 3 * 100) / 4 = 125.
  p.brightness = 1;
  p.contrast = 0;
  out = apply_sample_plan(img, p);
  EXPECT_EQ(values(out), std::vector<int>(12, 125));
}

TEST(TransformsTest, ContrastOfColourImagesShiftsEveryChannelWithoutOpenCvWarnings) {
  // (R, G, B) = (200, 100, 50) everywhere: grey mean 0.299*200 + 0.587*100
  // + 0.114*50 = 124.2; contrast 0.5 maps v to 0.5 v + 0.5 * 124.2.
  auto img = torch::empty({2, 2, 3}, torch::kUInt8);
  img.select(2, 0).fill_(200);
  img.select(2, 1).fill_(100);
  img.select(2, 2).fill_(50);
  SamplePlan p = identity_plan(2, 2);
  p.contrast = 0.5;
  ::testing::internal::CaptureStderr();
  auto out = apply_sample_plan(img, p);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log.find("MatExpr"), std::string::npos) << log;
  EXPECT_EQ(out[1][1][0].item<int>(), 162);
  EXPECT_EQ(out[1][1][1].item<int>(), 112);
  EXPECT_EQ(out[1][1][2].item<int>(), 87);
}

TEST(TransformsTest, SaturationZeroMakesGrey) {
  auto img = torch::zeros({1, 1, 3}, torch::kUInt8);
  img[0][0][0] = 255;  // pure red: grey 0.299 * 255 = 76
  SamplePlan p = identity_plan(1, 1);
  p.saturation = 0;
  EXPECT_EQ(values(apply_sample_plan(img, p)), (std::vector<int>{76, 76, 76}));
}

TEST(TransformsTest, NormalisationMapsPixelsToStandardUnits) {
  Normalization norm{{0.5}, {0.25}};
  PixelAffine affine = pixel_affine(norm, c10::Device(c10::kCPU));
  auto x = torch::tensor({0, 255}, torch::kUInt8).view({1, 1, 1, 2});
  auto y = affine.apply(x);
  EXPECT_FLOAT_EQ(y.flatten()[0].item<float>(), -2.0f);
  EXPECT_FLOAT_EQ(y.flatten()[1].item<float>(), 2.0f);
}

TEST(TransformsTest, RandomResizedCropStaysInsideWithinScaleAndRatio) {
  TransformOptions o;
  o.random_resized_crop(32);
  for (int64_t i = 0; i < 200; ++i) {
    SamplePlan p = plan_sample(o, 375, 500, sample_seed(7, 1, i));
    ASSERT_GE(p.crop.x, 0);
    ASSERT_GE(p.crop.y, 0);
    ASSERT_LE(p.crop.x + p.crop.width, 500);
    ASSERT_LE(p.crop.y + p.crop.height, 375);
    const double area = double(p.crop.width) * p.crop.height / (375.0 * 500.0);
    const double ratio = double(p.crop.width) / p.crop.height;
    EXPECT_GE(area, 0.07);
    EXPECT_LE(area, 1.0);
    EXPECT_GT(ratio, 0.7);
    EXPECT_LT(ratio, 1.4);
    EXPECT_EQ(p.out_height, 32);
  }
}

TEST(TransformsTest, PlansDependOnlyOnSeedEpochAndSample) {
  TransformOptions o;
  o.random_resized_crop(16).x_reflection(true).x_translation({-3, 3}).brightness(0.2);
  auto a = plan_sample(o, 40, 30, sample_seed(1, 2, 3));
  auto b = plan_sample(o, 40, 30, sample_seed(1, 2, 3));
  EXPECT_EQ(a.crop.x, b.crop.x);
  EXPECT_EQ(a.flip_x, b.flip_x);
  EXPECT_EQ(a.translate_x, b.translate_x);
  EXPECT_EQ(a.brightness, b.brightness);
  int flips = 0, differ = 0;
  for (int64_t e = 0; e < 100; ++e) {
    auto p = plan_sample(o, 40, 30, sample_seed(1, e, 3));
    flips += p.flip_x;
    differ += p.translate_x != a.translate_x;
    EXPECT_GE(p.translate_x, -3);
    EXPECT_LE(p.translate_x, 3);
  }
  EXPECT_GT(flips, 25);  // about half
  EXPECT_LT(flips, 75);
  EXPECT_GT(differ, 90);
}

TEST(TransformsTest, ReadsFlagAndYamlValues) {
  TransformOptions o;
  apply_transform_json(o, {{"rand_x_translation", "-3,3"},
                           {"rand-y-translation", 2},
                           {"color_jitter", "0.1,0.2,0.3"},
                           {"rand_scale", std::vector<double>{0.9, 1.1}},
                           {"center_crop", "24x32"},
                           {"augment", "x-reflection,random-resized-crop"}});
  EXPECT_EQ(o.x_translation(), (Range{-3, 3}));
  EXPECT_EQ(o.y_translation(), (Range{-2, 2}));
  EXPECT_DOUBLE_EQ(o.contrast(), 0.2);
  EXPECT_EQ(o.y_scale(), (Range{0.9, 1.1}));
  EXPECT_EQ(o.center_crop_width(), 32);
  EXPECT_TRUE(o.x_reflection());
  EXPECT_EQ(o.random_resized_crop(), 224);
  EXPECT_TRUE(o.random());
  EXPECT_FALSE(o.deterministic().random());
}

TEST(TransformsTest, BadValuesAreInvalidArguments) {
  TransformOptions o;
  for (const nlohmann::json& bad :
       {nlohmann::json{{"rand_x_translation", "3,-3"}}, nlohmann::json{{"rand_x_scale", "a,b"}},
        nlohmann::json{{"augment", "sideways"}}, nlohmann::json{{"crop_scale", "0.5,2"}}}) {
    try {
      apply_transform_json(o, bad);
      FAIL() << bad.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    }
  }
}

}  // namespace gpulab::data
