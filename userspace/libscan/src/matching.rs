//! Matches inventory entries against advisories: which advisories apply to
//! each library, from which version and source, and why.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::Serialize;

use crate::catalogue;
use crate::feed::{Advisory, Affected, BranchFixes, Event, FeedFormat, Target, Versions};
use crate::inventory::{Library, OsRelease, Source};
use crate::version::{self, Ecosystem};

/// Whether an advisory applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingStatus {
    /// The version falls in an affected range.
    Affected,
    /// The advisory concerns this library but a person has to decide: its
    /// ranges are unstructured, or the library's version is unknown.
    NeedsReview,
}

/// One advisory that applies, or may apply, to one library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub advisory: String,
    pub aliases: Vec<String>,
    pub status: FindingStatus,
    /// Explanation: the range that matched, the version and its source, or
    /// the reason a person has to review the advisory.
    pub reason: String,
    /// The version compared and the source it came from.
    pub version: Option<String>,
    pub version_from: Option<Source>,
    pub fixed: Option<String>,
    pub severity: Option<String>,
    pub summary: Option<String>,
    pub format: FeedFormat,
    pub origin: String,
}

/// The version a target is compared with, and how to compare it.
struct Candidate<'a> {
    version: String,
    source: Source,
    /// "dpkg package zlib1g", "binary string", used in the reason.
    described: String,
    compare: Comparator<'a>,
}

/// A version ordering, as one ecosystem or product defines it.
type Comparator<'a> = Box<dyn Fn(&str, &str) -> Ordering + 'a>;

/// Advisories grouped by the names they can match, so a library is only
/// evaluated against advisories that name it, its package or its source
/// package. A distribution's feed has tens of thousands of records.
pub struct AdvisoryIndex<'a> {
    by_name: HashMap<String, Vec<(usize, &'a Advisory)>>,
}

impl<'a> AdvisoryIndex<'a> {
    pub fn new(advisories: &[&'a Advisory]) -> AdvisoryIndex<'a> {
        let mut by_name: HashMap<String, Vec<(usize, &'a Advisory)>> = HashMap::new();
        for (position, advisory) in advisories.iter().enumerate() {
            let mut names: Vec<String> = advisory.mentioned_products.clone();
            for affected in &advisory.affected {
                names.push(match &affected.target {
                    Target::Package { name, .. } => name.clone(),
                    Target::Product { name } => index_name(name),
                });
            }
            names.sort();
            names.dedup();
            for name in names {
                by_name.entry(name).or_default().push((position, advisory));
            }
        }
        AdvisoryIndex { by_name }
    }

    /// Returns the advisories that can apply to `library`, in feed order.
    pub fn candidates(&self, library: &Library) -> Vec<&'a Advisory> {
        let mut names = vec![index_name(&library.name)];
        for source in &library.sources {
            names.push(source.name.clone());
            names.extend(source.package_source.clone());
        }
        let mut found: Vec<(usize, &'a Advisory)> = names
            .iter()
            .filter_map(|name| self.by_name.get(name))
            .flatten()
            .copied()
            .collect();
        found.sort_by_key(|(position, _)| *position);
        found.dedup_by_key(|(position, _)| *position);
        found.into_iter().map(|(_, advisory)| advisory).collect()
    }
}

/// Returns the key a product name is indexed under: the catalogue's name for a
/// known product ("OpenSSL", "libssl" → "openssl"), else the lowercase name.
fn index_name(name: &str) -> String {
    match catalogue::by_name(name) {
        Some(product) => product.name.to_string(),
        None => name.to_ascii_lowercase(),
    }
}

/// Evaluates every advisory against one library, applying distribution
/// advisories whatever release they are for.
pub fn findings_for(library: &Library, advisories: &[&Advisory]) -> Vec<Finding> {
    findings_for_system(library, advisories, None)
}

/// Evaluates every advisory against one library of a system whose
/// /etc/os-release is `system`. A distribution advisory for another
/// distribution or release ("Debian:11" on Debian 12) does not apply.
pub fn findings_for_system(
    library: &Library,
    advisories: &[&Advisory],
    system: Option<&OsRelease>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for advisory in advisories {
        if let Some(finding) = evaluate_advisory(library, advisory, system) {
            findings.push(finding);
        }
    }
    findings.sort_by(|a, b| {
        (a.status as u8)
            .cmp(&(b.status as u8))
            .then_with(|| a.advisory.cmp(&b.advisory))
    });
    findings
}

fn evaluate_advisory(
    library: &Library,
    advisory: &Advisory,
    system: Option<&OsRelease>,
) -> Option<Finding> {
    let finding = |status,
                   reason: String,
                   candidate: Option<&Candidate<'_>>,
                   fixed: Option<String>| Finding {
        advisory: advisory.id.clone(),
        aliases: advisory.aliases.clone(),
        status,
        reason,
        version: candidate.map(|c| c.version.clone()),
        version_from: candidate.map(|c| c.source),
        fixed,
        severity: advisory.severity.clone(),
        summary: advisory.summary.clone(),
        format: advisory.format,
        origin: advisory.origin.clone(),
    };

    if advisory.affected.is_empty() {
        if advisory.mentioned_products.contains(&library.name) {
            let reason = format!(
                "the {} record names no product or version range in structured form; its description names {}",
                advisory.format.as_str(),
                library.name
            );
            return Some(finding(FindingStatus::NeedsReview, reason, None, None));
        }
        return None;
    }

    let mut review = None;
    for affected in &advisory.affected {
        if !target_applies(library, &affected.target) || !release_applies(system, &affected.target)
        {
            continue;
        }
        let Some(candidate) = candidate_for(library, &affected.target) else {
            let reason = format!(
                "the version of {} is unknown, so {} cannot be evaluated",
                library.name, advisory.id
            );
            review.get_or_insert(finding(FindingStatus::NeedsReview, reason, None, None));
            continue;
        };
        match evaluate_affected(affected, &candidate) {
            Outcome::Affected { mut reason, fixed } => {
                if let Some(note) = backport_note(library, &affected.target) {
                    reason.push_str(&note);
                }
                return Some(finding(
                    FindingStatus::Affected,
                    reason,
                    Some(&candidate),
                    fixed,
                ));
            }
            Outcome::NeedsReview(reason) => {
                review.get_or_insert(finding(
                    FindingStatus::NeedsReview,
                    reason,
                    Some(&candidate),
                    None,
                ));
            }
            Outcome::NotAffected => {}
        }
    }
    review
}

/// Distributions fix old releases by patching them without changing the
/// upstream version, so an upstream range can match a package that is
/// already fixed. The reason then names the package to check.
fn backport_note(library: &Library, target: &Target) -> Option<String> {
    if !matches!(target, Target::Product { .. }) {
        return None;
    }
    let package = library
        .sources
        .iter()
        .find(|source| source.source.is_package_database())?;
    Some(format!(
        "; the {} package {} {} may carry a backported fix, which the distribution's own advisories record",
        package.source.as_str(),
        package.name,
        package.version
    ))
}

/// Returns false when a distribution advisory is for another distribution
/// or release than the scanned system's. Without os-release data, or for
/// upstream advisories, it returns true.
fn release_applies(system: Option<&OsRelease>, target: &Target) -> bool {
    let (Some(system), Target::Package { distribution, .. }) = (system, target) else {
        return true;
    };
    // "Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.18", "Alpine v3.11/main".
    let mut parts = distribution.split([':', ' ', '/']);
    let family = parts.next().unwrap_or("").to_ascii_lowercase();
    let Some(release) = parts.next().filter(|release| !release.is_empty()) else {
        return true;
    };
    if family != system.id {
        return false;
    }
    let Some(version_id) = system.version_id.as_deref() else {
        return true;
    };
    // Alpine names branches "v3.18", and its os-release has VERSION_ID "3.18.4".
    let release = release.trim_start_matches('v');
    version_id == release || version_id.starts_with(&format!("{release}."))
}

/// Returns true when an affected entry names this library.
fn target_applies(library: &Library, target: &Target) -> bool {
    match target {
        Target::Package {
            ecosystem, name, ..
        } => package_source(library, *ecosystem, name).is_some(),
        Target::Product { name } => match catalogue::by_name(name) {
            Some(product) => product.name == library.name,
            None => name.eq_ignore_ascii_case(&library.name),
        },
    }
}

/// Finds the package-database entry of the library that a distribution
/// advisory for package `name` in `ecosystem` refers to.
fn package_source<'a>(
    library: &'a Library,
    ecosystem: Ecosystem,
    name: &str,
) -> Option<&'a crate::inventory::VersionSource> {
    library.sources.iter().find(|source| {
        let manager_fits = match ecosystem {
            Ecosystem::Debian => matches!(source.source, Source::Dpkg | Source::Opkg),
            Ecosystem::Alpine => source.source == Source::Apk,
            Ecosystem::Upstream => false,
        };
        manager_fits && (source.name == name || source.package_source.as_deref() == Some(name))
    })
}

/// Picks the version to compare. A distribution advisory compares the
/// package version. An upstream one compares the binary string first,
/// because it is the code actually present, then the upstream part of the
/// package version, then the file name.
fn candidate_for<'a>(library: &'a Library, target: &Target) -> Option<Candidate<'a>> {
    match target {
        Target::Package {
            ecosystem, name, ..
        } => {
            let source = package_source(library, *ecosystem, name)?;
            let ecosystem = *ecosystem;
            Some(Candidate {
                version: source.version.clone(),
                source: source.source,
                described: format!("{} package {}", source.source.as_str(), source.name),
                compare: Box::new(move |a, b| ecosystem.compare(a, b)),
            })
        }
        Target::Product { .. } => {
            let compare: fn(&str, &str) -> Ordering = catalogue::by_name(&library.name)
                .map_or(version::compare_upstream, |product| product.compare);
            let (version, source, described) = if let Some(found) =
                library.source(Source::BinaryString)
            {
                (
                    found.version.clone(),
                    found.source,
                    format!(
                        "binary string \"{}\"",
                        found.evidence.as_deref().unwrap_or("")
                    ),
                )
            } else if let Some(package) = library
                .sources
                .iter()
                .find(|s| s.source.is_package_database())
            {
                let upstream = version::upstream_of_package_version(&package.version).to_string();
                let described = format!(
                    "{} package {} {} (upstream part)",
                    package.source.as_str(),
                    package.name,
                    package.version
                );
                (upstream, package.source, described)
            } else if let Some(found) = library.source(Source::FileName) {
                let described = "file name (may be the ABI version, not the release)".to_string();
                (found.version.clone(), found.source, described)
            } else {
                return None;
            };
            Some(Candidate {
                version,
                source,
                described,
                compare: Box::new(compare),
            })
        }
    }
}

enum Outcome {
    Affected {
        reason: String,
        fixed: Option<String>,
    },
    NeedsReview(String),
    NotAffected,
}

fn evaluate_affected(affected: &Affected, candidate: &Candidate<'_>) -> Outcome {
    let compare = &candidate.compare;
    let version = candidate.version.as_str();
    let distribution = match &affected.target {
        Target::Package { distribution, .. } => format!(" ({distribution})"),
        Target::Product { name } => format!(" ({name})"),
    };

    // A version inside a stated unaffected range is not affected, whatever
    // the affected ranges state.
    for unaffected in &affected.unaffected {
        if let Versions::Range { events } = unaffected {
            if range_contains(events, version, compare) {
                return Outcome::NotAffected;
            }
        }
    }

    let mut review = None;
    for versions in &affected.versions {
        match versions {
            Versions::Range { events } if range_contains(events, version, compare) => {
                let reason = format!(
                    "{} {version} is in the range {}{distribution}",
                    candidate.described,
                    describe_range(events)
                );
                return Outcome::Affected {
                    reason,
                    fixed: first_fix_above(events, version, compare),
                };
            }
            Versions::Exact { versions }
                if versions
                    .iter()
                    .any(|listed| compare(listed, version).is_eq()) =>
            {
                let reason = format!(
                    "{} {version} is listed as affected{distribution}",
                    candidate.described
                );
                return Outcome::Affected {
                    reason,
                    fixed: None,
                };
            }
            Versions::Fixes(fixes) => {
                if let Some(fixed) = below_branch_fix(fixes, version, compare) {
                    let reason = format!(
                        "{} {version} is below the fix {fixed}{distribution}",
                        candidate.described
                    );
                    return Outcome::Affected {
                        reason,
                        fixed: Some(fixed),
                    };
                }
            }
            Versions::NeedsReview { reason } => {
                review.get_or_insert_with(|| {
                    format!(
                        "{reason}; compare {} {version} by hand",
                        candidate.described
                    )
                });
            }
            _ => {}
        }
    }
    match review {
        Some(reason) => Outcome::NeedsReview(reason),
        None => Outcome::NotAffected,
    }
}

/// OSV range semantics: walking the events in version order, an
/// `introduced` at or below the version opens the range, and a `fixed` or
/// `limit` at or below it, or a `last_affected` below it, closes it.
fn range_contains(
    events: &[Event],
    version: &str,
    compare: &dyn Fn(&str, &str) -> Ordering,
) -> bool {
    fn boundary(event: &Event) -> &str {
        match event {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by(|a, b| match (boundary(a), boundary(b)) {
        ("0", "0") => Ordering::Equal,
        ("0", _) => Ordering::Less,
        (_, "0") => Ordering::Greater,
        (x, y) => compare(x, y),
    });

    let mut affected = false;
    for event in sorted {
        match event {
            Event::Introduced(v) => {
                if v == "0" || compare(v, version).is_le() {
                    affected = true;
                }
            }
            Event::Fixed(v) | Event::Limit(v) => {
                if compare(v, version).is_le() {
                    affected = false;
                }
            }
            Event::LastAffected(v) => {
                if compare(v, version).is_lt() {
                    affected = false;
                }
            }
        }
    }
    affected
}

fn first_fix_above(
    events: &[Event],
    version: &str,
    compare: &dyn Fn(&str, &str) -> Ordering,
) -> Option<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Fixed(v) if compare(v, version).is_gt() => Some(v),
            _ => None,
        })
        .min_by(|a, b| compare(a, b))
        .cloned()
}

/// Returns the fix a version lacks under the secdb's rules, if any.
fn below_branch_fix(
    fixes: &BranchFixes,
    version: &str,
    compare: &dyn Fn(&str, &str) -> Ordering,
) -> Option<String> {
    let highest = fixes.fixed.iter().max_by(|a, b| compare(a, b))?;
    if compare(version, highest).is_ge() {
        return None;
    }
    let upstream = version::upstream_of_package_version(version);
    let backported = fixes.fixed.iter().any(|fixed| {
        version::upstream_of_package_version(fixed) == upstream && compare(version, fixed).is_ge()
    });
    if backported {
        return None;
    }
    // Report the fix on the version's own release line when there is one.
    let own_line = fixes
        .fixed
        .iter()
        .find(|fixed| version::upstream_of_package_version(fixed) == upstream);
    Some(own_line.unwrap_or(highest).clone())
}

/// ">= 3.0.0, < 3.0.8"; "all versions < 1.2.13" for an `introduced: 0`.
fn describe_range(events: &[Event]) -> String {
    let parts: Vec<String> = events
        .iter()
        .map(|event| match event {
            Event::Introduced(v) if v == "0" => "all versions".to_string(),
            Event::Introduced(v) => format!(">= {v}"),
            Event::Fixed(v) => format!("< {v}"),
            Event::LastAffected(v) => format!("<= {v}"),
            Event::Limit(v) => format!("< {v} (limit)"),
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(list: &[(&str, &str)]) -> Vec<Event> {
        list.iter()
            .map(|&(kind, v)| match kind {
                "introduced" => Event::Introduced(v.into()),
                "fixed" => Event::Fixed(v.into()),
                "last_affected" => Event::LastAffected(v.into()),
                _ => Event::Limit(v.into()),
            })
            .collect()
    }

    #[test]
    fn osv_range_semantics() {
        let compare = |a: &str, b: &str| version::compare_upstream(a, b);
        let two_branches = events(&[
            ("introduced", "0"),
            ("fixed", "1.2.3"),
            ("introduced", "2.0.0"),
            ("fixed", "2.0.5"),
        ]);
        let cases = [
            ("1.0.0", true),
            ("1.2.3", false),
            ("1.9.9", false),
            ("2.0.0", true),
            ("2.0.4", true),
            ("2.0.5", false),
            ("3.0", false),
        ];
        for (version, expected) in cases {
            assert_eq!(
                range_contains(&two_branches, version, &compare),
                expected,
                "{version}"
            );
        }

        let last_affected = events(&[("introduced", "1.0"), ("last_affected", "1.4")]);
        assert!(range_contains(&last_affected, "1.4", &compare));
        assert!(!range_contains(&last_affected, "1.4.1", &compare));
        assert!(!range_contains(&last_affected, "0.9", &compare));
        assert_eq!(
            first_fix_above(&two_branches, "2.0.1", &compare).as_deref(),
            Some("2.0.5")
        );
    }

    #[test]
    fn index_finds_by_product_and_package() {
        let advisory = |id: &str, target: Target| Advisory {
            id: id.into(),
            aliases: Vec::new(),
            format: FeedFormat::Osv,
            origin: String::new(),
            summary: None,
            severity: None,
            affected: vec![Affected {
                target,
                versions: Vec::new(),
                unaffected: Vec::new(),
            }],
            mentioned_products: Vec::new(),
        };
        let upstream = advisory(
            "A",
            Target::Product {
                name: "OpenSSL".into(),
            },
        );
        let debian = advisory(
            "B",
            Target::Package {
                ecosystem: Ecosystem::Debian,
                distribution: "Debian:12".into(),
                name: "openssl".into(),
            },
        );
        let other = advisory(
            "C",
            Target::Product {
                name: "zlib".into(),
            },
        );
        let all = [&upstream, &debian, &other];
        let index = AdvisoryIndex::new(&all);

        let library = Library {
            path: "/usr/lib/libssl.so.3".into(),
            soname: None,
            architecture: "x86_64".into(),
            kind: crate::elf::ElfKind::SharedLibrary,
            name: "openssl".into(),
            version: None,
            version_from: None,
            sources: vec![crate::inventory::VersionSource {
                source: Source::Dpkg,
                name: "libssl3".into(),
                version: "3.0.11-1".into(),
                package_source: Some("openssl".into()),
                evidence: None,
            }],
        };
        let ids: Vec<&str> = index
            .candidates(&library)
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(ids, vec!["A", "B"]);
    }

    #[test]
    fn release_must_match_system() {
        let debian = OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
        };
        let alpine = OsRelease {
            id: "alpine".into(),
            version_id: Some("3.11.6".into()),
        };
        let target = |distribution: &str| Target::Package {
            ecosystem: Ecosystem::Debian,
            distribution: distribution.into(),
            name: "zlib".into(),
        };
        assert!(release_applies(Some(&debian), &target("Debian:12")));
        assert!(!release_applies(Some(&debian), &target("Debian:11")));
        assert!(!release_applies(Some(&debian), &target("Ubuntu:22.04:LTS")));
        assert!(release_applies(Some(&debian), &target("Debian")));
        assert!(release_applies(None, &target("Debian:11")));
        assert!(release_applies(Some(&alpine), &target("Alpine v3.11/main")));
        assert!(release_applies(Some(&alpine), &target("Alpine:v3.11")));
        assert!(!release_applies(Some(&alpine), &target("Alpine:v3.1")));
        assert!(!release_applies(
            Some(&alpine),
            &target("Alpine v3.12/main")
        ));
        assert!(release_applies(
            Some(&debian),
            &Target::Product {
                name: "zlib".into()
            }
        ));
    }

    #[test]
    fn secdb_backport_fixes() {
        let compare = |a: &str, b: &str| version::compare_alpine(a, b);
        let fixes = BranchFixes {
            fixed: vec!["1.30.1-r2".into(), "1.29.3-r10".into()],
        };
        assert_eq!(
            below_branch_fix(&fixes, "1.30.1-r1", &compare).as_deref(),
            Some("1.30.1-r2")
        );
        assert_eq!(below_branch_fix(&fixes, "1.30.1-r2", &compare), None);
        assert_eq!(
            below_branch_fix(&fixes, "1.29.3-r9", &compare).as_deref(),
            Some("1.29.3-r10")
        );
        assert_eq!(below_branch_fix(&fixes, "1.29.3-r10", &compare), None);
        assert_eq!(
            below_branch_fix(&fixes, "1.28.0-r0", &compare).as_deref(),
            Some("1.30.1-r2")
        );
    }
}
