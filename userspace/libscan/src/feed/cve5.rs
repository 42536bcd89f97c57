//! CVE records in the CVE JSON 5 format, as the CVE list publishes them:
//! affected vendor, product and version ranges from the CNA, and often a
//! second set from an ADP container such as CISA's.

use serde::Deserialize;
use serde_json::Value;

use super::{products_in_text, Advisory, Affected, Event, FeedFormat, Target, Versions};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    cve_metadata: Metadata,
    containers: Containers,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    cve_id: String,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
struct Containers {
    cna: Container,
    #[serde(default)]
    adp: Vec<Container>,
}

#[derive(Deserialize)]
struct Container {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    affected: Vec<RecordAffected>,
    #[serde(default)]
    descriptions: Vec<Description>,
    #[serde(default)]
    metrics: Vec<Value>,
}

#[derive(Deserialize)]
struct Description {
    #[serde(default)]
    lang: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordAffected {
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    package_name: Option<String>,
    #[serde(default)]
    default_status: Option<String>,
    #[serde(default)]
    versions: Vec<RecordVersion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordVersion {
    version: String,
    status: String,
    #[serde(default)]
    less_than: Option<String>,
    #[serde(default)]
    less_than_or_equal: Option<String>,
}

/// Parses one record; a rejected record gives no advisory.
pub(super) fn parse(data: &[u8], origin: &str) -> Result<Option<Advisory>, serde_json::Error> {
    let record: Record = serde_json::from_slice(data)?;
    if record.cve_metadata.state.as_deref() == Some("REJECTED") {
        return Ok(None);
    }
    let cna = &record.containers.cna;

    // The CNA's entries come first; an ADP's are used when the CNA named no
    // product (CISA adds structured ranges to many "n/a" records).
    let mut affected = entries(&cna.affected, "");
    if affected.is_empty() {
        for adp in &record.containers.adp {
            let label = adp.title.as_deref().unwrap_or("ADP");
            affected.extend(entries(&adp.affected, label));
        }
    }

    let description = cna
        .descriptions
        .iter()
        .find(|d| d.lang.starts_with("en"))
        .or(cna.descriptions.first())
        .map(|d| d.value.clone());
    let mentioned_products = match (&description, affected.is_empty()) {
        (Some(text), true) => products_in_text(text),
        _ => Vec::new(),
    };

    let containers = std::iter::once(cna).chain(record.containers.adp.iter());
    let severity = containers
        .clone()
        .find_map(|c| cvss_severity(&c.metrics))
        .or_else(|| containers.clone().find_map(|c| text_severity(&c.metrics)));

    Ok(Some(Advisory {
        id: record.cve_metadata.cve_id,
        aliases: Vec::new(),
        format: FeedFormat::Cve5,
        origin: origin.to_string(),
        summary: cna
            .title
            .clone()
            .or(description.map(|text| first_sentence(&text))),
        severity,
        affected,
        mentioned_products,
    }))
}

/// "n/a" and empty names stand for "not stated".
fn stated(name: &Option<String>) -> Option<&str> {
    name.as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty() && !name.eq_ignore_ascii_case("n/a"))
}

fn entries(affected: &[RecordAffected], container: &str) -> Vec<Affected> {
    let mut result = Vec::new();
    for entry in affected {
        let Some(product) = stated(&entry.product).or(stated(&entry.package_name)) else {
            continue;
        };
        let (mut versions, unaffected) = ranges(entry);
        if versions.is_empty() && entry.default_status.as_deref() == Some("affected") {
            versions.push(Versions::NeedsReview {
                reason: "the record marks every version affected by default and lists no range"
                    .to_string(),
            });
        }
        if !container.is_empty() {
            for version in &mut versions {
                if let Versions::NeedsReview { reason } = version {
                    reason.push_str(&format!(" (from the {container} container)"));
                }
            }
        }
        let vendor = stated(&entry.vendor).unwrap_or("");
        let name = if crate::catalogue::by_name(product).is_none()
            && crate::catalogue::by_name(vendor).is_some()
        {
            vendor
        } else {
            product
        };
        result.push(Affected {
            target: Target::Product {
                name: name.to_string(),
            },
            versions,
            unaffected,
        });
    }
    result
}

/// True for strings a version comparison can use: no spaces, a digit.
fn is_version(text: &str) -> bool {
    !text.is_empty()
        && text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_+~:".contains(c))
}

/// Splits the version entries into affected and unaffected ranges.
fn ranges(entry: &RecordAffected) -> (Vec<Versions>, Vec<Versions>) {
    let mut affected = Vec::new();
    let mut unaffected = Vec::new();
    for version in &entry.versions {
        let start = version.version.trim();
        let range = match (&version.less_than, &version.less_than_or_equal) {
            (Some(end), _) => Some((end.trim(), false)),
            (None, Some(end)) => Some((end.trim(), true)),
            (None, None) => None,
        };
        let start_is_open = matches!(start, "0" | "*" | "");

        let parsed = match range {
            Some((end, _)) if !is_version(end) || (!start_is_open && !is_version(start)) => {
                Err(format!("the range \"{start}\" to \"{end}\" is not in a version form a program can compare"))
            }
            // A range from X to below X contains no version: the record's
            // author meant something else, so a person has to read it.
            Some((end, false)) if !start_is_open && crate::version::compare_upstream(start, end).is_ge() => {
                Err(format!("the range from {start} to less than {end} is empty"))
            }
            Some((end, inclusive)) => {
                let introduced = if start_is_open { "0".to_string() } else { start.to_string() };
                let end_event = if inclusive { Event::LastAffected(end.to_string()) } else { Event::Fixed(end.to_string()) };
                Ok(Versions::Range { events: vec![Event::Introduced(introduced), end_event] })
            }
            None if is_version(start) => Ok(Versions::Exact { versions: vec![start.to_string()] }),
            None => Err(format!("the version is given as text: \"{start}\"")),
        };

        match (version.status.as_str(), parsed) {
            ("affected", Ok(versions)) => affected.push(versions),
            ("affected", Err(reason)) => affected.push(Versions::NeedsReview { reason }),
            ("unaffected", Ok(versions)) => unaffected.push(versions),
            ("unknown", _) => affected.push(Versions::NeedsReview {
                reason: format!("the record gives the status of {start} as unknown"),
            }),
            // An unreadable "unaffected" range only narrows a match; dropping
            // it can report more, never less.
            _ => {}
        }
    }
    (affected, unaffected)
}

/// "HIGH 7.5 (CVSS 3.1)" from the first CVSS metric present.
fn cvss_severity(metrics: &[Value]) -> Option<String> {
    for metric in metrics {
        for (key, label) in [
            ("cvssV4_0", "4.0"),
            ("cvssV3_1", "3.1"),
            ("cvssV3_0", "3.0"),
            ("cvssV2_0", "2.0"),
        ] {
            let Some(cvss) = metric.get(key) else {
                continue;
            };
            let score = cvss.get("baseScore").and_then(Value::as_f64);
            let level = cvss.get("baseSeverity").and_then(Value::as_str);
            match (level, score) {
                (Some(level), Some(score)) => {
                    return Some(format!("{level} {score} (CVSS {label})"))
                }
                (None, Some(score)) => return Some(format!("{score} (CVSS {label})")),
                (Some(level), None) => return Some(format!("{level} (CVSS {label})")),
                (None, None) => {}
            }
        }
    }
    None
}

/// Returns a vendor's own rating ("High" on OpenSSL's scale), from an `other` metric
/// whose content is a text or value field.
fn text_severity(metrics: &[Value]) -> Option<String> {
    for metric in metrics {
        let Some(content) = metric.get("other").and_then(|other| other.get("content")) else {
            continue;
        };
        if let Some(text) = content
            .get("text")
            .or_else(|| content.get("value"))
            .and_then(Value::as_str)
        {
            return Some(text.to_string());
        }
    }
    None
}

fn first_sentence(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    match line.find(". ") {
        Some(end) => line[..=end].to_string(),
        None => line.to_string(),
    }
}
