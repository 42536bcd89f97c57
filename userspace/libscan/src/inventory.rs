//! The library inventory: walks the configured directories of a root file
//! system, reads each ELF file once, and names every library with the
//! versions each source gives for it.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::cache::{FileAnalysis, FileCache, FileStamp};
use crate::catalogue::{self, EmbeddedVersion};
use crate::elf::{self, ElfKind};
use crate::pkgdb::{Package, PackageIndex, PackageManager};

/// Directories scanned when the configuration names none, relative to the
/// root. The /usr ones come first so a merged-/usr system reports the
/// /usr path of a file that /lib also reaches.
pub const DEFAULT_DIRECTORIES: &[&str] = &[
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/lib",
    "/usr/local/bin",
    "/lib",
    "/lib64",
    "/bin",
    "/sbin",
];

/// Files larger than this are skipped: firmware blobs and data files, not
/// libraries. 256 MiB is well above the largest library in a Debian
/// bookworm base system (libicudata, about 30 MiB).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 << 20;

/// Bytes read at a time when searching a file for version strings, which
/// bounds the scan's memory whatever the file's size.
const SCAN_CHUNK: usize = 1 << 20;

/// Programs the inventory lists besides shared libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Executables {
    /// No programs.
    None,
    /// Programs that are or embed a well-known product (busybox, sshd,
    /// dropbear, a statically linked OpenSSL).
    #[default]
    Known,
    /// Every ELF program.
    All,
}

/// Scan settings.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Root of the file system to scan: `/` on the device, an unpacked image
    /// elsewhere.
    pub root: PathBuf,
    /// Directories inside the root.
    pub directories: Vec<String>,
    pub executables: Executables,
    pub max_file_size: u64,
    /// When set, the scan stops early with an error, so a daemon can shut
    /// down in the middle of a scan.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl ScanOptions {
    /// Options with the default directories under `root`.
    pub fn new(root: impl Into<PathBuf>) -> ScanOptions {
        ScanOptions {
            root: root.into(),
            directories: DEFAULT_DIRECTORIES.iter().map(|s| s.to_string()).collect(),
            executables: Executables::default(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            cancel: None,
        }
    }
}

/// Origin of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Dpkg,
    Opkg,
    Apk,
    /// A version string compiled into the binary.
    BinaryString,
    /// The digits after `.so.` in the file name. For many libraries this is
    /// the ABI version (libexpat.so.1.8.10 is expat 2.5.0), not the release.
    FileName,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dpkg => "dpkg",
            Source::Opkg => "opkg",
            Source::Apk => "apk",
            Source::BinaryString => "binary-string",
            Source::FileName => "file-name",
        }
    }

    fn from_manager(manager: PackageManager) -> Source {
        match manager {
            PackageManager::Dpkg => Source::Dpkg,
            PackageManager::Opkg => Source::Opkg,
            PackageManager::Apk => Source::Apk,
        }
    }

    pub fn is_package_database(self) -> bool {
        matches!(self, Source::Dpkg | Source::Opkg | Source::Apk)
    }
}

/// One source's statement of a library's name and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSource {
    pub source: Source,
    /// Package name for a package database, product for a binary string,
    /// file-name stem for a file name.
    pub name: String,
    pub version: String,
    /// Debian source package or Alpine origin.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub package_source: Option<String>,
    /// The matched text of a binary string.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub evidence: Option<String>,
}

/// One library (or program) found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    /// Path on the scanned system, without the root prefix.
    pub path: String,
    pub soname: Option<String>,
    pub architecture: String,
    pub kind: ElfKind,
    /// Product name for well-known libraries, else the SONAME or file-name
    /// stem (`libgcrypt`).
    pub name: String,
    /// The winning version: package database first, then a binary string,
    /// then the file name. `None` means unknown, not unaffected.
    pub version: Option<String>,
    pub version_from: Option<Source>,
    pub sources: Vec<VersionSource>,
}

impl Library {
    /// The source a version of this kind came from, if the library has one.
    pub fn source(&self, kind: Source) -> Option<&VersionSource> {
        self.sources.iter().find(|source| source.source == kind)
    }
}

/// A file, or a package database line, that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

/// The scanned system's distribution, from its os-release file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, lowercase: "debian", "alpine", "openwrt".
    pub id: String,
    /// `VERSION_ID`: "12", "3.18.4". Debian testing has none.
    pub version_id: Option<String>,
}

impl OsRelease {
    /// Reads /etc/os-release, or /usr/lib/os-release, under `root`.
    pub fn read(root: &Path) -> Option<OsRelease> {
        let text = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|path| fs::read_to_string(resolve_in_root(root, path)?).ok())?;
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(|value| value.trim().trim_matches(['"', '\'']).to_string())
        };
        Some(OsRelease {
            id: value("ID")?.to_ascii_lowercase(),
            version_id: value("VERSION_ID"),
        })
    }
}

/// The result of one inventory scan.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub root: String,
    pub os_release: Option<OsRelease>,
    pub package_databases: Vec<String>,
    pub libraries: Vec<Library>,
    pub skipped: Vec<SkippedFile>,
    /// ELF files looked at, and how many of them had to be parsed because
    /// the cache had no entry for their current inode version.
    pub files_examined: usize,
    pub files_parsed: usize,
}

/// Scans the file system described by `options`, reusing and updating
/// `cache` so unchanged files are not parsed again.
pub fn scan(options: &ScanOptions, cache: &mut FileCache) -> anyhow::Result<Inventory> {
    let packages = PackageIndex::load(&options.root)?;
    let mut inventory = Inventory {
        root: options.root.display().to_string(),
        package_databases: packages.databases.clone(),
        os_release: OsRelease::read(&options.root),
        ..Inventory::default()
    };
    for (path, problem) in &packages.problems {
        inventory.skipped.push(SkippedFile {
            path: path.clone(),
            reason: problem.clone(),
        });
    }

    let mut seen = HashSet::new();
    let mut live_paths = HashSet::new();
    for directory in &options.directories {
        let Some(start) = resolve_in_root(&options.root, directory).filter(|path| path.is_dir())
        else {
            continue;
        };
        for entry in walkdir::WalkDir::new(&start)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    let path = error
                        .path()
                        .map(|p| display_in_root(&options.root, p))
                        .unwrap_or_default();
                    inventory.skipped.push(SkippedFile {
                        path,
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            if options
                .cancel
                .as_ref()
                .is_some_and(|cancel| cancel.load(Ordering::Relaxed))
            {
                anyhow::bail!("scan of {} cancelled", options.root.display());
            }
            if !entry.file_type().is_file() {
                continue;
            }
            let metadata = match entry.metadata() {
                Ok(metadata) => metadata,
                Err(error) => {
                    let path = display_in_root(&options.root, entry.path());
                    inventory.skipped.push(SkippedFile {
                        path,
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            // A file reached twice (merged /usr, hard links) is listed once.
            if !seen.insert((metadata.dev(), metadata.ino()))
                || metadata.len() > options.max_file_size
            {
                continue;
            }
            examine_file(
                options,
                &packages,
                cache,
                entry.path(),
                &metadata,
                &mut inventory,
            );
            live_paths.insert(entry.path().to_path_buf());
        }
    }
    cache.retain_paths(&live_paths);
    Ok(inventory)
}

fn examine_file(
    options: &ScanOptions,
    packages: &PackageIndex,
    cache: &mut FileCache,
    path: &Path,
    metadata: &fs::Metadata,
    inventory: &mut Inventory,
) {
    let shown_path = display_in_root(&options.root, path);
    let stamp = FileStamp::of(metadata);
    let analysis = match cache.get(path, &stamp) {
        Some(analysis) => analysis.clone(),
        None => match analyse_file(path) {
            Ok(analysis) => {
                if analysis.elf.is_some() {
                    inventory.files_parsed += 1;
                }
                cache.insert(path.to_path_buf(), stamp, analysis.clone());
                analysis
            }
            Err(reason) => {
                inventory.skipped.push(SkippedFile {
                    path: shown_path,
                    reason,
                });
                return;
            }
        },
    };
    let Some(info) = analysis.elf else { return };
    inventory.files_examined += 1;

    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let owner = packages.owner((metadata.dev(), metadata.ino()));
    let libraries = describe_file(
        &shown_path,
        &file_name,
        &info,
        owner,
        &analysis.embedded,
        options.executables,
    );
    inventory.libraries.extend(libraries);
}

/// Reads a file and, when it is ELF, its header facts and embedded version
/// strings. A file that is not ELF yields an analysis without ELF facts, so
/// the cache remembers not to read it again.
fn analyse_file(path: &Path) -> Result<FileAnalysis, String> {
    let mut file = File::open(path).map_err(|error| format!("failed to open: {error}"))?;
    let mut magic = [0u8; 4];
    let read = file
        .read(&mut magic)
        .map_err(|error| format!("failed to read: {error}"))?;
    if !elf::is_elf(&magic[..read]) {
        return Ok(FileAnalysis {
            elf: None,
            embedded: Vec::new(),
        });
    }

    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info = {
        // ReadCache reads the headers and the dynamic section on demand,
        // not the whole file.
        let cache = object::ReadCache::new(&file);
        elf::parse(&cache, &file_name).map_err(|error| format!("invalid ELF file: {error}"))?
    };

    file.seek(SeekFrom::Start(0))
        .map_err(|error| format!("failed to read: {error}"))?;
    let mut scanner = catalogue::VersionScanner::new();
    let mut chunk = vec![0u8; SCAN_CHUNK];
    loop {
        let read = file
            .read(&mut chunk)
            .map_err(|error| format!("failed to read: {error}"))?;
        if read == 0 {
            break;
        }
        scanner.feed(&chunk[..read]);
    }
    let embedded = scanner.finish();
    Ok(FileAnalysis {
        elf: Some(info),
        embedded,
    })
}

/// Turns the facts about one file into inventory entries: one for the
/// file's own product, and one for each other product whose version string
/// it embeds (a statically linked copy).
fn describe_file(
    path: &str,
    file_name: &str,
    info: &elf::ElfInfo,
    owner: Option<&Package>,
    embedded: &[EmbeddedVersion],
    executables: Executables,
) -> Vec<Library> {
    if info.kind == ElfKind::Other {
        return Vec::new();
    }
    // A file whose name is unknown is still the product when its package
    // comes from that product's source and it carries the product's
    // version string. Either alone is too weak: glibc's source package also
    // ships gconv modules, and libssh carries OpenSSL's header version.
    let packaged_product = owner
        .and_then(|package| catalogue::by_name(&package.source))
        .map(|product| product.name)
        .filter(|name| embedded.iter().any(|found| found.product == *name));
    let own_product = catalogue::by_file_name(file_name)
        .or_else(|| info.soname.as_deref().and_then(catalogue::by_file_name))
        .map(|product| product.name)
        .or(packaged_product);
    // A file that loads a product at run time often carries that product's
    // header version as a constant (libssh logs OPENSSL_VERSION_TEXT). The
    // code in use is the loaded library's, so such strings are dropped.
    let embedded: Vec<&EmbeddedVersion> = embedded
        .iter()
        .filter(|found| {
            own_product == Some(found.product.as_str()) || !loads_product(info, &found.product)
        })
        .collect();

    // Shared libraries are always listed. A program is listed when it is a
    // known product, or when all programs are requested. A program that only
    // embeds known products is listed through those products.
    let list_own = match info.kind {
        ElfKind::SharedLibrary => true,
        _ => {
            executables == Executables::All
                || (executables == Executables::Known && own_product.is_some())
        }
    };
    if executables == Executables::None && info.kind != ElfKind::SharedLibrary {
        return Vec::new();
    }

    let own_name = own_product
        .map(str::to_string)
        .unwrap_or_else(|| name_stem(info.soname.as_deref().unwrap_or(file_name)));

    let mut own = Library {
        path: path.to_string(),
        soname: info.soname.clone(),
        architecture: info.architecture.clone(),
        kind: info.kind,
        name: own_name.clone(),
        version: None,
        version_from: None,
        sources: Vec::new(),
    };
    if let Some(package) = owner {
        own.sources.push(VersionSource {
            source: Source::from_manager(package.manager),
            name: package.name.clone(),
            version: package.version.clone(),
            package_source: Some(package.source.clone()),
            evidence: None,
        });
    }

    let mut others = Vec::new();
    for found in embedded {
        let source = VersionSource {
            source: Source::BinaryString,
            name: found.product.clone(),
            version: found.version.clone(),
            package_source: None,
            evidence: Some(found.evidence.clone()),
        };
        if found.product == own_name {
            own.sources.push(source);
        } else {
            let mut other = own.clone();
            other.name = found.product.clone();
            other.sources = vec![source];
            others.push(other);
        }
    }
    if let Some((stem, version)) = file_name_version(file_name) {
        own.sources.push(VersionSource {
            source: Source::FileName,
            name: stem,
            version,
            package_source: None,
            evidence: None,
        });
    }

    let mut libraries = Vec::new();
    if list_own {
        libraries.push(own);
    }
    libraries.extend(others);
    for library in &mut libraries {
        choose_version(library);
    }
    libraries
}

/// Returns true when the file names a library of `product` in DT_NEEDED.
fn loads_product(info: &elf::ElfInfo, product: &str) -> bool {
    info.needed
        .iter()
        .any(|needed| catalogue::by_file_name(needed).is_some_and(|found| found.name == product))
}

/// Picks the winning version: package database, then binary string, then
/// file name. A package version is the one distribution advisories use and
/// the one an operator can act on.
fn choose_version(library: &mut Library) {
    let winner = library
        .sources
        .iter()
        .find(|source| source.source.is_package_database())
        .or_else(|| library.source(Source::BinaryString))
        .or_else(|| library.source(Source::FileName))
        .map(|source| (source.version.clone(), source.source));
    library.version = winner.as_ref().map(|(version, _)| version.clone());
    library.version_from = winner.map(|(_, source)| source);
}

/// `libgcrypt.so.20` → `libgcrypt`.
fn name_stem(file_name: &str) -> String {
    file_name
        .split(".so")
        .next()
        .unwrap_or(file_name)
        .to_string()
}

/// Reads the version in a library file name: `libz.so.1.2.13` → 1.2.13 and
/// `libdb-5.3.so` → 5.3. A single number (`libssl.so.3`) is the ABI major,
/// not a version, and yields nothing.
pub fn file_name_version(file_name: &str) -> Option<(String, String)> {
    static PATTERNS: OnceLock<(Regex, Regex)> = OnceLock::new();
    let (after_so, before_so) = PATTERNS.get_or_init(|| {
        (
            Regex::new(r"^(.+?)\.so\.(\d+(?:\.\d+)+)$").expect("pattern compiles"),
            Regex::new(r"^(.+?)-(\d+(?:\.\d+)+)\.so$").expect("pattern compiles"),
        )
    });
    let captures = after_so
        .captures(file_name)
        .or_else(|| before_so.captures(file_name))?;
    Some((captures[1].to_string(), captures[2].to_string()))
}

/// Returns where a symlink at `relative` points, relative to the root: an
/// absolute target starts at the root, a relative one at the link's
/// directory. `..` does not climb above the root.
fn link_target_in_root(relative: &Path, target: &Path) -> Option<PathBuf> {
    let joined = if target.is_absolute() {
        target.strip_prefix("/").ok()?.to_path_buf()
    } else {
        relative.parent().unwrap_or(Path::new("")).join(target)
    };
    let mut normal = PathBuf::new();
    for component in joined.components() {
        match component {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::Normal(part) => normal.push(part),
            _ => {}
        }
    }
    Some(normal)
}

/// Resolves a path inside the root, following a symlink at its last
/// component inside the root too (`/lib` → `usr/lib`), so an absolute link
/// target in an unpacked image does not lead out to the host.
fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut relative = PathBuf::from(path.trim_start_matches('/'));
    for _ in 0..40 {
        let path = root.join(&relative);
        let metadata = fs::symlink_metadata(&path).ok()?;
        if !metadata.file_type().is_symlink() {
            return Some(path);
        }
        relative = link_target_in_root(&relative, &fs::read_link(&path).ok()?)?;
    }
    None
}

fn display_in_root(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(relative) => format!("/{}", relative.display()),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_through_symlink() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("usr/lib/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", root.path().join("etc/os-release"))
            .unwrap();

        let release = OsRelease::read(root.path()).unwrap();
        assert_eq!(release.id, "debian");
        assert_eq!(release.version_id.as_deref(), Some("12"));
    }

    #[test]
    fn links_stay_inside_root() {
        let link = |relative: &str, target: &str| {
            link_target_in_root(Path::new(relative), Path::new(target)).unwrap()
        };
        assert_eq!(link("lib", "usr/lib"), PathBuf::from("usr/lib"));
        assert_eq!(
            link("etc/os-release", "../usr/lib/os-release"),
            PathBuf::from("usr/lib/os-release")
        );
        assert_eq!(link("lib", "/usr/lib"), PathBuf::from("usr/lib"));
        assert_eq!(link("lib", "../../../../usr/lib"), PathBuf::from("usr/lib"));
    }

    #[test]
    fn versions_from_file_names() {
        assert_eq!(
            file_name_version("libz.so.1.2.13"),
            Some(("libz".into(), "1.2.13".into()))
        );
        assert_eq!(
            file_name_version("libdb-5.3.so"),
            Some(("libdb".into(), "5.3".into()))
        );
        assert_eq!(file_name_version("libssl.so.3"), None);
        assert_eq!(file_name_version("busybox"), None);
    }

    fn info(kind: ElfKind, soname: Option<&str>) -> elf::ElfInfo {
        elf::ElfInfo {
            kind,
            soname: soname.map(str::to_string),
            architecture: "x86_64".into(),
            needed: Vec::new(),
        }
    }

    fn openssl_string() -> EmbeddedVersion {
        EmbeddedVersion {
            product: "openssl".into(),
            version: "3.0.22".into(),
            evidence: "OpenSSL 3.0.22 1 Jul 2025".into(),
        }
    }

    #[test]
    fn package_source_confirms_product() {
        let package = Package {
            manager: PackageManager::Dpkg,
            name: "libexpat1".into(),
            version: "2.5.0-1+deb12u2".into(),
            source: "expat".into(),
            architecture: None,
        };
        let embedded = vec![EmbeddedVersion {
            product: "expat".into(),
            version: "2.5.0".into(),
            evidence: "expat_2.5.0".into(),
        }];
        let library = info(ElfKind::SharedLibrary, Some("libexpat-variant.so.1"));
        let libraries = describe_file(
            "/usr/lib/libexpat-variant.so.1",
            "libexpat-variant.so.1",
            &library,
            Some(&package),
            &embedded,
            Executables::Known,
        );
        assert_eq!(libraries.len(), 1);
        assert_eq!(libraries[0].name, "expat");
        assert_eq!(libraries[0].version_from, Some(Source::Dpkg));

        // Without the version string, a module of the same package keeps its own name.
        let libraries = describe_file(
            "/usr/lib/gconv/BIG5.so",
            "BIG5.so",
            &info(ElfKind::SharedLibrary, None),
            Some(&Package {
                source: "glibc".into(),
                ..package
            }),
            &[],
            Executables::Known,
        );
        assert_eq!(libraries[0].name, "BIG5");
    }

    #[test]
    fn header_version_of_loaded_library_dropped() {
        let mut libssh = info(ElfKind::SharedLibrary, Some("libssh.so.4"));
        libssh.needed = vec!["libcrypto.so.3".into(), "libc.so.6".into()];
        let libraries = describe_file(
            "/usr/lib/libssh.so.4.9.6",
            "libssh.so.4.9.6",
            &libssh,
            None,
            &[openssl_string()],
            Executables::Known,
        );
        assert_eq!(libraries.len(), 1);
        assert_eq!(libraries[0].name, "libssh");
        assert_eq!(libraries[0].source(Source::BinaryString), None);
        assert_eq!(libraries[0].version.as_deref(), Some("4.9.6"));
    }

    #[test]
    fn program_listed_through_embedded_products() {
        let node = info(ElfKind::Executable, None);
        let libraries = describe_file(
            "/usr/bin/node",
            "node",
            &node,
            None,
            &[openssl_string()],
            Executables::Known,
        );
        let names: Vec<&str> = libraries.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["openssl"]);
        assert_eq!(libraries[0].version.as_deref(), Some("3.0.22"));
        assert_eq!(libraries[0].path, "/usr/bin/node");

        let libraries = describe_file(
            "/usr/bin/node",
            "node",
            &node,
            None,
            &[openssl_string()],
            Executables::All,
        );
        let names: Vec<&str> = libraries.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["node", "openssl"]);
    }

    #[test]
    fn package_version_wins() {
        let package = Package {
            manager: PackageManager::Dpkg,
            name: "zlib1g".into(),
            version: "1:1.2.13.dfsg-1".into(),
            source: "zlib".into(),
            architecture: None,
        };
        let embedded = vec![EmbeddedVersion {
            product: "zlib".into(),
            version: "1.2.13".into(),
            evidence: "deflate 1.2.13 Copyright".into(),
        }];
        let libraries = describe_file(
            "/usr/lib/libz.so.1.2.13",
            "libz.so.1.2.13",
            &info(ElfKind::SharedLibrary, Some("libz.so.1")),
            Some(&package),
            &embedded,
            Executables::Known,
        );
        assert_eq!(libraries.len(), 1);
        let zlib = &libraries[0];
        assert_eq!(zlib.name, "zlib");
        assert_eq!(zlib.version.as_deref(), Some("1:1.2.13.dfsg-1"));
        assert_eq!(zlib.version_from, Some(Source::Dpkg));
        let kinds: Vec<Source> = zlib.sources.iter().map(|s| s.source).collect();
        assert_eq!(
            kinds,
            vec![Source::Dpkg, Source::BinaryString, Source::FileName]
        );
    }

    #[test]
    fn static_copy_listed_separately() {
        let embedded = vec![
            EmbeddedVersion {
                product: "dropbear".into(),
                version: "2019.78".into(),
                evidence: String::new(),
            },
            EmbeddedVersion {
                product: "zlib".into(),
                version: "1.2.11".into(),
                evidence: String::new(),
            },
        ];
        let libraries = describe_file(
            "/usr/sbin/dropbear",
            "dropbear",
            &info(ElfKind::Executable, None),
            None,
            &embedded,
            Executables::Known,
        );
        let names: Vec<&str> = libraries.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["dropbear", "zlib"]);
        assert_eq!(libraries[1].version.as_deref(), Some("1.2.11"));
        assert_eq!(libraries[1].version_from, Some(Source::BinaryString));
    }

    #[test]
    fn unknown_programs_follow_setting() {
        let program = info(ElfKind::Executable, None);
        assert!(
            describe_file("/usr/bin/ls", "ls", &program, None, &[], Executables::Known).is_empty()
        );
        assert_eq!(
            describe_file("/usr/bin/ls", "ls", &program, None, &[], Executables::All).len(),
            1
        );
        assert!(describe_file(
            "/bin/busybox",
            "busybox",
            &program,
            None,
            &[],
            Executables::None
        )
        .is_empty());
    }

    #[test]
    fn library_without_sources_has_unknown_version() {
        let libraries = describe_file(
            "/usr/lib/libssl.so.3",
            "libssl.so.3",
            &info(ElfKind::SharedLibrary, Some("libssl.so.3")),
            None,
            &[],
            Executables::Known,
        );
        assert_eq!(libraries[0].name, "openssl");
        assert_eq!(libraries[0].version, None);
        assert_eq!(libraries[0].version_from, None);
    }
}
