//! Installed-package databases: dpkg (Debian), opkg (OpenWrt) and apk
//! (Alpine). Each maps the files a package installed to its name and
//! version, so a library found on disk can be traced to its package.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::version::Ecosystem;

/// The package manager a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Dpkg,
    Opkg,
    Apk,
}

impl PackageManager {
    /// The version ordering the package manager uses.
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            // opkg compares versions with dpkg's algorithm.
            PackageManager::Dpkg | PackageManager::Opkg => Ecosystem::Debian,
            PackageManager::Apk => Ecosystem::Alpine,
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub manager: PackageManager,
    pub name: String,
    pub version: String,
    /// Debian source package or Alpine origin, the name distribution
    /// advisories use; equal to `name` when the database gives none.
    pub source: String,
    pub architecture: Option<String>,
}

/// The file identity used to join package file lists to files on disk, so
/// `/lib/x/libc.so.6` in a list and `/usr/lib/x/libc.so.6` found through a
/// merged-/usr symlink are the same file.
pub type FileId = (u64, u64);

/// Installed packages of one root file system, and which file belongs to
/// which package.
#[derive(Debug, Default)]
pub struct PackageIndex {
    pub packages: Vec<Package>,
    files: HashMap<FileId, usize>,
    /// Databases read, for the report: `dpkg: /var/lib/dpkg/status`.
    pub databases: Vec<String>,
    /// Malformed lines and entries, as (database path, "line N: ..."). The
    /// rest of the database is still used.
    pub problems: Vec<(String, String)>,
}

impl PackageIndex {
    /// Returns the package that installed the file with this identity.
    pub fn owner(&self, id: FileId) -> Option<&Package> {
        self.files.get(&id).map(|&index| &self.packages[index])
    }

    /// Reads every package database present under `root`. A database that
    /// is absent is skipped; one that exists but cannot be read is an error.
    pub fn load(root: &Path) -> anyhow::Result<PackageIndex> {
        let mut index = PackageIndex::default();
        index.load_dpkg_like(
            root,
            PackageManager::Dpkg,
            "var/lib/dpkg/status",
            "var/lib/dpkg/info",
        )?;
        for (status, info) in [
            ("usr/lib/opkg/status", "usr/lib/opkg/info"),
            ("var/lib/opkg/status", "var/lib/opkg/info"),
        ] {
            index.load_dpkg_like(root, PackageManager::Opkg, status, info)?;
        }
        index.load_apk(root, "lib/apk/db/installed")?;
        Ok(index)
    }

    fn add_file(&mut self, root: &Path, listed: &str, package: usize) {
        let path = join_in_root(root, listed);
        // A listed path that is gone or a symlink is not a file we report.
        if let Ok(metadata) = fs::symlink_metadata(&path) {
            if metadata.file_type().is_file() {
                self.files
                    .entry((metadata.dev(), metadata.ino()))
                    .or_insert(package);
            }
        }
    }

    fn load_dpkg_like(
        &mut self,
        root: &Path,
        manager: PackageManager,
        status: &str,
        info: &str,
    ) -> anyhow::Result<()> {
        let status_path = root.join(status);
        let Some(text) = read_optional(&status_path)? else {
            return Ok(());
        };
        self.databases
            .push(format!("{}: /{status}", manager_name(manager)));

        let (paragraphs, problems) = parse_control_paragraphs(&text);
        for problem in problems {
            self.problems.push((format!("/{status}"), problem));
        }
        for paragraph in paragraphs {
            let field = |name: &str| {
                paragraph
                    .fields
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value.as_str())
            };
            let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
                let problem = format!(
                    "line {}: package entry without Package or Version field",
                    paragraph.line
                );
                self.problems.push((format!("/{status}"), problem));
                continue;
            };
            // "install ok installed" (dpkg), "install user installed" (opkg).
            let installed = field("Status")
                .is_some_and(|status| status.split_whitespace().nth(2) == Some("installed"));
            if !installed {
                continue;
            }
            // "Source: openssl (3.0.11-1)" names a source version apart from
            // the binary package's; the name is all that is needed here.
            let source = field("Source")
                .and_then(|source| source.split_whitespace().next())
                .unwrap_or(name);
            let architecture = field("Architecture").map(str::to_string);

            let package = Package {
                manager,
                name: name.to_string(),
                version: version.to_string(),
                source: source.to_string(),
                architecture: architecture.clone(),
            };
            self.packages.push(package);
            let index = self.packages.len() - 1;

            let mut list_names = vec![format!("{name}.list")];
            if let Some(architecture) = &architecture {
                list_names.insert(0, format!("{name}:{architecture}.list"));
            }
            for list_name in list_names {
                let list_path = root.join(info).join(&list_name);
                let Some(list) = read_optional(&list_path)? else {
                    continue;
                };
                for line in list.lines() {
                    // opkg lists may append a tab and the file mode.
                    let listed = line.split('\t').next().unwrap_or(line);
                    if !listed.is_empty() {
                        self.add_file(root, listed, index);
                    }
                }
                break;
            }
        }
        Ok(())
    }

    fn load_apk(&mut self, root: &Path, installed: &str) -> anyhow::Result<()> {
        let path = root.join(installed);
        let Some(text) = read_optional(&path)? else {
            return Ok(());
        };
        self.databases.push(format!("apk: /{installed}"));

        let lines: Vec<&str> = text.lines().collect();
        let mut start = 0;
        while start < lines.len() {
            let end = lines[start..]
                .iter()
                .position(|line| line.is_empty())
                .map_or(lines.len(), |offset| start + offset);
            let first_line = start + 1;
            let block = &lines[start..end];
            start = end + 1;
            if block.is_empty() {
                continue;
            }

            let mut name = None;
            let mut version = None;
            let mut origin = None;
            let mut architecture = None;
            let mut files = Vec::new();
            let mut directory = String::new();
            for (offset, line) in block.iter().enumerate() {
                let Some((key, value)) = line.split_once(':') else {
                    let problem = format!(
                        "line {}: expected \"X:value\", found \"{}\"",
                        first_line + offset,
                        truncate(line)
                    );
                    self.problems.push((format!("/{installed}"), problem));
                    continue;
                };
                match key {
                    "P" => name = Some(value.to_string()),
                    "V" => version = Some(value.to_string()),
                    "o" => origin = Some(value.to_string()),
                    "A" => architecture = Some(value.to_string()),
                    "F" => directory = value.to_string(),
                    "R" => files.push(format!("/{directory}/{value}")),
                    _ => {}
                }
            }
            let (Some(name), Some(version)) = (name, version) else {
                let problem = format!("line {first_line}: package entry without P: or V: line");
                self.problems.push((format!("/{installed}"), problem));
                continue;
            };
            self.packages.push(Package {
                manager: PackageManager::Apk,
                source: origin.unwrap_or_else(|| name.clone()),
                name,
                version,
                architecture,
            });
            let index = self.packages.len() - 1;
            for file in files {
                self.add_file(root, &file, index);
            }
        }
        Ok(())
    }
}

fn manager_name(manager: PackageManager) -> &'static str {
    match manager {
        PackageManager::Dpkg => "dpkg",
        PackageManager::Opkg => "opkg",
        PackageManager::Apk => "apk",
    }
}

/// Joins an absolute path from a package list onto the scanned root.
pub fn join_in_root(root: &Path, listed: &str) -> PathBuf {
    root.join(listed.trim_start_matches('/'))
}

fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(anyhow::anyhow!(
            "failed to read package database {}: {error}",
            path.display()
        )),
    }
}

/// One paragraph of a control file and the line it starts on.
struct Paragraph {
    line: usize,
    fields: Vec<(String, String)>,
}

/// Splits a Debian control file (dpkg and opkg status) into paragraphs of
/// `(field, value)` pairs. Continuation lines join the previous value, and
/// a line that is neither is reported by line number and skipped.
fn parse_control_paragraphs(text: &str) -> (Vec<Paragraph>, Vec<String>) {
    let mut paragraphs = Vec::new();
    let mut problems = Vec::new();
    let mut current = Paragraph {
        line: 1,
        fields: Vec::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                paragraphs.push(std::mem::replace(
                    &mut current,
                    Paragraph {
                        line: number + 1,
                        fields: Vec::new(),
                    },
                ));
            } else {
                current.line = number + 1;
            }
        } else if line.starts_with([' ', '\t']) {
            match current.fields.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                None => problems.push(format!(
                    "line {number}: continuation line with no field before it"
                )),
            }
        } else if let Some((key, value)) = line.split_once(':') {
            current
                .fields
                .push((key.trim().to_string(), value.trim().to_string()));
        } else {
            problems.push(format!(
                "line {number}: expected \"Field: value\", found \"{}\"",
                truncate(line)
            ));
        }
    }
    if !current.fields.is_empty() {
        paragraphs.push(current);
    }
    (paragraphs, problems)
}

fn truncate(line: &str) -> String {
    line.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn dpkg_status_and_lists() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(root, "var/lib/dpkg/status", "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib (1:1.2.13.dfsg-1)\nVersion: 1:1.2.13.dfsg-1\n");
        write(
            root,
            "var/lib/dpkg/info/libssl3:amd64.list",
            "/usr\n/usr/lib/libssl.so.3\n",
        );
        write(
            root,
            "var/lib/dpkg/info/zlib1g:amd64.list",
            "/usr/lib/libz.so.1.2.13\n",
        );
        write(root, "usr/lib/libssl.so.3", "elf");
        write(root, "usr/lib/libz.so.1.2.13", "elf");

        let index = PackageIndex::load(root).unwrap();
        assert_eq!(
            index.packages.len(),
            2,
            "the deinstalled package is skipped"
        );

        let metadata = fs::metadata(root.join("usr/lib/libssl.so.3")).unwrap();
        let owner = index.owner((metadata.dev(), metadata.ino())).unwrap();
        assert_eq!(owner.name, "libssl3");
        assert_eq!(owner.source, "openssl");
        assert_eq!(owner.version, "3.0.11-1~deb12u2");

        let metadata = fs::metadata(root.join("usr/lib/libz.so.1.2.13")).unwrap();
        let owner = index.owner((metadata.dev(), metadata.ino())).unwrap();
        assert_eq!(owner.source, "zlib");
        assert_eq!(owner.version, "1:1.2.13.dfsg-1");
    }

    #[test]
    fn apk_installed_database() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(root, "lib/apk/db/installed", "C:Q1abc=\nP:libcrypto1.1\nV:1.1.1d-r3\nA:x86_64\no:openssl\nF:lib\nR:libcrypto.so.1.1\n\nP:musl\nV:1.1.24-r2\nF:lib\nR:ld-musl-x86_64.so.1\n");
        write(root, "lib/libcrypto.so.1.1", "elf");
        write(root, "lib/ld-musl-x86_64.so.1", "elf");

        let index = PackageIndex::load(root).unwrap();
        let metadata = fs::metadata(root.join("lib/libcrypto.so.1.1")).unwrap();
        let owner = index.owner((metadata.dev(), metadata.ino())).unwrap();
        assert_eq!(owner.manager, PackageManager::Apk);
        assert_eq!(owner.source, "openssl");
        assert_eq!(owner.version, "1.1.1d-r3");

        let metadata = fs::metadata(root.join("lib/ld-musl-x86_64.so.1")).unwrap();
        assert_eq!(
            index
                .owner((metadata.dev(), metadata.ino()))
                .unwrap()
                .source,
            "musl"
        );
    }

    #[test]
    fn malformed_lines_reported_by_number() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(root, "var/lib/dpkg/status", "Package: zlib1g\nStatus: install ok installed\nVersion: 1.2\n\nPackage: broken\ngarbage line\nStatus: install ok installed\n");
        write(
            root,
            "lib/apk/db/installed",
            "P:musl\nV:1.2.4-r0\n\nP:nover\nnonsense\n",
        );

        let index = PackageIndex::load(root).unwrap();
        let names: Vec<&str> = index.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["zlib1g", "musl"], "good entries survive");
        assert!(
            index.problems.contains(&(
                "/var/lib/dpkg/status".into(),
                "line 6: expected \"Field: value\", found \"garbage line\"".into()
            )),
            "{:?}",
            index.problems
        );
        assert!(
            index.problems.contains(&(
                "/var/lib/dpkg/status".into(),
                "line 5: package entry without Package or Version field".into()
            )),
            "{:?}",
            index.problems
        );
        assert!(
            index.problems.contains(&(
                "/lib/apk/db/installed".into(),
                "line 5: expected \"X:value\", found \"nonsense\"".into()
            )),
            "{:?}",
            index.problems
        );
        assert!(
            index.problems.contains(&(
                "/lib/apk/db/installed".into(),
                "line 4: package entry without P: or V: line".into()
            )),
            "{:?}",
            index.problems
        );
    }

    #[test]
    fn opkg_status_and_lists() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(root, "usr/lib/opkg/status", "Package: libopenssl1.1\nVersion: 1.1.1k-1\nStatus: install user installed\nArchitecture: mipsel_24kc\n");
        write(
            root,
            "usr/lib/opkg/info/libopenssl1.1.list",
            "/usr/lib/libssl.so.1.1\t0644\n",
        );
        write(root, "usr/lib/libssl.so.1.1", "elf");

        let index = PackageIndex::load(root).unwrap();
        let metadata = fs::metadata(root.join("usr/lib/libssl.so.1.1")).unwrap();
        let owner = index.owner((metadata.dev(), metadata.ino())).unwrap();
        assert_eq!(owner.manager, PackageManager::Opkg);
        assert_eq!(owner.version, "1.1.1k-1");
    }
}
