// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Wire protocol between `portcullis.ko` and user space.
//!
//! This file is the only definition of the generic netlink family. The kernel
//! module includes it as a Rust module and the user-space crates include it
//! with `#[path]`. `scripts/gen-uapi-header` turns it into the C header that
//! the module's glue code uses. Keep to the `pub const NAME: TYPE = VALUE;`
//! form inside flat `pub mod` blocks, because the generator reads only that.
//!
//! Every message carries the generic netlink header with `PROTOCOL_VERSION`
//! in its version field. Attributes are standard netlink attributes; integers
//! are in host byte order, strings are NUL-terminated.

/// Name of the generic netlink family.
pub const FAMILY_NAME: &str = "portcullis";
/// Bumped on every incompatible change to the commands or attributes below.
pub const PROTOCOL_VERSION: u8 = 1;
/// Multicast group on which the module sends one `cmd::EVENT` per decision.
pub const MCGRP_EVENTS: &str = "events";
/// Version of the kernel module, shown in `/sys/module/portcullis/version`.
pub const MODULE_VERSION: &str = "0.1.0";
/// Length in bytes of a SHA-256 digest.
pub const DIGEST_LEN: u32 = 32;
/// Largest path, including its NUL, that a policy entry may carry.
pub const PATH_MAX: u32 = 4096;

/// Generic netlink commands.
pub mod cmd {
    pub const UNSPEC: u8 = 0;
    /// Request: none. Reply: the status attributes.
    pub const GET_STATUS: u8 = 1;
    /// Request: `MODE`. Needs CAP_SYS_ADMIN.
    pub const SET_MODE: u8 = 2;
    /// Starts a staged policy replacement owned by the sending socket.
    pub const POLICY_BEGIN: u8 = 3;
    /// Request: `ENTRIES`. Appends entries to the staged policy.
    pub const POLICY_CHUNK: u8 = 4;
    /// Request: `ENTRY_COUNT`. Puts the staged policy in force in one step.
    /// Reply: `POLICY_GENERATION`.
    pub const POLICY_COMMIT: u8 = 5;
    /// Discards the staged policy.
    pub const POLICY_ABORT: u8 = 6;
    /// Request: `ENTRIES`. Adds entries to the policy in force.
    /// Reply: `POLICY_GENERATION`.
    pub const ADD_ENTRIES: u8 = 7;
    /// Locks the mode and the policy until reboot.
    pub const LOCK: u8 = 8;
    /// Request: `AUDIT_ALLOWED`. Chooses whether allowed decisions are sent
    /// as events too, not only denials and new digests in learn mode.
    pub const SET_AUDIT: u8 = 9;
    /// Multicast notification of one decision.
    pub const EVENT: u8 = 10;
}

/// Top-level attributes.
pub mod attr {
    pub const UNSPEC: u16 = 0;
    pub const PAD: u16 = 1;
    /// u32
    pub const PROTOCOL_VERSION: u16 = 2;
    /// string
    pub const MODULE_VERSION: u16 = 3;
    /// u8, one of `mode`
    pub const MODE: u16 = 4;
    /// u8, 1 once locked
    pub const LOCKED: u16 = 5;
    /// u64, bumped on every policy change
    pub const POLICY_GENERATION: u16 = 6;
    /// u32, number of entries in force
    pub const POLICY_SIZE: u16 = 7;
    /// u32, number of cached file identities
    pub const CACHE_SIZE: u16 = 8;
    /// u64
    pub const CACHE_HITS: u16 = 9;
    /// u64
    pub const CACHE_MISSES: u16 = 10;
    /// u64
    pub const EVENTS_SENT: u16 = 11;
    /// u64, events lost to a full queue, to no listener or to no memory
    pub const EVENTS_DROPPED: u16 = 12;
    /// u64 counters of decisions, one pair per hook
    pub const ALLOWED_BPRM_CHECK: u16 = 13;
    pub const DENIED_BPRM_CHECK: u16 = 14;
    pub const ALLOWED_MMAP_FILE: u16 = 15;
    pub const DENIED_MMAP_FILE: u16 = 16;
    pub const ALLOWED_FILE_MPROTECT: u16 = 17;
    pub const DENIED_FILE_MPROTECT: u16 = 18;
    /// nested array of entries, each nest holding `entry_attr` attributes
    pub const ENTRIES: u16 = 19;
    /// u8, one of `hook`
    pub const HOOK: u16 = 20;
    /// u8, one of `verdict`
    pub const VERDICT: u16 = 21;
    /// u8, one of `reason`
    pub const REASON: u16 = 22;
    /// u32
    pub const PID: u16 = 23;
    /// u32
    pub const TGID: u16 = 24;
    /// u32, in the initial user namespace
    pub const UID: u16 = 25;
    /// string
    pub const COMM: u16 = 26;
    /// string
    pub const PATH: u16 = 27;
    /// binary, `DIGEST_LEN` bytes
    pub const DIGEST: u16 = 28;
    /// u32, the kernel's dev_t of the file system
    pub const DEVICE: u16 = 29;
    /// u64
    pub const INODE: u16 = 30;
    /// u8, 0 or 1
    pub const AUDIT_ALLOWED: u16 = 31;
    /// u32, number of entries the sender staged
    pub const ENTRY_COUNT: u16 = 32;
    /// u64, events waiting in the queue
    pub const EVENTS_QUEUED: u16 = 33;
    pub const MAX: u16 = 33;
}

/// Attributes inside one nest of `attr::ENTRIES`.
pub mod entry_attr {
    pub const UNSPEC: u16 = 0;
    /// binary, `DIGEST_LEN` bytes
    pub const DIGEST: u16 = 1;
    /// string, the path the file was approved at
    pub const PATH: u16 = 2;
    /// u32, a set of `entry_flags`
    pub const FLAGS: u16 = 3;
    pub const MAX: u16 = 3;
}

/// Flags of a policy entry.
pub mod entry_flags {
    /// The digest is approved only at the entry's path.
    pub const PATH_BOUND: u32 = 1;
    pub const ALL: u32 = 1;
}

/// Enforcement modes, ordered from weakest to strongest.
pub mod mode {
    pub const OFF: u8 = 0;
    pub const LEARN: u8 = 1;
    pub const ENFORCE: u8 = 2;
}

/// Hook points.
pub mod hook {
    pub const BPRM_CHECK: u8 = 0;
    pub const MMAP_FILE: u8 = 1;
    pub const FILE_MPROTECT: u8 = 2;
    pub const COUNT: u8 = 3;
}

/// Decisions.
pub mod verdict {
    pub const ALLOW: u8 = 0;
    pub const DENY: u8 = 1;
}

/// Reasons for a decision.
pub mod reason {
    /// The digest is in the policy.
    pub const APPROVED: u8 = 0;
    /// The digest is not in the policy.
    pub const NOT_IN_POLICY: u8 = 1;
    /// The digest is in the policy only for other paths.
    pub const PATH_MISMATCH: u8 = 2;
    /// The file could not be read or hashed.
    pub const DIGEST_FAILED: u8 = 3;
}
