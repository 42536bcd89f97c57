//! Flow metering and export for Portcullis.
//!
//! Records the device's network flows (interface, MAC addresses, 5-tuple,
//! packets, bytes, TCP flags, first and last packet) and exports them as
//! IPFIX (RFC 7011) or NetFlow v9 (RFC 3954) over UDP, and as JSON lines.
//!
//! Metering runs in eBPF programs at TC ingress and egress
//! (`bpf/flow.bpf.c`) that count packets per flow in a BPF hash map. No
//! packet is copied to user space. Where the programs cannot be loaded the
//! collector reads conntrack accounting over netlink instead and logs which
//! source it uses. This crate does not decide anything about the flows: it
//! measures and exports them.
//!
//! # Entry points
//!
//! - Daemon: [`Config`] is the `flow` section of
//!   /etc/portcullis/portcullis.json ([`Config::load`] reads it from the
//!   file); [`collector::spawn`] starts the collector on its own thread and
//!   it stops, after a last export, when the shared `Arc<AtomicBool>` is set.
//! - CLI: [`cli::Command`] is a clap subcommand for the `portcullis` CLI,
//!   run with [`cli::run`].
//! - JSON: [`FlowRecord`] is serde-serializable and [`to_json_lines`]
//!   produces one line per record for the management-server channel.
//!
//! The binary `portcullis-flow` wraps the CLI for tests.

pub mod aging;
pub mod cli;
pub mod collector;
pub mod config;
pub mod conntrack;
pub mod exporter;
pub mod ipfix;
pub mod meter;
pub mod netflow9;
pub mod record;
pub mod template;

pub use config::Config;
pub use record::{to_json_lines, FlowRecord};
