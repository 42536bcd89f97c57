// SPDX-License-Identifier: GPL-2.0

//! The Approved Application List held in the kernel.
//!
//! A policy is an immutable, digest-sorted list of entries shared through an
//! `Arc`; a change builds a new policy with the next generation number and
//! swaps it in, so an evaluation always sees one whole policy. A replacement
//! arrives in chunks into a [`Staging`] area and is put in force only by a
//! commit.

use kernel::prelude::*;

use crate::uapi::entry_flags;

/// A SHA-256 digest.
pub(crate) type Digest = [u8; 32];

/// Upper bound on the entries of one policy, so a loader cannot exhaust
/// kernel memory. A full Debian system has about 20 000 executable files.
pub(crate) const MAX_ENTRIES: usize = 1 << 20;

/// One approved digest.
pub(crate) struct Entry {
    pub(crate) digest: Digest,
    pub(crate) flags: u32,
    /// The path the file was approved at. Kept only for path-bound entries,
    /// the only ones whose evaluation reads it.
    pub(crate) path: Option<KVec<u8>>,
}

impl Entry {
    pub(crate) fn is_path_bound(&self) -> bool {
        self.flags & entry_flags::PATH_BOUND != 0
    }

    fn try_clone(&self) -> Result<Self> {
        let path = match &self.path {
            Some(path) => {
                let mut copy = KVec::with_capacity(path.len(), GFP_KERNEL)?;
                copy.extend_from_slice(path, GFP_KERNEL)?;
                Some(copy)
            }
            None => None,
        };
        Ok(Self {
            digest: self.digest,
            flags: self.flags,
            path,
        })
    }

    fn same_as(&self, other: &Entry) -> bool {
        self.digest == other.digest
            && self.flags == other.flags
            && self.path.as_deref() == other.path.as_deref()
    }
}

/// Result of looking a digest up in a policy.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Approved,
    /// The digest is approved, but only at paths other than this one.
    PathMismatch,
    NotInPolicy,
}

/// A policy in force.
///
/// # Invariants
///
/// `entries` is sorted by digest.
pub(crate) struct Policy {
    pub(crate) generation: u64,
    entries: KVVec<Entry>,
}

impl Policy {
    pub(crate) fn empty() -> Self {
        Self {
            generation: 0,
            entries: KVVec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Builds a policy from unsorted entries.
    pub(crate) fn new(generation: u64, mut entries: KVVec<Entry>) -> Self {
        entries.sort_unstable_by(|a, b| a.digest.cmp(&b.digest));
        // INVARIANT: sorted just above.
        Self {
            generation,
            entries,
        }
    }

    /// Returns the entries that carry `digest`.
    fn matching(&self, digest: &Digest) -> &[Entry] {
        let start = self.entries.partition_point(|e| e.digest < *digest);
        let end = self.entries.partition_point(|e| e.digest <= *digest);
        &self.entries[start..end]
    }

    /// Tells whether evaluating `digest` needs the file's path, because every
    /// entry with this digest is path-bound.
    pub(crate) fn needs_path(&self, digest: &Digest) -> bool {
        let entries = self.matching(digest);
        !entries.is_empty() && entries.iter().all(Entry::is_path_bound)
    }

    /// Looks up a file by digest and, for path-bound entries, by `path`.
    pub(crate) fn lookup(&self, digest: &Digest, path: Option<&[u8]>) -> Lookup {
        let entries = self.matching(digest);
        if entries.is_empty() {
            return Lookup::NotInPolicy;
        }
        for entry in entries {
            if !entry.is_path_bound() {
                return Lookup::Approved;
            }
            if path.is_some() && entry.path.as_deref() == path {
                return Lookup::Approved;
            }
        }
        Lookup::PathMismatch
    }

    /// Tells whether every entry of `self` is also in `other`; a locked policy
    /// may only be replaced by a superset of itself.
    pub(crate) fn is_subset_of(&self, other: &Policy) -> bool {
        self.entries
            .iter()
            .all(|entry| other.matching(&entry.digest).iter().any(|e| e.same_as(entry)))
    }

    /// Builds the next generation: this policy plus `added`.
    pub(crate) fn with_added(&self, added: KVVec<Entry>) -> Result<Policy> {
        let total = self.entries.len() + added.len();
        if total > MAX_ENTRIES {
            return Err(E2BIG);
        }
        let mut entries = KVVec::with_capacity(total, GFP_KERNEL)?;
        for entry in self.entries.iter() {
            entries.push(entry.try_clone()?, GFP_KERNEL)?;
        }
        for entry in added {
            entries.push(entry, GFP_KERNEL)?;
        }
        Ok(Policy::new(self.generation + 1, entries))
    }
}

/// A replacement policy being loaded in chunks.
pub(crate) struct Staging {
    /// Netlink port of the socket that began the load; only it may add
    /// chunks or commit.
    pub(crate) owner: u32,
    pub(crate) entries: KVVec<Entry>,
}

impl Staging {
    pub(crate) fn new(owner: u32) -> Self {
        Self {
            owner,
            entries: KVVec::new(),
        }
    }

    /// Appends a parsed chunk; all or nothing.
    pub(crate) fn append(&mut self, chunk: KVVec<Entry>) -> Result {
        if self.entries.len() + chunk.len() > MAX_ENTRIES {
            return Err(E2BIG);
        }
        self.entries.reserve(chunk.len(), GFP_KERNEL)?;
        for entry in chunk {
            // Cannot fail to allocate: the capacity was reserved above.
            self.entries.push(entry, GFP_KERNEL)?;
        }
        Ok(())
    }
}
