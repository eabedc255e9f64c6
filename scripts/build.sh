#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds Almanac: build/ (release with debug info) and, with --asan, build-asan/
# (AddressSanitizer + UndefinedBehaviorSanitizer, the build the tests run).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
tests=ON
[ "${ALM_TESTS:-1}" = 0 ] && tests=OFF

build() { # dir, extra cmake args...
    local dir=$1
    shift
    cmake -S . -B "$dir" -DALM_TESTS=$tests "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${1:-}" = "--asan" ]; then
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DALM_SANITIZE=ON
fi
