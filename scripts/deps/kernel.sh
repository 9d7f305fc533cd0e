#!/usr/bin/env bash
# The pinned Debian kernel of each board definition with a [kernel] table
# (boards/definitions/boards/*.toml), fetched with apt-get download into the kernel
# cache skerryctl image build reads: $SKERRY_KERNEL_CACHE, default
# /var/cache/skerry/kernels, as <package>_<version>_amd64.deb. Idempotent: a package
# already there is kept. Needed by firmware/skerryctl/tests/image_*.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=${SKERRY_KERNEL_CACHE:-/var/cache/skerry/kernels}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
for board in boards/definitions/boards/*.toml; do
    # The [kernel] table's two keys (package, version), as written in the definitions.
    pin=$(awk '/^\[/ { t = $0 } t == "[kernel]" && /^(package|version) *=/ { gsub(/[" ]/, "", $0); split($0, kv, "="); printf "%s ", kv[2] }' "$board")
    [ -n "$pin" ] || continue
    read -r package version <<<"$pin"
    deb="$cache/${package}_${version}_amd64.deb"
    if [ -f "$deb" ] && [ "$(dpkg-deb -f "$deb" Version)" = "$version" ]; then
        continue
    fi
    as_root mkdir -p "$cache"
    echo "kernel.sh: apt-get download $package=$version into $cache ($(basename "$board"))"
    # apt's sandbox user cannot write a root-owned cache; download in a temp dir, then move.
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -q "$package=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    [ -f "$tmp/$(basename "$deb")" ] || { echo "kernel.sh: apt-get download $package=$version gave no $(basename "$deb") (apt-get update first?)" >&2; rm -rf "$tmp"; exit 1; }
    as_root mv "$tmp/$(basename "$deb")" "$deb"
    rm -rf "$tmp"
done
