# Shared setup of the flow host tests and the flow benchmark: two network
# namespaces joined by a veth pair, with fixed addresses and MACs, and the
# portcullis-flow binary. Sourced by tests/host/flow-*.t and scripts/bench-flow.

FLOW_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FLOW_REPO/target}"
FLOW_BIN="$CARGO_TARGET_DIR/release/portcullis-flow"

# Names carry the PID so that parallel runs do not collide.
NS_A="flow-a-$$"
NS_B="flow-b-$$"
VETH_A="vfa$$"
VETH_B="vfb$$"
MAC_A="02:77:00:00:00:01"
MAC_B="02:77:00:00:00:02"
IP_A="10.77.0.1"
IP_B="10.77.0.2"
IP6_A="fd77::1"
IP6_B="fd77::2"

flow_build() {
	CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" cargo build --release --quiet \
		--manifest-path "$FLOW_REPO/userspace/Cargo.toml" -p portcullis-flow
}

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

flow_netns_up() {
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	ip link add "$VETH_A" netns "$NS_A" address "$MAC_A" type veth \
		peer name "$VETH_B" netns "$NS_B" address "$MAC_B"
	in_a ip link set lo up
	in_b ip link set lo up
	in_a ip addr add "$IP_A/24" dev "$VETH_A"
	in_b ip addr add "$IP_B/24" dev "$VETH_B"
	in_a ip -6 addr add "$IP6_A/64" dev "$VETH_A" nodad
	in_b ip -6 addr add "$IP6_B/64" dev "$VETH_B" nodad
	in_a ip link set "$VETH_A" up
	in_b ip link set "$VETH_B" up
	# Static neighbours, so no ARP or neighbour discovery adds flows.
	in_a ip neigh replace "$IP_B" lladdr "$MAC_B" dev "$VETH_A" nud permanent
	in_b ip neigh replace "$IP_A" lladdr "$MAC_A" dev "$VETH_B" nud permanent
	in_a ip -6 neigh replace "$IP6_B" lladdr "$MAC_B" dev "$VETH_A" nud permanent
	in_b ip -6 neigh replace "$IP6_A" lladdr "$MAC_A" dev "$VETH_B" nud permanent
}

flow_netns_down() {
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	true
}

# Waits up to $2 seconds for a TCP or UDP port $1 to be bound in namespace B.
wait_for_port_b() {
	local port=$1 deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		in_b ss -Htuln "sport = :$port" | grep -q . && return 0
		sleep 0.1
	done
	return 1
}
