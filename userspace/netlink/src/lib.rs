//! Generic netlink client for the `portcullis` kernel module.
//!
//! This crate speaks the protocol defined in `uapi/portcullis_uapi.rs`, the
//! same file the module is built from, so the command and attribute numbers
//! exist once. [`Client`] sends commands and reads replies; [`EventStream`]
//! receives the decisions the module multicasts.
//!
//! It does not parse policy files or keep audit logs; those live in
//! `portcullis-policy` and `portcullisd`.

#[allow(dead_code)]
#[path = "../../../uapi/portcullis_uapi.rs"]
pub mod uapi;

mod client;
mod message;
mod types;

pub use client::{Client, EventStream};
pub use message::{Attr, AttrIter, MessageBuilder, ParseError};
pub use types::{Entry, Event, Hook, Mode, Reason, Status, Verdict};

use std::io;

/// Errors of talking to the module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the portcullis kernel module is not loaded (generic netlink family \"{}\" not found); load it with `modprobe portcullis` or `insmod portcullis.ko`", uapi::FAMILY_NAME)]
    ModuleNotLoaded,
    #[error("the portcullis kernel module speaks protocol version {module}, this program speaks {ours}; install matching versions of the module and the tools")]
    VersionMismatch { module: u32, ours: u32 },
    #[error("{command} rejected by the kernel")]
    Kernel {
        command: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    #[error("malformed message from the kernel: {0}")]
    Malformed(#[from] ParseError),
}
