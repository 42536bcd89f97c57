//! Well-known embedded libraries: how to recognise each one's files, where
//! its version string sits inside the binary, and the names feeds use for it.

use std::cmp::Ordering;
use std::sync::OnceLock;

use regex::bytes::Regex;

use crate::version;

/// One well-known product.
pub struct Product {
    /// Name used in reports and for matching, in the spelling upstream uses.
    pub name: &'static str,
    /// Other names feeds and package databases give it, lowercase: CVE
    /// product names, Debian source and binary packages, Alpine origins.
    pub aliases: &'static [&'static str],
    /// File-name prefixes of its libraries and programs, matched before the
    /// first `.so` or against the whole program name.
    pub file_names: &'static [&'static str],
    /// Pattern whose first group is the version, for the version string the
    /// library compiles into itself.
    pub version_pattern: Option<&'static str>,
    /// A second string the file must contain before the pattern is trusted,
    /// for patterns that alone would match unrelated strings.
    pub marker: Option<&'static [u8]>,
    /// Comparison of this product's upstream versions.
    pub compare: fn(&str, &str) -> Ordering,
}

/// The products this crate recognises.
pub static PRODUCTS: &[Product] = &[
    Product {
        name: "openssl",
        aliases: &[
            "openssl",
            "libssl",
            "libcrypto",
            "libssl3",
            "libssl1.1",
            "libcrypto3",
            "libssl3t64",
        ],
        file_names: &["libssl", "libcrypto", "openssl"],
        version_pattern: Some(
            r"OpenSSL (\d+\.\d+\.\d+[a-z]{0,2}(?:-[a-z0-9]+)?) +\d{1,2} [A-Z][a-z]{2} \d{4}",
        ),
        marker: None,
        compare: version::compare_openssl,
    },
    Product {
        name: "zlib",
        aliases: &["zlib", "zlib1g", "libz"],
        file_names: &["libz"],
        version_pattern: Some(r"(?:de|in)flate (\d+\.\d+(?:\.\d+)*(?:\.\d+)?) Copyright"),
        marker: None,
        compare: version::compare_upstream,
    },
    Product {
        name: "busybox",
        aliases: &["busybox", "busybox-static"],
        file_names: &["busybox"],
        version_pattern: Some(r"BusyBox v(\d+\.\d+\.\d+)"),
        marker: None,
        compare: version::compare_upstream,
    },
    Product {
        name: "curl",
        aliases: &[
            "curl",
            "libcurl",
            "libcurl4",
            "libcurl3-gnutls",
            "libcurl4-openssl-dev",
        ],
        file_names: &["libcurl", "curl"],
        version_pattern: Some(r"libcurl/(\d+\.\d+\.\d+)"),
        marker: None,
        compare: version::compare_upstream,
    },
    Product {
        name: "glibc",
        aliases: &["glibc", "gnu c library", "libc6", "eglibc"],
        file_names: &["libc", "ld-linux"],
        version_pattern: Some(
            r"GNU C Library \([^)\x00]*\) (?:stable )?release version (\d+\.\d+(?:\.\d+)?)",
        ),
        marker: None,
        compare: version::compare_upstream,
    },
    Product {
        name: "musl",
        aliases: &["musl", "musl libc"],
        file_names: &["libc.musl", "ld-musl"],
        // NOTE: musl keeps its version as a bare string apart from any label,
        // so a bare x.y.z string is trusted only in a file that also contains
        // the dynamic loader's "musl libc" banner. Builds without the loader
        // banner get their version from the apk database or not at all.
        version_pattern: Some(r"\x00(1\.\d+\.\d+)\x00"),
        marker: Some(b"musl libc"),
        compare: version::compare_upstream,
    },
    Product {
        name: "expat",
        aliases: &["expat", "libexpat", "libexpat1"],
        file_names: &["libexpat", "libexpatw"],
        version_pattern: Some(r"expat_(\d+\.\d+\.\d+)"),
        marker: None,
        compare: version::compare_upstream,
    },
    Product {
        name: "sqlite",
        aliases: &["sqlite", "sqlite3", "libsqlite3-0", "sqlite-libs"],
        file_names: &["libsqlite3", "sqlite3"],
        // sqlite3_version[] is a bare string; the source id next to it
        // ("2022-12-28 14:03:47 df5c…") marks the file as SQLite.
        version_pattern: Some(r"\x00(3\.\d{1,3}\.\d{1,3}(?:\.\d{1,3})?)\x00"),
        marker: Some(b"SQLite format 3"),
        compare: version::compare_upstream,
    },
    Product {
        name: "dropbear",
        aliases: &["dropbear", "dropbear_ssh", "dropbear ssh", "dropbear-bin"],
        file_names: &["dropbear", "dropbearmulti", "dbclient"],
        version_pattern: Some(r"SSH-2\.0-dropbear_(\d{4}\.\d+)"),
        marker: None,
        compare: version::compare_upstream,
    },
    Product {
        name: "libxml2",
        aliases: &["libxml2"],
        file_names: &["libxml2"],
        // NOTE: libxml2 compiles in no dotted version string, only the
        // five-digit xmlParserVersion, so its version comes from the package
        // database or the file name (libxml2.so.2.9.14 carries the release).
        version_pattern: None,
        marker: None,
        compare: version::compare_upstream,
    },
    Product {
        name: "openssh",
        aliases: &[
            "openssh",
            "openssh-server",
            "openssh-client",
            "openssh-portable",
        ],
        file_names: &[
            "sshd",
            "ssh",
            "ssh-agent",
            "ssh-keygen",
            "scp",
            "sftp-server",
        ],
        version_pattern: Some(r"OpenSSH_(\d+\.\d+(?:p\d+)?)"),
        marker: None,
        compare: version::compare_upstream,
    },
];

/// The compiled version patterns, in the order of [`PRODUCTS`].
fn patterns() -> &'static [Option<Regex>] {
    static PATTERNS: OnceLock<Vec<Option<Regex>>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        PRODUCTS
            .iter()
            .map(|product| {
                product
                    .version_pattern
                    .map(|pattern| Regex::new(pattern).expect("catalogue pattern compiles"))
            })
            .collect()
    })
}

/// Looks up a product by its name or one of its aliases, ignoring case.
pub fn by_name(name: &str) -> Option<&'static Product> {
    let name = name.trim().to_ascii_lowercase();
    PRODUCTS
        .iter()
        .find(|product| product.name == name || product.aliases.contains(&name.as_str()))
}

/// Returns the product a file belongs to by its file name, if any:
/// `libz.so.1.2.13` and `libc-2.31.so` match, `libzstd.so.1` does not.
pub fn by_file_name(file_name: &str) -> Option<&'static Product> {
    let stem = file_name.split(".so").next().unwrap_or(file_name);
    PRODUCTS.iter().find(|product| {
        product.file_names.iter().any(|known| {
            stem == *known
                || stem
                    .strip_prefix(known)
                    .is_some_and(|rest| rest.starts_with('-'))
                || (known.contains('.') && stem.starts_with(known))
        })
    })
}

/// A version string found inside a binary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmbeddedVersion {
    pub product: String,
    pub version: String,
    /// The matched bytes, as text, so a reader can check the finding.
    pub evidence: String,
}

/// Finds the version strings of well-known products inside a file's bytes.
/// A statically linked program may carry several.
pub fn find_embedded_versions(data: &[u8]) -> Vec<EmbeddedVersion> {
    let mut scanner = VersionScanner::new();
    scanner.feed(data);
    scanner.finish()
}

/// Bytes of one chunk kept for the next, so a string split between two
/// chunks is still found. Every version string this catalogue matches is
/// far shorter.
const OVERLAP: usize = 512;

/// Searches a file for version strings chunk by chunk, so memory stays at
/// one chunk whatever the file's size.
pub struct VersionScanner {
    /// First match per product, in the order of [`PRODUCTS`].
    found: Vec<Option<EmbeddedVersion>>,
    marker_seen: Vec<bool>,
    tail: Vec<u8>,
}

impl Default for VersionScanner {
    fn default() -> VersionScanner {
        VersionScanner::new()
    }
}

impl VersionScanner {
    pub fn new() -> VersionScanner {
        VersionScanner {
            found: vec![None; PRODUCTS.len()],
            marker_seen: vec![false; PRODUCTS.len()],
            tail: Vec::new(),
        }
    }

    /// Searches the next chunk of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(chunk);

        for (index, (product, pattern)) in PRODUCTS.iter().zip(patterns()).enumerate() {
            let Some(pattern) = pattern else { continue };
            if let Some(marker) = product.marker {
                if !self.marker_seen[index] && contains(&window, marker) {
                    self.marker_seen[index] = true;
                }
            }
            if self.found[index].is_some() {
                continue;
            }
            if let Some(captures) = pattern.captures(&window) {
                let version = String::from_utf8_lossy(&captures[1]).into_owned();
                let evidence = String::from_utf8_lossy(&captures[0])
                    .trim_matches('\0')
                    .trim()
                    .to_string();
                self.found[index] = Some(EmbeddedVersion {
                    product: product.name.to_string(),
                    version,
                    evidence,
                });
            }
        }

        let keep = window.len().min(OVERLAP);
        self.tail = window.split_off(window.len() - keep);
    }

    /// Returns the versions found. A product with a marker counts only when
    /// the marker appeared somewhere in the file.
    pub fn finish(self) -> Vec<EmbeddedVersion> {
        let mut found = Vec::new();
        for (index, (product, version)) in PRODUCTS.iter().zip(self.found).enumerate() {
            let trusted = product.marker.is_none() || self.marker_seen[index];
            if let Some(version) = version.filter(|_| trusted) {
                found.push(version);
            }
        }
        found
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_map_to_products() {
        assert_eq!(by_file_name("libssl.so.3").map(|p| p.name), Some("openssl"));
        assert_eq!(
            by_file_name("libcrypto.so.1.1").map(|p| p.name),
            Some("openssl")
        );
        assert_eq!(by_file_name("libz.so.1.2.13").map(|p| p.name), Some("zlib"));
        assert_eq!(by_file_name("libc.so.6").map(|p| p.name), Some("glibc"));
        assert_eq!(
            by_file_name("libc.musl-x86_64.so.1").map(|p| p.name),
            Some("musl")
        );
        assert_eq!(by_file_name("busybox").map(|p| p.name), Some("busybox"));
        assert!(by_file_name("libzstd.so.1").is_none());
        assert!(by_file_name("libcap.so.2").is_none());
        assert!(by_file_name("libcom_err.so.2").is_none());
    }

    #[test]
    fn embedded_strings_give_versions() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"\0OpenSSL 1.1.1k  25 Mar 2021\0", "openssl", "1.1.1k"),
            (
                b"\0OpenSSL 3.0.0-alpha17 20 May 2021\0",
                "openssl",
                "3.0.0-alpha17",
            ),
            (
                b" deflate 1.2.11 Copyright 1995-2017 Jean-loup Gailly ",
                "zlib",
                "1.2.11",
            ),
            (b"BusyBox v1.31.1 (2020-01-01)", "busybox", "1.31.1"),
            (b"libcurl/7.88.1\0", "curl", "7.88.1"),
            (
                b"GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.",
                "glibc",
                "2.36",
            ),
            (b"\0expat_2.5.0\0", "expat", "2.5.0"),
            (b"SSH-2.0-dropbear_2019.78\0", "dropbear", "2019.78"),
            (b"OpenSSH_9.2p1 Debian-2", "openssh", "9.2p1"),
            (b"SQLite format 3\0\x003.40.1\0", "sqlite", "3.40.1"),
        ];
        for (data, product, version) in cases {
            let found = find_embedded_versions(data);
            assert_eq!(found.len(), 1, "{product}: {found:?}");
            assert_eq!(found[0].product, *product);
            assert_eq!(found[0].version, *version);
        }
    }

    #[test]
    fn strings_split_between_chunks() {
        let data = b"padding deflate 1.2.13 Copyright more \0musl libc\0 and later \x001.2.4\0 end"
            .to_vec();
        for split in 0..data.len() {
            let mut scanner = VersionScanner::new();
            scanner.feed(&data[..split]);
            scanner.feed(&data[split..]);
            let found = scanner.finish();
            let products: Vec<&str> = found.iter().map(|f| f.product.as_str()).collect();
            assert_eq!(products, vec!["zlib", "musl"], "split at {split}");
        }

        // The marker in the first chunk, the version several chunks later.
        let mut scanner = VersionScanner::new();
        scanner.feed(b"SQLite format 3");
        scanner.feed(&[b'x'; 4096]);
        scanner.feed(b"\x003.40.1\0");
        assert_eq!(scanner.finish()[0].version, "3.40.1");
    }

    #[test]
    fn bare_version_needs_marker() {
        assert!(find_embedded_versions(b"\x003.40.1\0").is_empty());
        assert!(find_embedded_versions(b"\x001.2.3\0").is_empty());
    }
}
