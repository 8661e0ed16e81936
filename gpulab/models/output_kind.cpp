// OutputKind names as model files record them.
#include "gpulab/models/output_kind.h"

#include "gpulab/core/error.h"

namespace gpulab::models {

std::string to_string(OutputKind kind) {
  switch (kind) {
    case OutputKind::kClassScores:
      return "class_scores";
    case OutputKind::kLabelMap:
      return "label_map";
    case OutputKind::kImage:
      return "image";
  }
  return "class_scores";
}

OutputKind parse_output_kind(const std::string& name, const std::string& source) {
  for (OutputKind kind : {OutputKind::kClassScores, OutputKind::kLabelMap, OutputKind::kImage}) {
    if (to_string(kind) == name) return kind;
  }
  GPULAB_FAIL(ErrorKind::kCorruptData,
              "'{}': unknown output kind '{}'; this gpulab knows class_scores, label_map and "
              "image — upgrade gpulab",
              source, name);
}

}  // namespace gpulab::models
