//! Measurement of the paths a rules file selects: one [`Measurement`] per
//! path with the selected attributes and, for regular files, a digest.
//!
//! Files are hashed in parallel with rayon and read in fixed-size chunks,
//! so a large file never sits in memory whole. A [`DigestCache`] keyed by
//! inode identity and change time lets a later measurement re-hash only the
//! files that changed. Paths that cannot be read, or that vanish between
//! the directory walk and the hash, are recorded as such, never skipped.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::Algorithm;
use crate::merkle::{self, Tree};
use crate::rules::{Attributes, Depth, Rules};

const READ_CHUNK: usize = 256 * 1024;

/// Type of a measured path, as lstat reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Directory,
    Symlink,
    /// A device node, socket or FIFO: attributes only, never read.
    Other,
    /// Selected or listed by the walk, but not there when measured.
    Missing,
    /// There, but its metadata or content could not be read.
    Unreadable,
}

/// One measured path. Attributes that the rules do not select stay None.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    pub path: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Modification time in seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Hex digest of the content, for regular files that could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Reason a Missing or Unreadable path has no digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Measurement {
    fn bare(path: String, kind: Kind) -> Measurement {
        Measurement {
            path,
            kind,
            size: None,
            mode: None,
            uid: None,
            gid: None,
            mtime: None,
            link: None,
            digest: None,
            error: None,
        }
    }

    /// Encodes the measurement for its Merkle leaf, unambiguously: each
    /// present field as a one-byte tag, a big-endian u32 length and the
    /// value, in a fixed order.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.path.len() + 128);
        let mut field = |tag: u8, value: &[u8]| {
            out.push(tag);
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value);
        };
        field(b'p', self.path.as_bytes());
        field(b'k', kind_name(self.kind).as_bytes());
        if let Some(size) = self.size {
            field(b's', &size.to_be_bytes());
        }
        if let Some(mode) = self.mode {
            field(b'm', &mode.to_be_bytes());
        }
        if let Some(uid) = self.uid {
            field(b'u', &uid.to_be_bytes());
        }
        if let Some(gid) = self.gid {
            field(b'g', &gid.to_be_bytes());
        }
        if let Some(mtime) = self.mtime {
            field(b't', &mtime.to_be_bytes());
        }
        if let Some(link) = &self.link {
            field(b'l', link.as_bytes());
        }
        if let Some(digest) = &self.digest {
            field(b'd', digest.as_bytes());
        }
        if let Some(error) = &self.error {
            field(b'e', error.as_bytes());
        }
        out
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "file",
        Kind::Directory => "directory",
        Kind::Symlink => "symlink",
        Kind::Other => "other",
        Kind::Missing => "missing",
        Kind::Unreadable => "unreadable",
    }
}

/// A measurement list sorted by path, with the algorithm that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementList {
    pub algorithm: Algorithm,
    pub entries: Vec<Measurement>,
}

impl MeasurementList {
    /// Checks the invariant every consumer relies on: paths strictly
    /// ascending, so no duplicates. Input from the network must pass this.
    pub fn check_sorted(&self) -> Result<(), String> {
        for (index, pair) in self.entries.windows(2).enumerate() {
            if pair[0].path >= pair[1].path {
                return Err(format!(
                    "entry {} ({:?}) does not sort after {:?}",
                    index + 1,
                    pair[1].path,
                    pair[0].path
                ));
            }
        }
        Ok(())
    }

    /// Builds the Merkle tree over the entries, hashing leaves in parallel.
    pub fn tree(&self) -> Tree {
        let leaves = self
            .entries
            .par_iter()
            .map(|entry| merkle::leaf_hash(self.algorithm, &entry.canonical_bytes()))
            .collect();
        Tree::from_leaf_hashes(self.algorithm, leaves)
    }

    pub fn find(&self, path: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|entry| entry.path.as_str().cmp(path))
            .ok()
    }
}

/// Identity and version of a file's content as stat reports them: any
/// write or attribute change moves ctime, which user space cannot set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct InodeVersion {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl InodeVersion {
    fn of(metadata: &std::fs::Metadata) -> InodeVersion {
        InodeVersion {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime_ns: metadata.mtime() as i128 * 1_000_000_000 + metadata.mtime_nsec() as i128,
            ctime_ns: metadata.ctime() as i128 * 1_000_000_000 + metadata.ctime_nsec() as i128,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedDigest {
    version: InodeVersion,
    digest: String,
}

/// Digests from an earlier measurement, keyed by path and inode version.
///
/// NOTE: the key is (dev, inode, size, mtime, ctime) from stat, not the
/// kernel's i_version, which user space cannot read on 6.12 for most file
/// systems. A change that leaves ctime equal, such as a write within the
/// file system's timestamp granularity right after the last measurement,
/// goes unnoticed until the next ctime change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DigestCache {
    algorithm: Option<Algorithm>,
    entries: HashMap<String, CachedDigest>,
}

impl DigestCache {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn lookup(&self, algorithm: Algorithm, path: &str, version: &InodeVersion) -> Option<&str> {
        if self.algorithm != Some(algorithm) {
            return None;
        }
        let cached = self.entries.get(path)?;
        (cached.version == *version).then_some(cached.digest.as_str())
    }
}

/// Counters of one measurement run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub paths: u64,
    pub files_hashed: u64,
    pub files_from_cache: u64,
    pub bytes_hashed: u64,
    pub missing: u64,
    pub unreadable: u64,
}

pub struct Output {
    pub list: MeasurementList,
    /// Digests of this run, to pass to the next one.
    pub cache: DigestCache,
    pub stats: Stats,
}

/// Measures what `rules` selects. `progress` is called with the number of
/// paths done and the total, from worker threads.
pub fn measure(rules: &Rules, cache: &DigestCache, progress: &(dyn Fn(u64, u64) + Sync)) -> Output {
    let pending = collect_paths(rules);
    let total = pending.len() as u64;
    let done = AtomicU64::new(0);

    let results: Vec<(Measurement, Option<CachedDigest>, Outcome)> = pending
        .into_par_iter()
        .map(|(name, path, walk_error)| {
            let result = match walk_error {
                Some(error) => (
                    error_entry(name, &error),
                    None,
                    Outcome::Failed(error_kind(&error)),
                ),
                None => measure_path(name, &path, rules.attributes, rules.algorithm, cache),
            };
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            result
        })
        .collect();

    let mut stats = Stats {
        paths: total,
        ..Stats::default()
    };
    let mut new_cache = DigestCache {
        algorithm: Some(rules.algorithm),
        entries: HashMap::new(),
    };
    let mut entries = Vec::with_capacity(results.len());
    for (measurement, cached, outcome) in results {
        match outcome {
            Outcome::Hashed(bytes) => {
                stats.files_hashed += 1;
                stats.bytes_hashed += bytes;
            }
            Outcome::FromCache => stats.files_from_cache += 1,
            Outcome::Failed(Kind::Missing) => stats.missing += 1,
            Outcome::Failed(_) => stats.unreadable += 1,
            Outcome::NotHashed => {}
        }
        if let Some(cached) = cached {
            new_cache.entries.insert(measurement.path.clone(), cached);
        }
        entries.push(measurement);
    }

    Output {
        list: MeasurementList {
            algorithm: rules.algorithm,
            entries,
        },
        cache: new_cache,
        stats,
    }
}

enum Outcome {
    Hashed(u64),
    FromCache,
    NotHashed,
    Failed(Kind),
}

/// Lists every selected path once, sorted by its recorded name, with the
/// walk error for entries the walk could not list.
fn collect_paths(rules: &Rules) -> Vec<(String, PathBuf, Option<io::Error>)> {
    let mut found: BTreeMap<String, (PathBuf, Option<io::Error>)> = BTreeMap::new();
    let add = |found: &mut BTreeMap<String, (PathBuf, Option<io::Error>)>, path: PathBuf| {
        if !rules.is_excluded(&path) {
            found.entry(path_name(&path)).or_insert((path, None));
        }
    };

    for selection in &rules.selections {
        let max_depth = match selection.depth {
            Depth::File => {
                add(&mut found, selection.path.clone());
                continue;
            }
            Depth::Directory => 1,
            Depth::Tree => usize::MAX,
        };
        let walker = walkdir::WalkDir::new(&selection.path)
            .follow_links(false)
            .max_depth(max_depth);
        let mut walker = walker.into_iter();
        while let Some(item) = walker.next() {
            match item {
                Ok(entry) => {
                    // Excluded directories are not descended into.
                    if entry.file_type().is_dir()
                        && entry.depth() > 0
                        && rules.is_excluded(entry.path())
                    {
                        walker.skip_current_dir();
                        continue;
                    }
                    add(&mut found, entry.into_path());
                }
                Err(error) => {
                    let path = error
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| selection.path.clone());
                    let io_error = error
                        .into_io_error()
                        .unwrap_or_else(|| io::Error::other("file system loop"));
                    // A directory that cannot be listed is still recorded once, as unreadable.
                    if !rules.is_excluded(&path) {
                        found.insert(path_name(&path), (path, Some(io_error)));
                    }
                }
            }
        }
    }
    found
        .into_iter()
        .map(|(name, (path, error))| (name, path, error))
        .collect()
}

/// Returns the recorded name of a path: the path itself when it is UTF-8, else
/// with each invalid byte written as `\xNN`.
pub fn path_name(path: &Path) -> String {
    let bytes = path.as_os_str().as_bytes();
    let mut name = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        name.push_str(chunk.valid());
        for byte in chunk.invalid() {
            name.push_str(&format!("\\x{byte:02x}"));
        }
    }
    name
}

fn error_kind(error: &io::Error) -> Kind {
    if error.kind() == io::ErrorKind::NotFound {
        Kind::Missing
    } else {
        Kind::Unreadable
    }
}

fn error_entry(name: String, error: &io::Error) -> Measurement {
    let mut entry = Measurement::bare(name, error_kind(error));
    entry.error = Some(match error.raw_os_error() {
        Some(code) => format!(
            "{} (errno {code})",
            io::Error::from_raw_os_error(code).kind()
        ),
        None => error.to_string(),
    });
    entry
}

fn measure_path(
    name: String,
    path: &Path,
    attributes: Attributes,
    algorithm: Algorithm,
    cache: &DigestCache,
) -> (Measurement, Option<CachedDigest>, Outcome) {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => {
            return (
                error_entry(name, &error),
                None,
                Outcome::Failed(error_kind(&error)),
            )
        }
    };
    let file_type = metadata.file_type();
    let kind = if file_type.is_file() {
        Kind::File
    } else if file_type.is_dir() {
        Kind::Directory
    } else if file_type.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };

    let mut entry = Measurement::bare(name, kind);
    if attributes.size && kind == Kind::File {
        entry.size = Some(metadata.size());
    }
    if attributes.mode {
        entry.mode = Some(metadata.mode() & 0o7777);
    }
    if attributes.uid {
        entry.uid = Some(metadata.uid());
    }
    if attributes.gid {
        entry.gid = Some(metadata.gid());
    }
    if attributes.mtime {
        entry.mtime = Some(metadata.mtime());
    }
    if attributes.link && kind == Kind::Symlink {
        match std::fs::read_link(path) {
            Ok(target) => entry.link = Some(path_name(&target)),
            Err(error) => {
                let kind = error_kind(&error);
                return (error_entry(entry.path, &error), None, Outcome::Failed(kind));
            }
        }
    }
    if kind != Kind::File {
        return (entry, None, Outcome::NotHashed);
    }

    let version = InodeVersion::of(&metadata);
    if let Some(digest) = cache.lookup(algorithm, &entry.path, &version) {
        entry.digest = Some(digest.to_string());
        let cached = CachedDigest {
            version,
            digest: digest.to_string(),
        };
        return (entry, Some(cached), Outcome::FromCache);
    }

    match hash_file(path, algorithm) {
        Ok((digest, bytes, version_after)) => {
            let digest = hex::encode(digest);
            entry.digest = Some(digest.clone());
            // A file written while it was read gets a digest of mixed
            // content; leave it out of the cache so the next run re-reads it.
            let cached = (version_after == version).then_some(CachedDigest { version, digest });
            (entry, cached, Outcome::Hashed(bytes))
        }
        Err(error) => {
            let kind = error_kind(&error);
            (error_entry(entry.path, &error), None, Outcome::Failed(kind))
        }
    }
}

fn hash_file(path: &Path, algorithm: Algorithm) -> io::Result<(Vec<u8>, u64, InodeVersion)> {
    let mut file = File::open(path)?;
    let mut hasher = algorithm.hasher();
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    loop {
        let count = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..count]);
        total += count as u64;
    }
    let version = InodeVersion::of(&file.metadata()?);
    Ok((hasher.finalize(), total, version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn rules(text: &str) -> Rules {
        Rules::parse(text, "test.rules").unwrap()
    }

    fn no_progress(_: u64, _: u64) {}

    #[test]
    fn measures_files_dirs_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), b"abc").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/b.log"), b"skip me").unwrap();
        std::fs::write(root.join("sub/c"), b"").unwrap();
        symlink("a.txt", root.join("link")).unwrap();
        let text = format!(
            "tree {}\nexclude {}/**/*.log\n",
            root.display(),
            root.display()
        );

        let output = measure(&rules(&text), &DigestCache::default(), &no_progress);
        let names: Vec<&str> = output
            .list
            .entries
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        let base = root.display().to_string();
        assert_eq!(
            names,
            [
                base.clone(),
                format!("{base}/a.txt"),
                format!("{base}/link"),
                format!("{base}/sub"),
                format!("{base}/sub/c")
            ]
        );
        let file = &output.list.entries[1];
        assert_eq!(file.kind, Kind::File);
        assert_eq!(file.size, Some(3));
        assert_eq!(
            file.digest.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let link = &output.list.entries[2];
        assert_eq!(link.kind, Kind::Symlink);
        assert_eq!(link.link.as_deref(), Some("a.txt"));
        assert_eq!(link.digest, None);
        assert_eq!(output.list.entries[3].kind, Kind::Directory);
        assert_eq!(output.stats.files_hashed, 2);
        assert!(output.list.check_sorted().is_ok());
    }

    #[test]
    fn dir_selection_is_not_recursive() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x/y")).unwrap();
        std::fs::write(dir.path().join("x/y/deep"), b"1").unwrap();
        let output = measure(
            &rules(&format!("dir {}\n", dir.path().display())),
            &DigestCache::default(),
            &no_progress,
        );
        assert_eq!(output.list.entries.len(), 2);
        assert!(output.list.entries[1].path.ends_with("/x"));
    }

    #[test]
    fn missing_and_unreadable_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"x").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        let text = format!(
            "file {}/gone\nfile {}\n",
            dir.path().display(),
            secret.display()
        );

        let output = measure(&rules(&text), &DigestCache::default(), &no_progress);
        let gone = &output.list.entries[0];
        assert_eq!(gone.kind, Kind::Missing);
        assert!(gone.error.as_deref().unwrap().contains("not found"));
        assert_eq!(output.stats.missing, 1);

        // Root reads any file regardless of mode, so only an unprivileged run
        // can check the unreadable case.
        let secret_entry = &output.list.entries[1];
        if unsafe { libc::geteuid() } != 0 {
            assert_eq!(secret_entry.kind, Kind::Unreadable);
            assert_eq!(output.stats.unreadable, 1);
        } else {
            assert_eq!(secret_entry.kind, Kind::File);
        }
    }

    #[test]
    fn read_error_is_recorded_for_root() {
        // Reading /proc/self/mem at offset 0 fails with EIO even for root,
        // because address 0 is not mapped in the test process.
        let output = measure(
            &rules("file /proc/self/mem\n"),
            &DigestCache::default(),
            &no_progress,
        );
        let entry = &output.list.entries[0];
        assert_eq!(entry.kind, Kind::Unreadable);
        assert_eq!(entry.digest, None);
        assert!(
            entry.error.as_deref().unwrap().contains("errno 5"),
            "{:?}",
            entry.error
        );
        assert_eq!(output.stats.unreadable, 1);
    }

    #[test]
    fn cache_reuses_unchanged_and_rehashes_changed() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["one", "two", "three"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let rules = rules(&format!("tree {}\n", dir.path().display()));
        let first = measure(&rules, &DigestCache::default(), &no_progress);
        assert_eq!(first.stats.files_hashed, 3);
        assert_eq!(first.cache.len(), 3);

        let second = measure(&rules, &first.cache, &no_progress);
        assert_eq!(second.stats.files_hashed, 0);
        assert_eq!(second.stats.files_from_cache, 3);
        assert_eq!(second.list, first.list);

        std::fs::write(dir.path().join("two"), "changed").unwrap();
        let third = measure(&rules, &second.cache, &no_progress);
        assert_eq!(third.stats.files_hashed, 1);
        assert_eq!(third.stats.files_from_cache, 2);
        assert_ne!(third.list, first.list);
    }

    #[test]
    fn cache_of_other_algorithm_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "data").unwrap();
        let sha256 = measure(
            &rules(&format!("tree {}\n", dir.path().display())),
            &DigestCache::default(),
            &no_progress,
        );
        let sha1 = measure(
            &rules(&format!("hash sha1\ntree {}\n", dir.path().display())),
            &sha256.cache,
            &no_progress,
        );
        assert_eq!(sha1.stats.files_hashed, 1);
        assert_eq!(sha1.list.entries[1].digest.as_ref().unwrap().len(), 40);
    }

    #[test]
    fn canonical_bytes_differ_per_field() {
        let mut entry = Measurement::bare("/a".into(), Kind::File);
        let plain = entry.canonical_bytes();
        entry.size = Some(0);
        assert_ne!(entry.canonical_bytes(), plain);
        let mut moved = Measurement::bare("/a".into(), Kind::File);
        moved.mode = Some(0);
        assert_ne!(moved.canonical_bytes(), entry.canonical_bytes());
    }

    #[test]
    fn non_utf8_names_are_escaped() {
        use std::ffi::OsStr;
        let path = Path::new(OsStr::from_bytes(b"/tmp/a\xffb"));
        assert_eq!(path_name(path), "/tmp/a\\xffb");
    }
}
