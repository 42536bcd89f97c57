//! Version comparison under each ecosystem's own ordering rules.
//!
//! A feed states its ranges in one ecosystem's versions, so a comparison is
//! only meaningful between two versions of that same ecosystem: a Debian
//! package version against a Debian range, an upstream release against an
//! upstream range.

use std::cmp::Ordering;

use serde::Serialize;

/// The ordering rules a version string follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ecosystem {
    /// dpkg's rules (also used by opkg): epoch, upstream, revision, `~` first.
    Debian,
    /// apk-tools' rules: numbers, one letter, `_suffix` tags, `-rN` revision.
    Alpine,
    /// Release numbers as projects publish them: dotted numbers, OpenSSL
    /// patch letters (1.1.1k), OpenSSH `p` levels, semver pre-releases.
    Upstream,
}

impl Ecosystem {
    /// Compares two versions of this ecosystem.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Ecosystem::Debian => compare_debian(a, b),
            Ecosystem::Alpine => compare_alpine(a, b),
            Ecosystem::Upstream => compare_upstream(a, b),
        }
    }
}

/// Compares two Debian package versions as `dpkg --compare-versions` does.
pub fn compare_debian(a: &str, b: &str) -> Ordering {
    let (epoch_a, upstream_a, revision_a) = split_debian(a);
    let (epoch_b, upstream_b, revision_b) = split_debian(b);
    epoch_a
        .cmp(&epoch_b)
        .then_with(|| compare_debian_part(upstream_a, upstream_b))
        .then_with(|| compare_debian_part(revision_a, revision_b))
}

/// Splits `[epoch:]upstream[-revision]`; the revision follows the last `-`.
fn split_debian(version: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) => {
            (epoch.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, version),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// Returns the weight dpkg gives a character in the non-digit parts: `~` before the
/// end of the string, the end before letters, letters before other symbols.
fn debian_char_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn compare_debian_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ca = debian_char_order(a.get(i).copied());
            let cb = debian_char_order(b.get(j).copied());
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }

        // Digit run, compared as a number without leading zeros.
        let start_a = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let start_b = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let order = compare_digit_runs(&a[start_a..i], &b[start_b..j]);
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// Compares two ASCII digit runs by numeric value, of any length.
fn compare_digit_runs(a: &[u8], b: &[u8]) -> Ordering {
    let trim = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let (a, b) = (&a[trim(a)..], &b[trim(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// One parsed Alpine version: `1.2.3a_rc1_p2-r4`.
#[derive(Debug, Default)]
struct AlpineVersion<'a> {
    numbers: Vec<&'a str>,
    letter: Option<u8>,
    suffixes: Vec<(i32, &'a str)>,
    revision: &'a str,
}

/// Rank of an apk `_suffix`: pre-releases below the plain version (0),
/// post-release tags above it, in apk-tools' order.
fn alpine_suffix_rank(name: &str) -> i32 {
    match name {
        "alpha" => -4,
        "beta" => -3,
        "pre" => -2,
        "rc" => -1,
        "cvs" => 1,
        "svn" => 2,
        "git" => 3,
        "hg" => 4,
        "p" => 5,
        // apk-tools rejects unknown suffixes; sorting them after every known
        // one keeps the order total instead of failing a whole scan.
        _ => 6,
    }
}

fn parse_alpine(version: &str) -> AlpineVersion<'_> {
    let mut parsed = AlpineVersion::default();
    let (body, revision) = match version.rsplit_once("-r") {
        Some((body, revision)) if revision.bytes().all(|b| b.is_ascii_digit()) => (body, revision),
        _ => (version, ""),
    };
    parsed.revision = revision;

    let mut parts = body.splitn(2, '_');
    let head = parts.next().unwrap_or("");
    let tail = parts.next();

    let (numbers, letter) = match head.as_bytes().last() {
        Some(&c) if c.is_ascii_alphabetic() => (&head[..head.len() - 1], Some(c)),
        _ => (head, None),
    };
    parsed.numbers = numbers.split('.').collect();
    parsed.letter = letter;

    if let Some(tail) = tail {
        for suffix in tail.split('_') {
            let split = suffix
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(suffix.len());
            let (name, number) = suffix.split_at(split);
            parsed.suffixes.push((alpine_suffix_rank(name), number));
        }
    }
    parsed
}

/// Compares two Alpine package versions as apk-tools does.
///
/// NOTE: apk compares a numeric component after the first one with a
/// leading zero as a string (1.01 < 1.1); here every component compares as a
/// number, which differs only for such leading-zero components.
pub fn compare_alpine(a: &str, b: &str) -> Ordering {
    let (a, b) = (parse_alpine(a), parse_alpine(b));

    for index in 0..a.numbers.len().max(b.numbers.len()) {
        let order = match (a.numbers.get(index), b.numbers.get(index)) {
            (Some(x), Some(y)) => compare_digit_runs(x.as_bytes(), y.as_bytes()),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }

    let order = a.letter.cmp(&b.letter);
    if order != Ordering::Equal {
        return order;
    }

    for index in 0..a.suffixes.len().max(b.suffixes.len()) {
        // A missing suffix ranks as the plain release, between pre-release
        // and post-release tags.
        let (rank_a, number_a) = a.suffixes.get(index).copied().unwrap_or((0, ""));
        let (rank_b, number_b) = b.suffixes.get(index).copied().unwrap_or((0, ""));
        let order = rank_a
            .cmp(&rank_b)
            .then_with(|| compare_digit_runs(number_a.as_bytes(), number_b.as_bytes()));
        if order != Ordering::Equal {
            return order;
        }
    }

    compare_digit_runs(a.revision.as_bytes(), b.revision.as_bytes())
}

/// One token of an upstream version: a number or a run of letters.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Number(&'a str),
    Letters(&'a str),
}

/// Splits an upstream version into number and letter runs, dropping the
/// separators and any `+build` metadata.
fn tokenize_upstream(version: &str) -> Vec<Token<'_>> {
    let version = version.split('+').next().unwrap_or(version);
    let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
    let bytes = version.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            tokens.push(Token::Number(&version[start..i]));
        } else if bytes[i].is_ascii_alphabetic() {
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            tokens.push(Token::Letters(&version[start..i]));
        } else {
            i += 1;
        }
    }
    tokens
}

/// Rank of a pre-release word; `None` for letters that mark a later release,
/// such as OpenSSL's patch letters or OpenSSH's `p1`.
fn prerelease_rank(letters: &str) -> Option<i32> {
    match letters.to_ascii_lowercase().as_str() {
        "dev" | "snapshot" => Some(-5),
        "alpha" | "a" => Some(-4),
        "beta" | "b" => Some(-3),
        "pre" => Some(-2),
        "rc" => Some(-1),
        _ => None,
    }
}

/// Compares two upstream release versions.
///
/// Numbers compare numerically and a missing trailing number equals zero
/// (2.40 = 2.40.0). Letters directly after a release (1.1.1k, 9.2p1) mark a
/// later release, except pre-release words (alpha, beta, pre, rc, and the
/// single letters a and b), which sort before the release: 1.0.0-rc1 <
/// 1.0.0. OpenSSL's patch letters run a..z, za..zz, which this string order
/// keeps because a shorter prefix sorts first.
///
/// NOTE: a single `a` or `b` is read as alpha or beta, so OpenSSL 1.0.2a and
/// 1.0.2b sort before 1.0.2; compare OpenSSL versions with
/// [`compare_openssl`], which has no pre-release words.
pub fn compare_upstream(a: &str, b: &str) -> Ordering {
    compare_tokens(
        &tokenize_upstream(a),
        &tokenize_upstream(b),
        prerelease_rank,
    )
}

/// Compares two OpenSSL versions: every letter after a number is a patch
/// letter (1.0.2a > 1.0.2), and 3.x pre-releases use `-alpha1`/`-beta1`.
pub fn compare_openssl(a: &str, b: &str) -> Ordering {
    let rank = |letters: &str| match letters {
        "alpha" => Some(-4),
        "beta" => Some(-3),
        _ => None,
    };
    compare_tokens(&tokenize_upstream(a), &tokenize_upstream(b), rank)
}

fn compare_tokens(
    a: &[Token<'_>],
    b: &[Token<'_>],
    rank: impl Fn(&str) -> Option<i32>,
) -> Ordering {
    let against_end = |letters: &str| match rank(letters) {
        Some(_) => Ordering::Less,
        None => Ordering::Greater,
    };
    for index in 0..a.len().max(b.len()) {
        let order = match (a.get(index), b.get(index)) {
            (Some(Token::Number(x)), Some(Token::Number(y))) => {
                compare_digit_runs(x.as_bytes(), y.as_bytes())
            }
            (Some(Token::Letters(x)), Some(Token::Letters(y))) => match (rank(x), rank(y)) {
                (Some(p), Some(q)) => p.cmp(&q),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
            },
            // 1.2.3 against 1.2.3-rc1 or 1.2.3k: the letters decide.
            (Some(Token::Number(_)), Some(Token::Letters(y))) => against_end(y).reverse(),
            (Some(Token::Letters(x)), Some(Token::Number(_))) => against_end(x),
            (Some(Token::Number(x)), None) => zero_against_end(x),
            (None, Some(Token::Number(y))) => zero_against_end(y).reverse(),
            (Some(Token::Letters(x)), None) => against_end(x),
            (None, Some(Token::Letters(y))) => against_end(y).reverse(),
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

fn zero_against_end(number: &str) -> Ordering {
    if number.bytes().all(|b| b == b'0') {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

/// Returns the upstream part of a Debian or Alpine package version: without
/// epoch, Debian revision or Alpine `-rN`, and without the `+dfsg`-style
/// repack tags distributions add.
pub fn upstream_of_package_version(version: &str) -> &str {
    let version = version.split_once(':').map_or(version, |(_, rest)| rest);
    let version = version
        .rsplit_once('-')
        .map_or(version, |(upstream, _)| upstream);
    let version = version.split(['+', '~']).next().unwrap_or(version);
    version.strip_suffix(".dfsg").unwrap_or(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    fn check(compare: fn(&str, &str) -> Ordering, table: &[(&str, &str, Ordering)]) {
        for &(a, b, expected) in table {
            assert_eq!(compare(a, b), expected, "compare({a:?}, {b:?})");
            assert_eq!(compare(b, a), expected.reverse(), "compare({b:?}, {a:?})");
        }
    }

    #[test]
    fn debian_ordering_table() {
        check(
            compare_debian,
            &[
                ("1.0", "1.0", Equal),
                ("1.0-1", "1.0-2", Less),
                ("1:1.0", "2.0", Greater),
                ("0:1.0", "1.0", Equal),
                ("1.0~rc1", "1.0", Less),
                ("1.0~~", "1.0~", Less),
                ("1.0~", "1.0", Less),
                ("1.0", "1.0a", Less),
                ("1.0a", "1.0+", Less),
                ("1.0.9", "1.0.10", Less),
                ("1.00", "1.0", Equal),
                ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
                ("2.36-9+deb12u4", "2.36-9", Greater),
                ("1:1.35.0-4+b3", "1:1.35.0-4", Greater),
                ("3.0.11-1~deb12u2", "3.0.11-1", Less),
                ("1.2.13.dfsg-1", "1.2.13-1", Greater),
                ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
                ("1.0-1-2", "1.0-1-10", Less),
            ],
        );
    }

    #[test]
    fn alpine_ordering_table() {
        check(
            compare_alpine,
            &[
                ("1.2.3-r0", "1.2.3-r1", Less),
                ("1.2.3-r10", "1.2.3-r9", Greater),
                ("1.2.3", "1.2.3-r0", Equal),
                ("1.2.3_rc1-r0", "1.2.3-r0", Less),
                ("1.2.3_alpha", "1.2.3_beta", Less),
                ("1.2.3_pre2", "1.2.3_rc1", Less),
                ("1.2.3_p1-r0", "1.2.3-r5", Greater),
                ("1.2.3_p1", "1.2.3_p2", Less),
                ("1.2.3_git20200101", "1.2.3", Greater),
                ("1.1.1d-r3", "1.1.1g-r0", Less),
                ("1.1.1k-r0", "1.1.1-r9", Greater),
                ("1.2", "1.2.1", Less),
                ("1.31.1-r9", "1.31.1-r10", Less),
                ("2.9.10-r4", "2.9.10-r5", Less),
            ],
        );
    }

    #[test]
    fn upstream_ordering_table() {
        check(
            compare_upstream,
            &[
                ("1.2.13", "1.2.12", Greater),
                ("2.40", "2.40.0", Equal),
                ("2.36", "2.40", Less),
                ("1.1.1k", "1.1.1l", Less),
                ("1.1.1k", "1.1.1", Greater),
                ("1.1.1t", "1.1.1", Greater),
                ("1.0.2zg", "1.0.2z", Greater),
                ("1.0.2y", "1.0.2za", Less),
                ("3.0.8", "3.0.11", Less),
                ("1.0.0-rc1", "1.0.0", Less),
                ("1.0.0-alpha", "1.0.0-beta", Less),
                ("1.0.0-beta.2", "1.0.0-rc.1", Less),
                ("1.0.0+build5", "1.0.0", Equal),
                ("9.2p1", "9.2", Greater),
                ("9.2p1", "9.3", Less),
                ("2022.83", "2016.74", Greater),
                ("v1.35.0", "1.35", Equal),
                ("8.4.0", "7.69.0", Greater),
            ],
        );
    }

    #[test]
    fn openssl_ordering_table() {
        check(
            compare_openssl,
            &[
                ("1.0.2a", "1.0.2", Greater),
                ("1.0.2b", "1.0.2a", Greater),
                ("1.1.1k", "1.1.1l", Less),
                ("1.0.2zg", "1.0.2zh", Less),
                ("3.0.0-alpha1", "3.0.0", Less),
                ("3.0.0-beta1", "3.0.0-alpha17", Greater),
                ("3.0.20", "3.0.8", Greater),
            ],
        );
    }

    #[test]
    fn upstream_part_of_package_versions() {
        assert_eq!(upstream_of_package_version("1:1.2.13.dfsg-1"), "1.2.13");
        assert_eq!(upstream_of_package_version("2.36-9+deb12u4"), "2.36");
        assert_eq!(upstream_of_package_version("3.0.11-1~deb12u2"), "3.0.11");
        assert_eq!(upstream_of_package_version("1.1.1k-r0"), "1.1.1k");
        assert_eq!(
            upstream_of_package_version("2.9.14+dfsg-1.3~deb12u1"),
            "2.9.14"
        );
        assert_eq!(upstream_of_package_version("1.2.3"), "1.2.3");
    }
}
