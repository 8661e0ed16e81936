#!/usr/bin/env bash
# Unpacks the small dependencies of the reduced (GPU machine) build into
# .devdeps/ (git-ignored), so a machine that has LibTorch but no Debian -dev
# packages can build gpulab: CLI11, nlohmann-json, fmt, yaml-cpp, zlib,
# GoogleTest, and Fashion-MNIST for the tests and benchmarks.
#
#   scripts/fetch-device-deps.sh            # run here (Debian 12, apt works)
#   cmake -DGPULAB_DEPS_PREFIX=$PWD/.devdeps ...   # scripts/device-check.sh does this
#
# Packages are fetched with `apt-get download` and unpacked with `dpkg -x`;
# nothing is installed. Every shared library kept is checked to need glibc
# <= 2.39 (the GPU machine's) and no libstdc++ newer than GLIBCXX_3.4.32.
# Environment: DEST (.devdeps), WITH_DATA (1: also Fashion-MNIST, 30 MB).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${DEST:-$ROOT/.devdeps}"
WITH_DATA="${WITH_DATA:-1}"
MAX_GLIBC="2.39"
MAX_GLIBCXX="3.4.32"

packages=(
  libcli11-dev          # header-only, CMake config
  nlohmann-json3-dev    # header-only, CMake config
  libfmt-dev libfmt9    # built header-only there; the config checks the .so exists
  libyaml-cpp-dev libyaml-cpp0.7
  zlib1g-dev zlib1g
  libgtest-dev          # headers, static libgtest.a/libgtest_main.a, CMake config
)
[ "$WITH_DATA" = 1 ] && packages+=(dataset-fashion-mnist)

debs="$(mktemp -d)"
trap 'rm -rf "$debs"' EXIT
chmod 777 "$debs"  # apt-get download may run as _apt
(cd "$debs" && apt-get download "${packages[@]}")

rm -rf "$DEST"
mkdir -p "$DEST"
for deb in "$debs"/*.deb; do
  dpkg -x "$deb" "$DEST"
  echo "$(basename "$deb")" >> "$DEST/PACKAGES"
done
# Documentation, man pages and pkg-config files are not needed to build.
rm -rf "$DEST/usr/share/doc" "$DEST/usr/share/man" "$DEST/usr/share/lintian" \
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
