#!/usr/bin/env bash
# Remote attestation end to end on 127.0.0.1: the verifier over HTTPS with a
# certificate made here, and the device agent run standalone. Covers the
# baseline upload while the verifier is down, an unchanged device, a changed,
# a deleted and an added file, and a replayed answer. Prints TAP.
set -uo pipefail

top="$(cd "$(dirname "$0")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$top/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
bin="$CARGO_TARGET_DIR/release"
work="$(mktemp -d /tmp/attest-e2e.XXXXXX)"
verifier_pid=""

cleanup() {
	[ -n "$verifier_pid" ] && kill "$verifier_pid" 2>/dev/null && wait "$verifier_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

count=0
failures=0
# check DESCRIPTION COMMAND...: runs the command and prints one TAP line.
check() {
	local description="$1"
	shift
	count=$((count + 1))
	if "$@"; then
		echo "ok $count - $description"
	else
		echo "not ok $count - $description"
		failures=$((failures + 1))
	fi
}

if ! cargo build --release -q --manifest-path "$top/userspace/Cargo.toml" \
	-p portcullis-attest -p portcullis-verifier; then
	echo "not ok 1 - build portcullis-attest and portcullis-verifier"
	exit 1
fi

# quiet COMMAND...: runs the command with its output in commands.log.
quiet() {
	"$@" >>"$work/commands.log" 2>&1
}

# start_verifier [PORT]: starts the verifier on PORT (0 picks one) and sets
# $port from its log once it listens.
start_verifier() {
	"$bin/portcullis-verifier" serve --listen "127.0.0.1:${1:-0}" \
		--cert "$work/tls/cert.pem" --key "$work/tls/key.pem" \
		--db "$work/verifier.db" --operator-token-file "$work/operator.token" --require-enrolment \
		>>"$work/verifier.log" 2>&1 &
	verifier_pid=$!
	for _ in $(seq 100); do
		port=$(sed -n 's|.*verifier listening on https://127.0.0.1:\([0-9]*\),.*|\1|p' "$work/verifier.log" | tail -1)
		[ -n "$port" ] && [ "${1:-0}" = 0 -o "$port" = "${1:-0}" ] && return 0
		sleep 0.1
	done
	echo "# verifier did not start:"; sed 's/^/# /' "$work/verifier.log"
	return 1
}

stop_verifier() {
	kill "$verifier_pid" && wait "$verifier_pid" 2>/dev/null
	verifier_pid=""
}

agent() {
	local command="$1"
	shift
	"$bin/portcullis-attest" "$command" --verifier "https://127.0.0.1:$port" --ca "$work/tls/ca.pem" \
		--device-id dev1 --state-dir "$work/state" "$@"
}

report() {
	"$bin/portcullis-verifier" report dev1 --db "$work/verifier.db" "$@"
}

head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/operator.token"

# The measured tree.
files="$work/files"
mkdir -p "$files/etc" "$files/bin"
for name in passwd group hosts; do echo "$name contents" >"$files/etc/$name"; done
for name in init sh busybox; do head -c 100000 /dev/urandom >"$files/bin/$name"; done
echo "scratch" >"$files/etc/scratch.tmp"
cat >"$work/baseline.rules" <<EOF
hash sha256
attributes size mode uid gid link
tree $files
exclude $files/**/*.tmp
EOF

check "gen-cert makes a CA and a server certificate" \
	quiet "$bin/portcullis-verifier" gen-cert --out-dir "$work/tls" --san 127.0.0.1
check "verifier starts on 127.0.0.1" start_verifier 0
"$bin/portcullis-attest" register --verifier "https://127.0.0.1:$port" --ca "$work/tls/ca.pem" \
	--device-id dev3 --state-dir "$work/state3" --attempts 1 >"$work/unenrolled.out" 2>&1
check "device without an enrolment token cannot register" test $? -ne 0
check "the refusal says why" grep -q "needs an enrolment token" "$work/unenrolled.out"
token=$("$bin/portcullis-verifier" enrol dev1 --db "$work/verifier.db")
check "device registers with its enrolment token" quiet agent register --enrolment-token "$token"
check "device key is stored with mode 600" test "$(stat -c %a "$work/state/device.json")" = 600

# Baseline while the verifier is down: stored, not acknowledged, then sent by
# an upload that retries until the verifier is back.
stop_verifier
agent baseline --rules "$work/baseline.rules" --attempts 1 >"$work/baseline.out" 2>&1
check "baseline fails while the verifier is down" test $? -ne 0
check "unacknowledged baseline is kept" \
	grep -q '"baseline_acknowledged":false' <("$bin/portcullis-attest" status --state-dir "$work/state" --json)
agent upload --attempts 30 --backoff-ms 200 >"$work/upload.out" 2>&1 &
upload_pid=$!
sleep 1
check "verifier restarts on the same port" start_verifier "$port"
wait "$upload_pid"
check "upload retries until the verifier acknowledges" test $? -eq 0
check "upload log shows a retry" grep -q "retrying in" "$work/upload.out"
check "baseline is acknowledged" \
	grep -q '"baseline_acknowledged":true' <("$bin/portcullis-attest" status --state-dir "$work/state" --json)

agent challenge --rules "$work/baseline.rules" --save-answer "$work/trusted-answer.json" >"$work/challenge1.out" 2>&1
check "unchanged device answers trusted" test $? -eq 0
check "report says trusted" grep -qx "dev1: trusted.*" <(report)
check "answer carries the TPM status" grep -q '"status":"no TPM\|"status":"TPM at' "$work/trusted-answer.json"

# One change, one deletion, one addition.
echo "root::0:0::/:/bin/sh" >>"$files/etc/passwd"
rm "$files/etc/hosts"
echo "implant" >"$files/bin/dropper"
agent challenge --rules "$work/baseline.rules" >"$work/challenge2.out" 2>&1
check "changed device answers untrusted" test $? -eq 2
report >"$work/report.txt"
expected="dev1: untrusted
  changed $files/etc/passwd
  added $files/bin/dropper
  removed $files/etc/hosts"
check "report names exactly the three files" \
	test "$(grep -v 'last rejected' "$work/report.txt" | sed 's/ (checked at [0-9]*)//')" = "$expected"
check "report --json lists the changed file" grep -q "\"$files/etc/passwd\"" <(report --json)
check "only the changed and the new file are read again" grep -q "2 files hashed" "$work/challenge2.out"

# Replaying the earlier trusted answer must not restore trust.
status=$(curl -s -o "$work/replay.out" -w '%{http_code}' --cacert "$work/tls/ca.pem" \
	-H 'Content-Type: application/json' --data-binary @"$work/trusted-answer.json" \
	"https://127.0.0.1:$port/v1/devices/dev1/answers")
check "replayed answer is refused with 409" test "$status" = 409
check "verifier logs the replay" grep -q "rejected answer of device dev1.*replayed answer" "$work/verifier.log"
check "device stays untrusted after the replay" grep -qx "dev1: untrusted.*" <(report)
check "report shows the rejection" grep -q "last rejected answer at .*replayed answer" <(report)

# The HTTP report needs the operator token.
report_url="https://127.0.0.1:$port/v1/devices/dev1/report"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/tls/ca.pem" "$report_url")
check "HTTP report without the operator token gets 401" test "$status" = 401
curl -s -o "$work/report.json" --cacert "$work/tls/ca.pem" \
	-H "Authorization: Bearer $(cat "$work/operator.token")" "$report_url"
check "HTTP report with the operator token says untrusted" grep -q '"status":"untrusted"' "$work/report.json"
check "HTTP report names the changed file" grep -q "\"changed\":\[\"$files/etc/passwd\"\]" "$work/report.json"

# A client that does not trust the verifier's CA gets nowhere.
"$bin/portcullis-verifier" gen-cert --out-dir "$work/other" >/dev/null
"$bin/portcullis-attest" register --verifier "https://127.0.0.1:$port" --ca "$work/other/ca.pem" \
	--device-id dev2 --state-dir "$work/state2" --attempts 1 >"$work/other.out" 2>&1
check "agent rejects a verifier certificate from another CA" test $? -ne 0

if [ "$failures" != 0 ]; then
	for log in commands.log verifier.log baseline.out upload.out challenge1.out challenge2.out report.txt replay.out report.json; do
		[ -f "$work/$log" ] && { echo "# $log:"; sed 's/^/#   /' "$work/$log"; }
	done
fi
echo "1..$count"
[ "$failures" = 0 ]
