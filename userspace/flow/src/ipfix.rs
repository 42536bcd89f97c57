//! IPFIX message encoder (RFC 7011): a message header, a template set with
//! the IPv4 and IPv6 templates when they are due, and data sets.
//!
//! Written here rather than taken from a crate: the `ipfix` crate (0.1)
//! only parses, and rustflow_core, which does encode IPFIX, is a young
//! single-author crate whose API changes between 0.x releases. The same
//! template code serves NetFlow v9 (src/netflow9.rs), and the encoding
//! itself is small.

use std::sync::Arc;

use crate::record::FlowRecord;
use crate::template::{self, Field, TEMPLATE_IPV4, TEMPLATE_IPV6};

const VERSION: u16 = 10;
const MESSAGE_HEADER_LENGTH: usize = 16;
const SET_HEADER_LENGTH: usize = 4;
const TEMPLATE_SET_ID: u16 = 2;

/// Encoder state of one IPFIX stream: the observation domain and the
/// sequence number, which counts the data records sent before each message.
#[derive(Debug)]
pub struct IpfixEncoder {
    observation_domain: u32,
    sequence: u32,
    max_message_length: usize,
    ipv4_fields: Arc<[Field]>,
    ipv6_fields: Arc<[Field]>,
}

impl IpfixEncoder {
    /// Creates an encoder whose messages are at most `max_message_length`
    /// bytes (keep it below the path MTU minus the IP and UDP headers).
    pub fn new(observation_domain: u32, max_message_length: usize) -> Self {
        IpfixEncoder {
            observation_domain,
            sequence: 0,
            max_message_length: max_message_length.max(512),
            ipv4_fields: template::ipfix_fields(false).into(),
            ipv6_fields: template::ipfix_fields(true).into(),
        }
    }

    /// Encodes `records` into messages. With `with_templates`, the first
    /// message starts with a template set holding both templates, even when
    /// there are no records.
    pub fn encode(&mut self, records: &[FlowRecord], with_templates: bool, export_time: u32) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        let mut builder = MessageBuilder::new();
        if with_templates {
            self.write_template_set(&mut builder.body);
        }

        // IPv4 records first, then IPv6, so each message has at most one
        // data set per template.
        let ordered = records.iter().filter(|r| !r.is_ipv6()).chain(records.iter().filter(|r| r.is_ipv6()));
        for record in ordered {
            let template_id = if record.is_ipv6() { TEMPLATE_IPV6 } else { TEMPLATE_IPV4 };
            let fields = self.fields(template_id);
            let length = template::record_length(&fields, record);
            let mut needed = length;
            if builder.open_set != Some(template_id) {
                needed += SET_HEADER_LENGTH;
            }
            if builder.records > 0 && MESSAGE_HEADER_LENGTH + builder.body.len() + needed > self.max_message_length {
                messages.push(self.finish(&mut builder, export_time));
            }
            builder.start_set(template_id);
            template::write_record(&mut builder.body, &fields, record, 0);
            builder.records += 1;
        }

        if builder.records > 0 || !builder.body.is_empty() {
            messages.push(self.finish(&mut builder, export_time));
        }
        messages
    }

    fn write_template_set(&self, body: &mut Vec<u8>) {
        let start = body.len();
        body.extend_from_slice(&TEMPLATE_SET_ID.to_be_bytes());
        body.extend_from_slice(&[0, 0]);
        template::write_template(body, TEMPLATE_IPV4, &self.ipv4_fields);
        template::write_template(body, TEMPLATE_IPV6, &self.ipv6_fields);
        let length = (body.len() - start) as u16;
        body[start + 2..start + 4].copy_from_slice(&length.to_be_bytes());
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

    fn finish(&mut self, builder: &mut MessageBuilder, export_time: u32) -> Vec<u8> {
        builder.close_set();
        let mut message = Vec::with_capacity(MESSAGE_HEADER_LENGTH + builder.body.len());
        message.extend_from_slice(&VERSION.to_be_bytes());
        message.extend_from_slice(&((MESSAGE_HEADER_LENGTH + builder.body.len()) as u16).to_be_bytes());
        message.extend_from_slice(&export_time.to_be_bytes());
        message.extend_from_slice(&self.sequence.to_be_bytes());
        message.extend_from_slice(&self.observation_domain.to_be_bytes());
        message.extend_from_slice(&builder.body);

        self.sequence = self.sequence.wrapping_add(builder.records as u32);
        *builder = MessageBuilder::new();
        message
    }
}

/// The sets of one message under construction.
struct MessageBuilder {
    body: Vec<u8>,
    /// Set id and start offset of the data set being filled.
    open_set: Option<u16>,
    open_set_start: usize,
    records: usize,
}

impl MessageBuilder {
    fn new() -> Self {
        MessageBuilder { body: Vec::new(), open_set: None, open_set_start: 0, records: 0 }
    }

    fn start_set(&mut self, set_id: u16) {
        if self.open_set == Some(set_id) {
            return;
        }
        self.close_set();
        self.open_set = Some(set_id);
        self.open_set_start = self.body.len();
        self.body.extend_from_slice(&set_id.to_be_bytes());
        self.body.extend_from_slice(&[0, 0]);
    }

    fn close_set(&mut self) {
        if self.open_set.take().is_some() {
            let length = (self.body.len() - self.open_set_start) as u16;
            self.body[self.open_set_start + 2..self.open_set_start + 4].copy_from_slice(&length.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample_ipv4;

    /// The IPv4 template record, written out by hand from the element list:
    /// (id, length) pairs in network byte order.
    const IPV4_TEMPLATE: &[u8] = &[
        0x01, 0x00, 0x00, 0x10, // template 256, 16 fields
        0x00, 0x38, 0x00, 0x06, // sourceMacAddress, 6
        0x00, 0x50, 0x00, 0x06, // destinationMacAddress, 6
        0x00, 0x0a, 0x00, 0x04, // ingressInterface, 4
        0x00, 0x0e, 0x00, 0x04, // egressInterface, 4
        0x00, 0x3d, 0x00, 0x01, // flowDirection, 1
        0x00, 0x08, 0x00, 0x04, // sourceIPv4Address, 4
        0x00, 0x0c, 0x00, 0x04, // destinationIPv4Address, 4
        0x00, 0x07, 0x00, 0x02, // sourceTransportPort, 2
        0x00, 0x0b, 0x00, 0x02, // destinationTransportPort, 2
        0x00, 0x04, 0x00, 0x01, // protocolIdentifier, 1
        0x00, 0x06, 0x00, 0x02, // tcpControlBits, 2
        0x00, 0x01, 0x00, 0x08, // octetDeltaCount, 8
        0x00, 0x02, 0x00, 0x08, // packetDeltaCount, 8
        0x00, 0x98, 0x00, 0x08, // flowStartMilliseconds, 8
        0x00, 0x99, 0x00, 0x08, // flowEndMilliseconds, 8
        0x00, 0x52, 0xff, 0xff, // interfaceName, variable
    ];

    /// The data record of `sample_ipv4()` under the IPv4 template.
    const SAMPLE_IPV4_RECORD: &[u8] = &[
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source MAC
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination MAC
        0x00, 0x00, 0x00, 0x00, // ingressInterface 0 (egress record)
        0x00, 0x00, 0x00, 0x07, // egressInterface 7
        0x01, // flowDirection egress
        10, 1, 2, 3, // sourceIPv4Address
        10, 1, 2, 4, // destinationIPv4Address
        0x9c, 0x40, // port 40000
        0x14, 0x51, // port 5201
        0x06, // TCP
        0x00, 0x1b, // FIN SYN PSH ACK
        0, 0, 0, 0, 0, 0, 0x05, 0xdc, // 1500 octets
        0, 0, 0, 0, 0, 0, 0, 3, // 3 packets
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // 1700000000000 ms
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0xfa, // 1700000000250 ms
        0x05, b'v', b'e', b't', b'h', b'0', // interfaceName
    ];

    #[test]
    fn data_message_matches_bytes() {
        let mut encoder = IpfixEncoder::new(42, 1400);
        let messages = encoder.encode(&[sample_ipv4()], false, 0x6553_f100);
        assert_eq!(messages.len(), 1);

        let mut expected = vec![
            0x00, 0x0a, // version 10
            0x00, 0x00, // length, set below
            0x65, 0x53, 0xf1, 0x00, // export time
            0x00, 0x00, 0x00, 0x00, // sequence 0
            0x00, 0x00, 0x00, 0x2a, // observation domain 42
            0x01, 0x00, 0x00, 0x00, // data set 256, length set below
        ];
        expected.extend_from_slice(SAMPLE_IPV4_RECORD);
        let set_length = (4 + SAMPLE_IPV4_RECORD.len()) as u16;
        expected[18..20].copy_from_slice(&set_length.to_be_bytes());
        let length = expected.len() as u16;
        expected[2..4].copy_from_slice(&length.to_be_bytes());

        assert_eq!(messages[0], expected);
    }

    #[test]
    fn template_set_matches_bytes() {
        let mut encoder = IpfixEncoder::new(1, 1400);
        let messages = encoder.encode(&[], true, 0);
        assert_eq!(messages.len(), 1);
        let message = &messages[0];

        // Set header: id 2, then both templates.
        assert_eq!(&message[16..18], &[0x00, 0x02]);
        let set_length = u16::from_be_bytes([message[18], message[19]]) as usize;
        assert_eq!(16 + set_length, message.len());
        assert_eq!(&message[20..20 + IPV4_TEMPLATE.len()], IPV4_TEMPLATE);

        let ipv6 = &message[20 + IPV4_TEMPLATE.len()..];
        assert_eq!(&ipv6[0..4], &[0x01, 0x01, 0x00, 0x10]);
        assert_eq!(&ipv6[24..32], &[0x00, 0x1b, 0x00, 0x10, 0x00, 0x1c, 0x00, 0x10]);
    }

    #[test]
    fn sequence_counts_data_records() {
        let mut encoder = IpfixEncoder::new(1, 1400);
        let records = vec![sample_ipv4(); 3];
        encoder.encode(&records, true, 0);
        let second = encoder.encode(&records[..1], false, 0);
        assert_eq!(&second[0][8..12], &3u32.to_be_bytes());
    }

    #[test]
    fn long_batches_split_by_length() {
        let mut encoder = IpfixEncoder::new(1, 512);
        let records = vec![sample_ipv4(); 40];
        let messages = encoder.encode(&records, true, 0);
        assert!(messages.len() > 1);

        let mut total = 0;
        for message in &messages {
            assert!(message.len() <= 512, "message of {} bytes", message.len());
            let length = u16::from_be_bytes([message[2], message[3]]) as usize;
            assert_eq!(length, message.len());
            total += count_data_records(message);
        }
        assert_eq!(total, 40);
    }

    fn count_data_records(message: &[u8]) -> usize {
        let record_length = SAMPLE_IPV4_RECORD.len();
        let mut offset = MESSAGE_HEADER_LENGTH;
        let mut count = 0;
        while offset < message.len() {
            let id = u16::from_be_bytes([message[offset], message[offset + 1]]);
            let length = u16::from_be_bytes([message[offset + 2], message[offset + 3]]) as usize;
            if id == TEMPLATE_IPV4 {
                count += (length - 4) / record_length;
            }
            offset += length;
        }
        count
    }
}
