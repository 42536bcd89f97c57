//! Vulnerability feeds the operator supplies, read into one advisory model:
//! OSV JSON (one file per advisory, or a zip of them), the Alpine security
//! database (YAML or its JSON twin), and CVE JSON 5 records.
//!
//! A feed file that fails to parse is rejected whole with its path and the
//! position of the error; [`FeedStore`] then keeps the last good copy of
//! that file in use.

mod alpine;
mod cve5;
mod osv;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cache::FileStamp;
use crate::version::Ecosystem;

/// The format a feed file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedFormat {
    Osv,
    AlpineSecdb,
    Cve5,
}

impl FeedFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::Osv => "OSV",
            FeedFormat::AlpineSecdb => "Alpine secdb",
            FeedFormat::Cve5 => "CVE JSON 5",
        }
    }
}

/// Package or product an affected entry applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    /// A distribution's package, named as its advisories name it (Debian
    /// source package, Alpine origin), with versions in its ecosystem.
    Package {
        ecosystem: Ecosystem,
        distribution: String,
        name: String,
    },
    /// An upstream product with upstream release versions.
    Product { name: String },
}

/// One boundary of a range, in OSV's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// First affected version; "0" means every earlier version.
    Introduced(String),
    /// First version with the fix.
    Fixed(String),
    /// Last affected version; later ones are not affected.
    LastAffected(String),
    /// Upper bound beyond which the range makes no statement.
    Limit(String),
}

/// Alpine secdb fixes for one id. A package version is affected while it is
/// below the highest fix, unless a fix for its own upstream release (a
/// backport to an older branch) is at or below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BranchFixes {
    pub fixed: Vec<String>,
}

/// Versions an affected entry covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Versions {
    /// OSV-style events; CVE JSON 5 ranges are turned into these.
    Range { events: Vec<Event> },
    /// Exactly these versions.
    Exact { versions: Vec<String> },
    /// Alpine secdb fixed versions.
    Fixes(BranchFixes),
    /// The record gives no range a program can evaluate. The reason names
    /// what it gave instead.
    NeedsReview { reason: String },
}

/// One affected entry of an advisory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affected {
    pub target: Target,
    pub versions: Vec<Versions>,
    /// Ranges stated as not affected (CVE JSON 5 `unaffected` entries).
    pub unaffected: Vec<Versions>,
}

/// One advisory from any feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub format: FeedFormat,
    /// File, and zip entry where there is one, the advisory was read from.
    pub origin: String,
    pub summary: Option<String>,
    pub severity: Option<String>,
    pub affected: Vec<Affected>,
    /// For records with no structured product at all: the well-known
    /// products their description names, to be reviewed by hand.
    pub mentioned_products: Vec<String>,
}

/// A feed file that could not be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedError {
    pub file: String,
    /// "line 3 column 14", "entry CVE-1.json line 2 column 1", or empty.
    pub position: String,
    pub message: String,
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position.is_empty() {
            write!(f, "invalid feed {}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "invalid feed {} at {}: {}",
                self.file, self.position, self.message
            )
        }
    }
}

impl std::error::Error for FeedError {}

impl FeedError {
    fn new(file: &Path, position: impl Into<String>, message: impl Into<String>) -> FeedError {
        FeedError {
            file: file.display().to_string(),
            position: position.into(),
            message: message.into(),
        }
    }

    fn from_json(file: &Path, prefix: &str, error: &serde_json::Error) -> FeedError {
        let position = format!("{prefix}line {} column {}", error.line(), error.column());
        FeedError::new(file, position, json_message(error))
    }
}

/// serde_json's message without its trailing " at line N column M", which
/// the position already carries.
fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_string(),
        None => text,
    }
}

/// Lists the feed files a path names: the file itself, or every `.json`,
/// `.yaml`, `.yml` and `.zip` file under a directory, in name order.
pub fn feed_files(path: &Path) -> Result<Vec<PathBuf>, FeedError> {
    let metadata = fs::metadata(path)
        .map_err(|error| FeedError::new(path, "", format!("failed to read: {error}")))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry =
            entry.map_err(|error| FeedError::new(path, "", format!("failed to list: {error}")))?;
        let name = entry.file_name().to_string_lossy();
        let known = [".json", ".yaml", ".yml", ".zip"]
            .iter()
            .any(|extension| name.ends_with(extension));
        if entry.file_type().is_file() && known {
            files.push(entry.path().to_path_buf());
        }
    }
    Ok(files)
}

/// Reads every advisory in one feed file.
pub fn load_file(path: &Path) -> Result<Vec<Advisory>, FeedError> {
    let read_error =
        |error: std::io::Error| FeedError::new(path, "", format!("failed to read: {error}"));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let origin = path.display().to_string();

    // A distribution's OSV zip runs to tens of megabytes, so it is read
    // entry by entry instead of whole.
    if name.ends_with(".zip") {
        return load_zip(path, fs::File::open(path).map_err(read_error)?);
    }
    let data = fs::read(path).map_err(read_error)?;
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        return alpine::parse_yaml(&data, &origin)
            .map_err(|(position, message)| FeedError::new(path, position, message));
    }
    load_json(path, &data, &origin, "")
}

/// Parses one JSON document, telling the format from its top-level keys.
fn load_json(
    path: &Path,
    data: &[u8],
    origin: &str,
    prefix: &str,
) -> Result<Vec<Advisory>, FeedError> {
    let value: serde_json::Value =
        serde_json::from_slice(data).map_err(|error| FeedError::from_json(path, prefix, &error))?;
    let object = value.as_object().ok_or_else(|| {
        FeedError::new(
            path,
            format!("{prefix}line 1 column 1"),
            "expected a JSON object",
        )
    })?;

    let result = if object.contains_key("cveMetadata")
        || object.get("dataType").and_then(|v| v.as_str()) == Some("CVE_RECORD")
    {
        cve5::parse(data, origin).map(|advisory| advisory.into_iter().collect())
    } else if object.contains_key("packages")
        && (object.contains_key("distroversion") || object.contains_key("reponame"))
    {
        alpine::parse_json(data, origin)
    } else if object.contains_key("id")
        && (object.contains_key("affected") || object.contains_key("modified"))
    {
        osv::parse(data, origin).map(|advisory| vec![advisory])
    } else {
        return Err(FeedError::new(
            path,
            prefix.trim_end_matches(' ').to_string(),
            "not a known feed format: expected an OSV record (id, affected), a CVE JSON 5 record (cveMetadata) or an Alpine secdb (packages)",
        ));
    };
    result.map_err(|error| FeedError::from_json(path, prefix, &error))
}

fn load_zip(path: &Path, file: fs::File) -> Result<Vec<Advisory>, FeedError> {
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|error| FeedError::new(path, "", format!("invalid zip archive: {error}")))?;
    let mut advisories = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|error| {
            FeedError::new(
                path,
                format!("entry {index}"),
                format!("invalid zip entry: {error}"),
            )
        })?;
        if !entry.is_file() || !entry.name().ends_with(".json") {
            continue;
        }
        let name = entry.name().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|error| {
            FeedError::new(
                path,
                format!("entry {name}"),
                format!("failed to decompress: {error}"),
            )
        })?;
        let origin = format!("{}!{name}", path.display());
        advisories.extend(load_json(path, &bytes, &origin, &format!("entry {name} "))?);
    }
    Ok(advisories)
}

/// Known products a description names as a whole word, for records that
/// name no product in structured form.
fn products_in_text(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for product in crate::catalogue::PRODUCTS {
        let names = std::iter::once(product.name).chain(product.aliases.iter().copied());
        let named = names.into_iter().any(|name| {
            lower.match_indices(name).any(|(start, matched)| {
                let before = lower[..start].chars().next_back();
                let after = lower[start + matched.len()..].chars().next();
                !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
            })
        });
        if named {
            found.push(product.name.to_string());
        }
    }
    found
}

/// A loaded feed file and the inode version it was read at.
struct LoadedFeed {
    stamp: FileStamp,
    advisories: Vec<Advisory>,
}

/// The advisories of a set of feed files, reloaded when a file changes.
/// When a changed file fails to parse, its last good copy stays in use and
/// the error is returned to the caller to report.
#[derive(Default)]
pub struct FeedStore {
    files: BTreeMap<PathBuf, LoadedFeed>,
}

impl FeedStore {
    pub fn new() -> FeedStore {
        FeedStore::default()
    }

    /// Reloads the feed files under `paths` that changed since the last call.
    /// Returns the files that failed; files that vanished are dropped.
    pub fn refresh(&mut self, paths: &[PathBuf]) -> Vec<FeedError> {
        let mut errors = Vec::new();
        let mut present = std::collections::BTreeSet::new();
        let mut failed_listings = Vec::new();
        for path in paths {
            match feed_files(path) {
                Ok(files) => present.extend(files),
                Err(error) => {
                    errors.push(error);
                    failed_listings.push(path.clone());
                }
            }
        }

        for file in &present {
            let stamp = match fs::metadata(file) {
                Ok(metadata) => FileStamp::of(&metadata),
                Err(error) => {
                    errors.push(FeedError::new(file, "", format!("failed to read: {error}")));
                    continue;
                }
            };
            if self
                .files
                .get(file)
                .is_some_and(|loaded| loaded.stamp == stamp)
            {
                continue;
            }
            match load_file(file) {
                Ok(advisories) => {
                    self.files
                        .insert(file.clone(), LoadedFeed { stamp, advisories });
                }
                Err(error) => errors.push(error),
            }
        }

        // A file gone from a listing that worked was removed by the
        // operator; one under a listing that failed may still be there.
        self.files.retain(|file, _| {
            present.contains(file) || failed_listings.iter().any(|path| file.starts_with(path))
        });
        errors
    }

    /// Returns every advisory currently in use.
    pub fn advisories(&self) -> impl Iterator<Item = &Advisory> {
        self.files
            .values()
            .flat_map(|loaded| loaded.advisories.iter())
    }

    /// Feed files in use and how many advisories each gave.
    pub fn summary(&self) -> Vec<(String, usize)> {
        self.files
            .iter()
            .map(|(file, loaded)| (file.display().to_string(), loaded.advisories.len()))
            .collect()
    }
}

/// Loads every feed file under `paths` at once and fails on the first
/// invalid one, as a one-shot command wants. A directory without feed files
/// is an error too, because a scan against no advisories would report every
/// library as clean.
pub fn load_all(paths: &[PathBuf]) -> Result<FeedStore, FeedError> {
    let mut store = FeedStore::new();
    let mut errors = store.refresh(paths);
    if !errors.is_empty() {
        return Err(errors.remove(0));
    }
    for path in paths {
        if !store.files.keys().any(|file| file.starts_with(path)) {
            return Err(FeedError::new(
                path,
                "",
                "no feed files (.json, .yaml, .yml, .zip) found",
            ));
        }
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_feed_directory_rejected() {
        let directory = tempfile::tempdir().unwrap();
        fs::write(directory.path().join("README.md"), "not a feed").unwrap();
        let error = load_all(&[directory.path().to_path_buf()])
            .err()
            .expect("an empty directory is an error");
        assert_eq!(error.file, directory.path().display().to_string());
        assert!(error.message.starts_with("no feed files"), "{error}");
    }

    #[test]
    fn products_named_as_words() {
        assert_eq!(
            products_in_text("zlib through 1.2.12 has a heap-based buffer over-read"),
            vec!["zlib"]
        );
        assert_eq!(
            products_in_text("libexpat before 2.4.9 has a use-after-free"),
            vec!["expat"]
        );
        assert_eq!(
            products_in_text("SQLite through 3.40.0, when relying on --safe"),
            vec!["sqlite"]
        );
        assert!(products_in_text("the libzstd decoder").is_empty());
    }
}
