//! OSV records (the Open Source Vulnerability schema), as published per
//! advisory by OSV.dev and the distributions that feed it.

use serde::Deserialize;

use super::{Advisory, Affected, Event, FeedFormat, Target, Versions};
use crate::version::Ecosystem;

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    severity: Vec<Severity>,
    #[serde(default)]
    affected: Vec<RecordAffected>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
    #[serde(default)]
    withdrawn: Option<String>,
}

#[derive(Deserialize)]
struct Severity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RecordAffected {
    package: Option<Package>,
    #[serde(default)]
    ranges: Vec<Range>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Package {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct Range {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<RangeEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RangeEvent {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// Returns the `severity` string a `database_specific` or `ecosystem_specific`
/// object carries (GitHub and Ubuntu records use one).
fn text_severity(value: &Option<serde_json::Value>) -> Option<String> {
    let value = value.as_ref()?.get("severity")?;
    value.as_str().map(str::to_string)
}

pub(super) fn parse(data: &[u8], origin: &str) -> Result<Advisory, serde_json::Error> {
    let record: Record = serde_json::from_slice(data)?;

    let mut severity = text_severity(&record.database_specific);
    let mut affected = Vec::new();
    for entry in &record.affected {
        severity = severity
            .or_else(|| text_severity(&entry.ecosystem_specific))
            .or_else(|| text_severity(&entry.database_specific));
        let Some(package) = &entry.package else {
            continue;
        };
        affected.push(Affected {
            target: target(package),
            versions: versions(entry),
            unaffected: Vec::new(),
        });
    }
    let severity = severity.or_else(|| {
        record
            .severity
            .first()
            .map(|s| format!("{} {}", s.kind, s.score))
    });

    // A withdrawn record no longer claims anything.
    if record.withdrawn.is_some() {
        affected.clear();
    }
    Ok(Advisory {
        id: record.id,
        aliases: record.aliases,
        format: FeedFormat::Osv,
        origin: origin.to_string(),
        summary: record.summary,
        severity,
        affected,
        mentioned_products: Vec::new(),
    })
}

/// Distribution ecosystems ("Debian:12", "Alpine:v3.18", "Ubuntu:22.04")
/// name packages; any other names an upstream project.
fn target(package: &Package) -> Target {
    let family = package.ecosystem.split(':').next().unwrap_or("");
    let ecosystem = match family {
        "Debian" | "Ubuntu" => Some(Ecosystem::Debian),
        "Alpine" => Some(Ecosystem::Alpine),
        _ => None,
    };
    match ecosystem {
        Some(ecosystem) => Target::Package {
            ecosystem,
            distribution: package.ecosystem.clone(),
            name: package.name.clone(),
        },
        None => Target::Product {
            name: package.name.clone(),
        },
    }
}

fn versions(entry: &RecordAffected) -> Vec<Versions> {
    let mut versions = Vec::new();
    for range in &entry.ranges {
        if range.kind == "GIT" {
            // Commit ranges need the project's history, which a device lacks;
            // the explicit version list, if any, is evaluated below.
            if entry.versions.is_empty() {
                versions.push(Versions::NeedsReview {
                    reason: "the record gives only git commit ranges".to_string(),
                });
            }
            continue;
        }
        let events = range
            .events
            .iter()
            .map(|event| match event {
                RangeEvent::Introduced(v) => Event::Introduced(v.clone()),
                RangeEvent::Fixed(v) => Event::Fixed(v.clone()),
                RangeEvent::LastAffected(v) => Event::LastAffected(v.clone()),
                RangeEvent::Limit(v) => Event::Limit(v.clone()),
            })
            .collect();
        versions.push(Versions::Range { events });
    }
    if !entry.versions.is_empty() {
        versions.push(Versions::Exact {
            versions: entry.versions.clone(),
        });
    }
    versions
}
