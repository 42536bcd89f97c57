//! The `portcullis libscan` subcommands.
//!
//! `scan` exits with 0 when no library is affected by a known advisory, and
//! findings that need review alone do not change that. It exits with 1 when
//! at least one library is affected, and with 2 on an error such as an
//! invalid feed or an unreadable root. `inventory` and `check-feeds` exit
//! with 0 or 2.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cache::FileCache;
use crate::feed;
use crate::inventory::{self, Executables, ScanOptions};
use crate::report::Report;

/// Operator commands for the library inventory and vulnerability matching.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Scan libraries and match them against vulnerability feeds.
    Scan {
        #[command(flatten)]
        target: TargetArgs,
        /// Feed file or directory of feed files: OSV JSON or zip, Alpine
        /// secdb YAML or JSON, CVE JSON 5. Repeatable.
        #[arg(long = "feed", value_name = "PATH", required = true)]
        feeds: Vec<PathBuf>,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List libraries and the version each source gives, without matching.
    Inventory {
        #[command(flatten)]
        target: TargetArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Parse feed files and count their advisories, without scanning.
    CheckFeeds {
        /// Feed file or directory of feed files. Repeatable.
        #[arg(long = "feed", value_name = "PATH", required = true)]
        feeds: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Scan target, shared by `scan` and `inventory`.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Root of the file system to scan, such as an unpacked image.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Directory under the root to scan, instead of the standard library
    /// and program directories. Repeatable.
    #[arg(long = "directory", value_name = "DIR")]
    directories: Vec<String>,
    /// Programs to list besides shared libraries.
    #[arg(long, value_enum, default_value_t = Executables::Known)]
    executables: Executables,
    /// Cache file of per-file results; files unchanged since it was written
    /// are not parsed again.
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
}

/// Runs one subcommand. Errors are printed here and turned into exit code
/// 2, so `scan` keeps 1 for "vulnerable".
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match run_command(command) {
        Ok(code) => Ok(code),
        Err(error) => {
            eprintln!("portcullis libscan: {error:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn run_command(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Scan {
            target,
            feeds,
            json,
        } => {
            let feeds = feed::load_all(&feeds)?;
            let inventory = scan_target(&target)?;
            let report = Report::build(inventory, &feeds);
            print_output(json, &report, || report.to_table())?;
            Ok(ExitCode::from(if report.totals.vulnerable_libraries > 0 {
                1
            } else {
                0
            }))
        }
        Command::Inventory { target, json } => {
            let inventory = scan_target(&target)?;
            // Matching against no feed gives the same table without findings.
            let report = Report::build(inventory, &feed::FeedStore::new());
            if json {
                println!("{}", serde_json::to_string_pretty(&report.libraries)?);
            } else {
                print!("{}", report.to_table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckFeeds { feeds, json } => {
            let store = feed::load_all(&feeds)?;
            let summary: Vec<serde_json::Value> = store
                .summary()
                .into_iter()
                .map(|(file, advisories)| serde_json::json!({"file": file, "advisories": advisories}))
                .collect();
            print_output(json, &summary, || {
                summary
                    .iter()
                    .map(|entry| {
                        format!(
                            "{}: {} advisories\n",
                            entry["file"].as_str().unwrap_or(""),
                            entry["advisories"]
                        )
                    })
                    .collect()
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn scan_target(target: &TargetArgs) -> anyhow::Result<inventory::Inventory> {
    if !target.root.is_dir() {
        anyhow::bail!("root {} is not a directory", target.root.display());
    }
    crate::priority::lower(10, true);

    let mut options = ScanOptions::new(&target.root);
    if !target.directories.is_empty() {
        options.directories = target.directories.clone();
    }
    options.executables = target.executables;

    let mut cache = match &target.cache {
        Some(path) => FileCache::load(path),
        None => FileCache::new(),
    };
    let inventory = inventory::scan(&options, &mut cache)?;
    if let Some(path) = &target.cache {
        cache.save(path)?;
    }
    Ok(inventory)
}

fn print_output<T: serde::Serialize>(
    json: bool,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", table());
    }
    Ok(())
}
