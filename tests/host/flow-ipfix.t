#!/usr/bin/env bash
# IPFIX export end to end: the eBPF meter on one end of a veth pair between
# two namespaces, nfcapd as the collector on loopback inside namespace A.
# ping, a TCP transfer of known size and UDP over IPv4 and IPv6 must show
# up in nfdump with the byte and packet counts of a capture of the same
# interface, the right MACs and interface indexes; tshark must decode the
# export packets, interface names included, without errors.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../../userspace/flow/testing/netns.sh"
. "$here/../../userspace/flow/testing/traffic.sh"

[ "$(id -u)" = 0 ] || { echo "not ok 1 - needs root for network namespaces"; exit 1; }
flow_build || { echo "not ok 1 - cargo build of portcullis-flow failed"; exit 1; }

work=$(mktemp -d)
# FLOW_TEST_KEEP=1 keeps the captures and logs for a look after a failure.
trap 'flow_netns_down; [ -n "${FLOW_TEST_KEEP:-}" ] && echo "# kept $work" || rm -rf "$work"' EXIT
proto=ipfix
port=4739

flow_netns_up
run_traffic
decoded_as="IPFIX"
check_export

[ "$failed" = 0 ] || { echo "# work files: meter.log nfcapd.log; meter log follows"; sed 's/^/# /' "$work/meter.log"; }
[ "$failed" = 0 ]
