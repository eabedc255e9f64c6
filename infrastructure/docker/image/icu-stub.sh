#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Replaces ICU's 31 MB data library (libicudata.so.72, needed only because Debian's
# libxml2 links ICU) under ROOT with one that holds an empty ICU data package.
#
# Why this is safe for almanac: libxml2 uses ICU only to convert a document's encoding
# when iconv cannot, and almanac hands libxml2 nothing but UTF-8 (src/extract.c parses
# HTML with the encoding "UTF-8"; other charsets are converted by glibc's iconv in
# src/text.c first). ICU loads its data lazily, on first use, so the loader is satisfied
# by the symbol and nothing ever reads the (empty) tables. If a future change made ICU
# open a converter, ICU would fail with U_FILE_ACCESS_ERROR (libxml2: "unsupported
# encoding"), never crash. tests/deploy/run.sh ingests an HTML document in the image.
#
#   icu-stub.sh ROOT      (needs icu-devtools' icupkg and a C compiler)
set -eu
root=${1:?usage: icu-stub.sh ROOT}
lib=$(find "$root" -name 'libicudata.so.*.*' -type f | head -1)
[ -n "$lib" ] || { echo "icu-stub.sh: no libicudata under $root" >&2; exit 66; }
major=$(basename "$lib" | sed -n 's/^libicudata\.so\.\([0-9]*\)\..*/\1/p')
tmp=$(mktemp -d)
# A valid, empty common-data package ("l": little-endian ASCII), named as ICU expects.
icupkg -tl new "$tmp/icudt${major}l.dat"
cat >"$tmp/stub.S" <<ASM
    .section .rodata
    .globl icudt${major}_dat
    .type icudt${major}_dat, @object
    .balign 16
icudt${major}_dat:
    .incbin "$tmp/icudt${major}l.dat"
    .size icudt${major}_dat, . - icudt${major}_dat
    .section .note.GNU-stack,"",@progbits
ASM
soname=$(basename "$lib" | sed 's/^\(libicudata\.so\.[0-9]*\)\..*/\1/')
cc -shared -nostdlib -Wl,-soname,"$soname" -o "$tmp/stub.so" "$tmp/stub.S"
cp "$tmp/stub.so" "$lib"
rm -rf "$tmp"
echo "icu-stub.sh: $lib is now $(wc -c <"$lib") bytes (empty ICU data)"
