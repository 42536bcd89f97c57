// SPDX-License-Identifier: GPL-2.0

//! Digests and verdicts cached per inode version.
//!
//! A file is hashed on first sight. Its digest stays valid while the inode's
//! version is unchanged, which is its i_version where the file system keeps
//! one, else its ctime, mtime and size. A verdict is valid only for the policy
//! generation it was computed under, so a policy change invalidates every
//! verdict while keeping the digests, which do not depend on the policy.

use kernel::prelude::*;
use kernel::rbtree::RBTree;

use crate::ffi::FileIdentity;
use crate::policy::{Digest, Lookup};

/// Upper bound on cached files. When full, the entry with the lowest key is
/// evicted, which is cheap in a red-black tree but not least-recently-used.
const MAX_ENTRIES: usize = 16384;

/// The inode a cache entry belongs to.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FileKey {
    dev: u32,
    ino: u64,
    generation: u32,
}

/// The content version of an inode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileVersion {
    change: Option<u64>,
    ctime_ns: i64,
    mtime_ns: i64,
    size: i64,
}

impl FileKey {
    pub(crate) fn of(id: &FileIdentity) -> Self {
        Self {
            dev: id.dev,
            ino: id.ino,
            generation: id.generation,
        }
    }
}

impl FileVersion {
    fn of(id: &FileIdentity) -> Self {
        Self {
            change: if id.has_change != 0 { Some(id.change) } else { None },
            ctime_ns: id.ctime_ns,
            mtime_ns: id.mtime_ns,
            size: id.size,
        }
    }
}

/// Cache entry of one inode version.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cached {
    pub(crate) digest: Digest,
    /// The policy lookup and the generation it was made under. `None` when
    /// the lookup depends on the path, which a hard link can change.
    pub(crate) lookup: Option<(u64, Lookup)>,
    /// The last policy generation in which learn mode reported this file.
    pub(crate) reported_generation: Option<u64>,
}

struct CacheEntry {
    version: FileVersion,
    cached: Cached,
}

pub(crate) struct VerdictCache {
    tree: RBTree<FileKey, CacheEntry>,
    len: usize,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

impl VerdictCache {
    pub(crate) fn new() -> Self {
        Self {
            tree: RBTree::new(),
            len: 0,
            hits: 0,
            misses: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Returns what is cached for this exact version of the file, counting a
    /// hit or a miss.
    pub(crate) fn get(&mut self, id: &FileIdentity) -> Option<Cached> {
        let found = match self.tree.get(&FileKey::of(id)) {
            Some(entry) if entry.version == FileVersion::of(id) => Some(entry.cached),
            _ => None,
        };
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    /// Stores `cached` for this version of the file, replacing what an older
    /// version left.
    pub(crate) fn put(&mut self, id: &FileIdentity, cached: Cached) -> Result {
        let key = FileKey::of(id);
        let entry = CacheEntry {
            version: FileVersion::of(id),
            cached,
        };
        if let Some(existing) = self.tree.get_mut(&key) {
            *existing = entry;
            return Ok(());
        }

        if self.len >= MAX_ENTRIES {
            if let Some(cursor) = self.tree.cursor_front() {
                let (_, evicted) = cursor.remove_current();
                drop(evicted);
                self.len -= 1;
            }
        }
        self.tree.try_create_and_insert(key, entry, GFP_KERNEL)?;
        self.len += 1;
        Ok(())
    }

    /// Updates the learn-mode report marker of a cached file, if still
    /// cached at this version.
    pub(crate) fn mark_reported(&mut self, id: &FileIdentity, generation: u64) {
        if let Some(entry) = self.tree.get_mut(&FileKey::of(id)) {
            if entry.version == FileVersion::of(id) {
                entry.cached.reported_generation = Some(generation);
            }
        }
    }
}
