#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install every build, run and test dependency of Almanac from Debian's packages.
# Idempotent: packages already present are left alone, and apt is not touched at all
# when nothing is missing. Used by the README, .ci/run and the Dockerfile.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
    libmicrohttpd-dev libpq-dev libhiredis-dev libcurl4-openssl-dev libjansson-dev
    libsodium-dev libssl-dev libcmocka-dev libcmark-dev libxml2-dev libzip-dev libmagic-dev libyaml-dev)
# poppler-utils (pdfinfo, pdftotext, pdftoppm; GPL, run as separate programs) and
# tesseract-ocr with its English data: the worker's PDF and OCR extractors.
run_pkgs=(postgresql redis-server nginx ca-certificates poppler-utils tesseract-ocr
    tesseract-ocr-eng)
# The format tests' producers: ghostscript and qpdf (PDFs, encrypted ones), pandoc (ODT,
# EPUB), LibreOffice Impress (ODP, converted from a PPTX).
# openssl: test CAs (tests/lib/tls.mjs); strace: the listen socket's one close;
# python3-yaml: the deployment files' checks read YAML with it (tests/integration/infra).
# The static gates (scripts/lint.sh): shellcheck, clang-tidy and cppcheck.
test_pkgs=(curl wrk procps psmisc iproute2 nodejs strace openssl ghostscript qpdf pandoc
    libreoffice-impress-nogui python3-yaml shellcheck clang-tidy cppcheck
    chromium) # chromium: the web frontend's browser tests (playwright-core drives it)

want=("${build_pkgs[@]}" "${run_pkgs[@]}")
case "${1:-all}" in
build) want=("${build_pkgs[@]}") ;;
all) want+=("${test_pkgs[@]}") ;;
*) echo "usage: scripts/deps.sh [build|all]" >&2; exit 64 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
