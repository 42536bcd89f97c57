#!/usr/bin/env bash
# Scans the cached Debian bookworm root file system with portcullis-libscan
# and checks the inventory against dpkg-query's view of the same root, then
# matches it against the feed samples. The root is only read.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
data="$repo/userspace/libscan/tests/data"
n=0
failed=0

check() {
	local description=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $description"
	else
		echo "not ok $n - $description"
		failed=$((failed + 1))
	fi
}

if ! cargo build --release -q --manifest-path "$repo/userspace/Cargo.toml" -p portcullis-libscan; then
	echo "not ok 1 - build portcullis-libscan"
	exit 1
fi
scanner="$CARGO_TARGET_DIR/release/portcullis-libscan"
if ! root=$(bash "$repo/scripts/build-rootfs.sh"); then
	echo "not ok 1 - build the bookworm root file system"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# dpkg-query's version with the epoch, revision and dfsg repack tag removed.
dpkg_upstream() {
	local version
	version=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Version}' "$1") || return 1
	version=${version#*:}
	version=${version%-*}
	version=${version%%+*}
	version=${version%%~*}
	echo "${version%.dfsg}"
}

inventory="$work/inventory.json"
"$scanner" inventory --root "$root" --json --cache "$work/cache.json" >"$inventory"
status=$?
check "inventory of the root exits 0" test "$status" = 0

# field PATH-SUFFIX JQ-EXPRESSION: the expression's value for the library
# whose path ends in PATH-SUFFIX.
field() {
	jq -r --arg suffix "$1" "[.[] | select(.path | endswith(\$suffix))][0] | $2" "$inventory"
}

binary_string() {
	field "$1" '.sources[] | select(.source == "binary-string") | .version'
}

binary_matches_dpkg() {
	local path=$1 package=$2 expected actual
	expected=$(dpkg_upstream "$package") || return 1
	actual=$(binary_string "$path")
	[ -n "$actual" ] && [ "$actual" = "$expected" ] || {
		echo "# $path: binary string '$actual', dpkg-query $package '$expected'"
		return 1
	}
}

check "libc.so.6 version string agrees with dpkg libc6" binary_matches_dpkg /libc.so.6 libc6
check "libz version string agrees with dpkg zlib1g" binary_matches_dpkg /libz.so.1.2.13 zlib1g
check "libcrypto.so.3 version string agrees with dpkg libssl3" binary_matches_dpkg /libcrypto.so.3 libssl3
check "busybox version string agrees with dpkg busybox" binary_matches_dpkg /usr/bin/busybox busybox
check "libexpat version string agrees with dpkg libexpat1" binary_matches_dpkg /libexpat.so.1.8.10 libexpat1
check "libsqlite3 version string agrees with dpkg libsqlite3-0" binary_matches_dpkg /libsqlite3.so.0.8.6 libsqlite3-0

# musl, Dropbear and OpenSSH are not in the bookworm root; Debian packages
# on this machine give real binaries to read.
# host_binary_matches_dpkg FILE PATH-IN-ROOT PACKAGE
host_binary_matches_dpkg() {
	local file=$1 installed=$2 package=$3 expected actual
	expected=$(dpkg-query -W -f='${Version}' "$package") || return 1
	expected=${expected#*:}
	expected=${expected%-*}
	rm -rf "$work/host"
	mkdir -p "$work/host/$(dirname "$installed")"
	cp "$file" "$work/host/$installed" || return 1
	actual=$("$scanner" inventory --root "$work/host" --directory "$(dirname "$installed")" --json |
		jq -r '.[0].sources[] | select(.source == "binary-string") | .version')
	[ -n "$actual" ] && [ "$actual" = "$expected" ] || {
		echo "# $file: binary string '$actual', dpkg-query $package '$expected'"
		return 1
	}
}

check "musl libc version string agrees with dpkg musl" \
	host_binary_matches_dpkg /lib/x86_64-linux-musl/libc.so /lib/ld-musl-x86_64.so.1 musl
check "dropbear version string agrees with dpkg dropbear-bin" \
	host_binary_matches_dpkg /usr/sbin/dropbear /usr/sbin/dropbear dropbear-bin
check "ssh version string agrees with dpkg openssh-client" \
	host_binary_matches_dpkg /usr/bin/ssh /usr/bin/ssh openssh-client

listed_with_dpkg_version() {
	local suffix=$1 name=$2 package=$3 expected
	expected=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Version}' "$package") || return 1
	[ "$(field "$suffix" .name)" = "$name" ] &&
		[ "$(field "$suffix" .version)" = "$expected" ] &&
		[ "$(field "$suffix" .version_from)" = dpkg ] || {
		echo "# $suffix: $(field "$suffix" '[.name, .version, .version_from] | join(" ")'), expected $name $expected dpkg"
		return 1
	}
}

check "glibc listed with the libc6 version" listed_with_dpkg_version /libc.so.6 glibc libc6
check "zlib listed with the zlib1g version" listed_with_dpkg_version /libz.so.1.2.13 zlib zlib1g
check "openssl listed with the libssl3 version" listed_with_dpkg_version /libssl.so.3 openssl libssl3
check "expat listed with the libexpat1 version" listed_with_dpkg_version /libexpat.so.1.8.10 expat libexpat1
check "sqlite listed with the libsqlite3-0 version" listed_with_dpkg_version /libsqlite3.so.0.8.6 sqlite libsqlite3-0
check "libxml2 listed with the libxml2 version" listed_with_dpkg_version /libxml2.so.2.9.14 libxml2 libxml2
check "busybox listed with the busybox version" listed_with_dpkg_version /usr/bin/busybox busybox busybox
check "expat listed for libexpatw too" listed_with_dpkg_version /libexpatw.so.1.8.10 expat libexpat1
# The base system has no statically linked copies of known products, so
# every file is one entry.
check "no file listed twice" test -z "$(jq -r '.[].path' "$inventory" | sort | uniq -d)"
check "libssl.so.3 has its SONAME and architecture" \
	test "$(field /libssl.so.3 '.soname + " " + .architecture')" = "libssl.so.3 x86_64"

# A scan with the CVE samples: glibc 2.36 is inside CVE-2024-2961's
# upstream range, so the exit status is 1.
report="$work/report.json"
"$scanner" scan --root "$root" --feed "$data/cve" --feed "$data/alpine-v3.11-main.yaml" --json --cache "$work/cache.json" >"$report"
status=$?
check "scan with feeds exits 1 for a vulnerable library" test "$status" = 1
check "glibc is affected by CVE-2024-2961, fixed in 2.40" test "$(jq -r '[.libraries[] | select(.name == "glibc") | .findings[] | select(.advisory == "CVE-2024-2961" and .status == "affected") | .fixed][0]' "$report")" = 2.40
check "zlib has CVE-2022-37434 to review" test "$(jq -r '[.libraries[] | select(.name == "zlib") | .findings[] | select(.advisory == "CVE-2022-37434") | .status][0]' "$report")" = needs-review
check "second scan parses no file again" test "$(jq -r .files_parsed "$report")" = 0
check "second scan examined files" test "$(jq -r .files_examined "$report")" -gt 100

# The default output is a table with a header and a totals line.
"$scanner" scan --root "$root" --feed "$data/cve" --cache "$work/cache.json" >"$work/table.txt"
check "table lists zlib with its dpkg version" grep -qE '^zlib +1:1\.2\.13\.dfsg-1 +dpkg ' "$work/table.txt"

# A truncated feed is rejected with its path and position, and exit 2.
head -c 2000 "$data/cve/CVE-2023-0286.json" >"$work/truncated.json"
"$scanner" scan --root "$root" --feed "$work/truncated.json" >/dev/null 2>"$work/error.txt"
status=$?
check "truncated feed exits 2" test "$status" = 2
check "truncated feed error names file and line" grep -q "invalid feed $work/truncated.json at line [0-9]* column [0-9]*" "$work/error.txt"

echo "# $n checks, $failed failed"
[ "$failed" = 0 ]
