#!/usr/bin/env bash
# Builds the Rust-enabled 6.12 test kernel into the cache, keyed by the source
# version, the config fragment and the toolchain. A cached build is reused.
set -euo pipefail
. "$(dirname "$0")/common.sh"

[ -f "$KERNEL_SOURCE_TARBALL" ] || die "$KERNEL_SOURCE_TARBALL not found; run 'make setup' first"

dir="$(kernel_dir)"
src="$dir/linux"
if [ -f "$dir/built" ] && [ -f "$src/Module.symvers" ]; then
	echo "kernel: cached build at $src"
	exit 0
fi

if [ -f "$dir/built" ]; then
	# A tree from an older version of this script: finish it in place.
	echo "kernel: completing the cached build at $src"
else
	echo "kernel: building in $src (about 10 minutes on 2 cores)"
	rm -rf "$dir"
	mkdir -p "$dir"
	tar -xf "$KERNEL_SOURCE_TARBALL" -C "$dir"
	mv "$dir/linux-source-6.12" "$src"
fi

cd "$src"
rm -f "$dir/built"
# shellcheck disable=SC2086
make $KERNEL_MAKE_FLAGS tinyconfig >/dev/null
./scripts/kconfig/merge_config.sh -m .config "$KERNEL_FRAGMENT" >/dev/null
# shellcheck disable=SC2086
make $KERNEL_MAKE_FLAGS olddefconfig >/dev/null

# merge_config only warns when an option did not take; fail instead, so a
# fragment that the kernel silently ignores is caught here.
missing=0
while IFS= read -r line; do
	case "$line" in CONFIG_*=*) ;; *) continue ;; esac
	if ! grep -qx "$line" .config; then
		echo "kernel: option not set after olddefconfig: $line" >&2
		missing=1
	fi
done <"$KERNEL_FRAGMENT"
[ "$missing" = 0 ] || die "the config fragment $KERNEL_FRAGMENT does not apply to this kernel"

# "modules" writes Module.symvers, which out-of-tree modules link against.
# shellcheck disable=SC2086
make $KERNEL_MAKE_FLAGS -j"$(nproc)" bzImage modules >"$dir/build.log" 2>&1 ||
	{ tail -n 40 "$dir/build.log" >&2; die "kernel build failed; full log: $dir/build.log"; }
touch "$dir/built"
echo "kernel: built $src/arch/x86/boot/bzImage"
