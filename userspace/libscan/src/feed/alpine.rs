//! The Alpine security database ("secdb"): for each package of one release
//! branch, the package versions that fixed each CVE. The YAML files and the
//! JSON feed share this structure.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Advisory, Affected, BranchFixes, FeedFormat, Target, Versions};
use crate::version::Ecosystem;

#[derive(Deserialize)]
struct SecurityDatabase {
    #[serde(default)]
    distroversion: Option<String>,
    #[serde(default)]
    reponame: Option<String>,
    packages: Vec<PackageEntry>,
}

#[derive(Deserialize)]
struct PackageEntry {
    pkg: PackageFixes,
}

#[derive(Deserialize)]
struct PackageFixes {
    name: String,
    /// Fixed package version → fixed ids. An empty key list is `null`.
    #[serde(default)]
    secfixes: BTreeMap<String, Option<Vec<String>>>,
}

/// Parses a YAML secdb; errors carry "line L column C".
pub(super) fn parse_yaml(data: &[u8], origin: &str) -> Result<Vec<Advisory>, (String, String)> {
    let database: SecurityDatabase = serde_yaml::from_slice(data).map_err(|error| {
        let position = error
            .location()
            .map(|location| format!("line {} column {}", location.line(), location.column()))
            .unwrap_or_default();
        (position, error.to_string())
    })?;
    Ok(advisories(database, origin))
}

pub(super) fn parse_json(data: &[u8], origin: &str) -> Result<Vec<Advisory>, serde_json::Error> {
    let database: SecurityDatabase = serde_json::from_slice(data)?;
    Ok(advisories(database, origin))
}

/// Turns the per-package fix lists into one advisory per package and id.
fn advisories(database: SecurityDatabase, origin: &str) -> Vec<Advisory> {
    let distribution = format!(
        "Alpine {}{}",
        database
            .distroversion
            .as_deref()
            .unwrap_or("(unknown branch)"),
        database
            .reponame
            .map(|name| format!("/{name}"))
            .unwrap_or_default()
    );
    let mut advisories = Vec::new();
    for entry in database.packages {
        // One id may be fixed in several versions: a backport per branch.
        let mut fixes_by_id: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for (fixed, ids) in entry.pkg.secfixes {
            // Version "0" marks ids that never affected Alpine's package.
            if fixed == "0" {
                continue;
            }
            for line in ids.unwrap_or_default() {
                // "CVE-2017-12122 TALOS-2017-0488" or "CVE-2018-14468 (FrameRelay)".
                let mut words = line.split_whitespace();
                let Some(id) = words.next() else { continue };
                let aliases = words
                    .filter(|word| !word.starts_with('('))
                    .map(str::to_string);
                let (versions, known_aliases) = fixes_by_id.entry(id.to_string()).or_default();
                versions.push(fixed.clone());
                for alias in aliases {
                    if !known_aliases.contains(&alias) {
                        known_aliases.push(alias);
                    }
                }
            }
        }
        for (id, (fixed, aliases)) in fixes_by_id {
            advisories.push(Advisory {
                id,
                aliases,
                format: FeedFormat::AlpineSecdb,
                origin: origin.to_string(),
                summary: None,
                severity: None,
                affected: vec![Affected {
                    target: Target::Package {
                        ecosystem: Ecosystem::Alpine,
                        distribution: distribution.clone(),
                        name: entry.pkg.name.clone(),
                    },
                    versions: vec![Versions::Fixes(BranchFixes { fixed })],
                    unaffected: Vec::new(),
                }],
                mentioned_products: Vec::new(),
            });
        }
    }
    advisories
}
