#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The static gates: shellcheck over every shell script of the repository (found by its
# shebang or its .sh name), clang-tidy over src/ (the checks of .clang-tidy, every
# finding an error) and cppcheck over src/, both with the compile database of the
# release build (build/compile_commands.json: scripts/build.sh makes it). Each gate
# prints its findings and how long it took; the script fails when any gate found
# something. About a minute on 2 cores, the analyser of clang-tidy most of it.
# Usage: scripts/lint.sh [shellcheck|clang-tidy|cppcheck]...  (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."

db=build/compile_commands.json
jobs=$(nproc 2>/dev/null || echo 2)

shell_scripts() {
    git ls-files -co --exclude-standard | while IFS= read -r f; do
        [ -f "$f" ] || continue
        case "$f" in
        *.sh) echo "$f" ;;
        *) head -n1 "$f" 2>/dev/null | grep -qE '^#!.*[/ ](ba|da)?sh( |$)' && echo "$f" ;;
        esac
    done
}

c_sources() { git ls-files -co --exclude-standard 'src/*.c'; }

need_db() {
    [ -f "$db" ] || { echo "lint: $db is missing: run scripts/build.sh first" >&2; exit 1; }
}

gate_shellcheck() {
    local files
    mapfile -t files < <(shell_scripts)
    echo "shellcheck: ${#files[@]} scripts"
    shellcheck -x -P SCRIPTDIR -f gcc "${files[@]}"
}

gate_clang_tidy() {
    need_db
    local files
    mapfile -t files < <(c_sources)
    echo "clang-tidy: ${#files[@]} files of src/ (checks: .clang-tidy)"
    # One file an invocation, so that the cores share the work; the noise of its
    # summaries is dropped, the findings and xargs' status (123: some file failed) kept.
    local out rc=0
    out=$(mktemp)
    printf '%s\n' "${files[@]}" | xargs -P "$jobs" -n 1 clang-tidy -p build --quiet >"$out" 2>&1 || rc=$?
    grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter' "$out" || true
    rm -f "$out"
    return "$rc"
}

gate_cppcheck() {
    need_db
    echo "cppcheck: src/ of $db"
    cppcheck --project="$db" --file-filter='src/*' --enable=warning,performance,portability \
        --error-exitcode=1 --inline-suppr --quiet -j "$jobs" \
        --template='{file}:{line}:{column}: {severity}: {message} [{id}]' 2>&1
}

gates=("$@")
[ ${#gates[@]} -gt 0 ] || gates=(shellcheck clang-tidy cppcheck)
failed=()
for g in "${gates[@]}"; do
    case "$g" in
    shellcheck | clang-tidy | cppcheck) ;;
    *) echo "usage: scripts/lint.sh [shellcheck|clang-tidy|cppcheck]..." >&2; exit 64 ;;
    esac
    t0=$SECONDS
    if "gate_${g//-/_}"; then status=clean; else status=FAILED; failed+=("$g"); fi
    echo "$g: $status in $((SECONDS - t0)) s"
done
[ ${#failed[@]} -eq 0 ] || { echo "lint: findings from ${failed[*]}" >&2; exit 1; }
