//! The flow record: one exported measurement of one unidirectional flow on
//! one interface, whatever source metered it. The IPFIX and NetFlow v9
//! encoders and the JSON lines for the management server all read this type.

use std::fmt;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

/// Direction of a packet relative to the interface, encoded as IPFIX
/// flowDirection (information element 61) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress = 0,
    Egress = 1,
}

/// A 48-bit MAC address; serialized as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddress(pub [u8; 6]);

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The meter that produced a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowSource {
    /// The TC programs in bpf/flow.bpf.c.
    Ebpf,
    /// Conntrack accounting read over netlink. Conntrack records no MAC
    /// addresses and no interface, so those fields are zero and empty.
    Conntrack,
}

/// One flow record. Counters are deltas since the previous record of the
/// same flow, as octetDeltaCount and packetDeltaCount are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRecord {
    pub source: FlowSource,
    /// Interface name at the time the meter was attached; empty if unknown.
    pub interface_name: String,
    /// Interface index (ifindex); 0 if unknown.
    pub interface_index: u32,
    pub direction: Direction,
    pub source_mac: MacAddress,
    pub destination_mac: MacAddress,
    pub source_address: IpAddr,
    pub destination_address: IpAddr,
    /// Transport source port; 0 for protocols without ports.
    pub source_port: u16,
    /// Transport destination port; for ICMP, type * 256 + code.
    pub destination_port: u16,
    /// IP protocol number (protocolIdentifier).
    pub protocol: u8,
    /// Octets of the IP packets: IP header, transport header and payload.
    pub bytes: u64,
    pub packets: u64,
    /// OR of the TCP flags byte of every counted segment.
    pub tcp_flags: u8,
    /// First packet of this record, in milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// Last packet of this record, in milliseconds since the Unix epoch.
    pub end_ms: u64,
}

impl FlowRecord {
    /// Returns the ingressInterface value: the ifindex for ingress records, else 0.
    pub fn ingress_interface(&self) -> u32 {
        match self.direction {
            Direction::Ingress => self.interface_index,
            Direction::Egress => 0,
        }
    }

    /// Returns the egressInterface value: the ifindex for egress records, else 0.
    pub fn egress_interface(&self) -> u32 {
        match self.direction {
            Direction::Ingress => 0,
            Direction::Egress => self.interface_index,
        }
    }

    pub fn is_ipv6(&self) -> bool {
        self.source_address.is_ipv6()
    }
}

/// Serializes records as JSON lines: one JSON object per record, each line
/// ending in a newline, for the management-server channel.
pub fn to_json_lines(records: &[FlowRecord]) -> serde_json::Result<String> {
    let mut out = String::new();
    for record in records {
        out.push_str(&serde_json::to_string(record)?);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) fn sample_ipv4() -> FlowRecord {
    FlowRecord {
        source: FlowSource::Ebpf,
        interface_name: "veth0".to_string(),
        interface_index: 7,
        direction: Direction::Egress,
        source_mac: MacAddress([0x02, 0, 0, 0, 0, 0x01]),
        destination_mac: MacAddress([0x02, 0, 0, 0, 0, 0x02]),
        source_address: "10.1.2.3".parse().unwrap(),
        destination_address: "10.1.2.4".parse().unwrap(),
        source_port: 40000,
        destination_port: 5201,
        protocol: 6,
        bytes: 1500,
        packets: 3,
        tcp_flags: 0x1b,
        start_ms: 1_700_000_000_000,
        end_ms: 1_700_000_000_250,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_every_field() {
        let text = to_json_lines(&[sample_ipv4()]).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 1);

        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value["source"], "ebpf");
        assert_eq!(value["interface_name"], "veth0");
        assert_eq!(value["direction"], "egress");
        assert_eq!(value["source_mac"], "02:00:00:00:00:01");
        assert_eq!(value["destination_address"], "10.1.2.4");
        assert_eq!(value["bytes"], 1500);
        assert_eq!(value["packets"], 3);
        assert_eq!(value["tcp_flags"], 0x1b);
        assert_eq!(value["end_ms"], 1_700_000_000_250u64);
    }

    #[test]
    fn interface_fields_follow_direction() {
        let mut record = sample_ipv4();
        assert_eq!((record.ingress_interface(), record.egress_interface()), (0, 7));
        record.direction = Direction::Ingress;
        assert_eq!((record.ingress_interface(), record.egress_interface()), (7, 0));
    }
}
