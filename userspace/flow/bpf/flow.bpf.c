// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Flow meter for TC ingress and egress. Each packet updates the counters of
 * its flow in the `flows` hash map; no packet is copied to user space. User
 * space (src/meter.rs) reads, ages and deletes the entries.
 *
 * The program reads only the UAPI context struct __sk_buff, which the
 * verifier rewrites for the running kernel, and packet bytes. It touches no
 * kernel-internal struct, so it needs no CO-RE relocations and runs
 * unchanged on kernels with or without BTF.
 *
 * The key and value layouts are mirrored by FlowKeyRaw and FlowValueRaw in
 * src/meter.rs; both sides check the sizes.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define DIRECTION_INGRESS 0
#define DIRECTION_EGRESS 1

#define ETH_P_8021Q_BE bpf_htons(0x8100)
#define ETH_P_8021AD_BE bpf_htons(0x88A8)

/* IPv6 extension headers that may precede the transport header. */
#define IPV6_MAX_EXT_HEADERS 4
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

/* Indexes into the per-CPU `counters` array. */
#define COUNTER_MAP_FULL 0   /* packets not metered because `flows` was full */
#define COUNTER_NOT_IP 1     /* frames that were neither IPv4 nor IPv6 */
#define COUNTER_TRUNCATED 2  /* IP packets whose headers could not be read */
#define COUNTER_MAX 3

struct flow_key {
	__u8 src_addr[16]; /* IPv4 addresses use the first 4 bytes */
	__u8 dst_addr[16];
	__u32 ifindex;
	__u16 src_port; /* host byte order */
	__u16 dst_port; /* ICMP: type * 256 + code, as NetFlow exporters do */
	__u8 protocol;
	__u8 ip_version;
	__u8 direction;
	__u8 pad;
};

struct flow_value {
	__u64 packets;
	__u64 bytes; /* IP total length: IP header, transport header, payload */
	__u64 first_seen_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 last_seen_ns;
	__u32 tcp_flags; /* OR of the flags byte of every TCP segment */
	__u8 src_mac[6];
	__u8 dst_mac[6];
};

/* User space sets max_entries from the configuration before loading. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &index);

	if (value)
		*value += 1;
}

/*
 * Parses the transport header at @offset into the ports and TCP flags of
 * @key. Returns 0, or -1 when the header is cut short.
 */
static __always_inline int parse_transport(struct __sk_buff *skb, __u32 offset,
					   struct flow_key *key, __u32 *tcp_flags)
{
	__u8 header[14];

	switch (key->protocol) {
	case IPPROTO_TCP:
		/* Ports at 0 and 2, flags byte at 13. */
		if (bpf_skb_load_bytes(skb, offset, header, 14))
			return -1;
		*tcp_flags = header[13];
		break;
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (bpf_skb_load_bytes(skb, offset, header, 4))
			return -1;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (bpf_skb_load_bytes(skb, offset, header, 2))
			return -1;
		key->src_port = 0;
		key->dst_port = ((__u16)header[0] << 8) | header[1];
		return 0;
	default:
		return 0;
	}
	key->src_port = ((__u16)header[0] << 8) | header[1];
	key->dst_port = ((__u16)header[2] << 8) | header[3];
	return 0;
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, __u32 offset,
				      struct flow_key *key, __u64 *bytes, __u32 *tcp_flags)
{
	struct iphdr ip;
	__u32 header_len;

	if (bpf_skb_load_bytes(skb, offset, &ip, sizeof(ip)))
		return -1;
	header_len = (ip.ihl & 0xF) * 4;
	if (header_len < sizeof(ip))
		return -1;

	key->ip_version = 4;
	key->protocol = ip.protocol;
	__builtin_memcpy(key->src_addr, &ip.saddr, 4);
	__builtin_memcpy(key->dst_addr, &ip.daddr, 4);
	*bytes = bpf_ntohs(ip.tot_len);

	/* Only the first fragment carries the transport header. */
	if (bpf_ntohs(ip.frag_off) & IP_OFFSET)
		return 0;
	return parse_transport(skb, offset + header_len, key, tcp_flags);
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, __u32 offset,
				      struct flow_key *key, __u64 *bytes, __u32 *tcp_flags)
{
	struct ipv6hdr ip;
	__u8 next_header;
	int i;

	if (bpf_skb_load_bytes(skb, offset, &ip, sizeof(ip)))
		return -1;

	key->ip_version = 6;
	__builtin_memcpy(key->src_addr, &ip.saddr, 16);
	__builtin_memcpy(key->dst_addr, &ip.daddr, 16);
	*bytes = (__u64)bpf_ntohs(ip.payload_len) + sizeof(ip);
	next_header = ip.nexthdr;
	offset += sizeof(ip);

	for (i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
		__u8 ext[8];

		if (next_header != NEXTHDR_HOP && next_header != NEXTHDR_ROUTING &&
		    next_header != NEXTHDR_DEST && next_header != NEXTHDR_FRAGMENT)
			break;
		if (bpf_skb_load_bytes(skb, offset, ext, sizeof(ext)))
			return -1;
		if (next_header == NEXTHDR_FRAGMENT) {
			__u16 fragment_offset = (((__u16)ext[2] << 8) | ext[3]) & 0xFFF8;

			next_header = ext[0];
			offset += 8;
			/* A later fragment has no transport header. */
			if (fragment_offset) {
				key->protocol = next_header;
				return 0;
			}
			continue;
		}
		next_header = ext[0];
		offset += ((__u32)ext[1] + 1) * 8;
	}

	key->protocol = next_header;
	return parse_transport(skb, offset, key, tcp_flags);
}

static __always_inline int meter(struct __sk_buff *skb, __u8 direction)
{
	struct flow_key key = {};
	struct flow_value *value;
	struct ethhdr eth;
	__u64 bytes = 0;
	__u32 tcp_flags = 0;
	__u32 offset = sizeof(eth);
	__u16 proto;
	__u64 now;
	int err;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)))
		return TC_ACT_UNSPEC;
	proto = eth.h_proto;

	/* Step over one or two VLAN tags; the flow key does not keep the VLAN id. */
	if (proto == ETH_P_8021Q_BE || proto == ETH_P_8021AD_BE) {
		if (bpf_skb_load_bytes(skb, offset + 2, &proto, sizeof(proto)))
			return TC_ACT_UNSPEC;
		offset += 4;
		if (proto == ETH_P_8021Q_BE) {
			if (bpf_skb_load_bytes(skb, offset + 2, &proto, sizeof(proto)))
				return TC_ACT_UNSPEC;
			offset += 4;
		}
	}

	if (proto == bpf_htons(ETH_P_IP))
		err = parse_ipv4(skb, offset, &key, &bytes, &tcp_flags);
	else if (proto == bpf_htons(ETH_P_IPV6))
		err = parse_ipv6(skb, offset, &key, &bytes, &tcp_flags);
	else {
		count(COUNTER_NOT_IP);
		return TC_ACT_UNSPEC;
	}
	if (err) {
		count(COUNTER_TRUNCATED);
		return TC_ACT_UNSPEC;
	}

	key.ifindex = skb->ifindex;
	key.direction = direction;
	now = bpf_ktime_get_ns();

	value = bpf_map_lookup_elem(&flows, &key);
	if (value) {
		__sync_fetch_and_add(&value->packets, 1);
		__sync_fetch_and_add(&value->bytes, bytes);
		if (tcp_flags)
			__sync_fetch_and_or(&value->tcp_flags, tcp_flags);
		value->last_seen_ns = now;
		return TC_ACT_UNSPEC;
	}

	struct flow_value fresh = {
		.packets = 1,
		.bytes = bytes,
		.first_seen_ns = now,
		.last_seen_ns = now,
		.tcp_flags = tcp_flags,
	};
	__builtin_memcpy(fresh.src_mac, eth.h_source, 6);
	__builtin_memcpy(fresh.dst_mac, eth.h_dest, 6);

	err = bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
	if (err == -17 /* EEXIST: another CPU created it first */) {
		value = bpf_map_lookup_elem(&flows, &key);
		if (value) {
			__sync_fetch_and_add(&value->packets, 1);
			__sync_fetch_and_add(&value->bytes, bytes);
			if (tcp_flags)
				__sync_fetch_and_or(&value->tcp_flags, tcp_flags);
			value->last_seen_ns = now;
		}
	} else if (err) {
		/* E2BIG or ENOMEM: the map is full until user space expires flows. */
		count(COUNTER_MAP_FULL);
	}
	return TC_ACT_UNSPEC;
}

SEC("tc")
int flow_ingress(struct __sk_buff *skb)
{
	return meter(skb, DIRECTION_INGRESS);
}

SEC("tc")
int flow_egress(struct __sk_buff *skb)
{
	return meter(skb, DIRECTION_EGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
