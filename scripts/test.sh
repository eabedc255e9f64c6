#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every test of Almanac: formatting, the static gates (shellcheck, clang-tidy,
# cppcheck: scripts/lint.sh), unit tests of the release and the sanitizer builds, then
# the integration tests (real PostgreSQL, Redis and HTTP) against the
# sanitizer build, whose leak checker also fails a test whose process leaks at exit.
# Installs what is missing first. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
scripts/deps.sh

step "test tools (npm, pinned by tests/package-lock.json)"
npm --prefix tests ci --no-audit --no-fund --loglevel=error

step "format, and the licence tag of every source file"
scripts/format.sh --check
scripts/spdx.sh --check

step "build (release and ASan+UBSan)"
scripts/build.sh --asan

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"

step "static gates: shellcheck, clang-tidy and cppcheck (scripts/lint.sh)"
scripts/lint.sh

step "docs generated from the settings table are current"
scripts/gen-docs.sh --check

step "unit tests (release)"
ctest --test-dir build -L unit --output-on-failure
step "unit tests (ASan+UBSan)"
ctest --test-dir build-asan -L unit --output-on-failure

step "integration tests (ASan+UBSan binary, real PostgreSQL and Redis)"
export ALMANAC_BIN="$PWD/build-asan/almanac"
node --test --test-concurrency=2 --test-timeout=180000 tests/integration/

# ---------------------------------------------------------------- web frontend
step "web frontend: build, then browser tests (Chromium via playwright-core, nginx, api, worker, beat)"
scripts/frontend.sh build
ALMANAC_E2E_SKIP_BUILD=1 node --test --test-timeout=300000 frontend/tests/e2e/
