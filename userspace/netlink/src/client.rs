//! Sockets to the module: commands with [`Client`], events with
//! [`EventStream`].

use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::message::{
    ack_errno, split_genl, split_messages, MessageBuilder, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK,
    NLM_F_REQUEST,
};
use crate::types::{Entry, Event, Mode, Status};
use crate::uapi::{self, attr, cmd, entry_attr, entry_flags};
use crate::Error;

// From linux/genetlink.h: the controller family that resolves names.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const CTRL_ATTR_VERSION: u16 = 3;
const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;

/// Upper bound on the size of one policy chunk message. The kernel accepts
/// larger ones; smaller messages keep each allocation on its side small.
const CHUNK_BYTES: usize = 32 * 1024;

/// The resolved `portcullis` family.
#[derive(Debug, Clone, Copy)]
struct Family {
    id: u16,
    events_group: u32,
}

/// A connection for commands.
pub struct Client {
    socket: Socket,
    family: Family,
    seq: u32,
}

fn open_socket() -> Result<Socket, Error> {
    let mut socket = Socket::new(NETLINK_GENERIC)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// Sends `request` and collects the bodies of its replies until the kernel
/// acknowledges it.
fn transact(
    socket: &Socket,
    seq: u32,
    request: Vec<u8>,
    command: &'static str,
) -> Result<Vec<Vec<u8>>, Error> {
    socket.send(&request, 0)?;
    let mut replies = Vec::new();
    loop {
        let (buf, _) = socket.recv_from_full()?;
        for message in split_messages(&buf)? {
            if message.seq != seq {
                continue;
            }
            match message.kind {
                NLMSG_ERROR => {
                    let errno = ack_errno(message.body)?;
                    if errno == 0 {
                        return Ok(replies);
                    }
                    return Err(Error::Kernel {
                        command,
                        source: io::Error::from_raw_os_error(errno),
                    });
                }
                NLMSG_DONE => return Ok(replies),
                _ => replies.push(message.body.to_vec()),
            }
        }
    }
}

fn resolve_family(socket: &Socket) -> Result<Family, Error> {
    let mut request = MessageBuilder::new(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 1, CTRL_CMD_GETFAMILY, 1);
    request.put_str(CTRL_ATTR_FAMILY_NAME, uapi::FAMILY_NAME);
    let replies = match transact(socket, 1, request.finish(), "family lookup") {
        Err(Error::Kernel { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
            return Err(Error::ModuleNotLoaded)
        }
        other => other?,
    };

    let mut id = None;
    let mut version = None;
    let mut events_group = None;
    for body in &replies {
        let (_, _, attrs) = split_genl(body)?;
        for item in attrs {
            let a = item?;
            match a.attr_type {
                CTRL_ATTR_FAMILY_ID => {
                    let bytes: [u8; 2] = a.payload.try_into().map_err(|_| crate::ParseError::BadLength {
                        attr: a.attr_type,
                        len: a.payload.len(),
                        expected: "2",
                    })?;
                    id = Some(u16::from_ne_bytes(bytes));
                }
                CTRL_ATTR_VERSION => version = Some(a.u32()?),
                CTRL_ATTR_MCAST_GROUPS => {
                    for group in a.nested() {
                        let mut name = None;
                        let mut group_id = None;
                        for field in group?.nested() {
                            let field = field?;
                            match field.attr_type {
                                CTRL_ATTR_MCAST_GRP_NAME => name = Some(field.string()?),
                                CTRL_ATTR_MCAST_GRP_ID => group_id = Some(field.u32()?),
                                _ => {}
                            }
                        }
                        if name.as_deref() == Some(uapi::MCGRP_EVENTS) {
                            events_group = group_id;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    let id = id.ok_or(crate::ParseError::Missing {
        attr: CTRL_ATTR_FAMILY_ID,
    })?;
    let version = version.ok_or(crate::ParseError::Missing {
        attr: CTRL_ATTR_VERSION,
    })?;
    if version != uapi::PROTOCOL_VERSION as u32 {
        return Err(Error::VersionMismatch {
            module: version,
            ours: uapi::PROTOCOL_VERSION as u32,
        });
    }
    let events_group = events_group.ok_or(crate::ParseError::Missing {
        attr: CTRL_ATTR_MCAST_GROUPS,
    })?;
    Ok(Family { id, events_group })
}

/// Splits `entries` into chunk messages of at most `CHUNK_BYTES`.
pub(crate) fn encode_entry_chunks(
    family: u16,
    first_seq: u32,
    command: u8,
    entries: &[Entry],
) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut seq = first_seq;
    let mut rest = entries;
    while !rest.is_empty() {
        let mut msg = MessageBuilder::new(family, NLM_F_REQUEST | NLM_F_ACK, seq, command, uapi::PROTOCOL_VERSION);
        msg.begin_nest(attr::ENTRIES);
        let mut taken = 0;
        for (index, entry) in rest.iter().enumerate() {
            let size = 4 + 36 + 8 + if entry.path_bound { entry.path.len() + 8 } else { 0 };
            if taken > 0 && msg.len() + size > CHUNK_BYTES {
                break;
            }
            msg.begin_nest(index as u16 + 1);
            msg.put(entry_attr::DIGEST, &entry.digest);
            if entry.path_bound {
                msg.put_u32(entry_attr::FLAGS, entry_flags::PATH_BOUND);
                msg.put_str(entry_attr::PATH, &entry.path);
            }
            msg.end_nest();
            taken += 1;
        }
        msg.end_nest();
        chunks.push(msg.finish());
        rest = &rest[taken..];
        seq = seq.wrapping_add(1);
    }
    chunks
}

impl Client {
    /// Connects to the module, checking that it speaks our protocol version.
    pub fn connect() -> Result<Client, Error> {
        let socket = open_socket()?;
        let family = resolve_family(&socket)?;
        Ok(Client {
            socket,
            family,
            seq: 1,
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn request(&mut self, command: u8) -> (u32, MessageBuilder) {
        let seq = self.next_seq();
        let msg = MessageBuilder::new(self.family.id, NLM_F_REQUEST | NLM_F_ACK, seq, command, uapi::PROTOCOL_VERSION);
        (seq, msg)
    }

    fn send(&mut self, seq: u32, msg: MessageBuilder, name: &'static str) -> Result<Vec<Vec<u8>>, Error> {
        transact(&self.socket, seq, msg.finish(), name)
    }

    pub fn status(&mut self) -> Result<Status, Error> {
        let (seq, msg) = self.request(cmd::GET_STATUS);
        let replies = self.send(seq, msg, "status")?;
        let body = replies.first().ok_or(crate::ParseError::Missing { attr: attr::MODE })?;
        let (_, _, attrs) = split_genl(body)?;
        let status = Status::decode(attrs)?;
        if status.protocol_version != uapi::PROTOCOL_VERSION as u32 {
            return Err(Error::VersionMismatch {
                module: status.protocol_version,
                ours: uapi::PROTOCOL_VERSION as u32,
            });
        }
        Ok(status)
    }

    pub fn set_mode(&mut self, mode: Mode) -> Result<(), Error> {
        let (seq, mut msg) = self.request(cmd::SET_MODE);
        msg.put_u8(attr::MODE, mode.to_wire());
        self.send(seq, msg, "set mode").map(drop)
    }

    pub fn set_audit_allowed(&mut self, enabled: bool) -> Result<(), Error> {
        let (seq, mut msg) = self.request(cmd::SET_AUDIT);
        msg.put_u8(attr::AUDIT_ALLOWED, enabled as u8);
        self.send(seq, msg, "set audit").map(drop)
    }

    pub fn lock(&mut self) -> Result<(), Error> {
        let (seq, msg) = self.request(cmd::LOCK);
        self.send(seq, msg, "lock").map(drop)
    }

    /// Replaces the policy in force with `entries` in one step: the entries
    /// are staged in chunks and put in force by a commit, so the module never
    /// enforces a half-loaded policy. Returns the new policy generation.
    pub fn replace_policy(&mut self, entries: &[Entry]) -> Result<u64, Error> {
        let (seq, msg) = self.request(cmd::POLICY_BEGIN);
        self.send(seq, msg, "policy begin")?;

        let result = self.stage_and_commit(entries);
        if result.is_err() {
            // The staged entries would otherwise wait for the next begin.
            let (seq, msg) = self.request(cmd::POLICY_ABORT);
            let _ = self.send(seq, msg, "policy abort");
        }
        result
    }

    fn stage_and_commit(&mut self, entries: &[Entry]) -> Result<u64, Error> {
        let first = self.seq.wrapping_add(1);
        let chunks = encode_entry_chunks(self.family.id, first, cmd::POLICY_CHUNK, entries);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let seq = first.wrapping_add(i as u32);
            self.seq = seq;
            transact(&self.socket, seq, chunk, "policy chunk")?;
        }
        let (seq, mut msg) = self.request(cmd::POLICY_COMMIT);
        msg.put_u32(attr::ENTRY_COUNT, entries.len() as u32);
        let replies = self.send(seq, msg, "policy commit")?;
        generation_of(&replies)
    }

    /// Adds entries to the policy in force; returns the new generation.
    pub fn add_entries(&mut self, entries: &[Entry]) -> Result<u64, Error> {
        let first = self.seq.wrapping_add(1);
        let chunks = encode_entry_chunks(self.family.id, first, cmd::ADD_ENTRIES, entries);
        let mut generation = 0;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let seq = first.wrapping_add(i as u32);
            self.seq = seq;
            let replies = transact(&self.socket, seq, chunk, "add entries")?;
            generation = generation_of(&replies)?;
        }
        Ok(generation)
    }

    /// Sends `command` with the given raw attributes and waits for the
    /// acknowledgement. For tests of the module's input checks: it performs
    /// no validation of its own.
    pub fn raw_request(&mut self, command: u8, attrs: &[(u16, Vec<u8>)]) -> Result<(), Error> {
        let (seq, mut msg) = self.request(command);
        for (attr_type, payload) in attrs {
            msg.put(*attr_type, payload);
        }
        self.send(seq, msg, "raw request").map(drop)
    }

    /// Opens a separate socket subscribed to the module's events.
    pub fn subscribe(&self) -> Result<EventStream, Error> {
        EventStream::open(self.family)
    }
}

fn generation_of(replies: &[Vec<u8>]) -> Result<u64, Error> {
    for body in replies {
        let (_, _, attrs) = split_genl(body)?;
        for item in attrs {
            let a = item?;
            if a.attr_type == attr::POLICY_GENERATION {
                return Ok(a.u64()?);
            }
        }
    }
    Err(crate::ParseError::Missing {
        attr: attr::POLICY_GENERATION,
    }
    .into())
}

/// A socket that receives the module's decision events.
pub struct EventStream {
    socket: Socket,
    family: u16,
    pending: std::collections::VecDeque<Event>,
    /// Times the socket's receive buffer overflowed and events were lost
    /// before this program could read them.
    pub overruns: u64,
}

impl EventStream {
    fn open(family: Family) -> Result<EventStream, Error> {
        let mut socket = Socket::new(NETLINK_GENERIC)?;
        socket.bind_auto()?;
        socket.add_membership(family.events_group)?;
        // A burst of execs must not overflow the socket while the reader
        // writes its log. 4 MiB has room for several thousand events.
        socket.set_rx_buf_sz(4 * 1024 * 1024)?;
        Ok(EventStream {
            socket,
            family: family.id,
            pending: Default::default(),
            overruns: 0,
        })
    }

    /// Sets how long [`EventStream::next_event`] waits; `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let tv = match timeout {
            Some(t) => libc::timeval {
                tv_sec: t.as_secs() as libc::time_t,
                tv_usec: t.subsec_micros() as libc::suseconds_t,
            },
            None => libc::timeval { tv_sec: 0, tv_usec: 0 },
        };
        // SAFETY: the fd is the socket's own, and `tv` is a valid timeval of
        // the size passed.
        let rc = unsafe {
            libc::setsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error().into());
        }
        Ok(())
    }

    /// Returns the next event, or `None` when the timeout passed first.
    /// A receive-buffer overflow is counted in `overruns` and skipped.
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            let buf = match self.socket.recv_from_full() {
                Ok((buf, _)) => buf,
                Err(err) if err.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.overruns += 1;
                    continue;
                }
                Err(err)
                    if err.kind() == io::ErrorKind::WouldBlock
                        || err.kind() == io::ErrorKind::TimedOut =>
                {
                    return Ok(None)
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => return Ok(None),
                Err(err) => return Err(err.into()),
            };
            for message in split_messages(&buf)? {
                if message.kind != self.family {
                    continue;
                }
                let (command, _, attrs) = split_genl(message.body)?;
                if command == cmd::EVENT {
                    self.pending.push_back(Event::decode(attrs)?);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{split_messages, split_genl};

    fn entry(i: usize, path_bound: bool) -> Entry {
        Entry {
            digest: [i as u8; 32],
            path: format!("/usr/lib/{}/{}", "x".repeat(200), i),
            path_bound,
        }
    }

    #[test]
    fn chunks_hold_every_entry_once_and_stay_bounded() {
        let entries: Vec<Entry> = (0..2000).map(|i| entry(i, i % 3 == 0)).collect();
        let chunks = encode_entry_chunks(0x20, 10, cmd::POLICY_CHUNK, &entries);
        assert!(chunks.len() > 1);

        let mut decoded = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            assert!(chunk.len() <= CHUNK_BYTES, "chunk {i} has {} bytes", chunk.len());
            let messages = split_messages(chunk).unwrap();
            assert_eq!(messages[0].seq, 10 + i as u32);
            let (command, _, attrs) = split_genl(messages[0].body).unwrap();
            assert_eq!(command, cmd::POLICY_CHUNK);
            for a in attrs {
                let a = a.unwrap();
                assert_eq!(a.attr_type, attr::ENTRIES);
                for nest in a.nested() {
                    let mut digest = None;
                    let mut path = None;
                    let mut flags = 0;
                    for field in nest.unwrap().nested() {
                        let field = field.unwrap();
                        match field.attr_type {
                            entry_attr::DIGEST => digest = Some(field.payload.to_vec()),
                            entry_attr::PATH => path = Some(field.string().unwrap()),
                            entry_attr::FLAGS => flags = field.u32().unwrap(),
                            other => panic!("unexpected attribute {other}"),
                        }
                    }
                    decoded.push((digest.unwrap(), path, flags));
                }
            }
        }

        assert_eq!(decoded.len(), entries.len());
        for (entry, (digest, path, flags)) in entries.iter().zip(&decoded) {
            assert_eq!(digest.as_slice(), &entry.digest);
            if entry.path_bound {
                assert_eq!(path.as_deref(), Some(entry.path.as_str()));
                assert_eq!(*flags, entry_flags::PATH_BOUND);
            } else {
                assert_eq!(path, &None);
                assert_eq!(*flags, 0);
            }
        }
    }
}
