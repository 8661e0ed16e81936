// Datastore for MNIST-layout IDX folders (MNIST, Fashion-MNIST, KMNIST…):
// train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-… .
#pragma once

#include <string>

#include "gpulab/data/dataset.h"

namespace gpulab::data {

enum class IdxSplit { kTrain, kTest };

// True when `dir` holds at least one train-* or t10k-* IDX images file.
bool is_idx_folder(const std::string& dir);

// Loads the split's images ([N, 1, H, W] uint8) and labels. Class names come
// from `classes.txt` in the folder (one per line) when present, the
// Fashion-MNIST names when the folder name contains "fashion", else "0".."9".
// Throws Error naming the files when they are missing or disagree.
Dataset load_idx_folder(const std::string& dir, IdxSplit split);

}  // namespace gpulab::data
