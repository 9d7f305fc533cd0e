#!/usr/bin/env bash
# The arm64 guest of the qemu-arm64-uboot board (hil-tests/src/rig/uboot_arm64.rs,
# hil-tests/tests/scenarios_uboot_arm64.rs): Debian's generic arm64 kernel (its Image
# boots under U-Boot's booti; i6300esb.ko is the guest's watchdog driver) and
# busybox-static for arm64 (the guests' /init), both pinned, downloaded as .debs into
# $SKERRY_ARM64_CACHE (default /var/cache/skerry/arm64) as <package>_<version>_arm64.deb.
#
# No `dpkg --add-architecture`: apt runs with a private list directory, a private source
# list (the mirror apt already uses) and -o APT::Architecture=arm64, so the host's own
# apt state and architectures are left as they are. Idempotent: a .deb already there
# with the pinned version is kept, and nothing is fetched. The board's host tools come
# from the other lists: qemu-system-arm (qemu.backports.apt), u-boot-qemu, u-boot-tools,
# libubootenv-tool, gdisk, dosfstools, mtools (bootstate-uboot-grub.apt), e2fsprogs.
set -euo pipefail
cache=${SKERRY_ARM64_CACHE:-/var/cache/skerry/arm64}
# Keep these two pins in step with hil-tests/src/rig/uboot_arm64/guest.rs.
pins=(
    "linux-image-6.1.0-48-arm64=6.1.172-1"
    "busybox-static=1:1.35.0-4+deb12u1+b1"
)
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The .deb a pin is kept as (an epoch is not part of the file name).
deb_of() { local package=${1%%=*} version=${1#*=}; echo "$cache/${package}_${version#*:}_arm64.deb"; }

missing=()
for pin in "${pins[@]}"; do
    deb=$(deb_of "$pin")
    if [ -f "$deb" ] && [ "$(dpkg-deb -f "$deb" Version)" = "${pin#*=}" ] \
        && [ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ]; then
        continue
    fi
    missing+=("$pin")
done
[ "${#missing[@]}" -gt 0 ] || exit 0

mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources | awk '{print $2}' | grep -v security | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
security=$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources | awk '{print $2}' | grep security | head -n 1)
[ -n "$security" ] || security=${mirror%/debian}/debian-security
if [ -z "$mirror" ]; then
    echo "arm64-guest.sh: no Debian mirror found in /etc/apt/sources.list{,.d/debian.sources}" >&2
    exit 1
fi

# apt's private state: lists, cache and sources of arm64 only, in a temp directory
# readable by apt's sandbox user.
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
chmod 755 "$state"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/dl"
cat >"$state/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
apt_arm64=(
    -o APT::Architecture=arm64
    -o APT::Architectures::=arm64
    -o Dir::State::Lists="$state/lists"
    -o Dir::State::status=/dev/null
    -o Dir::Etc::SourceList="$state/sources.list"
    -o Dir::Etc::SourceParts=/nonexistent
    -o Dir::Cache="$state/cache"
    -o Debug::NoLocking=1
)
echo "arm64-guest.sh: apt-get update (arm64, private lists from $mirror)"
apt-get "${apt_arm64[@]}" update -qq
chmod 777 "$state/dl"
for pin in "${missing[@]}"; do
    echo "arm64-guest.sh: apt-get download $pin (arm64) into $cache"
    (cd "$state/dl" && apt-get "${apt_arm64[@]}" download -q "$pin" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    package=${pin%%=*}
    got=$(find "$state/dl" -maxdepth 1 -name "${package}_*_arm64.deb" | head -n 1)
    if [ -z "$got" ] || [ "$(dpkg-deb -f "$got" Version)" != "${pin#*=}" ]; then
        echo "arm64-guest.sh: apt-get download $pin gave no arm64 .deb of that version (is it still in the archive? update the pin here and in hil-tests/src/rig/uboot_arm64/guest.rs)" >&2
        exit 1
    fi
    as_root mkdir -p "$cache"
    as_root mv "$got" "$(deb_of "$pin")"
done
