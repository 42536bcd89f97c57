//! Remote attestation, device side: what to measure, how to measure it,
//! the Merkle tree over the measurements, and the agent that talks to the
//! verifier.
//!
//! A rules file ([`rules`]) selects paths and attributes and one hash
//! algorithm. [`measure`] turns it into a sorted measurement list, hashing
//! in parallel and re-hashing only files whose inode version changed. The
//! list's [`merkle`] root, bound to a verifier's nonce under the device key
//! ([`wire`]), is the answer to a challenge; the entries that differ from
//! the baseline travel with inclusion proofs so the verifier can name them.
//!
//! This crate is not the verifier: that is `portcullis-verifier`, which
//! shares [`wire`] for the message format and the answer check.
//!
//! # Entry points
//!
//! - CLI: [`cli::Command`] is a clap subcommand enum for the `portcullis`
//!   CLI to mount (`portcullis attest ...`); [`cli::run`] executes one.
//!   Read commands (`check-rules`, `measure`, `challenge`, `status`) take
//!   `--json`.
//! - Daemon: [`collector::Config`] is the `attest` section of
//!   /etc/portcullis/portcullis.json (all keys optional, unknown keys
//!   rejected); [`collector::spawn`] starts the collector on its own thread
//!   and returns its handle, and the collector returns once the shared
//!   `Arc<AtomicBool>` is set.

pub mod agent;
pub mod cli;
pub mod collector;
pub mod digest;
pub mod measure;
pub mod merkle;
pub mod rules;
pub mod wire;
