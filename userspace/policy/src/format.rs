//! The policy file: its JSON form, validation on load, and atomic save.
//!
//! Validation happens while serde_json reads the file, so every rejection
//! carries the line and column where serde_json was when it failed. For a
//! value that is read whole (a digest, a path, an entry) that position is
//! just after the value.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::{Digest, PolicyError};

/// The value of the "format" key that marks a Portcullis policy file.
pub const FORMAT: &str = "portcullis-policy";

/// The file format version this library writes.
pub const VERSION: u64 = 1;

/// The versions this library reads.
pub const SUPPORTED_VERSIONS: &[u64] = &[1];

/// The value written to "generator" by this library's version.
pub const GENERATOR: &str = concat!("portcullis ", env!("CARGO_PKG_VERSION"));

/// The type of file an entry approves, as the generator classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An ELF executable: ET_EXEC, or a PIE (ET_DYN with the DF_1_PIE flag,
    /// or with PT_INTERP and no DT_SONAME).
    ElfExecutable,
    /// An ELF ET_DYN file that is not a PIE: a library, a plugin or the
    /// dynamic loader.
    ElfSharedObject,
    /// A file that starts with `#!` and has an execute bit set.
    Script,
    /// Any other file the policy approves: an ELF file that is neither an
    /// executable nor a shared object (such as an ET_REL kernel module or
    /// object file), or a compressed kernel module.
    Other,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::ElfExecutable => "elf-executable",
            Kind::ElfSharedObject => "elf-shared-object",
            Kind::Script => "script",
            Kind::Other => "other",
        })
    }
}

/// One approved file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Absolute path on the device, with the generation root stripped.
    #[serde(deserialize_with = "deserialize_entry_path")]
    pub path: String,
    /// Digest of the file's contents.
    pub sha256: Digest,
    /// The file type.
    pub kind: Kind,
    /// When true, the kernel approves the digest only at `path`. When false
    /// it approves the digest at any path.
    #[serde(default, skip_serializing_if = "is_false")]
    pub path_bound: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A policy: metadata and the approved entries, one per path, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The program and version that wrote the policy, such as "portcullis 0.1.0".
    pub generator: String,
    /// The absolute host directory the policy was generated from.
    pub root: String,
    /// When the policy was created. It is written in RFC 3339 UTC form.
    pub created: SystemTime,
    // Keyed by `Entry::path`, which keeps entries sorted and paths unique.
    entries: BTreeMap<String, Entry>,
}

impl Policy {
    /// Creates an empty policy for `root`, created now, with no fractional
    /// seconds so that the file shows a plain RFC 3339 time.
    pub fn new(root: impl Into<String>) -> Self {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        Policy {
            generator: GENERATOR.to_owned(),
            root: root.into(),
            created: UNIX_EPOCH + std::time::Duration::from_secs(seconds),
            entries: BTreeMap::new(),
        }
    }

    /// Reads and parses the policy file at `path`. Errors name `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|error| PolicyError::Read {
            path: path.to_owned(),
            error,
        })?;
        Policy::parse(&bytes, &path.display().to_string())
    }

    /// Parses policy JSON. `name` identifies the input in error messages,
    /// usually the file name.
    ///
    /// Rejects malformed or truncated JSON, unknown keys, a "format" other
    /// than [`FORMAT`] and a version not in [`SUPPORTED_VERSIONS`]. Also
    /// rejects a digest that is not 64 lowercase hex digits, a path that is
    /// not absolute and normalized, and two entries with the same path.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile =
            serde_json::from_slice(bytes).map_err(|error| PolicyError::from_json(name, error))?;
        Ok(Policy {
            generator: file.generator,
            root: file.root,
            created: file.created,
            entries: file.entries,
        })
    }

    /// Returns the policy as pretty-printed JSON with a final newline.
    pub fn to_json(&self) -> String {
        // serde_json fails only on maps with non-string keys and on errors from
        // Serialize impls, and a policy contains neither.
        let mut text = serde_json::to_string_pretty(self).expect("policy serializes to JSON");
        text.push('\n');
        text
    }

    /// Writes the policy to `path` so that a crash leaves either the old file
    /// or the new one, never a torn file.
    ///
    /// It writes a temporary file in the same directory, syncs it, renames it
    /// over `path` and syncs the directory. The new file keeps the mode of
    /// the file it replaces, or gets 0644.
    pub fn save_atomic(&self, path: impl AsRef<Path>) -> Result<(), PolicyError> {
        let path = path.as_ref();
        let save_error = |error| PolicyError::Save {
            path: path.to_owned(),
            error,
        };

        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mode = match fs::metadata(path) {
            Ok(metadata) => metadata.permissions().mode() & 0o7777,
            Err(_) => 0o644,
        };

        // Dropping `temporary` before `persist` succeeds removes the file.
        let mut temporary = tempfile::Builder::new()
            .prefix(".portcullis-policy.")
            .suffix(".tmp")
            .tempfile_in(directory)
            .map_err(save_error)?;
        temporary
            .write_all(self.to_json().as_bytes())
            .map_err(save_error)?;
        let file = temporary.as_file();
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(save_error)?;
        file.sync_all().map_err(save_error)?;

        temporary
            .persist(path)
            .map_err(|error| save_error(error.error))?;
        fs::File::open(directory)
            .and_then(|directory| directory.sync_all())
            .map_err(save_error)
    }

    /// Returns the entries, sorted by path.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &Entry> + '_ {
        self.entries.values()
    }

    /// Returns the entry for `path`, if there is one.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns whether the policy has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry that is not path-bound. Returns true when the path was
    /// new, and false when the path already had this digest (the existing
    /// entry, including its kind and path binding, is kept).
    ///
    /// Fails with `InvalidPath` when `path` is not absolute and normalized,
    /// and with `Conflict` when the path already has a different digest,
    /// so that learning never replaces an approved digest silently. Use
    /// [`Policy::insert`] to replace.
    pub fn add(&mut self, path: &str, sha256: Digest, kind: Kind) -> Result<bool, PolicyError> {
        check_entry_path(path).map_err(|reason| PolicyError::InvalidPath {
            path: path.to_owned(),
            reason,
        })?;

        if let Some(existing) = self.entries.get(path) {
            if existing.sha256 == sha256 {
                return Ok(false);
            }
            return Err(PolicyError::Conflict {
                path: path.to_owned(),
                existing: existing.sha256,
                new: sha256,
            });
        }

        let entry = Entry {
            path: path.to_owned(),
            sha256,
            kind,
            path_bound: false,
        };
        self.entries.insert(path.to_owned(), entry);
        Ok(true)
    }

    /// Inserts `entry`, replacing any entry with the same path, and returns
    /// the replaced entry. Fails with `InvalidPath` when the path is not
    /// absolute and normalized.
    pub fn insert(&mut self, entry: Entry) -> Result<Option<Entry>, PolicyError> {
        check_entry_path(&entry.path).map_err(|reason| PolicyError::InvalidPath {
            path: entry.path.clone(),
            reason,
        })?;
        Ok(self.entries.insert(entry.path.clone(), entry))
    }

    /// Removes and returns the entry for `path`.
    pub fn remove(&mut self, path: &str) -> Option<Entry> {
        self.entries.remove(path)
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Entries<'a>(&'a BTreeMap<String, Entry>);
        impl Serialize for Entries<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.values())
            }
        }

        let created = humantime::format_rfc3339(self.created).to_string();
        let mut state = serializer.serialize_struct("Policy", 6)?;
        state.serialize_field("format", FORMAT)?;
        state.serialize_field("version", &VERSION)?;
        state.serialize_field("generator", &self.generator)?;
        state.serialize_field("root", &self.root)?;
        state.serialize_field("created", &created)?;
        state.serialize_field("entries", &Entries(&self.entries))?;
        state.end()
    }
}

/// Checks that `path` is an absolute path to a file on the device: it starts
/// with `/`, names something below `/`, and has no empty, `.` or `..`
/// components and no NUL byte. Such a path has exactly one spelling, so two
/// entries cannot name the same file in different words.
pub(crate) fn check_entry_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("must be absolute (start with /)");
    }
    if path == "/" {
        return Err("must name a file below /");
    }
    if path.contains('\0') {
        return Err("must not contain a NUL byte");
    }
    if path[1..]
        .split('/')
        .any(|component| matches!(component, "" | "." | ".."))
    {
        return Err("must not contain empty, \".\" or \"..\" components");
    }
    Ok(())
}

fn check_root(root: &str) -> Result<(), &'static str> {
    let path = Path::new(root);
    if !path.is_absolute() {
        return Err("must be absolute (start with /)");
    }
    if path
        .components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
    {
        return Err("must not contain \".\" or \"..\" components");
    }
    Ok(())
}

/// The file layout as read. Each field's type checks its own value, so that
/// serde_json reports the position of a bad value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[allow(dead_code)]
    format: FormatTag,
    #[allow(dead_code)]
    version: SupportedVersion,
    generator: String,
    #[serde(deserialize_with = "deserialize_root")]
    root: String,
    #[serde(deserialize_with = "deserialize_created")]
    created: SystemTime,
    #[serde(deserialize_with = "deserialize_entries")]
    entries: BTreeMap<String, Entry>,
}

struct FormatTag;

impl<'de> Deserialize<'de> for FormatTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tag = String::deserialize(deserializer)?;
        if tag != FORMAT {
            return Err(de::Error::custom(format!(
                "wrong format {tag:?}: this is not a Portcullis policy (expected {FORMAT:?})"
            )));
        }
        Ok(FormatTag)
    }
}

struct SupportedVersion;

impl<'de> Deserialize<'de> for SupportedVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = u64::deserialize(deserializer)?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            let supported: Vec<String> = SUPPORTED_VERSIONS.iter().map(u64::to_string).collect();
            return Err(de::Error::custom(format!(
                "unsupported version {version}; supported versions: {}",
                supported.join(", ")
            )));
        }
        Ok(SupportedVersion)
    }
}

fn deserialize_entry_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let path = String::deserialize(deserializer)?;
    check_entry_path(&path)
        .map_err(|reason| de::Error::custom(format!("invalid path {path:?}: {reason}")))?;
    Ok(path)
}

fn deserialize_root<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let root = String::deserialize(deserializer)?;
    check_root(&root)
        .map_err(|reason| de::Error::custom(format!("invalid root {root:?}: {reason}")))?;
    Ok(root)
}

fn deserialize_created<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_rfc3339(&text).map_err(|error| {
        de::Error::custom(format!(
            "invalid created time {text:?}: {error}; expected RFC 3339 UTC such as \
             \"2026-12-04T20:00:00Z\""
        ))
    })
}

fn deserialize_entries<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Entry>, D::Error> {
    struct EntriesVisitor;

    impl<'de> Visitor<'de> for EntriesVisitor {
        type Value = BTreeMap<String, Entry>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of entries")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut entries = BTreeMap::new();
            let mut indexes = BTreeMap::new();
            let mut index = 0;
            while let Some(entry) = seq.next_element_seed(UniqueEntry {
                indexes: &mut indexes,
                index,
            })? {
                entries.insert(entry.path.clone(), entry);
                index += 1;
            }
            Ok(entries)
        }
    }

    deserializer.deserialize_seq(EntriesVisitor)
}

/// Reads the entry at `index` and rejects it when an earlier entry has the
/// same path.
///
/// The check runs inside the entry's own map visitor rather than in the
/// array's, because serde_json stamps an error from a visitor with the
/// position where that value ends. Here that is the duplicate entry's closing
/// brace. From the array visitor it would be the end of the whole array.
struct UniqueEntry<'a> {
    /// Index of each path read so far.
    indexes: &'a mut BTreeMap<String, usize>,
    index: usize,
}

impl<'de> de::DeserializeSeed<'de> for UniqueEntry<'_> {
    type Value = Entry;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Entry, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for UniqueEntry<'_> {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an entry object")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
        let entry = Entry::deserialize(de::value::MapAccessDeserializer::new(map))?;
        if let Some(first) = self.indexes.get(&entry.path) {
            return Err(de::Error::custom(format!(
                "duplicate path {} in entries[{}]: entries[{first}] has the same path",
                entry.path, self.index
            )));
        }
        self.indexes.insert(entry.path.clone(), self.index);
        Ok(entry)
    }
}
