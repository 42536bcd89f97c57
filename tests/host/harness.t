#!/usr/bin/env bash
# The QEMU harness itself: a hanging guest is killed at its timeout, a failing
# guest check fails the run, and both print the console log's path.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
result() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

mkdir -p "$work/hang" "$work/fail"
cp "$repo/tests/guest/lib.sh" "$work/hang/"
cp "$repo/tests/guest/lib.sh" "$work/fail/"
printf '# timeout: 20\n. /tests/lib.sh\nok "started"\nsleep 1000\n' >"$work/hang/01-hang.sh"
printf '. /tests/lib.sh\nnot_ok "a check that fails"\n' >"$work/fail/01-fail.sh"

start=$(date +%s)
PORTCULLIS_GUEST_TESTS="$work/hang" PORTCULLIS_QEMU_OUT="$work/out" \
	bash "$repo/tests/qemu/run-guest-tests" >"$work/hang.tap" 2>&1
status=$?
elapsed=$(($(date +%s) - start))
result $([ $status -ne 0 ]; echo $?) "hanging guest fails the run"
result $(grep -q "not ok .*finished before the timeout" "$work/hang.tap"; echo $?) "hanging guest is reported as timed out"
result $(grep -q "# console log of 01-hang: $work/out/console-01-hang.log" "$work/hang.tap"; echo $?) "console log path is printed"
result $([ -s "$work/out/console-01-hang.log" ]; echo $?) "console log is kept"
# The limit is 20 s plus the 10 s kill grace; far less than sleep 1000.
result $([ "$elapsed" -lt 120 ]; echo $?) "hanging guest is killed at the timeout"

PORTCULLIS_GUEST_TESTS="$work/fail" PORTCULLIS_QEMU_OUT="$work/out" \
	bash "$repo/tests/qemu/run-guest-tests" >"$work/fail.tap" 2>&1
status=$?
result $([ $status -ne 0 ]; echo $?) "failing guest check fails the run"
result $(grep -q "^not ok .*a check that fails" "$work/fail.tap"; echo $?) "failing check is reported"
echo "1..$n"
