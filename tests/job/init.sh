#!/bin/bash
# PID 1 of the main job's guest, a Debian root file system whose policy was
# generated offline. It starts portcullisd in enforce mode, runs the workload,
# tries foreign code, runs attestation and the library scan, then tests
# reload, daemon death and learn mode. Results
# are TAP lines; JOB-SUMMARY and AUDIT lines are read by scripts/main-job.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -o remount,rw /
mkdir -p /var/log/portcullis /var/lib/portcullis

# ok, not_ok, check, contains, status_field and patch_copy, shared with
# the initramfs guest tests.
. /opt/portcullis-job/lib.sh
denied_total() {
	portcullis status --json | awk -F': ' '/"denied"/ {gsub(/[^0-9]/, "", $2); n += $2} END {print n + 0}'
}
allowed_total() {
	portcullis status --json | awk -F': ' '/"allowed"/ {gsub(/[^0-9]/, "", $2); n += $2} END {print n + 0}'
}
config() { # config MODE POLICY
	printf '{\n  "mode": "%s",\n  "policy": "%s",\n  "audit_log": {"path": "/var/log/portcullis/audit.log"}\n}\n' \
		"$1" "$2" >/etc/portcullis/portcullis.json
}
start_daemon() {
	# Each start gets its own log, so the wait below reads this start only.
	DAEMON_LOG=/var/log/portcullis/daemon-$1.log
	portcullisd --config /etc/portcullis/portcullis.json >"$DAEMON_LOG" 2>&1 &
	DAEMON=$!
	for _ in $(seq 100); do
		grep -q "running; audit log" "$DAEMON_LOG" && return 0
		kill -0 $DAEMON 2>/dev/null || break
		sleep 0.2
	done
	sed 's/^/# /' "$DAEMON_LOG"
	return 1
}
expect_denied() { # expect_denied DESCRIPTION PATH [ARGS...]
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		not_ok "$desc"
	elif [[ "$out" == *"Permission denied"* ]]; then
		ok "$desc"
	else
		not_ok "$desc"
		echo "# $out"
	fi
}
audit_lines() { # audit_lines PATH: prints the audit log lines for PATH
	grep -h "\"path\":\"$1\"" /var/log/portcullis/audit.log* 2>/dev/null | sed 's/^/AUDIT /'
}

echo "PORTCULLIS-GUEST-START main-job"

# 1. The daemon loads the policy generated offline and enforces it.
check "module loads" insmod /opt/portcullis/portcullis.ko
config enforce /etc/portcullis/policy.json
check "daemon starts in enforce mode" start_daemon enforce
check "module is in enforce mode" [ "$(status_field mode)" = enforce ]
echo "JOB-SUMMARY policy_entries $(status_field policy_size)"

/opt/portcullis-job/workload.sh
workload_denied=$(denied_total)
check "workload ran with no denial" [ "$workload_denied" = 0 ]

# 2. Foreign code is refused and audited.
cp /opt/portcullis-job/foreign/static-hello /tmp/static-hello
chmod +x /tmp/static-hello
expect_denied "fresh static binary is refused" /tmp/static-hello
patch_copy /usr/bin/ls /tmp/ls-patched
expect_denied "patched copy of an approved binary is refused" /tmp/ls-patched /
printf '#!/bin/sh\necho foreign script ran\n' >/tmp/foreign.sh
chmod +x /tmp/foreign.sh
expect_denied "script in /tmp is refused" /tmp/foreign.sh
sleep 2
for path in /tmp/static-hello /tmp/ls-patched /tmp/foreign.sh; do
	lines=$(audit_lines "$path")
	if [[ "$lines" == *'"verdict":"deny"'* ]]; then
		ok "audit log has the denial of $path"
		echo "$lines" | head -n 1
	else
		not_ok "audit log has the denial of $path"
	fi
done
echo "JOB-SUMMARY allowed $(allowed_total)"
echo "JOB-SUMMARY denied $(denied_total)"

# 3. Remote attestation on the real root file system: a baseline of
# /usr/bin, /usr/lib and /etc, an unchanged challenge, then a tampered file.
busybox ip link set lo up
attest_dir=/var/lib/portcullis/attest
portcullis verifier gen-cert --out-dir /tmp/tls --san 127.0.0.1 >/dev/null 2>&1
portcullis verifier serve --listen 127.0.0.1:8443 --cert /tmp/tls/cert.pem --key /tmp/tls/key.pem \
	--db /tmp/verifier.db >/tmp/verifier.log 2>&1 &
verifier=$!
for _ in $(seq 100); do grep -q "listening" /tmp/verifier.log && break; sleep 0.2; done
printf 'hash sha256\ntree /usr/bin\ntree /usr/lib\ntree /etc\n' >/etc/portcullis/baseline.rules
agent() {
	local command=$1
	shift
	portcullis attest "$command" --verifier https://127.0.0.1:8443 --ca /tmp/tls/ca.pem \
		--device-id guest --state-dir "$attest_dir" "$@"
}
check "attestation: device registers with the verifier" agent register
start=$(date +%s)
check "attestation: baseline of /usr/bin, /usr/lib and /etc uploaded" agent baseline --rules /etc/portcullis/baseline.rules
echo "JOB-SUMMARY baseline_seconds $(($(date +%s) - start))"
check "attestation: unchanged device is trusted" agent challenge --rules /etc/portcullis/baseline.rules
echo "tampered" >>/etc/debian_version
agent challenge --rules /etc/portcullis/baseline.rules >/tmp/challenge.out 2>&1
check "attestation: tampered device is untrusted" [ $? = 2 ]
portcullis verifier report guest --db /tmp/verifier.db >/tmp/report.txt 2>&1
check "attestation: report names the tampered file" grep -q "changed /etc/debian_version" /tmp/report.txt
check "attestation: report names only that file" [ "$(grep -c '^  ' /tmp/report.txt)" = 1 ]
sed 's/^/# /' /tmp/report.txt
kill $verifier
wait $verifier 2>/dev/null

# 4. Library inventory and vulnerability matching on the real root file
# system, with the sample feeds.
portcullis libscan scan --root / --feed /opt/portcullis-job/vulndb --json >/tmp/libscan.json 2>/tmp/libscan.err
status=$?
check "libscan: scan finishes (0 or 1, not an error)" [ $status -le 1 ]
for product in glibc zlib openssl busybox expat sqlite; do
	check "libscan: lists $product with a version" \
		bash -c "grep -A1 '\"name\": \"$product\"' /tmp/libscan.json | grep -q '\"version\": \"[0-9]'"
done
portcullis libscan scan --root / --feed /opt/portcullis-job/vulndb 2>/dev/null | head -n 12 | sed 's/^/# /'

# 5. SIGHUP with a corrupt policy keeps the policy in force.
generation=$(status_field policy_generation)
cp /etc/portcullis/policy.json /tmp/policy.good
head -c 100 /tmp/policy.good >/etc/portcullis/policy.json
kill -HUP $DAEMON
sleep 2
check "corrupt policy on SIGHUP is rejected in the log" grep -q "rejected new policy" "$DAEMON_LOG"
check "policy generation unchanged after the rejected reload" [ "$(status_field policy_generation)" = "$generation" ]
check "approved programs still run after the rejected reload" /opt/portcullis-job/check-system.sh
expect_denied "foreign code still refused after the rejected reload" /tmp/static-hello
cp /tmp/policy.good /etc/portcullis/policy.json

# 6. Killing the daemon leaves the module enforcing the last policy.
kill -9 $DAEMON
wait $DAEMON 2>/dev/null
check "module still in enforce mode without the daemon" [ "$(status_field mode)" = enforce ]
check "policy still in force without the daemon" [ "$(status_field policy_generation)" = "$generation" ]
check "approved programs run without the daemon" /opt/portcullis-job/check-system.sh
expect_denied "foreign code refused without the daemon" /tmp/ls-patched /

# 7. Learn mode: learn the workload, switch to enforce with the learned
# policy by SIGHUP, and run the same workload with no denial.
rm -f /var/lib/portcullis/learned.json
config learn /var/lib/portcullis/learned.json
check "daemon starts in learn mode" start_daemon learn
/opt/portcullis-job/workload.sh >/tmp/learn-run.tap
check "workload runs in learn mode" bash -c "! grep -q '^not ok' /tmp/learn-run.tap"
sleep 3
check "learn mode wrote a policy" [ -s /var/lib/portcullis/learned.json ]
learned=$(grep -c '"sha256"' /var/lib/portcullis/learned.json)
echo "# learned $learned entries"
grep -hE "WARN|ERROR" /var/log/portcullis/daemon-*.log | sed "s/^/# /"
before=$(denied_total)
config enforce /var/lib/portcullis/learned.json
kill -HUP $DAEMON
sleep 2
check "switched to enforce with the learned policy" [ "$(status_field mode)" = enforce ]
/opt/portcullis-job/workload.sh | sed 's/^\(not \)\{0,1\}ok - /&learned policy: /'
check "learned policy runs the workload with zero denials" [ "$(denied_total)" = "$before" ]
expect_denied "learned policy still refuses foreign code" /tmp/static-hello
kill $DAEMON
wait $DAEMON 2>/dev/null

echo "PORTCULLIS-GUEST-END main-job"
# The learned policy does not cover sync and busybox; end in mode off.
portcullis mode off
sync
busybox reboot -f
