#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Copies named executables and every shared library they load (as ldd resolves them,
# the dynamic loader included) into a root directory, at the same paths, so that a
# `FROM scratch` stage can take the result with one COPY. Used by the Dockerfile's
# `collect` stage for almanac and for extra tools (pdftotext and the like) that almanac
# runs as child processes:
#
#   collect.sh ROOT /usr/local/bin/almanac /usr/bin/pdftotext ...
#
# Symbolic links along a library's path are kept as links (libfoo.so.1 -> libfoo.so.1.2.3)
# so the SONAME the binary asks for resolves. Fails when a library does not resolve.
set -eu
root=${1:?usage: collect.sh ROOT EXECUTABLE...}
shift
[ $# -gt 0 ] || { echo "collect.sh: no executable named" >&2; exit 64; }

copy_path() { # a file or a chain of links, each at its own path under $root
    p=$1
    while :; do
        mkdir -p "$root$(dirname "$p")"
        if [ -L "$p" ]; then
            [ -e "$root$p" ] || cp -P "$p" "$root$p"
            t=$(readlink "$p")
            case $t in /*) p=$t ;; *) p=$(dirname "$p")/$t ;; esac
        else
            [ -e "$root$p" ] || cp -p "$p" "$root$p"
            return 0
        fi
    done
}

for exe in "$@"; do
    [ -x "$exe" ] || { echo "collect.sh: $exe is not an executable file" >&2; exit 66; }
    if ldd "$exe" 2>&1 | grep -q 'not found'; then
        ldd "$exe" | grep 'not found' >&2
        echo "collect.sh: $exe: a shared library does not resolve" >&2
        exit 69
    fi
    copy_path "$exe"
    # "libx.so.1 => /usr/lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    for lib in $(ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        copy_path "$lib"
    done
done
