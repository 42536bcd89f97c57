#!/usr/bin/env bash
# The conntrack fallback: with source "auto" and without CAP_BPF and
# CAP_SYS_ADMIN the BPF programs cannot be loaded, so the collector must say
# so, switch to conntrack over netlink and still export the flows with the
# right counts. Namespace A gets an nftables rule that uses conntrack,
# because the kernel tracks connections in a namespace only then.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../../userspace/flow/testing/netns.sh"

[ "$(id -u)" = 0 ] || { echo "not ok 1 - needs root for network namespaces"; exit 1; }
flow_build || { echo "not ok 1 - cargo build of portcullis-flow failed"; exit 1; }

work=$(mktemp -d)
# FLOW_TEST_KEEP=1 keeps the logs for a look after a failure.
trap 'flow_netns_down; [ -n "${FLOW_TEST_KEEP:-}" ] && echo "# kept $work" || rm -rf "$work"' EXIT

n=0
failed=0
check() {
	n=$((n + 1))
	if [ "$1" = "$2" ]; then
		echo "ok $n - $3"
	else
		echo "not ok $n - $3: expected '$2', got '$1'"
		failed=$((failed + 1))
	fi
}

json_counts() {
	grep "$1" "$work/flows.jsonl" | sed 's/.*"bytes":\([0-9]*\),"packets":\([0-9]*\).*/\2 \1/' |
		awk '{ p += $1; b += $2 } END { print p + 0, b + 0 }'
}

flow_netns_up
in_a nft -f - <<'EOF'
table inet flowtest {
	chain output {
		type filter hook output priority 0;
		ct state new,established counter
	}
}
EOF

cat >"$work/portcullis.json" <<EOF
{"flow": {
    "source": "auto",
    "collectors": [{"address": "127.0.0.1:4739"}],
    "poll_interval_ms": 200,
    "idle_timeout_secs": 300,
    "json_lines_path": "$work/flows.jsonl"
}}
EOF

# capsh drops the capabilities that loading BPF programs needs; the
# meter keeps CAP_NET_ADMIN, which ctnetlink needs.
ip netns exec "$NS_A" capsh --drop=cap_bpf,cap_sys_admin,cap_perfmon -- -c \
	"exec '$FLOW_BIN' run --config '$work/portcullis.json'" >"$work/meter.log" 2>&1 &
meter_pid=$!
for _ in $(seq 100); do
	grep -q "flow source:" "$work/meter.log" && break
	sleep 0.1
done

ip netns exec "$NS_B" python3 - "$IP_B" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 7777))
time.sleep(5)
EOF
udp_server_pid=$!
wait_for_port_b 7777 10

in_a python3 - "$IP_A" "$IP_B" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 40020))
for _ in range(10):
    s.sendto(b"c" * 100, (sys.argv[2], 7777))
EOF
in_a ping -q -c 3 -i 0.2 "$IP_B" >/dev/null

sleep 1
kill -TERM "$meter_pid"
wait "$meter_pid"
meter_status=$?
kill "$udp_server_pid" 2>/dev/null
wait "$udp_server_pid" 2>/dev/null

check "$meter_status" 0 "meter exits cleanly"
check "$(grep -c "failed to load the eBPF flow meter.*falling back to conntrack" "$work/meter.log")" 1 \
	"log says eBPF could not be loaded"
check "$(grep -c "flow source: conntrack" "$work/meter.log")" 1 "log names the conntrack source"
check "$(json_counts '"source_port":40020,')" "10 1280" "UDP flow counts from conntrack"
check "$(json_counts '"source":"conntrack".*"protocol":1,' | cut -d' ' -f1)" 6 \
	"ICMP echo requests and replies from conntrack"
check "$(grep -c '"source":"conntrack"' "$work/flows.jsonl" | awk '{ print ($1 >= 3) }')" 1 "records are marked conntrack"

[ "$failed" = 0 ] || sed 's/^/# /' "$work/meter.log"
[ "$failed" = 0 ]
