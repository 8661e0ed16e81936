# OpenCV core and imgproc, plus imgcodecs unless GPULAB_WITH_IMGCODECS is OFF,
# and libjpeg-turbo (JPEG region decoding; without imgcodecs, every decode).
# Where from: with GPULAB_DEPS_PREFIX holding OpenCV (the reduced build:
# Debian's libopencv-{core,imgproc}-dev unpacked by scripts/fetch-device-deps.sh,
# no CMake config), there and nowhere else; otherwise the CMake package when
# libopencv-dev is installed, else the per-module Debian packages, which ship
# headers and libraries but no CMake config. Sets OpenCV_LIBS,
# OpenCV_INCLUDE_DIRS and GPULAB_JPEG_FOUND (target JPEG::JPEG).
set(_cv_modules core imgproc)
if(GPULAB_WITH_IMGCODECS)
  list(APPEND _cv_modules imgcodecs)
endif()
set(_cv_deps "")
if(GPULAB_DEPS_PREFIX AND EXISTS "${GPULAB_DEPS_PREFIX}/usr/include/opencv4/opencv2/core.hpp")
  set(_cv_deps "${GPULAB_DEPS_PREFIX}/usr")
endif()

set(OpenCV_FOUND FALSE)
if(NOT _cv_deps)
  find_package(OpenCV QUIET COMPONENTS ${_cv_modules})
endif()
if(OpenCV_FOUND)
  message(STATUS "gpulab: OpenCV ${OpenCV_VERSION} (CMake package), modules ${_cv_modules}")
else()
  if(_cv_deps)
    set(_cv_search PATHS "${_cv_deps}/include" NO_DEFAULT_PATH)
    set(_cv_lib_search PATHS "${_cv_deps}/lib/x86_64-linux-gnu" "${_cv_deps}/lib" NO_DEFAULT_PATH)
  else()
    set(_cv_search "")
    set(_cv_lib_search "")
  endif()
  find_path(OpenCV_INCLUDE_DIRS opencv2/core.hpp PATH_SUFFIXES opencv4 ${_cv_search})
  if(NOT OpenCV_INCLUDE_DIRS)
    message(FATAL_ERROR "gpulab: OpenCV headers not found (apt-get install libopencv-core-dev)")
  endif()
  set(OpenCV_LIBS "")
  foreach(module ${_cv_modules})
    find_library(OpenCV_${module}_LIBRARY opencv_${module} ${_cv_lib_search})
    if(NOT OpenCV_${module}_LIBRARY)
      message(FATAL_ERROR "gpulab: OpenCV module ${module} not found: apt-get install "
                          "libopencv-${module}-dev, or configure with -DGPULAB_WITH_OPENCV=OFF")
    endif()
    list(APPEND OpenCV_LIBS ${OpenCV_${module}_LIBRARY})
  endforeach()
  message(STATUS "gpulab: OpenCV modules ${OpenCV_LIBS}")
endif()
# videoio (video files, image sequences, cameras for `gpulab stream`) when
# present: the reduced device build has no libopencv-videoio-dev.
set(GPULAB_WITH_VIDEOIO OFF)
if(GPULAB_WITH_IMGCODECS)
  if(OpenCV_FOUND AND TARGET opencv_videoio)
    set(GPULAB_WITH_VIDEOIO ON)
    list(APPEND OpenCV_LIBS opencv_videoio)
  elseif(NOT OpenCV_FOUND AND NOT _cv_deps)
    find_path(GPULAB_VIDEOIO_HEADER opencv2/videoio.hpp PATHS ${OpenCV_INCLUDE_DIRS} NO_DEFAULT_PATH)
    find_library(OpenCV_videoio_LIBRARY opencv_videoio)
    if(GPULAB_VIDEOIO_HEADER AND OpenCV_videoio_LIBRARY)
      set(GPULAB_WITH_VIDEOIO ON)
      list(APPEND OpenCV_LIBS ${OpenCV_videoio_LIBRARY})
    endif()
  endif()
endif()
message(STATUS "gpulab: video files and cameras (OpenCV videoio) ${GPULAB_WITH_VIDEOIO}")
if(NOT GPULAB_WITH_IMGCODECS)
  message(STATUS "gpulab: image decoding JPEG only (libjpeg-turbo; OpenCV imgcodecs OFF)")
endif()

# libjpeg-turbo: the static archive under GPULAB_DEPS_PREFIX (nothing to find
# at run time), else the system's. Debian keeps jconfig.h in the multiarch
# include folder, which is not searched by default under a prefix.
if(GPULAB_DEPS_PREFIX AND EXISTS "${GPULAB_DEPS_PREFIX}/usr/include/jpeglib.h" AND
   NOT JPEG_INCLUDE_DIR)
  set(JPEG_INCLUDE_DIR "${GPULAB_DEPS_PREFIX}/usr/include")
  set(JPEG_LIBRARY "${GPULAB_DEPS_PREFIX}/usr/lib/x86_64-linux-gnu/libjpeg.a")
endif()
find_package(JPEG)
set(GPULAB_JPEG_FOUND ${JPEG_FOUND})
if(JPEG_FOUND)
  foreach(_multiarch "${JPEG_INCLUDE_DIR}/x86_64-linux-gnu" "${JPEG_INCLUDE_DIR}/${CMAKE_LIBRARY_ARCHITECTURE}")
    if(EXISTS "${_multiarch}/jconfig.h")
      set_property(TARGET JPEG::JPEG APPEND PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_multiarch}")
      break()
    endif()
  endforeach()
  message(STATUS "gpulab: JPEG region decoding with libjpeg ${JPEG_VERSION} (${JPEG_LIBRARIES})")
elseif(NOT GPULAB_WITH_IMGCODECS)
  message(FATAL_ERROR "gpulab: GPULAB_WITH_IMGCODECS=OFF decodes JPEG with libjpeg-turbo, which "
                      "was not found: apt-get install libjpeg62-turbo-dev (or "
                      "scripts/fetch-device-deps.sh for GPULAB_DEPS_PREFIX)")
else()
  message(STATUS "gpulab: JPEG region decoding OFF (install libjpeg62-turbo-dev)")
endif()
