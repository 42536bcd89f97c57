# Shared settings for the build and test scripts; sourced, not run.

# The cache lives outside the checkout so fresh clones and CI reuse it.
if [ -z "${PORTCULLIS_CACHE:-}" ]; then
	if [ "$(id -u)" = 0 ]; then
		PORTCULLIS_CACHE=/var/cache/portcullis
	else
		PORTCULLIS_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/portcullis"
	fi
fi
export PORTCULLIS_CACHE
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PORTCULLIS_CACHE/cargo-target}"
export CARGO_TARGET_DIR

# Kernel-side Rust must use Debian's rustc-web, which ships rust-src. The
# rustup rustc that may come first on PATH has neither the source nor the
# version the kernel build was checked with.
KERNEL_RUSTC=/usr/bin/rustc
KERNEL_MAKE_FLAGS="LLVM=1 RUSTC=$KERNEL_RUSTC HOSTRUSTC=$KERNEL_RUSTC"
PATH="$PATH:$HOME/.cargo/bin"
export PATH

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KERNEL_FRAGMENT="${KERNEL_FRAGMENT:-$REPO_ROOT/scripts/kernel.config}"
KERNEL_SOURCE_TARBALL=/usr/src/linux-source-6.12.tar.xz

die() {
	echo "error: $*" >&2
	exit 1
}

# Prints the cache key of the kernel build: the source package version, the
# config fragment, and the compilers, so a change to any of them rebuilds.
kernel_cache_key() {
	{
		dpkg-query -W -f='${Version}\n' linux-source-6.12
		cat "$KERNEL_FRAGMENT"
		"$KERNEL_RUSTC" --version
		clang --version | head -n 1
		bindgen --version
	} | sha256sum | cut -c1-16
}

kernel_dir() {
	echo "$PORTCULLIS_CACHE/kernel/6.12-$(kernel_cache_key)"
}

# Prints the first Debian mirror named in this machine's apt sources.
apt_mirror() {
	local uri
	uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '{print $2}' | grep -v security | head -n 1)
	if [ -z "$uri" ]; then
		uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null |
			awk '{print $2}' | grep -v security | head -n 1)
	fi
	[ -n "$uri" ] && echo "$uri"
}
