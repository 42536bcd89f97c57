# Traffic and checks shared by the flow export host tests. Sourced after
# netns.sh; the caller sets $work, $proto (ipfix or netflow9) and $port.

TCP_BYTES=100000
UDP_COUNT=10
UDP_PAYLOAD=100
UDP6_COUNT=4
UDP6_PAYLOAD=200
PING_COUNT=5

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

# Starts nfcapd, the meter and two captures in namespace A, sends the
# traffic, then stops everything so that every flow is exported.
run_traffic() {
	mkdir -p "$work/nfcapd"
	cat >"$work/portcullis.json" <<-EOF
	{"flow": {
	    "interfaces": ["$VETH_A"],
	    "source": "ebpf",
	    "collectors": [{"address": "127.0.0.1:$port", "protocol": "$proto"}],
	    "poll_interval_ms": 200,
	    "active_timeout_secs": 300,
	    "idle_timeout_secs": 300,
	    "template_refresh_secs": 2,
	    "json_lines_path": "$work/flows.jsonl",
	    "pin_path": null
	}}
	EOF

	ip netns exec "$NS_A" nfcapd -w "$work/nfcapd" -b 127.0.0.1 -p "$port" -t 3600 >"$work/nfcapd.log" 2>&1 &
	nfcapd_pid=$!
	ip netns exec "$NS_A" dumpcap -q -i "$VETH_A" -w "$work/veth.pcapng" >"$work/dumpcap-veth.log" 2>&1 &
	capture_veth_pid=$!
	ip netns exec "$NS_A" dumpcap -q -i lo -f "udp port $port" -w "$work/export.pcapng" >"$work/dumpcap-lo.log" 2>&1 &
	capture_lo_pid=$!
	# Templates go out with the first poll, so the meter starts only once
	# both captures run and the capture contains them.
	for log in dumpcap-veth dumpcap-lo; do
		for _ in $(seq 100); do
			grep -q "Capturing on" "$work/$log.log" && break
			sleep 0.1
		done
	done
	ip netns exec "$NS_A" "$FLOW_BIN" run --config "$work/portcullis.json" >"$work/meter.log" 2>&1 &
	meter_pid=$!

	# The meter logs this line once it is attached to the interface.
	for _ in $(seq 100); do
		grep -q "metering flows on $VETH_A" "$work/meter.log" && break
		sleep 0.1
	done
	sleep 1

	ip netns exec "$NS_B" python3 - "$IP_B" >"$work/tcp-received" <<-'EOF' &
	import socket, sys
	server = socket.socket()
	server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	server.bind((sys.argv[1], 5001))
	server.listen(1)
	server.settimeout(20)
	connection, _ = server.accept()
	total = 0
	while True:
	    data = connection.recv(65536)
	    if not data:
	        break
	    total += len(data)
	connection.close()
	print(total)
	EOF
	tcp_server_pid=$!
	wait_for_port_b 5001 10

	in_a python3 - "$IP_A" "$IP_B" "$TCP_BYTES" <<-'EOF'
	import socket, sys
	client = socket.socket()
	client.bind((sys.argv[1], 40001))
	client.connect((sys.argv[2], 5001))
	client.sendall(b"x" * int(sys.argv[3]))
	client.shutdown(socket.SHUT_WR)
	client.recv(1)
	client.close()
	EOF
	wait "$tcp_server_pid"

	# Receivers keep the ports open so that no ICMP port unreachable is sent.
	ip netns exec "$NS_B" python3 - "$IP_B" "$IP6_B" <<-'EOF' &
	import socket, sys, time
	sockets = []
	for family, address, port in ((socket.AF_INET, sys.argv[1], 7777), (socket.AF_INET6, sys.argv[2], 7778)):
	    s = socket.socket(family, socket.SOCK_DGRAM)
	    s.bind((address, port))
	    sockets.append(s)
	time.sleep(8)
	EOF
	udp_server_pid=$!
	wait_for_port_b 7778 10

	in_a python3 - "$IP_A" "$IP_B" "$IP6_A" "$IP6_B" <<-EOF
	import socket, sys
	v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	v4.bind((sys.argv[1], 40002))
	for _ in range($UDP_COUNT):
	    v4.sendto(b"u" * $UDP_PAYLOAD, (sys.argv[2], 7777))
	v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
	v6.bind((sys.argv[3], 40003))
	for _ in range($UDP6_COUNT):
	    v6.sendto(b"6" * $UDP6_PAYLOAD, (sys.argv[4], 7778))
	EOF

	in_a ping -q -c "$PING_COUNT" -i 0.2 "$IP_B" >/dev/null

	# Longer than template_refresh_secs, so the final export comes at least
	# one refresh after the idle-timeout exports, however fast the traffic
	# above ran: the test expects templates in two messages.
	sleep 3
	kill -TERM "$meter_pid"
	wait "$meter_pid"
	meter_status=$?
	sleep 1
	kill -TERM "$nfcapd_pid" "$capture_veth_pid" "$capture_lo_pid"
	wait "$nfcapd_pid" "$capture_veth_pid" "$capture_lo_pid" 2>/dev/null
	kill "$udp_server_pid" 2>/dev/null
	wait "$udp_server_pid" 2>/dev/null
	true
}

# Prints "packets bytes" of the packets in the veth capture matching the
# display filter $1, from the IP total length of each packet.
captured() {
	tshark -r "$work/veth.pcapng" -Y "$1" -T fields -e ip.len -e ipv6.plen 2>/dev/null |
		awk '{ n++; b += ($1 != "" ? $1 : $2 + 40) } END { print n + 0, b + 0 }'
}

# Prints "packets bytes" of the nfdump record matching the filter $1.
nfdump_counts() {
	nfdump -R "$work/nfcapd" -q -N -o "fmt:%pkt %byt" "$1" 2>/dev/null | awk '{ print $1, $2 }'
}

nfdump_field() {
	nfdump -R "$work/nfcapd" -q -N -o "fmt:$2" "$1" 2>/dev/null | tr -d ' '
}

# Checks the flows that run_traffic sent, as nfdump and tshark read the
# export. $decoded_as is a line tshark prints for this export format.
check_export() {
	ifindex_a=$(in_a cat "/sys/class/net/$VETH_A/ifindex")

	check "$meter_status" 0 "meter exits cleanly on SIGTERM"
	check "$(grep -c 'flow source: eBPF at TC' "$work/meter.log")" 1 "log names the eBPF source"
	check "$(cat "$work/tcp-received")" "$TCP_BYTES" "TCP receiver got all bytes"

	# TCP, A to B: egress of the veth in namespace A.
	filter="ip.src==$IP_A && tcp.srcport==40001"
	read -r cap_packets cap_bytes <<<"$(captured "$filter")"
	read -r packets bytes <<<"$(nfdump_counts "proto tcp and src ip $IP_A and src port 40001")"
	check "$packets" "$cap_packets" "TCP A to B packets match the capture"
	check "$bytes" "$cap_bytes" "TCP A to B bytes match the capture"
	headers=$(tshark -r "$work/veth.pcapng" -Y "$filter" -T fields -e ip.hdr_len -e tcp.hdr_len 2>/dev/null |
		awk '{ s += $1 + $2 } END { print s + 0 }')
	check "$bytes" "$((TCP_BYTES + headers))" "TCP A to B bytes are payload plus IP and TCP headers"
	check "$(nfdump_field "proto tcp and src port 40001" "%flg")" "...AP.SF" "TCP A to B flags"

	# TCP, B to A: ingress.
	read -r cap_packets cap_bytes <<<"$(captured "ip.src==$IP_B && tcp.dstport==40001")"
	read -r packets bytes <<<"$(nfdump_counts "proto tcp and src ip $IP_B and dst port 40001")"
	check "$packets $bytes" "$cap_packets $cap_bytes" "TCP B to A counts match the capture"

	# UDP over IPv4: 20 IP + 8 UDP header bytes per datagram.
	read -r packets bytes <<<"$(nfdump_counts "proto udp and src ip $IP_A and src port 40002")"
	check "$packets" "$UDP_COUNT" "UDP IPv4 packets"
	check "$bytes" "$((UDP_COUNT * (UDP_PAYLOAD + 28)))" "UDP IPv4 bytes"

	# UDP over IPv6: 40 IP + 8 UDP header bytes per datagram.
	read -r packets bytes <<<"$(nfdump_counts "proto udp and src ip $IP6_A and src port 40003")"
	check "$packets" "$UDP6_COUNT" "UDP IPv6 packets"
	check "$bytes" "$((UDP6_COUNT * (UDP6_PAYLOAD + 48)))" "UDP IPv6 bytes"

	# ping: 84-byte echo requests out, replies in.
	read -r packets bytes <<<"$(nfdump_counts "proto icmp and src ip $IP_A")"
	check "$packets $bytes" "$PING_COUNT $((PING_COUNT * 84))" "ICMP echo requests"
	read -r packets bytes <<<"$(nfdump_counts "proto icmp and src ip $IP_B")"
	check "$packets $bytes" "$PING_COUNT $((PING_COUNT * 84))" "ICMP echo replies"

	# MACs and interfaces: egress records carry the output interface, ingress
	# records the input interface.
	check "$(nfdump_field "proto udp and src port 40002" "%ismc")" "$MAC_A" "source MAC of A to B"
	check "$(nfdump_field "proto udp and src port 40002" "%idmc")" "$MAC_B" "destination MAC of A to B"
	check "$(nfdump_field "proto icmp and src ip $IP_B" "%ismc")" "$MAC_B" "source MAC of B to A"
	check "$(nfdump_field "proto udp and src port 40002" "%in/%out")" "0/$ifindex_a" "egress record has output interface"
	check "$(nfdump_field "proto icmp and src ip $IP_B" "%in/%out")" "$ifindex_a/0" "ingress record has input interface"

	# tshark decodes every export packet without errors, with interface names.
	tshark -r "$work/export.pcapng" -d "udp.port==$port,cflow" -V >"$work/export.txt" 2>&1
	check "$(grep -c "$decoded_as" "$work/export.txt" | awk '{ print ($1 > 0) }')" 1 "tshark decodes the export as $proto"
	check "$(grep -ciE 'malformed|Expert Info \(Error' "$work/export.txt")" 0 "tshark reports no malformed packets"
	# The meter runs at least 3 seconds past the traffic, with a refresh
	# every 2 seconds.
	templates=$(tshark -r "$work/export.pcapng" -d "udp.port==$port,cflow" -Y "cflow.template_id == 256" 2>/dev/null | wc -l)
	check "$((templates >= 2))" 1 "templates are sent again on schedule ($templates messages with templates)"
	# Every exported record carries the interface name, as tshark shows it.
	names=$(grep -cE "^ +IfName: $VETH_A\$" "$work/export.txt")
	check "$names" "$(wc -l <"$work/flows.jsonl")" "tshark shows the interface name in every record"

	# The JSON lines carry the same records.
	check "$(grep -c "\"source_port\":40002" "$work/flows.jsonl")" 1 "JSON lines hold the UDP flow"
	check "$(grep "\"source_port\":40002" "$work/flows.jsonl" | grep -c "\"interface_name\":\"$VETH_A\"")" 1 "JSON line names the interface"
}
