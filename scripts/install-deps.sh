#!/usr/bin/env bash
# Installs everything gpulab needs to build and test on Debian 12 (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  build-essential cmake ninja-build pkg-config \
  libtorch-dev \
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev \
  libjpeg62-turbo-dev \
  libcli11-dev nlohmann-json3-dev libyaml-cpp-dev libfmt-dev zlib1g-dev \
  libgtest-dev libgmock-dev libbenchmark-dev libmatio-dev \
  libgloo-dev openmpi-bin slurm-wlm munge \
  libcurl4-openssl-dev \
  libsqlitecpp-dev libsqlite3-dev \
  libcivetweb-dev civetweb \
  chromium \
  dataset-fashion-mnist \
  python3-torch python3-torchvision \
  opencv-doc python3-skimage  # interop tests and bench peers; photos for the loader benchmark

# The remote-data tests run a real S3-compatible server, the npm package
# s3rver, on loopback (tests/support/s3rver). Debian 12's nodejs and npm suffice;
# an existing node (e.g. from NodeSource, which bundles npm) is kept.
if ! command -v npm >/dev/null; then
  apt-get install -y --no-install-recommends nodejs npm
fi
(cd "$(dirname "$0")/../tests/support/s3rver" && npm ci --omit=dev --no-audit --no-fund)
# The web page test drives Debian's chromium with puppeteer-core (tests/support/browser).
(cd "$(dirname "$0")/../tests/support/browser" && npm ci --omit=dev --no-audit --no-fund)
