//! The scan report: the inventory with the findings for each library, as
//! JSON for programs and as a table for operators.

use std::fmt::Write as _;

use serde::Serialize;

use crate::feed::{Advisory, FeedStore};
use crate::inventory::{Inventory, Library, OsRelease, SkippedFile};
use crate::matching::{self, Finding, FindingStatus};

/// One library and what applies to it.
#[derive(Debug, Clone, Serialize)]
pub struct LibraryReport {
    #[serde(flatten)]
    pub library: Library,
    /// False when no source gave a version: such a library has no findings
    /// because nothing could be compared, not because nothing applies.
    pub version_known: bool,
    pub findings: Vec<Finding>,
}

/// One feed file in use.
#[derive(Debug, Clone, Serialize)]
pub struct FeedSummary {
    pub file: String,
    pub advisories: usize,
}

/// Counts over the whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub libraries: usize,
    pub unknown_versions: usize,
    pub vulnerable_libraries: usize,
    pub affected_findings: usize,
    pub needs_review_findings: usize,
}

/// A complete scan report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub root: String,
    pub os_release: Option<OsRelease>,
    pub package_databases: Vec<String>,
    pub feeds: Vec<FeedSummary>,
    pub libraries: Vec<LibraryReport>,
    pub skipped: Vec<SkippedFile>,
    /// Advisories that name no product in structured form and no known
    /// product in their description, so no library could be tied to them.
    pub unattributed: Vec<String>,
    /// Feed files rejected in this scan; the daemon matched against their
    /// last good copies where it had one.
    pub feed_errors: Vec<String>,
    pub files_examined: usize,
    pub files_parsed: usize,
    pub totals: Totals,
}

impl Report {
    /// Matches the inventory against the advisories in `feeds`.
    pub fn build(inventory: Inventory, feeds: &FeedStore) -> Report {
        let advisories: Vec<&Advisory> = feeds.advisories().collect();
        let unattributed = advisories
            .iter()
            .filter(|advisory| {
                advisory.affected.is_empty() && advisory.mentioned_products.is_empty()
            })
            .map(|advisory| format!("{} ({})", advisory.id, advisory.origin))
            .collect();
        let mut totals = Totals::default();
        let mut libraries = Vec::new();
        let index = matching::AdvisoryIndex::new(&advisories);
        for library in inventory.libraries {
            let candidates = index.candidates(&library);
            let findings =
                matching::findings_for_system(&library, &candidates, inventory.os_release.as_ref());
            let version_known = library.version.is_some();
            let affected = findings
                .iter()
                .filter(|f| f.status == FindingStatus::Affected)
                .count();

            totals.libraries += 1;
            totals.unknown_versions += usize::from(!version_known);
            totals.vulnerable_libraries += usize::from(affected > 0);
            totals.affected_findings += affected;
            totals.needs_review_findings += findings.len() - affected;
            libraries.push(LibraryReport {
                library,
                version_known,
                findings,
            });
        }
        Report {
            root: inventory.root,
            os_release: inventory.os_release,
            package_databases: inventory.package_databases,
            feeds: feeds
                .summary()
                .into_iter()
                .map(|(file, advisories)| FeedSummary { file, advisories })
                .collect(),
            libraries,
            skipped: inventory.skipped,
            unattributed,
            feed_errors: Vec::new(),
            files_examined: inventory.files_examined,
            files_parsed: inventory.files_parsed,
            totals,
        }
    }

    /// Renders the report as an aligned text table, one row per library,
    /// with its findings on indented lines below it.
    pub fn to_table(&self) -> String {
        let header = ["NAME", "VERSION", "FROM", "ARCH", "PATH", "STATUS"];
        let matched = !self.feeds.is_empty();
        let rows: Vec<[String; 6]> = self
            .libraries
            .iter()
            .map(|report| row(report, matched))
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }

        let mut out = String::new();
        let line = |cells: &[&str], out: &mut String| {
            let mut text = String::new();
            for (index, cell) in cells.iter().enumerate() {
                if index + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<width$}  ", width = widths[index]);
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&header, &mut out);
        for (report, row) in self.libraries.iter().zip(&rows) {
            line(&row.each_ref().map(String::as_str), &mut out);
            for finding in &report.findings {
                let status = match finding.status {
                    FindingStatus::Affected => "affected",
                    FindingStatus::NeedsReview => "needs review",
                };
                let severity = finding
                    .severity
                    .as_deref()
                    .map(|s| format!(" [{s}]"))
                    .unwrap_or_default();
                let fixed = finding
                    .fixed
                    .as_deref()
                    .map(|f| format!(", fixed in {f}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    {} {status}{severity}{fixed}: {}",
                    finding.advisory, finding.reason
                );
            }
        }

        for error in &self.feed_errors {
            let _ = writeln!(out, "feed error: {error}");
        }
        for advisory in &self.unattributed {
            let _ = writeln!(out, "needs review, no product named: {advisory}");
        }

        let totals = &self.totals;
        let _ = writeln!(
            out,
            "\n{} libraries, {} with unknown version, {} vulnerable ({} findings), {} findings to review; {} feed files, {} files skipped",
            totals.libraries,
            totals.unknown_versions,
            totals.vulnerable_libraries,
            totals.affected_findings,
            totals.needs_review_findings,
            self.feeds.len(),
            self.skipped.len()
        );
        out
    }
}

fn row(report: &LibraryReport, matched: bool) -> [String; 6] {
    let library = &report.library;
    let affected = report
        .findings
        .iter()
        .filter(|f| f.status == FindingStatus::Affected)
        .count();
    let review = report.findings.len() - affected;
    let counts = match (affected, review) {
        _ if !matched => String::new(),
        (0, 0) => "no known advisory".to_string(),
        (0, review) => format!("{review} to review"),
        (affected, 0) => format!("{affected} affected"),
        (affected, review) => format!("{affected} affected, {review} to review"),
    };
    let status = match (report.version_known, counts.is_empty()) {
        (false, true) => "version unknown".to_string(),
        (false, false) => format!("version unknown, {counts}"),
        (true, true) => "-".to_string(),
        (true, false) => counts,
    };
    [
        library.name.clone(),
        library
            .version
            .clone()
            .unwrap_or_else(|| "unknown".to_string()),
        library
            .version_from
            .map(|source| source.as_str().to_string())
            .unwrap_or_else(|| "-".to_string()),
        library.architecture.clone(),
        library.path.clone(),
        status,
    ]
}
