//! Per-file results kept between scans, keyed by the file's inode version,
//! so a scan of an unchanged file system parses no file again.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalogue::EmbeddedVersion;
use crate::elf::ElfInfo;

/// The inode version of a file: any write, rename over, or metadata change
/// moves ctime, and a replaced file has a new inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub size: u64,
}

impl FileStamp {
    pub fn of(metadata: &fs::Metadata) -> FileStamp {
        let nanoseconds =
            |seconds: i64, nanos: i64| seconds as i128 * 1_000_000_000 + nanos as i128;
        FileStamp {
            dev: metadata.dev(),
            ino: metadata.ino(),
            mtime_ns: nanoseconds(metadata.mtime(), metadata.mtime_nsec()),
            ctime_ns: nanoseconds(metadata.ctime(), metadata.ctime_nsec()),
            size: metadata.len(),
        }
    }
}

/// Facts a scan reads from one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAnalysis {
    /// `None` for a file that is not ELF.
    pub elf: Option<ElfInfo>,
    pub embedded: Vec<EmbeddedVersion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stamp: FileStamp,
    analysis: FileAnalysis,
}

/// Cached analyses by path.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FileCache {
    /// Format version; a cache written by another version is discarded.
    format: u32,
    entries: HashMap<PathBuf, Entry>,
}

const FORMAT: u32 = 2;

impl FileCache {
    pub fn new() -> FileCache {
        FileCache {
            format: FORMAT,
            entries: HashMap::new(),
        }
    }

    /// Returns the analysis stored for `path` if the file still has `stamp`.
    pub fn get(&self, path: &Path, stamp: &FileStamp) -> Option<&FileAnalysis> {
        self.entries
            .get(path)
            .filter(|entry| entry.stamp == *stamp)
            .map(|entry| &entry.analysis)
    }

    pub fn insert(&mut self, path: PathBuf, stamp: FileStamp, analysis: FileAnalysis) {
        self.entries.insert(path, Entry { stamp, analysis });
    }

    /// Drops entries of files the last scan no longer saw.
    pub fn retain_paths(&mut self, live: &HashSet<PathBuf>) {
        self.entries.retain(|path, _| live.contains(path));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Loads a cache file. A missing file gives an empty cache. An
    /// unreadable or invalid one is logged and replaced by an empty cache,
    /// because the cache only saves work and a full scan rebuilds it.
    pub fn load(path: &Path) -> FileCache {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return FileCache::new(),
            Err(error) => {
                log::warn!(
                    "failed to read scan cache {}: {error}; scanning every file",
                    path.display()
                );
                return FileCache::new();
            }
        };
        match serde_json::from_slice::<FileCache>(&bytes) {
            Ok(cache) if cache.format == FORMAT => cache,
            Ok(_) => FileCache::new(),
            Err(error) => {
                log::warn!(
                    "invalid scan cache {}: {error}; scanning every file",
                    path.display()
                );
                FileCache::new()
            }
        }
    }

    /// Writes the cache through a temporary file and a rename, so a crash
    /// leaves the old cache or the new one, never half of one.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|error| {
                anyhow::anyhow!(
                    "failed to create cache directory {}: {error}",
                    parent.display()
                )
            })?;
        }
        let temporary = path.with_extension("tmp");
        let bytes = serde_json::to_vec(self)?;
        fs::write(&temporary, bytes)
            .map_err(|error| anyhow::anyhow!("failed to write {}: {error}", temporary.display()))?;
        fs::rename(&temporary, path)
            .map_err(|error| anyhow::anyhow!("failed to replace {}: {error}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis() -> FileAnalysis {
        FileAnalysis {
            elf: None,
            embedded: Vec::new(),
        }
    }

    #[test]
    fn saved_cache_loads_back() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("file");
        fs::write(&file, b"data").unwrap();
        let stamp = FileStamp::of(&fs::metadata(&file).unwrap());

        let mut cache = FileCache::new();
        cache.insert(file.clone(), stamp.clone(), analysis());
        let path = directory.path().join("state/cache.json");
        cache.save(&path).unwrap();

        let loaded = FileCache::load(&path);
        assert_eq!(loaded.get(&file, &stamp), Some(&analysis()));
        let changed = FileStamp { size: 5, ..stamp };
        assert_eq!(loaded.get(&file, &changed), None, "a new size misses");
    }

    #[test]
    fn corrupt_cache_starts_empty() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("cache.json");
        fs::write(&path, b"{\"format\": 2, \"entries\": {").unwrap();
        assert!(FileCache::load(&path).is_empty());
        assert!(FileCache::load(&directory.path().join("missing.json")).is_empty());
    }
}
