//! Feed parsing and matching against the real feed samples in tests/data,
//! and against small OSV records written here because no OSV sample ships.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use portcullis_libscan::cache::FileCache;
use portcullis_libscan::elf::ElfKind;
use portcullis_libscan::feed::{self, Advisory, FeedStore};
use portcullis_libscan::inventory::{self, Library, ScanOptions, Source, VersionSource};
use portcullis_libscan::matching::{findings_for, Finding, FindingStatus};
use portcullis_libscan::report::Report;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn library(name: &str, sources: Vec<VersionSource>) -> Library {
    Library {
        path: format!("/usr/lib/{name}.so"),
        soname: None,
        architecture: "x86_64".into(),
        kind: ElfKind::SharedLibrary,
        name: name.into(),
        version: sources.first().map(|s| s.version.clone()),
        version_from: sources.first().map(|s| s.source),
        sources,
    }
}

fn binary_string(product: &str, version: &str) -> VersionSource {
    VersionSource {
        source: Source::BinaryString,
        name: product.into(),
        version: version.into(),
        package_source: None,
        evidence: None,
    }
}

fn package(source: Source, name: &str, origin: &str, version: &str) -> VersionSource {
    VersionSource {
        source,
        name: name.into(),
        version: version.into(),
        package_source: Some(origin.into()),
        evidence: None,
    }
}

fn cve_feed() -> FeedStore {
    feed::load_all(&[data("cve")]).expect("the CVE samples parse")
}

fn findings(store: &FeedStore, library: &Library) -> Vec<Finding> {
    let advisories: Vec<&Advisory> = store.advisories().collect();
    findings_for(library, &advisories)
}

fn finding<'a>(findings: &'a [Finding], id: &str) -> Option<&'a Finding> {
    findings.iter().find(|f| f.advisory == id)
}

#[test]
fn cve5_openssl_ranges() {
    let store = cve_feed();
    // CVE-2023-0286: 3.0.0 to < 3.0.8, 1.1.1 to < 1.1.1t, 1.0.2 to < 1.0.2zg.
    let cases = [
        ("3.0.7", Some("3.0.8")),
        ("3.0.0", Some("3.0.8")),
        ("3.0.8", None),
        ("3.1.0", None),
        ("1.1.1s", Some("1.1.1t")),
        ("1.1.1", Some("1.1.1t")),
        ("1.1.1t", None),
        ("1.0.2zf", Some("1.0.2zg")),
        ("1.0.2zg", None),
        ("1.0.1u", None),
    ];
    for (version, fixed) in cases {
        let found = findings(
            &store,
            &library("openssl", vec![binary_string("openssl", version)]),
        );
        let result = finding(&found, "CVE-2023-0286");
        match fixed {
            Some(fixed) => {
                let result =
                    result.unwrap_or_else(|| panic!("{version} should match CVE-2023-0286"));
                assert_eq!(result.status, FindingStatus::Affected, "{version}");
                assert_eq!(result.fixed.as_deref(), Some(fixed), "{version}");
                assert_eq!(result.version_from, Some(Source::BinaryString));
                assert_eq!(result.severity.as_deref(), Some("High"));
                assert!(result.reason.contains(version), "{}", result.reason);
            }
            None => assert!(result.is_none(), "{version} should not match: {result:?}"),
        }
    }
}

#[test]
fn cve5_text_version_needs_review() {
    let store = cve_feed();
    // CVE-2021-3711 gives its range only as prose.
    for version in ["1.1.1k", "3.0.20"] {
        let found = findings(
            &store,
            &library("openssl", vec![binary_string("openssl", version)]),
        );
        let result = finding(&found, "CVE-2021-3711").expect("CVE-2021-3711 is reported");
        assert_eq!(result.status, FindingStatus::NeedsReview, "{version}");
        assert!(
            result.reason.contains("Fixed in OpenSSL 1.1.1l"),
            "{}",
            result.reason
        );
    }
}

#[test]
fn cve5_records_without_product_need_review() {
    let store = cve_feed();
    let cases = [
        ("zlib", "CVE-2022-37434"),
        ("expat", "CVE-2022-40674"),
        ("sqlite", "CVE-2022-46908"),
        ("busybox", "CVE-2022-48174"),
        ("dropbear", "CVE-2016-7406"),
        ("libxml2", "CVE-2024-25062"),
    ];
    for (product, id) in cases {
        let found = findings(
            &store,
            &library(product, vec![binary_string(product, "1.0.0")]),
        );
        let result =
            finding(&found, id).unwrap_or_else(|| panic!("{id} is reported for {product}"));
        assert_eq!(result.status, FindingStatus::NeedsReview, "{id}");
        assert_eq!(
            found
                .iter()
                .filter(|f| f.status == FindingStatus::Affected)
                .count(),
            0,
            "{product}: {found:?}"
        );
    }

    // A record naming zlib in prose does not land on unrelated libraries.
    let found = findings(
        &store,
        &library("libgcrypt", vec![binary_string("libgcrypt", "1.0.0")]),
    );
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn cve5_empty_range_needs_review() {
    // CVE-2023-38545 states "8.4.0, lessThan 8.4.0", a range holding nothing.
    let store = cve_feed();
    for version in ["7.68.0", "8.3.0", "8.4.0"] {
        let found = findings(
            &store,
            &library("curl", vec![binary_string("curl", version)]),
        );
        let result = finding(&found, "CVE-2023-38545").expect("CVE-2023-38545 is reported");
        assert_eq!(result.status, FindingStatus::NeedsReview, "{version}");
        assert!(result.reason.contains("empty"), "{}", result.reason);
    }
}

#[test]
fn cve5_adp_range_for_glibc() {
    // CVE-2024-2961's CNA names glibc as "The GNU C Library"; both it and
    // the CISA ADP state 2.1.93 to < 2.40.
    let store = cve_feed();
    let found = findings(
        &store,
        &library("glibc", vec![binary_string("glibc", "2.39")]),
    );
    let result = finding(&found, "CVE-2024-2961").expect("glibc 2.39 matches");
    assert_eq!(result.status, FindingStatus::Affected);
    assert_eq!(result.fixed.as_deref(), Some("2.40"));
    assert_eq!(result.severity.as_deref(), Some("HIGH 7.3 (CVSS 3.1)"));

    let found = findings(
        &store,
        &library("glibc", vec![binary_string("glibc", "2.40")]),
    );
    assert!(finding(&found, "CVE-2024-2961").is_none());
}

#[test]
fn unknown_version_is_not_clean() {
    let store = cve_feed();
    let found = findings(&store, &library("openssl", Vec::new()));
    let result =
        finding(&found, "CVE-2023-0286").expect("an openssl of unknown version is reported");
    assert_eq!(result.status, FindingStatus::NeedsReview);
    assert!(result.reason.contains("unknown"), "{}", result.reason);
}

/// Builds the smallest ELF file the inventory accepts: a 64-bit x86-64
/// header without sections, followed by `payload`.
fn minimal_elf(payload: &[u8]) -> Vec<u8> {
    let mut data = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    data.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN
    data.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    data.extend_from_slice(&1u32.to_le_bytes());
    data.extend_from_slice(&[0; 24]);
    data.extend_from_slice(&0u32.to_le_bytes());
    for field in [64u16, 56, 0, 64, 0, 0] {
        data.extend_from_slice(&field.to_le_bytes());
    }
    data.extend_from_slice(payload);
    data
}

/// Builds a root with an apk database and one minimal ELF file per listed
/// library.
fn alpine_root(packages: &[(&str, &str, &str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("lib/apk/db")).unwrap();
    let mut installed = String::new();
    for (name, origin, version, file) in packages {
        installed.push_str(&format!(
            "P:{name}\nV:{version}\nA:x86_64\no:{origin}\nF:lib\nR:{file}\n\n"
        ));
        fs::write(root.path().join("lib").join(file), minimal_elf(b"")).unwrap();
    }
    fs::write(root.path().join("lib/apk/db/installed"), installed).unwrap();
    root
}

fn scan_report(root: &Path, feeds: &FeedStore) -> Report {
    let mut options = ScanOptions::new(root);
    options.directories = vec!["/lib".into()];
    let inventory = inventory::scan(&options, &mut FileCache::new()).unwrap();
    Report::build(inventory, feeds)
}

fn affected_ids(report: &Report, name: &str) -> Vec<String> {
    let library = report
        .libraries
        .iter()
        .find(|l| l.library.name == name)
        .unwrap_or_else(|| panic!("{name} listed"));
    let mut ids: Vec<String> = library
        .findings
        .iter()
        .filter(|f| f.status == FindingStatus::Affected)
        .map(|f| f.advisory.clone())
        .collect();
    ids.sort();
    ids
}

#[test]
fn alpine_secdb_before_and_after_fix() {
    let store = feed::load_all(&[data("alpine-v3.11-main.yaml")]).expect("the secdb sample parses");

    let before = alpine_root(&[
        ("libcrypto1.1", "openssl", "1.1.1d-r0", "libcrypto.so.1.1"),
        ("busybox", "busybox", "1.30.1-r1", "busybox"),
    ]);
    let report = scan_report(before.path(), &store);
    assert_eq!(
        affected_ids(&report, "openssl"),
        vec![
            "CVE-2019-1547",
            "CVE-2019-1549",
            "CVE-2019-1551",
            "CVE-2019-1563"
        ]
    );
    assert_eq!(affected_ids(&report, "busybox"), vec!["CVE-2019-5747"]);
    let openssl = report
        .libraries
        .iter()
        .find(|l| l.library.name == "openssl")
        .unwrap();
    let cve = openssl
        .findings
        .iter()
        .find(|f| f.advisory == "CVE-2019-1551")
        .unwrap();
    assert_eq!(cve.fixed.as_deref(), Some("1.1.1d-r3"));
    assert_eq!(cve.version_from, Some(Source::Apk));

    let between = alpine_root(&[("libcrypto1.1", "openssl", "1.1.1d-r2", "libcrypto.so.1.1")]);
    let report = scan_report(between.path(), &store);
    assert_eq!(affected_ids(&report, "openssl"), vec!["CVE-2019-1551"]);

    let after = alpine_root(&[
        ("libcrypto1.1", "openssl", "1.1.1d-r3", "libcrypto.so.1.1"),
        ("busybox", "busybox", "1.30.1-r2", "busybox"),
    ]);
    let report = scan_report(after.path(), &store);
    assert!(affected_ids(&report, "openssl").is_empty());
    assert!(affected_ids(&report, "busybox").is_empty());
    assert_eq!(report.totals.vulnerable_libraries, 0);
}

#[test]
fn alpine_secdb_ignores_debian_packages() {
    // A dpkg package named openssl is not judged by Alpine fix versions.
    let store = feed::load_all(&[data("alpine-v3.11-main.yaml")]).unwrap();
    let found = findings(
        &store,
        &library(
            "openssl",
            vec![package(Source::Dpkg, "libssl3", "openssl", "1.1.1a-1")],
        ),
    );
    assert!(found.is_empty(), "{found:?}");
}

const OSV_ZLIB: &str = r#"{
  "id": "DEBIAN-CVE-2022-37434",
  "aliases": ["CVE-2022-37434"],
  "modified": "2024-01-01T00:00:00Z",
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "zlib"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-1"}]}]
  }]
}"#;

const OSV_OPENSSL: &str = r#"{
  "id": "OSV-2023-0001",
  "modified": "2024-01-01T00:00:00Z",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
  "affected": [{
    "package": {"ecosystem": "OSS-Fuzz", "name": "openssl"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "3.0.0"}, {"last_affected": "3.0.7"}]}]
  }]
}"#;

#[test]
fn osv_debian_and_upstream_ranges() {
    let directory = tempfile::tempdir().unwrap();
    fs::write(directory.path().join("zlib.json"), OSV_ZLIB).unwrap();
    fs::write(directory.path().join("openssl.json"), OSV_OPENSSL).unwrap();
    let store = feed::load_all(&[directory.path().to_path_buf()]).unwrap();

    // Debian epochs and tildes decide: 1:1.2.12 < 1:1.2.13.dfsg-1 and
    // 1:1.2.13.dfsg-1~bpo < 1:1.2.13.dfsg-1.
    for (version, affected) in [
        ("1:1.2.12.dfsg-1", true),
        ("1:1.2.13.dfsg-1~bpo11+1", true),
        ("1:1.2.13.dfsg-1", false),
        ("1.2.99-1", true),
    ] {
        let zlib = library(
            "zlib",
            vec![package(Source::Dpkg, "zlib1g", "zlib", version)],
        );
        let found = findings(&store, &zlib);
        assert_eq!(
            finding(&found, "DEBIAN-CVE-2022-37434").is_some(),
            affected,
            "{version}: {found:?}"
        );
    }

    for (version, affected) in [
        ("3.0.7", true),
        ("3.0.0", true),
        ("3.0.8", false),
        ("1.1.1k", false),
    ] {
        let found = findings(
            &store,
            &library("openssl", vec![binary_string("openssl", version)]),
        );
        assert_eq!(
            finding(&found, "OSV-2023-0001").is_some(),
            affected,
            "{version}"
        );
    }
    let found = findings(
        &store,
        &library("openssl", vec![binary_string("openssl", "3.0.1")]),
    );
    assert!(finding(&found, "OSV-2023-0001")
        .unwrap()
        .severity
        .as_deref()
        .unwrap()
        .starts_with("CVSS_V3 CVSS:3.1/"));
}

#[test]
fn osv_zip_archive() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("all.zip");
    let mut writer = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    writer
        .start_file("DEBIAN-CVE-2022-37434.json", options)
        .unwrap();
    writer.write_all(OSV_ZLIB.as_bytes()).unwrap();
    writer.start_file("OSV-2023-0001.json", options).unwrap();
    writer.write_all(OSV_OPENSSL.as_bytes()).unwrap();
    writer.finish().unwrap();

    let advisories = feed::load_file(&path).unwrap();
    let ids: Vec<&str> = advisories.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, vec!["DEBIAN-CVE-2022-37434", "OSV-2023-0001"]);
    assert!(advisories[0]
        .origin
        .ends_with("all.zip!DEBIAN-CVE-2022-37434.json"));

    // Cut off the central directory: the archive is rejected by name.
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let error = feed::load_file(&path).unwrap_err().to_string();
    assert!(error.contains("all.zip"), "{error}");
    assert!(error.contains("invalid zip archive"), "{error}");
}

#[test]
fn zip_entry_error_names_entry() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("bad.zip");
    let mut writer = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    writer
        .start_file("broken.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    writer.write_all(&OSV_ZLIB.as_bytes()[..60]).unwrap();
    writer.finish().unwrap();

    let error = feed::load_file(&path).unwrap_err();
    assert!(error.file.ends_with("bad.zip"), "{error}");
    assert!(
        error.position.starts_with("entry broken.json line "),
        "{error}"
    );
}

#[test]
fn truncated_feeds_name_position() {
    let directory = tempfile::tempdir().unwrap();

    let cve = fs::read(data("cve/CVE-2023-0286.json")).unwrap();
    let path = directory.path().join("CVE-2023-0286.json");
    fs::write(&path, &cve[..cve.len() / 2]).unwrap();
    let error = feed::load_file(&path).unwrap_err();
    assert_eq!(error.file, path.display().to_string());
    assert!(error.position.starts_with("line "), "{error}");
    assert!(error.to_string().contains("EOF"), "{error}");

    let yaml = fs::read_to_string(data("alpine-v3.11-main.yaml")).unwrap();
    let path = directory.path().join("main.yaml");
    // A tab where YAML allows only spaces, on line 20.
    let broken: Vec<String> = yaml
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 19 {
                format!("\t{l}")
            } else {
                l.to_string()
            }
        })
        .collect();
    fs::write(&path, broken.join("\n")).unwrap();
    let error = feed::load_file(&path).unwrap_err();
    assert!(error.position.starts_with("line 20 "), "{error}");

    let path = directory.path().join("other.json");
    fs::write(&path, "{\"hello\": 1}").unwrap();
    let error = feed::load_file(&path).unwrap_err().to_string();
    assert!(error.contains("not a known feed format"), "{error}");
}

#[test]
fn store_keeps_last_good_feed() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("CVE-2023-0286.json");
    let good = fs::read(data("cve/CVE-2023-0286.json")).unwrap();
    fs::write(&path, &good).unwrap();

    let mut store = FeedStore::new();
    assert!(store.refresh(&[directory.path().to_path_buf()]).is_empty());
    assert_eq!(store.advisories().count(), 1);

    // Truncate in place; the new size changes the file's stamp.
    fs::write(&path, &good[..100]).unwrap();
    let errors = store.refresh(&[directory.path().to_path_buf()]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, path.display().to_string());
    let ids: Vec<&str> = store.advisories().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["CVE-2023-0286"],
        "the last good copy stays in use"
    );

    fs::remove_file(&path).unwrap();
    assert!(store.refresh(&[directory.path().to_path_buf()]).is_empty());
    assert_eq!(
        store.advisories().count(),
        0,
        "a removed feed file is dropped"
    );
}

#[test]
fn cache_skips_unchanged_files() {
    let root = alpine_root(&[("musl", "musl", "1.1.24-r2", "ld-musl-x86_64.so.1")]);
    let mut options = ScanOptions::new(root.path());
    options.directories = vec!["/lib".into()];
    let mut cache = FileCache::new();

    let first = inventory::scan(&options, &mut cache).unwrap();
    assert_eq!((first.files_examined, first.files_parsed), (1, 1));
    let second = inventory::scan(&options, &mut cache).unwrap();
    assert_eq!((second.files_examined, second.files_parsed), (1, 0));
    assert_eq!(first.libraries, second.libraries);
    assert_eq!(first.libraries[0].source(Source::BinaryString), None);

    // Any change to the file moves its ctime and size.
    let file = root.path().join("lib/ld-musl-x86_64.so.1");
    fs::write(&file, minimal_elf(b"\0musl libc\0\x001.2.4\0")).unwrap();
    let third = inventory::scan(&options, &mut cache).unwrap();
    assert_eq!(third.files_parsed, 1);
    let musl = &third.libraries[0];
    assert_eq!(musl.name, "musl");
    assert_eq!(
        musl.source(Source::BinaryString)
            .map(|s| s.version.as_str()),
        Some("1.2.4")
    );
    assert_eq!(
        musl.version.as_deref(),
        Some("1.1.24-r2"),
        "the apk version still wins"
    );
}

#[test]
fn record_without_product_listed_unattributed() {
    let directory = tempfile::tempdir().unwrap();
    let record = r#"{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-2099-0001", "state": "PUBLISHED"},
        "containers": {"cna": {"affected": [{"vendor": "n/a", "product": "n/a", "versions": [{"version": "n/a", "status": "affected"}]}],
        "descriptions": [{"lang": "en", "value": "A flaw in the frobnicator before 2.0."}]}}}"#;
    fs::write(directory.path().join("CVE-2099-0001.json"), record).unwrap();
    let store = feed::load_all(&[directory.path().to_path_buf()]).unwrap();

    let report = Report::build(inventory::Inventory::default(), &store);
    assert_eq!(report.unattributed.len(), 1);
    assert!(
        report.unattributed[0].starts_with("CVE-2099-0001 ("),
        "{:?}",
        report.unattributed
    );
    assert!(report
        .to_table()
        .contains("needs review, no product named: CVE-2099-0001"));
}

#[test]
fn unknown_version_reported_as_unknown() {
    // libssl.so.3 alone: no package database, no version string, and a
    // file name with only the ABI major.
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("lib")).unwrap();
    fs::write(root.path().join("lib/libssl.so.3"), minimal_elf(b"")).unwrap();
    let report = scan_report(root.path(), &cve_feed());

    let openssl = &report.libraries[0];
    assert_eq!(openssl.library.name, "openssl");
    assert_eq!(openssl.library.version, None);
    assert!(!openssl.version_known);
    assert_eq!(report.totals.unknown_versions, 1);
    assert_eq!(report.totals.vulnerable_libraries, 0);
    let finding =
        finding(&openssl.findings, "CVE-2023-0286").expect("the advisory is listed for review");
    assert_eq!(finding.status, FindingStatus::NeedsReview);
    assert!(report.to_table().contains("unknown"));
}

#[test]
fn invalid_elf_skipped_with_reason() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("lib")).unwrap();
    fs::write(root.path().join("lib/libz.so.1.2.13"), minimal_elf(b"")).unwrap();
    fs::write(root.path().join("lib/libbroken.so.1"), b"\x7fELF\x02\x01").unwrap();
    let report = scan_report(root.path(), &FeedStore::new());

    assert_eq!(
        report.libraries.len(),
        1,
        "the good library is still listed"
    );
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].path, "/lib/libbroken.so.1");
    assert!(
        report.skipped[0].reason.starts_with("invalid ELF file"),
        "{}",
        report.skipped[0].reason
    );
}

#[test]
fn alpine_secdb_json_twin() {
    // The live secdb feed is JSON with the YAML file's structure.
    let yaml = fs::read(data("alpine-v3.11-main.yaml")).unwrap();
    let value: serde_json::Value = serde_yaml::from_slice(&yaml).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("main.json");
    fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();

    let from_yaml = feed::load_file(&data("alpine-v3.11-main.yaml")).unwrap();
    let from_json = feed::load_file(&path).unwrap();
    assert!(from_yaml.len() > 100, "{} advisories", from_yaml.len());
    assert_eq!(from_json.len(), from_yaml.len());
    for (json, yaml) in from_json.iter().zip(&from_yaml) {
        assert_eq!(json.id, yaml.id);
        assert_eq!(json.affected, yaml.affected);
    }
}

#[test]
fn osv_release_must_match_system() {
    let directory = tempfile::tempdir().unwrap();
    fs::write(directory.path().join("zlib-12.json"), OSV_ZLIB).unwrap();
    fs::write(
        directory.path().join("zlib-11.json"),
        OSV_ZLIB
            .replace("DEBIAN-CVE-2022-37434", "OLD-1")
            .replace("Debian:12", "Debian:11"),
    )
    .unwrap();
    let store = feed::load_all(&[directory.path().to_path_buf()]).unwrap();

    let root = tempfile::tempdir().unwrap();
    for path in ["etc", "usr/lib", "var/lib/dpkg/info"] {
        fs::create_dir_all(root.path().join(path)).unwrap();
    }
    fs::write(
        root.path().join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    fs::write(
        root.path().join("var/lib/dpkg/status"),
        "Package: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.11.dfsg-2\n",
    )
    .unwrap();
    fs::write(
        root.path().join("var/lib/dpkg/info/zlib1g.list"),
        "/usr/lib/libz.so.1.2.11\n",
    )
    .unwrap();
    fs::write(root.path().join("usr/lib/libz.so.1.2.11"), minimal_elf(b"")).unwrap();

    let mut options = ScanOptions::new(root.path());
    options.directories = vec!["/usr/lib".into()];
    let report = Report::build(
        inventory::scan(&options, &mut FileCache::new()).unwrap(),
        &store,
    );
    assert_eq!(
        affected_ids(&report, "zlib"),
        vec!["DEBIAN-CVE-2022-37434"],
        "only the Debian 12 record applies"
    );
}
