//! The conntrack meter, used where the eBPF programs cannot be loaded: dumps
//! the conntrack table over netlink (ctnetlink) and turns the accounting
//! counters of each direction into a flow.
//!
//! Conntrack records no MAC addresses and no interface, so those fields stay
//! zero and empty, and every record has direction ingress. It keeps no
//! last-seen time either: a flow's last packet is taken as the poll at which
//! its counters last changed, so times are only as fine as the poll
//! interval.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Context};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::aging::{Counters, FlowKey};
use crate::record::{Direction, MacAddress};

const ACCOUNTING_SYSCTL: &str = "/proc/sys/net/netfilter/nf_conntrack_acct";

// From <linux/netlink.h>, <linux/netfilter/nfnetlink.h> and
// <linux/netfilter/nfnetlink_conntrack.h>.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLA_TYPE_MASK: u16 = 0x3FFF;
const IPCTNL_MSG_CT_GET: u16 = (1 << 8) | 1;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_COUNTERS_ORIG: u16 = 9;
const CTA_COUNTERS_REPLY: u16 = 10;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTO_ICMP_TYPE: u16 = 5;
const CTA_PROTO_ICMP_CODE: u16 = 6;
const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
const CTA_PROTO_ICMPV6_CODE: u16 = 9;
const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;

/// One direction of one conntrack entry with its cumulative counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConntrackFlow {
    pub key: FlowKey,
    pub packets: u64,
    pub bytes: u64,
}

/// First and last change of a flow's counters, by poll time.
#[derive(Debug, Clone, Copy)]
struct Seen {
    first_ms: u64,
    last_ms: u64,
    packets: u64,
}

pub struct ConntrackMeter {
    socket: Socket,
    sequence: u32,
    seen: HashMap<FlowKey, Seen>,
}

impl ConntrackMeter {
    /// Opens the netlink socket and turns conntrack accounting on; without
    /// it the kernel reports no counters.
    pub fn open() -> anyhow::Result<ConntrackMeter> {
        match std::fs::read_to_string(ACCOUNTING_SYSCTL) {
            Ok(value) if value.trim() == "1" => {}
            Ok(_) => {
                std::fs::write(ACCOUNTING_SYSCTL, "1")
                    .with_context(|| format!("failed to turn on conntrack accounting in {ACCOUNTING_SYSCTL}"))?;
                log::info!("turned on conntrack accounting ({ACCOUNTING_SYSCTL} = 1)");
            }
            Err(err) => bail!("conntrack is not available ({ACCOUNTING_SYSCTL}: {err}); load nf_conntrack"),
        }

        let mut socket = Socket::new(NETLINK_NETFILTER).context("failed to open a NETLINK_NETFILTER socket")?;
        socket.bind_auto().context("failed to bind the netlink socket")?;
        socket.connect(&SocketAddr::new(0, 0)).context("failed to connect the netlink socket")?;
        Ok(ConntrackMeter { socket, sequence: 0, seen: HashMap::new() })
    }

    /// Dumps conntrack and returns one flow per direction that has packets.
    /// `now_ms` stamps the flows whose counters changed since the last call.
    pub fn read_flows(&mut self, now_ms: u64, _boot_epoch_ms: u64) -> anyhow::Result<Vec<(FlowKey, Counters)>> {
        let entries = self.dump()?;

        let mut flows = Vec::with_capacity(entries.len());
        let mut seen = HashMap::with_capacity(entries.len());
        for entry in entries {
            let previous = self.seen.get(&entry.key).copied();
            let state = match previous {
                Some(state) if state.packets == entry.packets => state,
                Some(state) => Seen { last_ms: now_ms, packets: entry.packets, ..state },
                None => Seen { first_ms: now_ms, last_ms: now_ms, packets: entry.packets },
            };
            seen.insert(entry.key, state);
            flows.push((
                entry.key,
                Counters {
                    packets: entry.packets,
                    bytes: entry.bytes,
                    tcp_flags: 0,
                    first_ms: state.first_ms,
                    last_ms: state.last_ms,
                    source_mac: MacAddress::default(),
                    destination_mac: MacAddress::default(),
                },
            ));
        }
        self.seen = seen;
        Ok(flows)
    }

    fn dump(&mut self) -> anyhow::Result<Vec<ConntrackFlow>> {
        self.sequence = self.sequence.wrapping_add(1);
        let request = dump_request(self.sequence);
        self.socket.send(&request, 0).context("failed to send the conntrack dump request")?;

        let mut flows = Vec::new();
        loop {
            let (buffer, _) = self.socket.recv_from_full().context("failed to read the conntrack dump")?;
            if parse_dump_messages(&buffer, &mut flows)? {
                return Ok(flows);
            }
        }
    }
}

/// Builds an IPCTNL_MSG_CT_GET dump request for all address families.
fn dump_request(sequence: u32) -> Vec<u8> {
    let mut request = Vec::with_capacity(20);
    request.extend_from_slice(&20u32.to_ne_bytes());
    request.extend_from_slice(&IPCTNL_MSG_CT_GET.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&sequence.to_ne_bytes());
    request.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg: AF_UNSPEC, NFNETLINK_V0, resource id 0.
    request.extend_from_slice(&[0, 0, 0, 0]);
    request
}

/// Parses the netlink messages in one datagram of a dump, appending the
/// flows to `flows`. Returns true when the dump is complete.
pub fn parse_dump_messages(buffer: &[u8], flows: &mut Vec<ConntrackFlow>) -> anyhow::Result<bool> {
    let mut offset = 0;
    while offset + 16 <= buffer.len() {
        let length = u32::from_ne_bytes(buffer[offset..offset + 4].try_into()?) as usize;
        let message_type = u16::from_ne_bytes(buffer[offset + 4..offset + 6].try_into()?);
        if length < 16 || offset + length > buffer.len() {
            bail!("truncated netlink message at byte {offset}: length {length}, {} bytes left", buffer.len() - offset);
        }
        let payload = &buffer[offset + 16..offset + length];
        match message_type {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = payload.get(..4).map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                if errno != 0 {
                    bail!("conntrack dump failed: {}", std::io::Error::from_raw_os_error(-errno));
                }
            }
            IPCTNL_MSG_CT_NEW_REPLY => {
                // Skip struct nfgenmsg.
                if let Some(attributes) = payload.get(4..) {
                    parse_entry(attributes, flows);
                }
            }
            _ => {}
        }
        offset += align4(length);
    }
    Ok(false)
}

/// Message type of a dumped entry (IPCTNL_MSG_CT_NEW in the ctnetlink subsystem).
const IPCTNL_MSG_CT_NEW_REPLY: u16 = 1 << 8;

/// Appends the two directions of one conntrack entry, skipping a direction
/// without counters or without packets.
fn parse_entry(attributes: &[u8], flows: &mut Vec<ConntrackFlow>) {
    let mut tuples = [None, None];
    let mut counters = [None, None];
    for (kind, value) in Attributes(attributes) {
        match kind {
            CTA_TUPLE_ORIG => tuples[0] = parse_tuple(value),
            CTA_TUPLE_REPLY => tuples[1] = parse_tuple(value),
            CTA_COUNTERS_ORIG => counters[0] = parse_counters(value),
            CTA_COUNTERS_REPLY => counters[1] = parse_counters(value),
            _ => {}
        }
    }
    for (tuple, counters) in tuples.into_iter().zip(counters) {
        if let (Some(key), Some((packets, bytes))) = (tuple, counters) {
            if packets > 0 {
                flows.push(ConntrackFlow { key, packets, bytes });
            }
        }
    }
}

fn parse_tuple(attributes: &[u8]) -> Option<FlowKey> {
    let mut addresses: (Option<IpAddr>, Option<IpAddr>) = (None, None);
    let mut protocol = None;
    let (mut source_port, mut destination_port) = (0u16, 0u16);
    let (mut icmp_type, mut icmp_code) = (None, 0u8);

    for (kind, value) in Attributes(attributes) {
        match kind {
            CTA_TUPLE_IP => {
                for (kind, value) in Attributes(value) {
                    match (kind, value.len()) {
                        (CTA_IP_V4_SRC, 4) => addresses.0 = Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?))),
                        (CTA_IP_V4_DST, 4) => addresses.1 = Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?))),
                        (CTA_IP_V6_SRC, 16) => addresses.0 = Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(value).ok()?))),
                        (CTA_IP_V6_DST, 16) => addresses.1 = Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(value).ok()?))),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (kind, value) in Attributes(value) {
                    match (kind, value.len()) {
                        (CTA_PROTO_NUM, 1) => protocol = Some(value[0]),
                        (CTA_PROTO_SRC_PORT, 2) => source_port = u16::from_be_bytes([value[0], value[1]]),
                        (CTA_PROTO_DST_PORT, 2) => destination_port = u16::from_be_bytes([value[0], value[1]]),
                        (CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE, 1) => icmp_type = Some(value[0]),
                        (CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE, 1) => icmp_code = value[0],
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    // ICMP as the eBPF meter and NetFlow exporters encode it.
    if let Some(icmp_type) = icmp_type {
        source_port = 0;
        destination_port = u16::from(icmp_type) << 8 | u16::from(icmp_code);
    }
    Some(FlowKey {
        interface_index: 0,
        direction: Direction::Ingress,
        source_address: addresses.0?,
        destination_address: addresses.1?,
        source_port,
        destination_port,
        protocol: protocol?,
    })
}

fn parse_counters(attributes: &[u8]) -> Option<(u64, u64)> {
    let (mut packets, mut bytes) = (None, None);
    for (kind, value) in Attributes(attributes) {
        let Ok(value) = <[u8; 8]>::try_from(value) else { continue };
        match kind {
            CTA_COUNTERS_PACKETS => packets = Some(u64::from_be_bytes(value)),
            CTA_COUNTERS_BYTES => bytes = Some(u64::from_be_bytes(value)),
            _ => {}
        }
    }
    Some((packets?, bytes?))
}

fn align4(length: usize) -> usize {
    (length + 3) & !3
}

/// Iterates over netlink attributes as (type without flags, value); stops
/// at the first attribute whose length runs past the buffer.
struct Attributes<'a>(&'a [u8]);

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let header = self.0.get(..4)?;
        let length = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & NLA_TYPE_MASK;
        if length < 4 || length > self.0.len() {
            self.0 = &[];
            return None;
        }
        let value = &self.0[4..length];
        self.0 = self.0.get(align4(length)..).unwrap_or(&[]);
        Some((kind, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: u16 = 0x8000;

    fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(align4(out.len()), 0);
        out
    }

    fn tuple(source: [u8; 4], destination: [u8; 4], source_port: u16, destination_port: u16) -> Vec<u8> {
        let ip = [attribute(CTA_IP_V4_SRC, &source), attribute(CTA_IP_V4_DST, &destination)].concat();
        let proto = [
            attribute(CTA_PROTO_NUM, &[17]),
            attribute(CTA_PROTO_SRC_PORT, &source_port.to_be_bytes()),
            attribute(CTA_PROTO_DST_PORT, &destination_port.to_be_bytes()),
        ]
        .concat();
        [attribute(CTA_TUPLE_IP | NESTED, &ip), attribute(CTA_TUPLE_PROTO | NESTED, &proto)].concat()
    }

    fn counters(packets: u64, bytes: u64) -> Vec<u8> {
        [attribute(CTA_COUNTERS_PACKETS, &packets.to_be_bytes()), attribute(CTA_COUNTERS_BYTES, &bytes.to_be_bytes())]
            .concat()
    }

    fn message(message_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&message_type.to_ne_bytes());
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(payload);
        out
    }

    fn entry() -> Vec<u8> {
        let mut payload = vec![2, 0, 0, 0]; // nfgenmsg, AF_INET
        payload.extend(attribute(CTA_TUPLE_ORIG | NESTED, &tuple([10, 0, 0, 1], [10, 0, 0, 2], 5000, 53)));
        payload.extend(attribute(CTA_TUPLE_REPLY | NESTED, &tuple([10, 0, 0, 2], [10, 0, 0, 1], 53, 5000)));
        payload.extend(attribute(CTA_COUNTERS_ORIG | NESTED, &counters(3, 180)));
        payload.extend(attribute(CTA_COUNTERS_REPLY | NESTED, &counters(0, 0)));
        message(IPCTNL_MSG_CT_NEW_REPLY, &payload)
    }

    #[test]
    fn entry_gives_directions_with_packets() {
        let buffer = [entry(), message(NLMSG_DONE, &[0; 4])].concat();
        let mut flows = Vec::new();
        assert!(parse_dump_messages(&buffer, &mut flows).unwrap());

        assert_eq!(flows.len(), 1, "the reply direction has no packets");
        let flow = flows[0];
        assert_eq!(flow.key.source_address, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(flow.key.destination_address, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((flow.key.source_port, flow.key.destination_port, flow.key.protocol), (5000, 53, 17));
        assert_eq!((flow.packets, flow.bytes), (3, 180));
    }

    #[test]
    fn dump_continues_without_done() {
        let mut flows = Vec::new();
        assert!(!parse_dump_messages(&entry(), &mut flows).unwrap());
        assert_eq!(flows.len(), 1);
    }

    #[test]
    fn truncated_message_names_offset() {
        let mut buffer = entry();
        let cut = buffer.len() - 8;
        buffer.truncate(cut);
        let err = parse_dump_messages(&buffer, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("truncated netlink message at byte 0"), "{err}");
    }

    #[test]
    fn error_message_reported() {
        let buffer = message(NLMSG_ERROR, &(-1i32).to_ne_bytes());
        let err = parse_dump_messages(&buffer, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("conntrack dump failed"), "{err}");
    }
}
