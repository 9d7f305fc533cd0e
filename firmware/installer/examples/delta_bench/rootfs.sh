#!/usr/bin/env bash
# Builds the realistic delta benchmark's inputs: two root filesystem trees of a small
# Debian 12 system (v1 = debootstrap --variant=minbase; v2 = a copy of v1's tree with a
# few more packages installed in the same run, so mirror drift cannot blur the figure),
# their package lists (dpkg-query) beside them, and from each tree a reproducible ext4
# image (mke2fs -d, fixed UUID, hash seed and times; no loop device, no mount) and an
# uncompressed squashfs image (mksquashfs -noI -noId -noD -noF -noX -reproducible).
#
# Usage: rootfs.sh CACHE_DIR   (prints the directory holding v1.ext4 v2.ext4 v1.sqfs
#                               v2.sqfs v1.packages v2.packages)
#
# Trees are cached under CACHE_DIR/trees/KEY, KEY being a hash of the recipe (suite,
# variant, mirror, extra packages); images under CACHE_DIR/images/KEY2, KEY2 a hash of
# both package lists and of the image recipe. A rerun with the same recipe reuses both.
set -euo pipefail

cache=${1:?usage: rootfs.sh CACHE_DIR}
suite=bookworm
variant=minbase
extra="curl less nano"
# v1's and v2's release times: files newer than that are clamped to it, and it is the
# filesystems' own time, as a reproducible OS image build does.
epoch_v1=1735689600 # 2025-01-01
epoch_v2=1738368000 # 2025-02-01
uuid=5d6c0c1e-8a52-4a0e-9b3f-2f0c3c1d4e5a
hash_seed=0b5e9c2a-3d41-4f6e-8a7b-1c2d3e4f5a6b

for tool in debootstrap chroot mke2fs debugfs mksquashfs dpkg-query sha256sum; do
    command -v "$tool" >/dev/null || { echo "rootfs.sh: missing $tool: run scripts/install-deps bench" >&2; exit 1; }
done
# The mirror apt already uses (only Debian's registry is reachable here).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1 || true)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1 || true)
[ -n "$mirror" ] || { echo "rootfs.sh: no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list" >&2; exit 1; }

key=$(printf '%s\n' "$suite" "$variant" "$mirror" "$extra" "$epoch_v1" "$epoch_v2" "recipe-1" | sha256sum | cut -c1-16)
trees=$cache/trees/$key
mkdir -p "$cache/trees"

clamp() { # clamp TREE EPOCH: no file in TREE is newer than EPOCH
    find "$1" -xdev -newermt "@$2" -exec touch -h -d "@$2" {} +
}
# Leaves a tree as an OS image would ship it: no apt lists or caches, no machine id.
tidy() {
    chroot "$1" apt-get clean
    rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/debconf/*-old \
        "$1"/var/lib/dpkg/*-old "$1"/var/log/*.log.* "$1"/usr/sbin/policy-rc.d
    : >"$1/etc/machine-id"
}
# mke2fs -d copies each file's atime and ctime from the host tree (when this run read
# or copied it) and stamps every crtime with the build time: set all three to the file's
# own mtime, as a reproducible image build would, so an unchanged file has an unchanged
# inode. One debugfs run edits the image file (no mount).
inode_times() { # inode_times IMAGE TREE EPOCH
    local odd
    odd=$(find "$2" -xdev \( -name '*["\\]*' -o -name "*$'\n'*" \) -print -quit)
    [ -z "$odd" ] || { echo "rootfs.sh: a file name debugfs cannot quote: $odd" >&2; exit 1; }
    find "$2" -xdev -printf '%T@ /%P\n' | awk '{
        t = $1; sub(/\..*/, "", t); p = substr($0, index($0, " ") + 1)
        for (f = 1; f <= 3; f++) {
            n = f == 1 ? "atime" : f == 2 ? "ctime" : "crtime"
            printf "sif \"%s\" %s @%s\nsif \"%s\" %s_extra 0\n", p, n, t, p, n
        }
    }' >"$1.debugfs"
    E2FSPROGS_FAKE_TIME=$3 debugfs -w -f "$1.debugfs" "$1" >/dev/null 2>"$1.debugfs.log" \
        || { tail -n 5 "$1.debugfs.log" >&2; echo "rootfs.sh: debugfs failed on $1" >&2; exit 1; }
    if grep -v '^debugfs ' "$1.debugfs.log" | grep -q .; then
        grep -v '^debugfs ' "$1.debugfs.log" | head -n 5 >&2
        echo "rootfs.sh: debugfs could not set every inode time of $1" >&2
        exit 1
    fi
    rm -f "$1.debugfs" "$1.debugfs.log"
}
packages() { # packages TREE OUT: name version arch, one a line, sorted
    dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${Package} ${Version} ${Architecture}\n' | sort >"$2"
}

if [ ! -e "$trees/done" ]; then
    rm -rf "$trees"
    mkdir -p "$trees"
    echo "rootfs.sh: debootstrap --variant=$variant $suite from $mirror (a few minutes)" >&2
    debootstrap --variant="$variant" "$suite" "$trees/v1" "$mirror" >"$trees/debootstrap.log" 2>&1 \
        || { tail -n 20 "$trees/debootstrap.log" >&2; echo "rootfs.sh: debootstrap failed (log: $trees/debootstrap.log)" >&2; exit 1; }
    tidy "$trees/v1"
    clamp "$trees/v1" "$epoch_v1"
    packages "$trees/v1" "$trees/v1.packages"

    echo "rootfs.sh: v2 = v1 + $extra" >&2
    cp -a "$trees/v1" "$trees/v2"
    printf '#!/bin/sh\nexit 101\n' >"$trees/v2/usr/sbin/policy-rc.d"
    chmod +x "$trees/v2/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$trees/v2/etc/resolv.conf" 2>/dev/null || true
    {
        chroot "$trees/v2" apt-get update
        # shellcheck disable=SC2086 # the package names are words
        DEBIAN_FRONTEND=noninteractive chroot "$trees/v2" apt-get install -y --no-install-recommends $extra
    } >"$trees/apt.log" 2>&1 || { tail -n 20 "$trees/apt.log" >&2; echo "rootfs.sh: apt-get install in v2 failed (log: $trees/apt.log)" >&2; exit 1; }
    cp -a "$trees/v1/etc/resolv.conf" "$trees/v2/etc/resolv.conf" 2>/dev/null || rm -f "$trees/v2/etc/resolv.conf"
    tidy "$trees/v2"
    clamp "$trees/v2" "$epoch_v2"
    packages "$trees/v2" "$trees/v2.packages"
    touch "$trees/done"
fi

# One slot size for both versions (a slot does not grow with a release): v2's tree with
# a quarter of headroom, rounded up to 16 MiB.
kib=$(du -sk --apparent-size "$trees/v2" | cut -f1)
slot_mib=$(( (kib * 5 / 4 / 1024 + 32 + 15) / 16 * 16 ))
ikey=$(cat "$trees/v1.packages" "$trees/v2.packages" | { cat; printf '%s\n' "$slot_mib" "$uuid" "$hash_seed" "image-recipe-3"; } | sha256sum | cut -c1-16)
images=$cache/images/$ikey
if [ ! -e "$images/done" ]; then
    rm -rf "$images"
    mkdir -p "$images"
    for v in v1 v2; do
        epoch=$epoch_v1
        [ "$v" = v2 ] && epoch=$epoch_v2
        cp "$trees/$v.packages" "$images/$v.packages"
        E2FSPROGS_FAKE_TIME=$epoch SOURCE_DATE_EPOCH=$epoch mke2fs -q -F -t ext4 -b 4096 \
            -U "$uuid" -E "hash_seed=$hash_seed,root_owner=0:0" -L rootfs \
            -d "$trees/$v" "$images/$v.ext4" "${slot_mib}M" >&2
        inode_times "$images/$v.ext4" "$trees/$v" "$epoch"
        mksquashfs "$trees/$v" "$images/$v.sqfs" \
            -noI -noId -noD -noF -noX -reproducible -mkfs-time "$epoch" -quiet -no-progress >/dev/null
    done
    touch "$images/done"
fi
echo "$images"
