//! portcullisd: the device daemon of Portcullis.
//!
//! It loads the policy file into the kernel module, sets the mode, writes
//! each decision the module reports to the audit log, and in learn mode adds
//! newly seen files to the policy. The decisions themselves are made in the
//! kernel; this crate only wires the module, the policy file and the log
//! together. `main.rs` parses the command line and calls [`Daemon`].

pub mod audit;
pub mod collectors;
pub mod config;
pub mod daemon;
pub mod learn;

pub use daemon::Daemon;

use portcullis_policy::Policy;

/// Converts a policy file's entries into the module's wire entries.
pub fn module_entries(policy: &Policy) -> Vec<portcullis_netlink::Entry> {
    policy.entries().map(module_entry).collect()
}

/// Converts one policy file entry into the module's wire entry.
pub fn module_entry(entry: &portcullis_policy::Entry) -> portcullis_netlink::Entry {
    portcullis_netlink::Entry {
        digest: entry.sha256.0,
        path: entry.path.clone(),
        path_bound: entry.path_bound,
    }
}
