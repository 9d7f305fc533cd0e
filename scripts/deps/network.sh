#!/usr/bin/env bash
# chronyd for the SNTP interop test (firmware/skerryd/controllers/network/tests/sntp.rs).
# Debian's chrony package conflicts with systemd-timesyncd (both provide time-daemon) and
# install-deps never removes a package, so the package is downloaded with apt and only
# unpacked into /opt/skerry/chrony; the test runs /opt/skerry/chrony/usr/sbin/chronyd
# with -x (it never touches the host clock). Idempotent.
set -euo pipefail
dest=/opt/skerry/chrony
if [ -x "$dest/usr/sbin/chronyd" ] && "$dest/usr/sbin/chronyd" -v >/dev/null 2>&1; then
    exit 0
fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# chronyd's shared libraries (the package's Depends, minus what only the service needs).
missing=()
for pkg in libcap2 libedit2 libgnutls30 libnettle8 libseccomp2; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    as_root apt-get install -y --no-remove "${missing[@]}"
fi
(cd "$work" && apt-get download chrony)
as_root mkdir -p "$dest"
as_root dpkg-deb -x "$work"/chrony_*.deb "$dest"
"$dest/usr/sbin/chronyd" -v
