#!/usr/bin/env bash
# Unpacks the small dependencies of the reduced (GPU machine) build into
# .devdeps/ (git-ignored), so a machine that has LibTorch but no Debian -dev
# packages can build gpulab: CLI11, nlohmann-json, fmt, yaml-cpp, zlib,
# GoogleTest, OpenCV core + imgproc (the loader's transforms; no imgcodecs:
# it pulls in GDAL, OpenEXR and more) with libjpeg-turbo (the loader's JPEG
# decoder there), and Fashion-MNIST for the tests and benchmarks.
#
#   scripts/fetch-device-deps.sh            # run here (Debian 12, apt works)
#   cmake -DGPULAB_DEPS_PREFIX=$PWD/.devdeps ...   # scripts/device-check.sh does this
#
# Packages are fetched with `apt-get download` and unpacked with `dpkg -x`;
# nothing is installed. Every shared library kept is checked to need glibc
# <= 2.39 (the GPU machine's) and no libstdc++ newer than GLIBCXX_3.4.32.
#
# libopencv_core links LAPACK (cv::solve, SVD, eigen), BLAS (cv::gemm) and
# GLX (OpenGL interop), none of which the loader calls; their real libraries
# (reference LAPACK needs libgfortran and libquadmath) would add 10.5 MB to
# the 64 MiB that may travel. By default they are replaced by stubs built
# here, exporting the symbols libopencv_core takes from them (a stub called
# all the same prints which function and aborts), under names of their own
# that patchelf writes into libopencv_core: no other library in a process can
# mistake them for the real LAPACK, BLAS or GLX. STUBS=0 carries the real ones.
# OpenCV's libraries get the RUNPATH $ORIGIN, so they find each other, TBB
# and the stubs in .devdeps whatever loads them.
# Environment: DEST (.devdeps), WITH_DATA (1: also Fashion-MNIST, 30 MB),
# STUBS (1), CC (cc, for the stubs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${DEST:-$ROOT/.devdeps}"
WITH_DATA="${WITH_DATA:-1}"
STUBS="${STUBS:-1}"
CC="${CC:-cc}"
MAX_GLIBC="2.39"
MAX_GLIBCXX="3.4.32"

packages=(
  libcli11-dev          # header-only, CMake config
  nlohmann-json3-dev    # header-only, CMake config
  libfmt-dev libfmt9    # built header-only there; the config checks the .so exists
  libyaml-cpp-dev libyaml-cpp0.7
  zlib1g-dev zlib1g
  libgtest-dev          # headers, static libgtest.a/libgtest_main.a, CMake config
  libopencv-core-dev libopencv-core406 libopencv-imgproc-dev libopencv-imgproc406
  libtbb12              # libopencv_core's thread pool
  libjpeg62-turbo-dev   # headers and the static libjpeg.a
)
# What libopencv_core loads but the loader never calls (see above).
stubbed=(liblapack3 libblas3 libglx0)
if [ "$STUBS" = 1 ]; then
  stub_sources=("${stubbed[@]}")
else
  packages+=("${stubbed[@]}" libgfortran5 libquadmath0 libglvnd0)
  stub_sources=()
fi
[ "$WITH_DATA" = 1 ] && packages+=(dataset-fashion-mnist)

debs="$(mktemp -d)"
trap 'rm -rf "$debs"' EXIT
chmod 777 "$debs"  # apt-get download may run as _apt
mkdir -m 777 "$debs/stubbed" "$debs/tools"
(cd "$debs" && apt-get download "${packages[@]}")
[ "${#stub_sources[@]}" -gt 0 ] && (cd "$debs/stubbed" && apt-get download "${stub_sources[@]}")
# patchelf, run from here, only to edit the unpacked OpenCV libraries.
(cd "$debs/tools" && apt-get download patchelf && dpkg -x patchelf_*.deb .)
patchelf="$debs/tools/usr/bin/patchelf"

rm -rf "$DEST"
mkdir -p "$DEST"
for deb in "$debs"/*.deb; do
  dpkg -x "$deb" "$DEST"
  echo "$(basename "$deb")" >> "$DEST/PACKAGES"
done
# Documentation, man pages and pkg-config files are not needed to build.
rm -rf "$DEST/usr/share/doc" "$DEST/usr/share/man" "$DEST/usr/share/lintian" "$DEST/usr/share/bug" \
  "$DEST/usr/lib/x86_64-linux-gnu/pkgconfig" "$DEST/usr/share/pkgconfig"
# zlib1g's runtime lives in /lib (usrmerge): keep one tree.
if [ -d "$DEST/lib" ]; then
  mkdir -p "$DEST/usr/lib"
  cp -a "$DEST/lib/." "$DEST/usr/lib/"
  rm -rf "$DEST/lib"
fi
# libz.so in zlib1g-dev points at /lib/.../libz.so.1.x: repoint it inside DEST.
libdir="$DEST/usr/lib/x86_64-linux-gnu"
if [ -L "$libdir/libz.so" ]; then
  real="$(basename "$(ls "$libdir"/libz.so.1.* | head -n1)")"
  ln -sf "$real" "$libdir/libz.so"
fi
# OpenCV and libjpeg link as shared and static libraries respectively: drop
# OpenCV's static archives (21 MB) and libjpeg.so, whose target is not here.
rm -f "$libdir"/libopencv_*.a "$libdir/libjpeg.so"
# Headers the build never includes: CUDA device code, OpenCL, and SIMD
# intrinsics of other architectures.
cv="$DEST/usr/include/opencv4/opencv2"
rm -rf "$cv/core/cuda" "$cv/core/opencl"
rm -f "$cv"/core/hal/intrin_{neon,vsx,msa,wasm,rvv,rvv071}.hpp "$cv/core/hal/msa_macros.h"
# Real BLAS and LAPACK live in blas/ and lapack/ behind Debian's alternatives
# (set up when installed, not by dpkg -x): put their sonames in libdir.
for sub in blas lapack; do
  if [ -d "$libdir/$sub" ]; then
    mv "$libdir/$sub"/lib*.so.3* "$libdir/"
    rm -rf "${libdir:?}/$sub"
  fi
done

# Stubs: for each stubbed library, the symbols libopencv_core takes from it,
# under a name of its own.
core="$(readlink -f "$libdir/libopencv_core.so")"
if [ "${#stub_sources[@]}" -gt 0 ]; then
  real="$debs/stubbed/unpacked"
  mkdir -p "$real"
  for deb in "$debs"/stubbed/*.deb; do dpkg -x "$deb" "$real"; done
  needed="$(nm -D --undefined-only "$core" | awk '{print $NF}' | sort -u)"
  for pair in liblapack.so.3:lapack libblas.so.3:blas libGLX.so.0:glx; do
    soname="${pair%%:*}"
    stub="libgpulab_opencv_stub_${pair##*:}.so"
    lib="$(find "$real" -name "$soname*" -type f | head -n1)"
    exported="$(nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | sort -u)"
    symbols="$(comm -12 <(echo "$needed") <(echo "$exported"))"
    src="$debs/$stub.c"
    {
      cat <<C
#include <stdio.h>
#include <stdlib.h>
static void missing(const char* name) {
  fprintf(stderr, "gpulab: OpenCV called %s of $soname, which the reduced build replaces by a "
          "stub (scripts/fetch-device-deps.sh; STUBS=0 carries the real library)\\n", name);
  abort();
}
C
      for sym in $symbols; do echo "void $sym(void) { missing(\"$sym\"); }"; done
    } > "$src"
    "$CC" -shared -fPIC -O2 -Wl,-soname,"$stub" -o "$libdir/$stub" "$src"
    "$patchelf" --replace-needed "$soname" "$stub" "$core"
    echo "stub $stub for $soname: $(echo $symbols | wc -w) symbols ($(echo $symbols))" \
      >> "$DEST/PACKAGES"
  done
fi
for lib in "$core" "$(readlink -f "$libdir/libopencv_imgproc.so")"; do
  "$patchelf" --set-rpath '$ORIGIN' "$lib"
done

# Every shared object must load on the GPU machine (glibc <= 2.39, CXX11 ABI).
version_ok() {  # version_ok NEEDED MAX: NEEDED <= MAX
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n1)" = "$2" ]
}
status=0
while IFS= read -r so; do
  symbols="$(objdump -T "$so")"
  glibc="$(grep -o 'GLIBC_[0-9.]*' <<< "$symbols" | sed 's/GLIBC_//' | sort -V | tail -n1 || true)"
  glibcxx="$(grep -o 'GLIBCXX_[0-9.]*' <<< "$symbols" | sed 's/GLIBCXX_//' | sort -V | tail -n1 || true)"
  cxx11="$(grep -c '__cxx11' <<< "$symbols" || true)"
  printf '%-40s glibc %-6s libstdc++ %-8s __cxx11 symbols %s\n' "${so#"$DEST"/}" \
    "${glibc:-none}" "${glibcxx:-none}" "$cxx11"
  if [ -n "$glibc" ] && ! version_ok "$glibc" "$MAX_GLIBC"; then
    echo "error: $so needs glibc $glibc > $MAX_GLIBC" >&2
    status=1
  fi
  if [ -n "$glibcxx" ] && ! version_ok "$glibcxx" "$MAX_GLIBCXX"; then
    echo "error: $so needs GLIBCXX_$glibcxx > $MAX_GLIBCXX" >&2
    status=1
  fi
done < <(find "$DEST" -name '*.so*' -type f)
# Static archives are linked there; they must use the CXX11 ABI like LibTorch.
for a in "$libdir"/libgtest.a "$libdir"/libyaml-cpp.a; do
  [ -f "$a" ] || continue
  if ! nm -C "$a" 2>/dev/null | grep '__cxx11' >/dev/null; then
    echo "error: $a has no CXX11-ABI symbols" >&2
    status=1
  fi
done
du -sh "$DEST"
exit "$status"
