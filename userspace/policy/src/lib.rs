//! The Portcullis policy: its file format, comparison and merging, and its
//! generation from a root file system.
//!
//! A policy is a JSON file that lists approved files by SHA-256 digest. The
//! `portcullis policy generate|show|diff|merge` commands and the daemon's
//! learn mode are built on this crate. It does not talk to the kernel module
//! and does not decide verdicts.
//!
//! ```json
//! {
//!   "format": "portcullis-policy",
//!   "version": 1,
//!   "generator": "portcullis 0.1.0",
//!   "root": "/srv/image",
//!   "created": "2026-12-04T20:00:00Z",
//!   "entries": [
//!     { "path": "/usr/bin/ls", "sha256": "<64 lowercase hex digits>", "kind": "elf-executable" }
//!   ]
//! }
//! ```
//!
//! Entry points:
//! - [`Policy::load`], [`Policy::parse`], [`Policy::to_json`] and
//!   [`Policy::save_atomic`] read and write the file. [`Policy::add`] is for
//!   learn mode.
//! - [`diff`] and [`merge`] compare and combine two policies.
//! - [`generate`] walks a root file system and builds a policy from its
//!   executables, shared objects and scripts.
//!
//! Every error names its input. A [`PolicyError::Parse`] displays as
//! `FILE:LINE:COLUMN: message`.
//!
//! ```no_run
//! use std::path::Path;
//! use portcullis_policy::{diff, generate, GenerateOptions, Policy, Progress};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `portcullis policy generate`: the callback can drive an indicatif bar
//! // with bytes_done out of bytes_total.
//! let generated = generate(Path::new("/srv/image"), &GenerateOptions::default(), |p: &Progress| {
//!     eprint!("\r{}/{} files", p.files_done, p.files_total);
//! })?;
//! for warning in &generated.warnings {
//!     eprintln!("warning: {warning}");
//! }
//! generated.policy.save_atomic("/etc/portcullis/policy.json")?;
//!
//! // `portcullis policy diff`
//! let old = Policy::load("/etc/portcullis/policy.json.old")?;
//! let changes = diff(&old, &generated.policy);
//! println!("{} added, {} removed, {} changed",
//!     changes.added.len(), changes.removed.len(), changes.changed.len());
//! # Ok(())
//! # }
//! ```

mod diff;
mod digest;
mod elf;
mod error;
mod format;
mod generate;
mod resolve;

pub use diff::{diff, merge, Change, Conflict, Diff, MergeError, Merged, Side};
pub use digest::{Digest, InvalidDigest};
pub use error::PolicyError;
pub use format::{Entry, Kind, Policy, FORMAT, GENERATOR, SUPPORTED_VERSIONS, VERSION};
pub use generate::{
    generate, hash_file, Counts, GenerateError, GenerateOptions, Generated, Progress, Warning,
};
