# The small dependencies (nlohmann-json, CLI11, yaml-cpp, fmt, zlib): the
# system's packages, or with GPULAB_DEPS_PREFIX the Debian packages that
# scripts/fetch-device-deps.sh unpacked there, found there first. Sets
# GPULAB_FMT_TARGET (fmt::fmt, or fmt::fmt-header-only in the reduced build).
set(GPULAB_FMT_TARGET fmt::fmt)
if(GPULAB_DEPS_PREFIX)
  get_filename_component(GPULAB_DEPS_PREFIX "${GPULAB_DEPS_PREFIX}" ABSOLUTE)
  set(_deps "${GPULAB_DEPS_PREFIX}/usr")
  if(NOT EXISTS "${_deps}/include")
    message(FATAL_ERROR "gpulab: GPULAB_DEPS_PREFIX '${GPULAB_DEPS_PREFIX}' has no usr/include: "
                        "run scripts/fetch-device-deps.sh")
  endif()
  list(PREPEND CMAKE_PREFIX_PATH "${_deps}")
  # Name each package's config folder, whatever the host's multiarch layout.
  set(_libdir "${_deps}/lib/x86_64-linux-gnu")
  foreach(_pkg_dir "nlohmann_json|${_deps}/share/cmake/nlohmann_json"
                   "CLI11|${_deps}/share/cmake/CLI11" "yaml-cpp|${_libdir}/cmake/yaml-cpp"
                   "fmt|${_libdir}/cmake/fmt" "GTest|${_libdir}/cmake/GTest")
    string(REPLACE "|" ";" _pair "${_pkg_dir}")
    list(GET _pair 0 _pkg)
    list(GET _pair 1 _dir)
    if(EXISTS "${_dir}" AND NOT ${_pkg}_DIR)
      set(${_pkg}_DIR "${_dir}")
    endif()
  endforeach()
  if(EXISTS "${_deps}/include/zlib.h" AND NOT ZLIB_INCLUDE_DIR)
    set(ZLIB_INCLUDE_DIR "${_deps}/include")
    # The static archive: nothing to find at run time.
    set(ZLIB_LIBRARY "${_libdir}/libz.a")
  endif()
  # fmt header-only: no libfmt.so to carry, and consistent with LibTorch's
  # own copy of fmt's headers where it ships one.
  set(GPULAB_FMT_TARGET fmt::fmt-header-only)
  message(STATUS "gpulab: small dependencies from ${GPULAB_DEPS_PREFIX} first")
endif()

find_package(nlohmann_json 3.9 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(fmt REQUIRED)
find_package(ZLIB REQUIRED)
if(NOT TORCH_INSTALL_PREFIX STREQUAL "/usr" AND EXISTS "${TORCH_INSTALL_PREFIX}/include/fmt/format.h")
  set(_fmt_headers "${TORCH_INSTALL_PREFIX}/include/fmt (LibTorch's copy, searched first)")
else()
  get_target_property(_fmt_headers fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
endif()
message(STATUS "gpulab: nlohmann-json ${nlohmann_json_VERSION} (${nlohmann_json_DIR})")
message(STATUS "gpulab: CLI11 ${CLI11_VERSION} (${CLI11_DIR})")
message(STATUS "gpulab: yaml-cpp ${yaml-cpp_VERSION} (${yaml-cpp_DIR})")
message(STATUS "gpulab: fmt ${fmt_VERSION} as ${GPULAB_FMT_TARGET}, headers ${_fmt_headers}")
message(STATUS "gpulab: zlib ${ZLIB_VERSION_STRING} (${ZLIB_INCLUDE_DIRS}, ${ZLIB_LIBRARIES})")
