# OpenCV core/imgproc/imgcodecs: the CMake package when libopencv-dev is
# installed, else the per-module Debian packages (libopencv-{core,imgproc,
# imgcodecs}-dev), which ship headers and libraries but no CMake config.
find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
if(OpenCV_FOUND)
  message(STATUS "gpulab: OpenCV ${OpenCV_VERSION} (CMake package)")
  return()
endif()
find_path(OpenCV_INCLUDE_DIRS opencv2/core.hpp PATH_SUFFIXES opencv4)
set(OpenCV_LIBS "")
foreach(module core imgproc imgcodecs)
  find_library(OpenCV_${module}_LIBRARY opencv_${module})
  if(NOT OpenCV_${module}_LIBRARY)
    message(FATAL_ERROR "gpulab: OpenCV module ${module} not found: apt-get install "
                        "libopencv-${module}-dev, or configure with -DGPULAB_WITH_OPENCV=OFF")
  endif()
  list(APPEND OpenCV_LIBS ${OpenCV_${module}_LIBRARY})
endforeach()
if(NOT OpenCV_INCLUDE_DIRS)
  message(FATAL_ERROR "gpulab: OpenCV headers not found (apt-get install libopencv-core-dev)")
endif()
message(STATUS "gpulab: OpenCV modules ${OpenCV_LIBS}")
