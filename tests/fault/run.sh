#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fault suite: real PostgreSQL frozen with SIGSTOP, locked past every deadline and
# refusing connections; its postmaster killed with -9 during uploads; Redis restarted
# empty and refusing writes; the Qdrant stand-in down and back empty; the embeddings
# stand-in refusing, answering 503/429 and hanging; the collection missing or of another
# dimension (/ready); one job lost by hand (XDEL); a document at the upload limit;
# parallel sign-ins and reprocess storms (tests/fault/*.test.mjs, docs/reliability.md
# says what each fault does). Runs against the ASan+UBSan build unless ALMANAC_BIN is
# set; about 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${ALMANAC_BIN:-}" ]; then
    scripts/build.sh --asan
    export ALMANAC_BIN="$PWD/build-asan/almanac"
fi
npm --prefix tests ci --no-audit --no-fund --loglevel=error
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}"
exec node --test --test-concurrency=2 --test-timeout=420000 tests/fault/
