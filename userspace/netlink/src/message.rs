//! Encoding and decoding of netlink messages and attributes.
//!
//! Layouts follow `linux/netlink.h` and `linux/genetlink.h`: a 16-byte
//! `nlmsghdr`, then for generic netlink a 4-byte `genlmsghdr`, then
//! attributes, each a 4-byte header and a payload padded to 4 bytes.

pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const GENL_HDRLEN: usize = 4;
const NLA_HDRLEN: usize = 4;
const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = 0x3fff;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLMSG_ERROR: u16 = 0x2;
pub(crate) const NLMSG_DONE: u16 = 0x3;

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// A message that cannot be decoded, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message truncated: {what} needs {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("attribute {attr} has {len} bytes, expected {expected}")]
    BadLength {
        attr: u16,
        len: usize,
        expected: &'static str,
    },
    #[error("attribute {attr} is not a NUL-terminated UTF-8 string")]
    BadString { attr: u16 },
    #[error("required attribute {attr} missing")]
    Missing { attr: u16 },
}

/// Builds one generic netlink message.
pub struct MessageBuilder {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl MessageBuilder {
    /// Starts a request of `command` to `family` with the protocol version.
    pub fn new(family: u16, flags: u16, seq: u32, command: u8, version: u8) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish()
        buf.extend_from_slice(&family.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        buf.extend_from_slice(&[command, version, 0, 0]);
        Self {
            buf,
            nests: Vec::new(),
        }
    }

    pub fn put(&mut self, attr_type: u16, payload: &[u8]) -> &mut Self {
        let len = NLA_HDRLEN + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&attr_type.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub fn put_u8(&mut self, attr_type: u16, value: u8) -> &mut Self {
        self.put(attr_type, &[value])
    }

    pub fn put_u32(&mut self, attr_type: u16, value: u32) -> &mut Self {
        self.put(attr_type, &value.to_ne_bytes())
    }

    pub fn put_u64(&mut self, attr_type: u16, value: u64) -> &mut Self {
        self.put(attr_type, &value.to_ne_bytes())
    }

    /// Adds a string attribute with its terminating NUL.
    pub fn put_str(&mut self, attr_type: u16, text: &str) -> &mut Self {
        let mut payload = Vec::with_capacity(text.len() + 1);
        payload.extend_from_slice(text.as_bytes());
        payload.push(0);
        self.put(attr_type, &payload)
    }

    /// Opens a nested attribute; close it with [`MessageBuilder::end_nest`].
    pub fn begin_nest(&mut self, attr_type: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(attr_type | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end_nest(&mut self) -> &mut Self {
        let start = self.nests.pop().expect("end_nest without begin_nest");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// Current size of the message in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() == NLMSG_HDRLEN + GENL_HDRLEN
    }

    pub fn finish(mut self) -> Vec<u8> {
        assert!(self.nests.is_empty(), "unclosed nested attribute");
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// One attribute: its type (flags removed) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub attr_type: u16,
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn u8(&self) -> Result<u8, ParseError> {
        match self.payload {
            [value] => Ok(*value),
            _ => Err(self.bad_length("1")),
        }
    }

    pub fn u32(&self) -> Result<u32, ParseError> {
        let bytes: [u8; 4] = self.payload.try_into().map_err(|_| self.bad_length("4"))?;
        Ok(u32::from_ne_bytes(bytes))
    }

    pub fn u64(&self) -> Result<u64, ParseError> {
        let bytes: [u8; 8] = self.payload.try_into().map_err(|_| self.bad_length("8"))?;
        Ok(u64::from_ne_bytes(bytes))
    }

    pub fn string(&self) -> Result<String, ParseError> {
        let bad = ParseError::BadString {
            attr: self.attr_type,
        };
        let (last, text) = self.payload.split_last().ok_or(bad.clone())?;
        if *last != 0 {
            return Err(bad);
        }
        String::from_utf8(text.to_vec()).map_err(|_| bad)
    }

    pub fn nested(&self) -> AttrIter<'a> {
        AttrIter::new(self.payload)
    }

    fn bad_length(&self, expected: &'static str) -> ParseError {
        ParseError::BadLength {
            attr: self.attr_type,
            len: self.payload.len(),
            expected,
        }
    }
}

/// Iterates over a stream of attributes; yields an error and stops on a
/// truncated one.
#[derive(Clone)]
pub struct AttrIter<'a> {
    rest: &'a [u8],
}

impl<'a> AttrIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<Attr<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let result = split_attr(self.rest);
        match result {
            Ok((attr, rest)) => {
                self.rest = rest;
                Some(Ok(attr))
            }
            Err(err) => {
                self.rest = &[];
                Some(Err(err))
            }
        }
    }
}

fn split_attr(bytes: &[u8]) -> Result<(Attr<'_>, &[u8]), ParseError> {
    if bytes.len() < NLA_HDRLEN {
        return Err(ParseError::Truncated {
            what: "attribute header",
            needed: NLA_HDRLEN,
            available: bytes.len(),
        });
    }
    let len = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
    let attr_type = u16::from_ne_bytes([bytes[2], bytes[3]]) & NLA_TYPE_MASK;
    if len < NLA_HDRLEN || len > bytes.len() {
        return Err(ParseError::Truncated {
            what: "attribute",
            needed: len.max(NLA_HDRLEN),
            available: bytes.len(),
        });
    }
    let attr = Attr {
        attr_type,
        payload: &bytes[NLA_HDRLEN..len],
    };
    let next = align4(len).min(bytes.len());
    Ok((attr, &bytes[next..]))
}

/// One netlink message split from a receive buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawMessage<'a> {
    pub(crate) kind: u16,
    pub(crate) seq: u32,
    /// Everything after the `nlmsghdr`.
    pub(crate) body: &'a [u8],
}

/// Splits a receive buffer into netlink messages.
pub(crate) fn split_messages(mut bytes: &[u8]) -> Result<Vec<RawMessage<'_>>, ParseError> {
    let mut messages = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < NLMSG_HDRLEN {
            return Err(ParseError::Truncated {
                what: "netlink header",
                needed: NLMSG_HDRLEN,
                available: bytes.len(),
            });
        }
        let len = u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || len > bytes.len() {
            return Err(ParseError::Truncated {
                what: "netlink message",
                needed: len.max(NLMSG_HDRLEN),
                available: bytes.len(),
            });
        }
        messages.push(RawMessage {
            kind: u16::from_ne_bytes([bytes[4], bytes[5]]),
            seq: u32::from_ne_bytes(bytes[8..12].try_into().unwrap()),
            body: &bytes[NLMSG_HDRLEN..len],
        });
        bytes = &bytes[align4(len).min(bytes.len())..];
    }
    Ok(messages)
}

/// Splits a generic netlink body into its command and attributes.
pub(crate) fn split_genl(body: &[u8]) -> Result<(u8, u8, AttrIter<'_>), ParseError> {
    if body.len() < GENL_HDRLEN {
        return Err(ParseError::Truncated {
            what: "generic netlink header",
            needed: GENL_HDRLEN,
            available: body.len(),
        });
    }
    Ok((body[0], body[1], AttrIter::new(&body[GENL_HDRLEN..])))
}

/// Reads the errno of an `NLMSG_ERROR` body; 0 is an acknowledgement.
pub(crate) fn ack_errno(body: &[u8]) -> Result<i32, ParseError> {
    if body.len() < 4 {
        return Err(ParseError::Truncated {
            what: "netlink error",
            needed: 4,
            available: body.len(),
        });
    }
    Ok(-i32::from_ne_bytes(body[0..4].try_into().unwrap()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi::{attr, cmd, entry_attr};

    #[test]
    fn builder_lays_out_header_and_padded_attributes() {
        let mut msg = MessageBuilder::new(0x1234, NLM_F_REQUEST, 7, cmd::SET_MODE, 1);
        msg.put_u8(attr::MODE, 2);
        let bytes = msg.finish();

        assert_eq!(bytes.len(), NLMSG_HDRLEN + GENL_HDRLEN + 8);
        assert_eq!(u32::from_ne_bytes(bytes[0..4].try_into().unwrap()), bytes.len() as u32);
        assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 0x1234);
        assert_eq!(bytes[16], cmd::SET_MODE);
        assert_eq!(bytes[17], 1);
        // nla_len 5, type MODE, value 2, three bytes of padding.
        assert_eq!(&bytes[20..22], &5u16.to_ne_bytes());
        assert_eq!(&bytes[22..24], &attr::MODE.to_ne_bytes());
        assert_eq!(&bytes[24..28], &[2, 0, 0, 0]);
    }

    #[test]
    fn nested_entries_round_trip() {
        let mut msg = MessageBuilder::new(1, 0, 0, cmd::ADD_ENTRIES, 1);
        msg.begin_nest(attr::ENTRIES);
        for i in 0..3u8 {
            msg.begin_nest(i as u16 + 1);
            msg.put(entry_attr::DIGEST, &[i; 32]);
            msg.put_str(entry_attr::PATH, "/bin/x");
            msg.end_nest();
        }
        msg.end_nest();
        let bytes = msg.finish();

        let messages = split_messages(&bytes).unwrap();
        assert_eq!(messages.len(), 1);
        let (command, _, attrs) = split_genl(messages[0].body).unwrap();
        assert_eq!(command, cmd::ADD_ENTRIES);
        let attrs: Vec<_> = attrs.collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].attr_type, attr::ENTRIES);
        let entries: Vec<_> = attrs[0].nested().collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 3);
        for (i, entry) in entries.iter().enumerate() {
            let fields: Vec<_> = entry.nested().collect::<Result<_, _>>().unwrap();
            assert_eq!(fields[0].attr_type, entry_attr::DIGEST);
            assert_eq!(fields[0].payload, &[i as u8; 32]);
            assert_eq!(fields[1].string().unwrap(), "/bin/x");
        }
    }

    #[test]
    fn truncated_attribute_is_an_error() {
        let mut msg = MessageBuilder::new(1, 0, 0, cmd::GET_STATUS, 1);
        msg.put_u64(attr::CACHE_HITS, 5);
        let bytes = msg.finish();
        let body = &bytes[NLMSG_HDRLEN + GENL_HDRLEN..bytes.len() - 3];
        let result: Result<Vec<_>, _> = AttrIter::new(body).collect();
        assert!(matches!(result, Err(ParseError::Truncated { what: "attribute", .. })));
    }

    #[test]
    fn truncated_message_is_an_error() {
        let bytes = MessageBuilder::new(1, 0, 0, cmd::GET_STATUS, 1).finish();
        let result = split_messages(&bytes[..bytes.len() - 1]);
        assert!(matches!(result, Err(ParseError::Truncated { what: "netlink message", .. })));
        let result = split_messages(&bytes[..10]);
        assert!(matches!(result, Err(ParseError::Truncated { what: "netlink header", .. })));
    }

    #[test]
    fn string_without_nul_is_rejected() {
        let attr = Attr {
            attr_type: attr::PATH,
            payload: b"abc",
        };
        assert_eq!(attr.string(), Err(ParseError::BadString { attr: attr::PATH }));
    }

    #[test]
    fn integer_of_wrong_size_is_rejected() {
        let attr = Attr {
            attr_type: attr::PID,
            payload: &[1, 2],
        };
        assert!(matches!(attr.u32(), Err(ParseError::BadLength { attr: a, len: 2, .. }) if a == attr::PID));
    }
}
