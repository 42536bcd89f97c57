#!/usr/bin/env bash
# Builds a Debian bookworm minbase root file system with debootstrap into the
# cache, keyed by the suite and the package list, and prints its directory.
# The mirror comes from this machine's apt sources.
set -euo pipefail
. "$(dirname "$0")/common.sh"

suite=bookworm
# Beyond minbase: kmod to load the module, libelf1 for libbpf in our
# programs, libraries that the library
# inventory looks for, and busybox for its embedded version string and for
# reboot, which minbase lacks without an init system.
include=busybox,kmod,libelf1,libssl3,libexpat1,libsqlite3-0,libxml2,zlib1g

mkdir -p "$PORTCULLIS_CACHE/rootfs"
# One build at a time: a second caller waits, then reuses the result.
exec 9>"$PORTCULLIS_CACHE/rootfs/.lock"
flock 9

key=$(printf '%s\n' "$suite" "$include" minbase v1 | sha256sum | cut -c1-16)
dir="$PORTCULLIS_CACHE/rootfs/$suite-$key"
if [ -f "$dir/.portcullis-complete" ]; then
	echo "$dir/root"
	exit 0
fi

mirror=$(apt_mirror) || die "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d"
command -v debootstrap >/dev/null || die "debootstrap not found; run 'make setup' first"

echo "rootfs: debootstrap $suite minbase into $dir (a few minutes)" >&2
rm -rf "$dir"
mkdir -p "$dir"
debootstrap --variant=minbase --include="$include" "$suite" "$dir/root" "$mirror" \
	>"$dir/debootstrap.log" 2>&1 ||
	{ tail -n 20 "$dir/debootstrap.log" >&2; die "debootstrap failed; log: $dir/debootstrap.log"; }
# apt's package lists, for apt-cache queries inside the guest.
chroot "$dir/root" apt-get update -q >>"$dir/debootstrap.log" 2>&1 ||
	echo "rootfs: apt-get update in the chroot failed; apt-cache will know only installed packages" >&2
touch "$dir/.portcullis-complete"
echo "$dir/root"
