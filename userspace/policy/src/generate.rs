//! Policy generation: walks a root file system, classifies every regular
//! file, and hashes the executables, shared objects and scripts in parallel.
//!
//! The walk itself is sequential. It collects one record per inode, so hard
//! links are hashed once. The classify-and-hash step runs on rayon.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::resolve::resolve_in_root;
use crate::{elf, Digest, Entry, Kind, Policy};

/// Settings for [`generate`].
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Device paths (absolute, as seen inside the root) whose subtrees are not
    /// walked. The default is /proc, /sys and /dev. Mount points below the
    /// root are skipped whether they are listed or not.
    ///
    /// NOTE: on a device whose /usr or /opt is a separate file system,
    /// generating from `/` leaves those file systems out. Generate from each
    /// mount point and [`crate::merge`] the results.
    pub skip: Vec<PathBuf>,
    /// Number of hashing threads. `None` uses rayon's global pool, which has
    /// one thread per CPU unless RAYON_NUM_THREADS sets another number.
    pub threads: Option<usize>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            skip: ["/proc", "/sys", "/dev"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            threads: None,
        }
    }
}

/// A snapshot of hashing progress, passed to the progress callback.
///
/// `bytes_done` counts the sizes of files examined so far, hashed or not, so
/// that it reaches `bytes_total` when generation ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// A file that generation could not examine. The file is not in the policy.
#[derive(Debug)]
pub struct Warning {
    /// The file's path on the host, the root included.
    pub path: PathBuf,
    /// The failure, such as "failed to open: Permission denied (os error 13)".
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Counters of one generation run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Paths of regular files found, and symlinks that lead to one. A file
    /// with several hard links counts once per path.
    pub files_seen: u64,
    /// Distinct files (inodes) hashed.
    pub files_hashed: u64,
    /// Paths left out of the policy: data files, scripts without an execute
    /// bit, device nodes, FIFOs, sockets, and symlinks that dangle or lead
    /// outside the walked file system. Paths with a warning are not counted.
    pub files_skipped: u64,
    /// Bytes read to compute digests.
    pub bytes_hashed: u64,
    /// Directories not walked: those in [`GenerateOptions::skip`], mount
    /// points, and bind mounts of directories already walked.
    pub directories_skipped: u64,
}

/// The result of [`generate`].
#[derive(Debug)]
pub struct Generated {
    pub policy: Policy,
    /// Files that could not be examined, sorted by path.
    pub warnings: Vec<Warning>,
    pub counts: Counts,
}

/// An error that stops generation.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid generation root {}: {error}", path.display())]
    Root { path: PathBuf, error: io::Error },
    #[error("generation root {} is not a directory", path.display())]
    RootNotDirectory { path: PathBuf },
    #[error("generation root {} is not valid UTF-8, which the policy file requires", path.display())]
    RootNotUtf8 { path: PathBuf },
    #[error("failed to start {threads} hashing threads: {source}")]
    ThreadPool {
        threads: usize,
        source: rayon::ThreadPoolBuildError,
    },
}

/// Builds a policy from the files under `root`, an unpacked image or `/`.
///
/// Entries are ELF executables, ELF shared objects, other ELF files such as
/// kernel modules, and `#!` scripts with an execute bit. Each entry's path is
/// the file's path inside `root`. The walk does not descend into directory
/// symlinks. A symlink to a file adds an entry for its target, resolved
/// inside `root`, because exec(2) of the link runs the target and the kernel
/// checks the target's path. Each hard link of a file gets an entry, but the
/// file is hashed once.
///
/// Subtrees in `options.skip` and mount points (directories on another
/// device than `root`, and bind mounts) are not walked. A file that cannot
/// be read becomes a [`Warning`] and generation goes on. `progress` is
/// called once before hashing starts and after each file, from the hashing
/// threads.
pub fn generate<F>(
    root: &Path,
    options: &GenerateOptions,
    progress: F,
) -> Result<Generated, GenerateError>
where
    F: Fn(&Progress) + Sync,
{
    let root_error = |error| GenerateError::Root {
        path: root.to_owned(),
        error,
    };
    let root = fs::canonicalize(root).map_err(root_error)?;
    let root_metadata = fs::metadata(&root).map_err(root_error)?;
    if !root_metadata.is_dir() {
        return Err(GenerateError::RootNotDirectory { path: root });
    }
    let Some(root_text) = root.to_str() else {
        return Err(GenerateError::RootNotUtf8 { path: root });
    };
    let mut policy = Policy::new(root_text);

    let mut walk = Walk::new(&root, root_metadata.dev(), &options.skip);
    walk.run(root_metadata.ino());
    let Walk {
        files,
        mut warnings,
        mut counts,
        ..
    } = walk;

    let examined = match options.threads {
        None => examine_all(&files, &progress),
        Some(threads) => rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|source| GenerateError::ThreadPool { threads, source })?
            .install(|| examine_all(&files, &progress)),
    };

    for (file, outcome) in files.iter().zip(examined) {
        match outcome {
            Ok(Some((kind, sha256))) => {
                counts.files_hashed += 1;
                counts.bytes_hashed += file.size;
                for path in &file.device_paths {
                    let entry = Entry {
                        path: path.clone(),
                        sha256,
                        kind,
                        path_bound: false,
                    };
                    policy
                        .insert(entry)
                        .expect("walked paths are absolute and normalized");
                }
            }
            Ok(None) => counts.files_skipped += file.device_paths.len() as u64,
            Err(message) => warnings.push(Warning {
                path: file.host_path.clone(),
                message,
            }),
        }
    }

    warnings.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Generated {
        policy,
        warnings,
        counts,
    })
}

/// One inode to examine, with every path under which the walk found it.
struct FileToExamine {
    host_path: PathBuf,
    device_paths: Vec<String>,
    device: u64,
    inode: u64,
    size: u64,
}

struct Walk<'a> {
    root: &'a Path,
    root_device: u64,
    skip: &'a [PathBuf],
    files: Vec<FileToExamine>,
    // Index into `files` by (st_dev, st_ino), to find hard links.
    inodes: HashMap<(u64, u64), usize>,
    // (st_dev, st_ino) of the directories queued so far. A bind mount has
    // the st_dev of its source, so only statx distinguishes it from a directory.
    // Where statx cannot (before Linux 5.8), this set keeps a bind mount
    // from making the walk loop.
    // NOTE: in that case the walk order decides whether a bound directory is
    // walked under its own path or under the bind mount's path.
    directories: HashSet<(u64, u64)>,
    warnings: Vec<Warning>,
    counts: Counts,
}

impl<'a> Walk<'a> {
    fn new(root: &'a Path, root_device: u64, skip: &'a [PathBuf]) -> Self {
        Walk {
            root,
            root_device,
            skip,
            files: Vec::new(),
            inodes: HashMap::new(),
            directories: HashSet::new(),
            warnings: Vec::new(),
            counts: Counts::default(),
        }
    }

    fn run(&mut self, root_inode: u64) {
        self.directories.insert((self.root_device, root_inode));
        let mut directories = vec![PathBuf::from("/")];
        while let Some(directory) = directories.pop() {
            self.read_directory(&directory, &mut directories);
        }
    }

    fn host_path(&self, device_path: &Path) -> PathBuf {
        self.root
            .join(device_path.strip_prefix("/").unwrap_or(device_path))
    }

    fn warn(&mut self, path: PathBuf, message: String) {
        self.warnings.push(Warning { path, message });
    }

    /// Visits the entries of one directory, queueing its subdirectories.
    fn read_directory(&mut self, directory: &Path, queue: &mut Vec<PathBuf>) {
        let host_directory = self.host_path(directory);
        let listing = match fs::read_dir(&host_directory) {
            Ok(listing) => listing,
            Err(error) => return self.warn(host_directory, format!("failed to list: {error}")),
        };

        for item in listing {
            let item = match item {
                Ok(item) => item,
                Err(error) => {
                    self.warn(host_directory.clone(), format!("failed to list: {error}"));
                    break;
                }
            };
            let device_path = directory.join(item.file_name());
            // DirEntry::metadata does not follow symlinks.
            match item.metadata() {
                Ok(metadata) => self.visit(device_path, item.path(), &metadata, queue),
                Err(error) => self.warn(item.path(), format!("failed to stat: {error}")),
            }
        }
    }

    fn visit(
        &mut self,
        device_path: PathBuf,
        host_path: PathBuf,
        metadata: &fs::Metadata,
        queue: &mut Vec<PathBuf>,
    ) {
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            let is_mount_point =
                metadata.dev() != self.root_device || is_mount_root(&host_path) == Some(true);
            if self.is_skipped(&device_path) || is_mount_point {
                log::debug!(
                    "not walking {}: skipped or a mount point",
                    host_path.display()
                );
                self.counts.directories_skipped += 1;
            } else if !self.directories.insert((metadata.dev(), metadata.ino())) {
                log::debug!(
                    "not walking {}: a bind mount of a walked directory",
                    host_path.display()
                );
                self.counts.directories_skipped += 1;
            } else {
                queue.push(device_path);
            }
        } else if file_type.is_file() {
            self.counts.files_seen += 1;
            self.add_file(device_path, host_path, metadata);
        } else if file_type.is_symlink() {
            self.follow_symlink(&device_path, host_path);
        } else {
            self.counts.files_seen += 1;
            self.counts.files_skipped += 1;
        }
    }

    fn is_skipped(&self, device_path: &Path) -> bool {
        self.skip
            .iter()
            .any(|skipped| device_path.starts_with(skipped))
    }

    /// Adds the file a symlink leads to. Links to directories are ignored,
    /// because the walk reaches their contents under the target's path.
    fn follow_symlink(&mut self, link_path: &Path, host_link_path: PathBuf) {
        let target = match resolve_in_root(self.root, link_path) {
            Ok(target) => target,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                log::debug!("skipping dangling symlink {}", host_link_path.display());
                self.counts.files_seen += 1;
                self.counts.files_skipped += 1;
                return;
            }
            Err(error) => {
                let message = format!("failed to resolve symlink inside the root: {error}");
                return self.warn(host_link_path, message);
            }
        };

        let host_target = self.host_path(&target);
        let metadata = match fs::symlink_metadata(&host_target) {
            Ok(metadata) => metadata,
            Err(error) => {
                let message = format!("failed to stat target {}: {error}", target.display());
                return self.warn(host_link_path, message);
            }
        };
        if metadata.is_dir() {
            return;
        }

        self.counts.files_seen += 1;
        let outside_walk = self.is_skipped(&target) || metadata.dev() != self.root_device;
        if !metadata.is_file() || outside_walk {
            self.counts.files_skipped += 1;
            return;
        }
        self.add_file(target, host_target, &metadata);
    }

    /// Records a regular file, merging hard links and repeated paths into
    /// one record per inode.
    fn add_file(&mut self, device_path: PathBuf, host_path: PathBuf, metadata: &fs::Metadata) {
        let Some(device_path) = device_path.to_str().map(str::to_owned) else {
            let message = "name is not valid UTF-8, which the policy file requires".to_owned();
            return self.warn(host_path, message);
        };

        let key = (metadata.dev(), metadata.ino());
        if let Some(&index) = self.inodes.get(&key) {
            let paths = &mut self.files[index].device_paths;
            if !paths.contains(&device_path) {
                paths.push(device_path);
            }
            return;
        }

        self.inodes.insert(key, self.files.len());
        self.files.push(FileToExamine {
            host_path,
            device_paths: vec![device_path],
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
        });
    }
}

/// Examines every file in parallel. Each result is the kind and digest of a
/// file the policy needs, `None` for a data file, or a warning message.
fn examine_all<F>(
    files: &[FileToExamine],
    progress: &F,
) -> Vec<Result<Option<(Kind, Digest)>, String>>
where
    F: Fn(&Progress) + Sync,
{
    let files_total = files.len() as u64;
    let bytes_total = files.iter().map(|file| file.size).sum();
    progress(&Progress {
        files_done: 0,
        files_total,
        bytes_done: 0,
        bytes_total,
    });

    let files_done = AtomicU64::new(0);
    let bytes_done = AtomicU64::new(0);
    files
        .par_iter()
        .map(|file| {
            let outcome = examine(file);
            let snapshot = Progress {
                files_done: files_done.fetch_add(1, Ordering::Relaxed) + 1,
                files_total,
                bytes_done: bytes_done.fetch_add(file.size, Ordering::Relaxed) + file.size,
                bytes_total,
            };
            progress(&snapshot);
            outcome
        })
        .collect()
}

/// Opens, classifies and, when the policy needs it, hashes one file.
fn examine(file: &FileToExamine) -> Result<Option<(Kind, Digest)>, String> {
    // O_NOFOLLOW and O_NONBLOCK keep a path that became a symlink or a FIFO
    // since the walk from redirecting or blocking the open.
    let handle = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&file.host_path)
        .map_err(|error| format!("failed to open: {error}"))?;
    let metadata = handle
        .metadata()
        .map_err(|error| format!("failed to stat: {error}"))?;
    if !metadata.is_file() || metadata.dev() != file.device || metadata.ino() != file.inode {
        return Err("file was replaced during generation; run it again".to_owned());
    }

    let name = file
        .host_path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let kind = elf::classify(&handle, metadata.mode(), &name)
        .map_err(|error| format!("failed to read: {error}"))?;
    let Some(kind) = kind else {
        return Ok(None);
    };
    let sha256 = hash_file(&handle).map_err(|error| format!("failed to read: {error}"))?;

    // A write during hashing would give a digest of neither version.
    let after = handle
        .metadata()
        .map_err(|error| format!("failed to stat: {error}"))?;
    let changed = after.size() != metadata.size()
        || after.mtime() != metadata.mtime()
        || after.mtime_nsec() != metadata.mtime_nsec();
    if changed {
        return Err("file changed while it was hashed; run generation again".to_owned());
    }
    Ok(Some((kind, sha256)))
}

/// Returns whether `path` is the root of a mount, as statx(2) reports with
/// STATX_ATTR_MOUNT_ROOT. That catches bind mounts, which keep the st_dev
/// of their source. Returns `None` when the kernel does not report the
/// attribute (before Linux 5.8) or statx fails.
fn is_mount_root(path: &Path) -> Option<bool> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buffer = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: `path` is NUL-terminated and outlives the call, and `buffer`
    // is a writable statx struct, which is all statx writes to.
    let result = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_BASIC_STATS,
            buffer.as_mut_ptr(),
        )
    };
    if result != 0 {
        return None;
    }

    // SAFETY: the buffer was zeroed, and statx returned 0 so it filled it.
    let statx = unsafe { buffer.assume_init() };
    let flag = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if statx.stx_attributes_mask & flag == 0 {
        return None;
    }
    Some(statx.stx_attributes & flag != 0)
}

/// Computes the SHA-256 of an open file's content, read from offset 0.
pub fn hash_file(file: &File) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut offset = 0u64;
    loop {
        let count = match file.read_at(&mut buffer, offset) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..count]);
        offset += count as u64;
    }
    Ok(Digest(hasher.finalize().into()))
}
