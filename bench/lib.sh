# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Sourced by the benches: the checks they all make before starting anything.

# Exits 1 naming the first of the given commands that is not installed.
bench_require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "bench: '$tool' not found (scripts/deps.sh all installs it)" >&2
            exit 1
        }
    done
}

# Exports ALMANAC_BIN (default: build/almanac under root, $1); exits 1 when it is missing.
bench_require_binary() {
    export ALMANAC_BIN=${ALMANAC_BIN:-$1/build/almanac}
    [ -x "$ALMANAC_BIN" ] || {
        echo "bench: $ALMANAC_BIN missing; build with: cmake -S . -B build && cmake --build build -j2" >&2
        exit 1
    }
}
