#!/usr/bin/env bash
# Installs what the build and the tests need: Debian packages listed in
# scripts/setup.d/*.packages, and bindgen-cli from crates.io. Idempotent: a
# second run installs nothing.
set -euo pipefail
. "$(dirname "$0")/common.sh"

packages=()
for list in "$REPO_ROOT"/scripts/setup.d/*.packages; do
	while read -r name _; do
		case "$name" in '' | '#'*) continue ;; esac
		packages+=("$name")
	done <"$list"
done

missing=()
for name in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$name" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$name")
done

if [ "${#missing[@]}" -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	[ "$(id -u)" = 0 ] || die "installing packages needs root; run as root or install: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null || die "apt-get update failed"
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install failed for: ${missing[*]}"
	for name in "${missing[@]}"; do
		dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed" ||
			die "package $name is still missing after apt-get install"
	done
fi

command -v cargo >/dev/null || die "cargo not found; install a Rust toolchain (rustup) first"
if ! command -v bindgen >/dev/null; then
	echo "setup: installing bindgen-cli with cargo"
	cargo install --locked bindgen-cli >/dev/null 2>&1 || die "cargo install bindgen-cli failed"
fi

[ -x "$KERNEL_RUSTC" ] || die "$KERNEL_RUSTC not found; the rustc-web package provides it"
[ -d /usr/lib/rustlib/src/rust/library ] || die "Rust library source missing; the rust-web-src package provides it"
echo "setup: everything needed is installed"
