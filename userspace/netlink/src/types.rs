//! Values carried by the protocol, decoded from attributes.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

use crate::message::{Attr, ParseError};
use crate::uapi::{attr, hook, mode, reason, verdict};

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident : $($variant:ident = $value:path, $text:literal;)+) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant,)+ }

        /// Serialised as its name, the same text that `FromStr` reads.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl $name {
            pub fn from_wire(value: u8) -> Option<Self> {
                match value { $(v if v == $value => Some(Self::$variant),)+ _ => None }
            }
            pub fn to_wire(self) -> u8 {
                match self { $(Self::$variant => $value,)+ }
            }
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "invalid {}: \"{}\"; expected one of: {}",
                        stringify!($name).to_lowercase(), text, [$($text),+].join(", "))),
                }
            }
        }
    };
}

named_enum! {
    /// Enforcement mode, from weakest to strongest.
    Mode: Off = mode::OFF, "off"; Learn = mode::LEARN, "learn"; Enforce = mode::ENFORCE, "enforce";
}

named_enum! {
    /// The hook point that made a decision.
    Hook:
        BprmCheck = hook::BPRM_CHECK, "bprm_check";
        MmapFile = hook::MMAP_FILE, "mmap_file";
        FileMprotect = hook::FILE_MPROTECT, "file_mprotect";
}

named_enum! {
    Verdict: Allow = verdict::ALLOW, "allow"; Deny = verdict::DENY, "deny";
}

named_enum! {
    /// Reason for a decision.
    Reason:
        Approved = reason::APPROVED, "approved";
        NotInPolicy = reason::NOT_IN_POLICY, "not-in-policy";
        PathMismatch = reason::PATH_MISMATCH, "path-mismatch";
        DigestFailed = reason::DIGEST_FAILED, "digest-failed";
}

/// One policy entry as sent to the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub digest: [u8; 32],
    pub path: String,
    pub path_bound: bool,
}

/// Decision counters of one hook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HookCounts {
    pub allowed: u64,
    pub denied: u64,
}

/// The module's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    pub protocol_version: u32,
    pub module_version: String,
    pub mode: Option<Mode>,
    pub locked: bool,
    pub audit_allowed: bool,
    pub policy_generation: u64,
    pub policy_size: u32,
    pub cache_size: u32,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub events_sent: u64,
    pub events_dropped: u64,
    pub events_queued: u64,
    pub bprm_check: HookCounts,
    pub mmap_file: HookCounts,
    pub file_mprotect: HookCounts,
}

impl Status {
    pub(crate) fn decode<'a>(
        attrs: impl Iterator<Item = Result<Attr<'a>, ParseError>>,
    ) -> Result<Self, ParseError> {
        let mut status = Status::default();
        let mut have_mode = false;
        for item in attrs {
            let a = item?;
            match a.attr_type {
                attr::PROTOCOL_VERSION => status.protocol_version = a.u32()?,
                attr::MODULE_VERSION => status.module_version = a.string()?,
                attr::MODE => {
                    status.mode = Mode::from_wire(a.u8()?);
                    have_mode = true;
                }
                attr::LOCKED => status.locked = a.u8()? != 0,
                attr::AUDIT_ALLOWED => status.audit_allowed = a.u8()? != 0,
                attr::POLICY_GENERATION => status.policy_generation = a.u64()?,
                attr::POLICY_SIZE => status.policy_size = a.u32()?,
                attr::CACHE_SIZE => status.cache_size = a.u32()?,
                attr::CACHE_HITS => status.cache_hits = a.u64()?,
                attr::CACHE_MISSES => status.cache_misses = a.u64()?,
                attr::EVENTS_SENT => status.events_sent = a.u64()?,
                attr::EVENTS_DROPPED => status.events_dropped = a.u64()?,
                attr::EVENTS_QUEUED => status.events_queued = a.u64()?,
                attr::ALLOWED_BPRM_CHECK => status.bprm_check.allowed = a.u64()?,
                attr::DENIED_BPRM_CHECK => status.bprm_check.denied = a.u64()?,
                attr::ALLOWED_MMAP_FILE => status.mmap_file.allowed = a.u64()?,
                attr::DENIED_MMAP_FILE => status.mmap_file.denied = a.u64()?,
                attr::ALLOWED_FILE_MPROTECT => status.file_mprotect.allowed = a.u64()?,
                attr::DENIED_FILE_MPROTECT => status.file_mprotect.denied = a.u64()?,
                // Attributes of a newer module within the same protocol
                // version are skipped, as netlink parsers do.
                _ => {}
            }
        }
        if !have_mode {
            return Err(ParseError::Missing { attr: attr::MODE });
        }
        Ok(status)
    }
}

/// One decision reported by the module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub hook: Hook,
    pub verdict: Verdict,
    pub reason: Reason,
    pub mode: Mode,
    pub pid: u32,
    pub tgid: u32,
    pub uid: u32,
    pub comm: String,
    pub path: String,
    /// Lowercase hex SHA-256, absent when the file could not be hashed.
    pub sha256: Option<String>,
    pub device: u32,
    pub inode: u64,
    pub policy_generation: u64,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Event {
    pub(crate) fn decode<'a>(
        attrs: impl Iterator<Item = Result<Attr<'a>, ParseError>>,
    ) -> Result<Self, ParseError> {
        let mut hook_value = None;
        let mut verdict_value = None;
        let mut reason_value = None;
        let mut mode_value = None;
        let mut event = Event {
            hook: Hook::BprmCheck,
            verdict: Verdict::Allow,
            reason: Reason::Approved,
            mode: Mode::Off,
            pid: 0,
            tgid: 0,
            uid: 0,
            comm: String::new(),
            path: String::new(),
            sha256: None,
            device: 0,
            inode: 0,
            policy_generation: 0,
        };
        for item in attrs {
            let a = item?;
            match a.attr_type {
                attr::HOOK => hook_value = Some(a.u8()?),
                attr::VERDICT => verdict_value = Some(a.u8()?),
                attr::REASON => reason_value = Some(a.u8()?),
                attr::MODE => mode_value = Some(a.u8()?),
                attr::PID => event.pid = a.u32()?,
                attr::TGID => event.tgid = a.u32()?,
                attr::UID => event.uid = a.u32()?,
                attr::COMM => event.comm = a.string()?,
                attr::PATH => event.path = lossy_string(&a)?,
                attr::DIGEST => {
                    if a.payload.len() != 32 {
                        return Err(ParseError::BadLength {
                            attr: a.attr_type,
                            len: a.payload.len(),
                            expected: "32",
                        });
                    }
                    event.sha256 = Some(hex(a.payload));
                }
                attr::DEVICE => event.device = a.u32()?,
                attr::INODE => event.inode = a.u64()?,
                attr::POLICY_GENERATION => event.policy_generation = a.u64()?,
                _ => {}
            }
        }
        event.hook = decode_enum(hook_value, attr::HOOK, Hook::from_wire)?;
        event.verdict = decode_enum(verdict_value, attr::VERDICT, Verdict::from_wire)?;
        event.reason = decode_enum(reason_value, attr::REASON, Reason::from_wire)?;
        event.mode = decode_enum(mode_value, attr::MODE, Mode::from_wire)?;
        Ok(event)
    }
}

/// Paths are bytes on Linux; non-UTF-8 bytes are replaced rather than
/// dropping the event.
fn lossy_string(a: &Attr<'_>) -> Result<String, ParseError> {
    match a.payload.split_last() {
        Some((0, text)) => Ok(String::from_utf8_lossy(text).into_owned()),
        _ => Err(ParseError::BadString { attr: a.attr_type }),
    }
}

fn decode_enum<T>(value: Option<u8>, attr_type: u16, from_wire: fn(u8) -> Option<T>) -> Result<T, ParseError> {
    let value = value.ok_or(ParseError::Missing { attr: attr_type })?;
    from_wire(value).ok_or(ParseError::BadLength {
        attr: attr_type,
        len: value as usize,
        expected: "a known value",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{split_genl, split_messages, MessageBuilder};
    use crate::uapi::cmd;

    fn event_message() -> MessageBuilder {
        let mut msg = MessageBuilder::new(0x20, 0, 0, cmd::EVENT, 1);
        msg.put_u8(attr::HOOK, hook::MMAP_FILE)
            .put_u8(attr::VERDICT, verdict::DENY)
            .put_u8(attr::REASON, reason::NOT_IN_POLICY)
            .put_u8(attr::MODE, mode::ENFORCE)
            .put_u32(attr::PID, 42)
            .put_u32(attr::TGID, 41)
            .put_u32(attr::UID, 1000)
            .put_str(attr::COMM, "sh")
            .put_str(attr::PATH, "/tmp/x")
            .put(attr::DIGEST, &[0xab; 32])
            .put_u32(attr::DEVICE, 8)
            .put_u64(attr::INODE, 1234)
            .put_u64(attr::POLICY_GENERATION, 3);
        msg
    }

    fn decode(bytes: &[u8]) -> Result<Event, ParseError> {
        let messages = split_messages(bytes)?;
        let (_, _, attrs) = split_genl(messages[0].body)?;
        Event::decode(attrs)
    }

    #[test]
    fn event_decodes_every_field() {
        let event = decode(&event_message().finish()).unwrap();
        assert_eq!(event.hook, Hook::MmapFile);
        assert_eq!(event.verdict, Verdict::Deny);
        assert_eq!(event.reason, Reason::NotInPolicy);
        assert_eq!(event.mode, Mode::Enforce);
        assert_eq!((event.pid, event.tgid, event.uid), (42, 41, 1000));
        assert_eq!(event.comm, "sh");
        assert_eq!(event.path, "/tmp/x");
        assert_eq!(event.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        assert_eq!((event.device, event.inode, event.policy_generation), (8, 1234, 3));
    }

    #[test]
    fn event_without_verdict_is_rejected() {
        let mut msg = MessageBuilder::new(0x20, 0, 0, cmd::EVENT, 1);
        msg.put_u8(attr::HOOK, hook::BPRM_CHECK)
            .put_u8(attr::REASON, reason::APPROVED)
            .put_u8(attr::MODE, mode::LEARN);
        assert_eq!(
            decode(&msg.finish()),
            Err(ParseError::Missing {
                attr: attr::VERDICT
            })
        );
    }

    #[test]
    fn event_with_short_digest_is_rejected() {
        let mut msg = event_message();
        msg.put(attr::DIGEST, &[1; 31]);
        assert!(matches!(decode(&msg.finish()), Err(ParseError::BadLength { attr: a, len: 31, .. }) if a == attr::DIGEST));
    }

    #[test]
    fn json_names_match_display_names() {
        assert_eq!(serde_json::to_string(&Hook::FileMprotect).unwrap(), "\"file_mprotect\"");
        assert_eq!(serde_json::to_string(&Reason::NotInPolicy).unwrap(), "\"not-in-policy\"");
        assert_eq!(Hook::FileMprotect.to_string(), "file_mprotect");
    }

    #[test]
    fn mode_parses_and_names_choices_on_error() {
        assert_eq!("enforce".parse::<Mode>(), Ok(Mode::Enforce));
        let err = "strict".parse::<Mode>().unwrap_err();
        assert!(err.contains("\"strict\""), "{err}");
        assert!(err.contains("off, learn, enforce"), "{err}");
    }

    #[test]
    fn status_needs_mode() {
        let mut msg = MessageBuilder::new(0x20, 0, 0, cmd::GET_STATUS, 1);
        msg.put_u32(attr::PROTOCOL_VERSION, 1);
        let bytes = msg.finish();
        let messages = split_messages(&bytes).unwrap();
        let (_, _, attrs) = split_genl(messages[0].body).unwrap();
        assert_eq!(Status::decode(attrs), Err(ParseError::Missing { attr: attr::MODE }));
    }
}
