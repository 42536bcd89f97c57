#!/usr/bin/env bash
# Policy generation over a fixture root: digests against sha256sum, a
# mount point below the root (in a private mount namespace), an unreadable
# file seen by an unprivileged user, and the saved file. Needs root for
# the mount namespace and for switching users.
set -uo pipefail
. "$(dirname "$0")/../../scripts/common.sh"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release --quiet \
	--manifest-path "$REPO_ROOT/userspace/Cargo.toml" -p portcullis-policy ||
	die "policy-generate.t: cargo build failed"
generator=$CARGO_TARGET_DIR/release/portcullis-policy-generate

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

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
root=$work/root
mkdir -p "$root/usr/bin" "$root/usr/lib" "$root/etc" "$root/mnt"
cp /bin/true "$root/usr/bin/true"
for libc in /lib/*-linux-gnu/libc.so.6 /lib64/libc.so.6; do
	[ -f "$libc" ] && break
done
[ -f "$libc" ] || die "policy-generate.t: no libc.so.6 on the host to copy as a shared object"
cp "$libc" "$root/usr/lib/libc.so.6"
printf '#!/bin/sh\necho hello\n' >"$root/usr/bin/hello"
chmod 755 "$root/usr/bin/hello"
echo "data" >"$root/etc/data.conf"

# Prints the sha256 of the entry for device path $2 in policy file $1.
# The policy is pretty-printed with "sha256" on the line after "path".
entry_digest() {
	grep -A1 -F "\"path\": \"$2\"," "$1" | sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p'
}

digest_matches() {
	local policy=$1 device_path=$2
	[ "$(entry_digest "$policy" "$device_path")" = "$(sha256sum <"$root$device_path" | cut -d' ' -f1)" ]
}

# In a private mount namespace: a tmpfs on /mnt with an executable in it;
# a bind mount on /srv/outside of a directory outside the root, which has
# the root's st_dev, so only statx shows it is a mount; and a bind mount of
# the root below itself on /srv/loop. Generation must walk into none of them.
mkdir -p "$root/srv/outside" "$root/srv/loop" "$work/outside"
cp /bin/true "$work/outside/true"
unshare --mount --propagation private bash -c '
	mount -t tmpfs portcullis-test "$1/mnt" && cp /bin/true "$1/mnt/true" &&
	mount --bind "$5" "$1/srv/outside" &&
	mount --bind "$1" "$1/srv/loop" &&
	timeout 60 "$2" "$1" --output "$3" 2>"$4"
' _ "$root" "$generator" "$work/policy.json" "$work/stderr" "$work/outside"
status=$?

check "generator exits 0" [ "$status" = 0 ]
check "policy file has the format tag" grep -q '"format": "portcullis-policy"' "$work/policy.json"
check "executable digest equals sha256sum" digest_matches "$work/policy.json" /usr/bin/true
check "shared object digest equals sha256sum" digest_matches "$work/policy.json" /usr/lib/libc.so.6
check "script digest equals sha256sum" digest_matches "$work/policy.json" /usr/bin/hello
check "data file is not in the policy" bash -c "! grep -q /etc/data.conf '$work/policy.json'"
check "file on a mount point is not in the policy" bash -c "! grep -q '/mnt/true' '$work/policy.json'"
check "bind mount is not in the policy" bash -c "! grep -q '/srv/' '$work/policy.json'"
check "mount points counted as skipped" grep -q 'directories_skipped=3 ' "$work/stderr"
check "mount is gone after the namespace exits" bash -c "[ ! -e '$root/mnt/true' ]"

# An unreadable executable, with generation run as nobody: root would read
# it whatever its mode.
cp /bin/true "$root/usr/bin/secret"
chmod 000 "$root/usr/bin/secret"
setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$generator" "$root" >"$work/nobody.json" 2>"$work/nobody.stderr"
status=$?
check "generator as nobody exits 0 despite the unreadable file" [ "$status" = 0 ]
check "warning names the unreadable file" \
	grep -q "^warning: $root/usr/bin/secret: failed to open: Permission denied" "$work/nobody.stderr"
check "unreadable file is not in the policy" bash -c "! grep -q /usr/bin/secret '$work/nobody.json'"
check "readable files are still in the policy" digest_matches "$work/nobody.json" /usr/bin/true

# A missing root is an error that names it.
"$generator" "$work/absent" >/dev/null 2>"$work/absent.stderr"
status=$?
check "missing root exits non-zero" [ "$status" != 0 ]
check "missing root error names the path" grep -q "$work/absent" "$work/absent.stderr"

echo "1..$n"
[ "$failed" = 0 ]
