//! NetFlow v9 export packet encoder (RFC 3954): a packet header, a template
//! FlowSet with the IPv4 and IPv6 templates when they are due, and data
//! FlowSets padded to a 32-bit boundary.

use std::sync::Arc;

use crate::record::FlowRecord;
use crate::template::{self, Field, TEMPLATE_IPV4, TEMPLATE_IPV6};

const VERSION: u16 = 9;
const HEADER_LENGTH: usize = 20;
const FLOWSET_HEADER_LENGTH: usize = 4;
const TEMPLATE_FLOWSET_ID: u16 = 0;

/// Encoder state of one NetFlow v9 stream: the source id and the packet
/// sequence number, which counts export packets.
#[derive(Debug)]
pub struct Netflow9Encoder {
    source_id: u32,
    sequence: u32,
    max_packet_length: usize,
    ipv4_fields: Arc<[Field]>,
    ipv6_fields: Arc<[Field]>,
}

impl Netflow9Encoder {
    /// Creates an encoder whose packets are at most `max_packet_length` bytes.
    pub fn new(source_id: u32, max_packet_length: usize) -> Self {
        Netflow9Encoder {
            source_id,
            sequence: 0,
            max_packet_length: max_packet_length.max(512),
            ipv4_fields: template::netflow9_fields(false).into(),
            ipv6_fields: template::netflow9_fields(true).into(),
        }
    }

    /// Encodes `records` into export packets. `boot_epoch_ms` is the Unix
    /// time of system boot in milliseconds: sysUptime and the
    /// FIRST_SWITCHED and LAST_SWITCHED fields count from it.
    pub fn encode(
        &mut self,
        records: &[FlowRecord],
        with_templates: bool,
        now_ms: u64,
        boot_epoch_ms: u64,
    ) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        let mut packet = PacketBuilder::new();
        if with_templates {
            self.write_template_flowset(&mut packet);
        }

        // IPv4 records first, then IPv6, so each message has at most one
        // data set per template.
        let ordered = records.iter().filter(|r| !r.is_ipv6()).chain(records.iter().filter(|r| r.is_ipv6()));
        for record in ordered {
            let template_id = if record.is_ipv6() { TEMPLATE_IPV6 } else { TEMPLATE_IPV4 };
            let fields = self.fields(template_id);
            // Room for the record, a new FlowSet header and its padding.
            let needed = template::record_length(&fields, record) + FLOWSET_HEADER_LENGTH + 3;
            if packet.data_records > 0 && HEADER_LENGTH + packet.body.len() + needed > self.max_packet_length {
                packets.push(self.finish(&mut packet, now_ms, boot_epoch_ms));
            }
            packet.start_flowset(template_id);
            template::write_record(&mut packet.body, &fields, record, boot_epoch_ms);
            packet.data_records += 1;
        }

        if packet.count > 0 || packet.data_records > 0 {
            packets.push(self.finish(&mut packet, now_ms, boot_epoch_ms));
        }
        packets
    }

    fn write_template_flowset(&self, packet: &mut PacketBuilder) {
        let start = packet.body.len();
        packet.body.extend_from_slice(&TEMPLATE_FLOWSET_ID.to_be_bytes());
        packet.body.extend_from_slice(&[0, 0]);
        template::write_template(&mut packet.body, TEMPLATE_IPV4, &self.ipv4_fields);
        template::write_template(&mut packet.body, TEMPLATE_IPV6, &self.ipv6_fields);
        let length = (packet.body.len() - start) as u16;
        packet.body[start + 2..start + 4].copy_from_slice(&length.to_be_bytes());
        packet.count += 2;
    }

    /// Returns the fields of a template; the Arc lets the caller keep them
    /// while finishing a message, which needs `&mut self`.
    fn fields(&self, template_id: u16) -> Arc<[Field]> {
        if template_id == TEMPLATE_IPV6 {
            Arc::clone(&self.ipv6_fields)
        } else {
            Arc::clone(&self.ipv4_fields)
        }
    }

    fn finish(&mut self, packet: &mut PacketBuilder, now_ms: u64, boot_epoch_ms: u64) -> Vec<u8> {
        packet.close_flowset();
        let uptime = now_ms.saturating_sub(boot_epoch_ms) as u32;
        let count = (packet.count + packet.data_records) as u16;

        let mut out = Vec::with_capacity(HEADER_LENGTH + packet.body.len());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&uptime.to_be_bytes());
        out.extend_from_slice(&((now_ms / 1000) as u32).to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.source_id.to_be_bytes());
        out.extend_from_slice(&packet.body);

        self.sequence = self.sequence.wrapping_add(1);
        *packet = PacketBuilder::new();
        out
    }
}

/// The FlowSets of one export packet under construction.
struct PacketBuilder {
    body: Vec<u8>,
    open_flowset: Option<u16>,
    open_flowset_start: usize,
    /// Template records written so far.
    count: usize,
    data_records: usize,
}

impl PacketBuilder {
    fn new() -> Self {
        PacketBuilder { body: Vec::new(), open_flowset: None, open_flowset_start: 0, count: 0, data_records: 0 }
    }

    fn start_flowset(&mut self, flowset_id: u16) {
        if self.open_flowset == Some(flowset_id) {
            return;
        }
        self.close_flowset();
        self.open_flowset = Some(flowset_id);
        self.open_flowset_start = self.body.len();
        self.body.extend_from_slice(&flowset_id.to_be_bytes());
        self.body.extend_from_slice(&[0, 0]);
    }

    /// Pads the open data FlowSet to a multiple of four bytes, as RFC 3954
    /// requires, and writes its length.
    fn close_flowset(&mut self) {
        if self.open_flowset.take().is_none() {
            return;
        }
        let padding = (4 - (self.body.len() - self.open_flowset_start) % 4) % 4;
        self.body.resize(self.body.len() + padding, 0);
        let length = (self.body.len() - self.open_flowset_start) as u16;
        self.body[self.open_flowset_start + 2..self.open_flowset_start + 4].copy_from_slice(&length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample_ipv4;

    /// The data record of `sample_ipv4()` under the NetFlow v9 IPv4
    /// template, with boot at 1699999990000 ms.
    const SAMPLE_IPV4_RECORD: &[u8] = &[
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // IN_SRC_MAC
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // IN_DST_MAC
        0x00, 0x00, 0x00, 0x00, // INPUT_SNMP 0
        0x00, 0x00, 0x00, 0x07, // OUTPUT_SNMP 7
        0x01, // DIRECTION egress
        10, 1, 2, 3, // IPV4_SRC_ADDR
        10, 1, 2, 4, // IPV4_DST_ADDR
        0x9c, 0x40, // L4_SRC_PORT 40000
        0x14, 0x51, // L4_DST_PORT 5201
        0x06, // PROTOCOL TCP
        0x1b, // TCP_FLAGS
        0, 0, 0, 0, 0, 0, 0x05, 0xdc, // IN_BYTES 1500
        0, 0, 0, 0, 0, 0, 0, 3, // IN_PKTS 3
        0x00, 0x00, 0x27, 0x10, // FIRST_SWITCHED 10000 ms uptime
        0x00, 0x00, 0x28, 0x0a, // LAST_SWITCHED 10250 ms uptime
        b'v', b'e', b't', b'h', b'0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // IF_NAME
    ];

    #[test]
    fn data_packet_matches_bytes() {
        let boot = 1_699_999_990_000;
        let now = 1_700_000_001_000;
        let mut encoder = Netflow9Encoder::new(9, 1400);
        let packets = encoder.encode(&[sample_ipv4()], false, now, boot);
        assert_eq!(packets.len(), 1);

        let mut expected = vec![
            0x00, 0x09, // version 9
            0x00, 0x01, // count: one record
            0x00, 0x00, 0x2a, 0xf8, // sysUptime 11000 ms
            0x65, 0x53, 0xf1, 0x01, // unix seconds 1700000001
            0x00, 0x00, 0x00, 0x00, // sequence 0
            0x00, 0x00, 0x00, 0x09, // source id 9
            0x01, 0x00, 0x00, 0x00, // FlowSet 256, length set below
        ];
        expected.extend_from_slice(SAMPLE_IPV4_RECORD);
        // 4 header and 75 record bytes, padded to 80.
        expected.push(0);
        expected[22..24].copy_from_slice(&80u16.to_be_bytes());

        assert_eq!(packets[0], expected);
    }

    #[test]
    fn template_flowset_counts_two_records() {
        let mut encoder = Netflow9Encoder::new(1, 1400);
        let packets = encoder.encode(&[], true, 5000, 0);
        assert_eq!(packets.len(), 1);
        let packet = &packets[0];

        assert_eq!(&packet[2..4], &[0x00, 0x02]);
        assert_eq!(&packet[20..22], &[0x00, 0x00]);
        let length = u16::from_be_bytes([packet[22], packet[23]]) as usize;
        assert_eq!(20 + length, packet.len());
        // Template 256 with 16 fields, first field IN_SRC_MAC of 6 bytes.
        assert_eq!(&packet[24..32], &[0x01, 0x00, 0x00, 0x10, 0x00, 0x38, 0x00, 0x06]);
    }

    #[test]
    fn sequence_counts_packets() {
        let mut encoder = Netflow9Encoder::new(1, 512);
        let records = vec![sample_ipv4(); 20];
        let packets = encoder.encode(&records, false, 0, 0);
        assert!(packets.len() > 1);
        for (index, packet) in packets.iter().enumerate() {
            assert!(packet.len() <= 512);
            assert_eq!(&packet[12..16], &(index as u32).to_be_bytes());
            let flowset_length = u16::from_be_bytes([packet[22], packet[23]]) as usize;
            assert_eq!(flowset_length % 4, 0);
        }
    }
}
