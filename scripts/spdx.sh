#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source file of Almanac says its licence in its first lines (an SPDX tag), so a
# file copied out of the tree still carries it. Almanac is Apache-2.0 (LICENSE).
#
#   scripts/spdx.sh          # adds the tag where it is missing
#   scripts/spdx.sh --check  # lists files without it and exits 1 (scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
tag="SPDX-License-Identifier: Apache-2.0"
mode=${1:-fix}

# The comment that carries the tag in each kind of file; files of other kinds are data.
comment_for() {
    case "$1" in
    *.c | *.h | *.js | *.mjs | *.css) echo "/* $tag */" ;;
    *.sh | *.cmake | CMakeLists.txt | */CMakeLists.txt | *.yml | *.yaml | *.conf | *.template | \
        Dockerfile | */Dockerfile | Dockerfile.* | */Dockerfile.* | .ci/run) echo "# $tag" ;;
    *.sql) echo "-- $tag" ;;
    *) return 1 ;;
    esac
}

missing=0
while IFS= read -r f; do
    line=$(comment_for "$f") || continue
    head -n 3 "$f" | grep -q "$tag" && continue
    if [ "$mode" = --check ]; then
        echo "no SPDX tag: $f"
        missing=$((missing + 1))
        continue
    fi
    tmp=$(mktemp)
    # After a #! line or a Dockerfile's syntax directive, which must stay first, or a
    # migration's compatible-from line, which cmake/embed_migrations.cmake reads from the
    # first line; otherwise as the first line.
    if head -n 1 "$f" | grep -qE '^(#!|-- compatible-from:|# syntax=)'; then
        { head -n 1 "$f"; echo "$line"; tail -n +2 "$f"; } >"$tmp"
    else
        { echo "$line"; cat "$f"; } >"$tmp"
    fi
    chmod --reference="$f" "$tmp"
    mv "$tmp" "$f"
done < <(git ls-files -- ':!tests/eval/corpus' ':!tests/fuzz/corpus' ':!tests/contracts' \
    ':!*package-lock.json' ':!*.json' ':!*.md')

if [ "$mode" = --check ] && [ "$missing" -gt 0 ]; then
    echo "spdx: $missing files without '$tag' (run scripts/spdx.sh)" >&2
    exit 1
fi
exit 0
