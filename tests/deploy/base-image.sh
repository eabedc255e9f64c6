#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes the Debian bookworm base image that the Dockerfiles start from, for machines
# that cannot pull images. The image is built with debootstrap from the configured
# Debian archive and imported under the official name (debian:bookworm-slim), so
# that an unchanged `FROM docker.io/library/debian:bookworm-slim` resolves to it
# without a pull. Production builds use the real upstream image of the same tag.
# Skipped when podman already holds the image (about 45 s and 200 MB otherwise).
set -euo pipefail

image=docker.io/library/debian:bookworm-slim
if podman image exists "$image"; then
    echo "base image: $image (cached)"
    exit 0
fi

command -v debootstrap >/dev/null || {
    echo "base image: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
}
mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || { echo "base image: no Debian archive configured in apt's sources" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "base image: debootstrap bookworm (minbase)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
fi
# Like the official slim image: no package lists, no apt cache, no docs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/*
tar -C "$root" -c . | podman import -q --change 'CMD ["bash"]' - "$image" >/dev/null
echo "base image: $image imported"
