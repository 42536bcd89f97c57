//! Templates shared by the IPFIX and NetFlow v9 encoders: which information
//! elements a data record carries, with which length, and how each value is
//! written from a [`FlowRecord`].
//!
//! Element numbers are from the IANA IPFIX registry; NetFlow v9 (RFC 3954)
//! uses the same numbers for all the elements used here except the
//! timestamps, which are FIRST_SWITCHED (22) and LAST_SWITCHED (21) in
//! milliseconds of system uptime.

use std::net::IpAddr;

use crate::record::FlowRecord;

/// Template id of records with IPv4 addresses; 256 is the first id that
/// both IPFIX and NetFlow v9 allow for data templates.
pub const TEMPLATE_IPV4: u16 = 256;
/// Template id of records with IPv6 addresses.
pub const TEMPLATE_IPV6: u16 = 257;

/// The length IPFIX uses in a template for a variable-length element.
pub const VARIABLE_LENGTH: u16 = 0xFFFF;

/// Fixed length of interfaceName in NetFlow v9, which has no
/// variable-length encoding: IFNAMSIZ, the kernel's limit including the NUL.
pub const NETFLOW9_INTERFACE_NAME_LENGTH: u16 = 16;

/// A value a template field takes from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    SourceMac,
    DestinationMac,
    IngressInterface,
    EgressInterface,
    FlowDirection,
    SourceAddress,
    DestinationAddress,
    SourcePort,
    DestinationPort,
    Protocol,
    TcpFlags,
    Octets,
    Packets,
    /// Milliseconds since the Unix epoch (IPFIX).
    StartEpochMs,
    EndEpochMs,
    /// Milliseconds of system uptime, modulo 2^32 (NetFlow v9).
    StartUptimeMs,
    EndUptimeMs,
    InterfaceName,
}

/// One field specifier: information element id, length in the record, value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub element: u16,
    pub length: u16,
    pub value: Value,
}

const fn field(element: u16, length: u16, value: Value) -> Field {
    Field { element, length, value }
}

/// Fields both formats put first, before the addresses.
const HEAD: [Field; 5] = [
    field(56, 6, Value::SourceMac),      // sourceMacAddress
    field(80, 6, Value::DestinationMac), // destinationMacAddress
    field(10, 4, Value::IngressInterface),
    field(14, 4, Value::EgressInterface),
    field(61, 1, Value::FlowDirection),
];

/// Returns the fields of an IPFIX data record for IPv4 or IPv6 addresses.
pub fn ipfix_fields(ipv6: bool) -> Vec<Field> {
    let mut fields = HEAD.to_vec();
    fields.extend(addresses(ipv6));
    fields.extend([
        field(7, 2, Value::SourcePort),
        field(11, 2, Value::DestinationPort),
        field(4, 1, Value::Protocol),
        // tcpControlBits is two octets since RFC 7125.
        field(6, 2, Value::TcpFlags),
        field(1, 8, Value::Octets),
        field(2, 8, Value::Packets),
        field(152, 8, Value::StartEpochMs), // flowStartMilliseconds
        field(153, 8, Value::EndEpochMs),   // flowEndMilliseconds
        field(82, VARIABLE_LENGTH, Value::InterfaceName),
    ]);
    fields
}

/// Returns the fields of a NetFlow v9 data record for IPv4 or IPv6 addresses.
pub fn netflow9_fields(ipv6: bool) -> Vec<Field> {
    let mut fields = HEAD.to_vec();
    fields.extend(addresses(ipv6));
    fields.extend([
        field(7, 2, Value::SourcePort),
        field(11, 2, Value::DestinationPort),
        field(4, 1, Value::Protocol),
        field(6, 1, Value::TcpFlags),
        field(1, 8, Value::Octets),  // IN_BYTES
        field(2, 8, Value::Packets), // IN_PKTS
        field(22, 4, Value::StartUptimeMs), // FIRST_SWITCHED
        field(21, 4, Value::EndUptimeMs),   // LAST_SWITCHED
        field(82, NETFLOW9_INTERFACE_NAME_LENGTH, Value::InterfaceName),
    ]);
    fields
}

fn addresses(ipv6: bool) -> [Field; 2] {
    if ipv6 {
        [field(27, 16, Value::SourceAddress), field(28, 16, Value::DestinationAddress)]
    } else {
        [field(8, 4, Value::SourceAddress), field(12, 4, Value::DestinationAddress)]
    }
}

/// Appends a template record (template id, field count, field specifiers)
/// in the layout both RFC 7011 and RFC 3954 use.
pub fn write_template(out: &mut Vec<u8>, template_id: u16, fields: &[Field]) {
    out.extend_from_slice(&template_id.to_be_bytes());
    out.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for field in fields {
        out.extend_from_slice(&field.element.to_be_bytes());
        out.extend_from_slice(&field.length.to_be_bytes());
    }
}

/// Appends the data record of `record` laid out as `fields`.
/// `boot_epoch_ms` is the Unix time of system boot in milliseconds, used for
/// the uptime timestamps of NetFlow v9.
pub fn write_record(out: &mut Vec<u8>, fields: &[Field], record: &FlowRecord, boot_epoch_ms: u64) {
    for field in fields {
        write_value(out, field, record, boot_epoch_ms);
    }
}

fn write_value(out: &mut Vec<u8>, field: &Field, record: &FlowRecord, boot_epoch_ms: u64) {
    let uptime = |epoch_ms: u64| epoch_ms.saturating_sub(boot_epoch_ms) as u32;
    match field.value {
        Value::SourceMac => out.extend_from_slice(&record.source_mac.0),
        Value::DestinationMac => out.extend_from_slice(&record.destination_mac.0),
        Value::IngressInterface => out.extend_from_slice(&record.ingress_interface().to_be_bytes()),
        Value::EgressInterface => out.extend_from_slice(&record.egress_interface().to_be_bytes()),
        Value::FlowDirection => out.push(record.direction as u8),
        Value::SourceAddress => write_address(out, record.source_address),
        Value::DestinationAddress => write_address(out, record.destination_address),
        Value::SourcePort => out.extend_from_slice(&record.source_port.to_be_bytes()),
        Value::DestinationPort => out.extend_from_slice(&record.destination_port.to_be_bytes()),
        Value::Protocol => out.push(record.protocol),
        Value::TcpFlags => write_unsigned(out, u64::from(record.tcp_flags), field.length),
        Value::Octets => write_unsigned(out, record.bytes, field.length),
        Value::Packets => write_unsigned(out, record.packets, field.length),
        Value::StartEpochMs => out.extend_from_slice(&record.start_ms.to_be_bytes()),
        Value::EndEpochMs => out.extend_from_slice(&record.end_ms.to_be_bytes()),
        // NOTE: uptime wraps after 49.7 days, as the 32-bit field does on
        // every NetFlow v9 exporter; collectors correct with the header.
        Value::StartUptimeMs => out.extend_from_slice(&uptime(record.start_ms).to_be_bytes()),
        Value::EndUptimeMs => out.extend_from_slice(&uptime(record.end_ms).to_be_bytes()),
        Value::InterfaceName => write_string(out, &record.interface_name, field.length),
    }
}

fn write_address(out: &mut Vec<u8>, address: IpAddr) {
    match address {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

/// Writes the low `length` bytes of `value` in network byte order
/// (reduced-size encoding, RFC 7011 section 6.2).
fn write_unsigned(out: &mut Vec<u8>, value: u64, length: u16) {
    let bytes = value.to_be_bytes();
    out.extend_from_slice(&bytes[8 - usize::from(length)..]);
}

/// Writes a string either with the IPFIX variable-length prefix or padded
/// with NULs to a fixed length, cutting it at a character boundary.
fn write_string(out: &mut Vec<u8>, text: &str, length: u16) {
    if length == VARIABLE_LENGTH {
        // A name longer than 254 bytes would need the three-byte length
        // form; interface names are at most 15 bytes, so cut there.
        let text = truncate_utf8(text, 254);
        out.push(text.len() as u8);
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let text = truncate_utf8(text, usize::from(length));
    out.extend_from_slice(text.as_bytes());
    out.resize(out.len() + usize::from(length) - text.len(), 0);
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Returns the encoded length of `record` laid out as `fields`.
pub fn record_length(fields: &[Field], record: &FlowRecord) -> usize {
    fields
        .iter()
        .map(|field| match field.length {
            VARIABLE_LENGTH => 1 + truncate_utf8(&record.interface_name, 254).len(),
            length => usize::from(length),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_uses_reduced_size() {
        let mut out = Vec::new();
        write_unsigned(&mut out, 0x1b, 2);
        write_unsigned(&mut out, 0x0102_0304, 4);
        assert_eq!(out, [0x00, 0x1b, 0x01, 0x02, 0x03, 0x04]);
    }

    #[test]
    fn fixed_string_is_padded_and_cut() {
        let mut out = Vec::new();
        write_string(&mut out, "eth0", 6);
        assert_eq!(out, b"eth0\0\0");

        out.clear();
        write_string(&mut out, "a-very-long-name", 4);
        assert_eq!(out, b"a-ve");
    }

    #[test]
    fn variable_string_has_length_prefix() {
        let mut out = Vec::new();
        write_string(&mut out, "veth0", VARIABLE_LENGTH);
        assert_eq!(out, b"\x05veth0");
    }

    #[test]
    fn record_length_matches_written_bytes() {
        let record = crate::record::sample_ipv4();
        for fields in [ipfix_fields(false), ipfix_fields(true), netflow9_fields(false)] {
            let mut out = Vec::new();
            let mut record = record.clone();
            if fields.iter().any(|f| f.element == 27) {
                record.source_address = "2001:db8::1".parse().unwrap();
                record.destination_address = "2001:db8::2".parse().unwrap();
            }
            write_record(&mut out, &fields, &record, 0);
            assert_eq!(out.len(), record_length(&fields, &record));
        }
    }
}
