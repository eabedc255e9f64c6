#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz and runs each one over
# its seed corpus plus FUZZ_SECONDS (default 20) of new inputs. Exits non-zero when any
# target crashes, leaks or breaks an invariant; the reproducer and the log are kept in
# FUZZ_OUT (default build-fuzz/fuzz-out/<target>/).
#
# Seeds stay untouched: new inputs go to a scratch corpus per target. To replay a
# reproducer: build-fuzz/<target> FILE
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${FUZZ_SECONDS:-20}
build=$root/build-fuzz
out=${FUZZ_OUT:-$build/fuzz-out}

command -v clang >/dev/null || {
    echo "fuzz-smoke: clang not found (scripts/deps.sh build installs it)" >&2
    exit 1
}
CC=clang cmake -S "$root" -B "$build" -DALM_FUZZ=ON -DALM_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for src in "$root"/tests/fuzz/fuzz_*.c; do
    targets+=("$(basename "$src" .c)")
done
# Only the fuzz targets (and almcore): the sanitized almanac binary is not needed here.
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null

# Any UBSan finding is fatal (the code is also built with -fno-sanitize-recover).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
summary=()
for name in "${targets[@]}"; do
    bin=$build/$name
    seeds=$root/tests/fuzz/corpus/$name
    dir=$out/$name
    rm -rf "$dir"
    mkdir -p "$dir/corpus"
    [ -d "$seeds" ] || seeds=$dir/corpus # a target without seeds starts from nothing
    echo "== $name: $(find "$seeds" -type f | wc -l) seeds, ${seconds}s"
    rc=0
    # The scratch corpus comes first: libFuzzer writes new inputs to the first directory.
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/" "$dir/corpus" "$seeds" >"$dir/log" 2>&1 || rc=$?
    execs=$(awk '$1 == "stat::number_of_executed_units:" { print $2 }' "$dir/log")
    rate=$(awk '$1 == "stat::average_exec_per_sec:" { print $2 }' "$dir/log")
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$dir/log" | tail -n 1 || true)
    if [ $rc -ne 0 ]; then
        failed+=("$name")
        summary+=("$name: FAILED (exit $rc) after ${execs:-?} runs; see $dir/log")
        echo "--- $name failed; the report:"
        grep -E -A60 '^==[0-9]+==ERROR|runtime error|invariant broken|fuzz_http:|deadly signal' \
            "$dir/log" | head -n 80
        ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null || true
    else
        summary+=("$name: ok, ${execs:-?} runs, ${rate:-?} exec/s, $cov")
    fi
done

echo
echo "== fuzz smoke summary"
printf '%s\n' "${summary[@]}"
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ] || {
    echo "failed: ${failed[*]}" >&2
    exit 1
}
