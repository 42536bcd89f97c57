#!/usr/bin/env bash
# The eBPF meter over an interface's life and under a full flow table:
# - started before its interface exists, it attaches when the interface
#   appears, lets go when it disappears and attaches again when it returns;
# - with a table smaller than the traffic, every packet is either in an
#   exported record or counted as not metered, full-table evictions are
#   counted, and flows that arrive after an eviction are metered again.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../../userspace/flow/testing/netns.sh"

[ "$(id -u)" = 0 ] || { echo "not ok 1 - needs root for network namespaces"; exit 1; }
flow_build || { echo "not ok 1 - cargo build of portcullis-flow failed"; exit 1; }

work=$(mktemp -d)
# FLOW_TEST_KEEP=1 keeps the logs for a look after a failure.
mkdir "$work/bpffs"
mount -t bpf bpf "$work/bpffs"
trap 'umount "$work/bpffs"; flow_netns_down; [ -n "${FLOW_TEST_KEEP:-}" ] && echo "# kept $work" || rm -rf "$work"' EXIT

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

# Creates the veth pair with IPv4 only, so that no IPv6 neighbour
# discovery or MLD adds flows that the checks do not expect.
link_up() {
	ip link add "$VETH_A" netns "$NS_A" address "$MAC_A" type veth \
		peer name "$VETH_B" netns "$NS_B" address "$MAC_B"
	in_a sysctl -qw "net.ipv6.conf.$VETH_A.disable_ipv6=1"
	in_b sysctl -qw "net.ipv6.conf.$VETH_B.disable_ipv6=1"
	in_a ip addr add "$IP_A/24" dev "$VETH_A"
	in_b ip addr add "$IP_B/24" dev "$VETH_B"
	in_a ip link set "$VETH_A" up
	in_b ip link set "$VETH_B" up
	in_a ip neigh replace "$IP_B" lladdr "$MAC_B" dev "$VETH_A" nud permanent
	in_b ip neigh replace "$IP_A" lladdr "$MAC_A" dev "$VETH_B" nud permanent
}

# Sends $2 UDP datagrams from each source port in the list $1 to B port
# 7777. Nothing listens there, and a blackhole route in B drops the ICMP
# errors, so only these datagrams cross the veth.
send_udp() {
	in_a python3 - "$IP_A" "$IP_B" "$2" $1 <<-'EOF'
	import socket, sys
	source, destination, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
	for port in sys.argv[4:]:
	    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	    s.bind((source, int(port)))
	    for _ in range(count):
	        s.sendto(b"m" * 50, (destination, 7777))
	    s.close()
	EOF
}

# Waits up to 10 seconds until the meter log has $2 lines matching $1.
wait_for_log() {
	for _ in $(seq 100); do
		[ "$(grep -c "$1" "$work/meter.log")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# Prints the packets of the exported records from source port $1.
exported_packets() {
	grep "\"source_port\":$1," "$work/flows.jsonl" | sed 's/.*"packets":\([0-9]*\).*/\1/' |
		awk '{ s += $1 } END { print s + 0 }'
}

start_meter() {
	cat >"$work/portcullis.json" <<-EOF
	{"flow": {
	    "interfaces": ["$VETH_A"],
	    "source": "ebpf",
	    "poll_interval_ms": 200,
	    "idle_timeout_secs": 1,
	    "active_timeout_secs": ${2:-300},
	    "max_flows": ${1:-16384},
	    "eviction_threshold_percent": 50,
	    "json_lines_path": "$work/flows.jsonl",
	    "pin_path": "$work/bpffs/flows"
	}}
	EOF
	: >"$work/flows.jsonl"
	ip netns exec "$NS_A" "$FLOW_BIN" run --config "$work/portcullis.json" >"$work/meter.log" 2>&1 &
	meter_pid=$!
}

stop_meter() {
	kill -TERM "$meter_pid"
	wait "$meter_pid"
	meter_status=$?
}

ip netns add "$NS_A"
ip netns add "$NS_B"
in_a ip link set lo up
in_b ip link set lo up
in_b ip route add blackhole "$IP_A/32"

# Interface life: absent at start, appears, disappears, returns.
start_meter
wait_for_log "flow source: eBPF" 1
check "$(grep -c "(0 of 1 interfaces present)" "$work/meter.log")" 1 "meter starts without its interface"

link_up
wait_for_log "metering flows on $VETH_A" 1
check "$?" 0 "meter attaches when the interface appears"
send_udp 40010 5
# `flow show` reads the live table through the pin.
shown=$(in_a "$FLOW_BIN" show --pin-path "$work/bpffs/flows" --json | grep '"source_port":40010,')
check "$(echo "$shown" | sed -n 's/.*"packets":\([0-9]*\).*/\1/p')" 5 "flow show lists the live flow"
check "$(echo "$shown" | grep -c "\"interface_name\":\"$VETH_A\"")" 1 "flow show names the interface"

in_a ip link del "$VETH_A"
wait_for_log "interface $VETH_A .* disappeared" 1
check "$?" 0 "meter logs the interface disappearing"

link_up
wait_for_log "metering flows on $VETH_A" 2
check "$?" 0 "meter attaches again when the interface returns"
send_udp 40011 3
sleep 1.5
stop_meter

check "$meter_status" 0 "meter exits cleanly"
check "$(exported_packets 40010)" 5 "flow before the interface left is exported"
check "$(exported_packets 40011)" 3 "flow after the interface returned is exported"
check "$(grep "\"source_port\":40011," "$work/flows.jsonl" | grep -c "\"interface_name\":\"$VETH_A\"")" 1 \
	"record after return names the interface"
check "$(in_a tc filter show dev "$VETH_A" ingress | grep -c flow_ingress)" 0 "filters detached on exit"
check "$([ -e "$work/bpffs/flows" ] && echo present || echo removed)" removed "pin removed on exit"

# Full table: 32 entries, evictions above half of them.
start_meter 32
wait_for_log "metering flows on $VETH_A" 1
first_wave=$(seq 41000 41099 | tr '\n' ' ')
send_udp "$first_wave" 1
# Idle timeout 1 s: let the meter evict and expire the first wave.
sleep 2
second_wave=$(seq 42000 42009 | tr '\n' ' ')
send_udp "$second_wave" 1
sleep 0.5
stop_meter

not_metered=$(sed -n 's/.* \([0-9]*\) packets not metered because the flow table was full.*/\1/p' "$work/meter.log")
evicted=$(sed -n 's/.* \([0-9]*\) flows evicted.*/\1/p' "$work/meter.log")
exported=0
for port in $first_wave; do
	exported=$((exported + $(exported_packets "$port")))
done
check "$((not_metered > 0))" 1 "full table counts packets not metered ($not_metered)"
check "$((evicted > 0))" 1 "evictions are counted ($evicted)"
check "$((exported + not_metered))" 100 "every packet is exported or counted as not metered"
check "$(grep -c "flow table near full" "$work/meter.log" | awk '{ print ($1 > 0) }')" 1 "full table is logged"
second=0
for port in $second_wave; do
	second=$((second + $(exported_packets "$port")))
done
check "$second" 10 "new flows are metered after the table empties"

# Active timeout 1 s: a flow that sends every 0.25 s for 3 s never goes
# idle, so it is exported in several records whose packets add up.
start_meter 16384 1
wait_for_log "metering flows on $VETH_A" 1
in_a python3 - "$IP_A" "$IP_B" <<-'EOF'
	import socket, sys, time
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((sys.argv[1], 40030))
	for _ in range(12):
	    s.sendto(b"a" * 50, (sys.argv[2], 7777))
	    time.sleep(0.25)
	EOF
stop_meter
records=$(grep -c '"source_port":40030,' "$work/flows.jsonl")
check "$((records >= 2))" 1 "active timeout splits a long flow ($records records)"
check "$(exported_packets 40030)" 12 "records of a long flow add up"

[ "$failed" = 0 ] || sed 's/^/# /' "$work/meter.log"
[ "$failed" = 0 ]
