//! `portcullis policy ...`: policy files, offline and into the module.

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use portcullis_netlink::Client;
use portcullis_policy::{diff, generate, merge, GenerateOptions, Policy, Side};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::module_cmds;

/// Exit code of `policy diff` when the policies differ, as diff(1) does.
const EXIT_DIFFERENT: u8 = 4;

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Build a policy from the executables, shared objects and scripts of a
    /// root file system.
    Generate(GenerateArgs),
    /// Print a policy file.
    Show {
        /// Policy file to print.
        file: PathBuf,
        /// Print the policy as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare two policy files: entries added, removed and changed from OLD
    /// to NEW. Exits 0 when they are the same and 4 when they differ.
    Diff {
        /// Policy file to compare from.
        old: PathBuf,
        /// Policy file to compare to.
        new: PathBuf,
        /// Print the differences as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Combine two policy files into one.
    Merge {
        /// First policy file ("left" for --prefer).
        left: PathBuf,
        /// Second policy file ("right" for --prefer).
        right: PathBuf,
        /// Output file; standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Side that wins when a path has different entries. Without it,
        /// such a conflict is an error.
        #[arg(long, value_enum)]
        prefer: Option<Prefer>,
    },
    /// Load a policy file into the module, replacing the policy in force in
    /// one step.
    Load {
        /// Policy file to put in force.
        file: PathBuf,
    },
    /// Hash files here and add them to the policy in force.
    Add(module_cmds::AddArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Prefer {
    Left,
    Right,
}

#[derive(Args)]
pub(crate) struct GenerateArgs {
    /// Root of the file system: an unpacked image or /.
    #[arg(long)]
    root: PathBuf,
    /// Output file; standard output when absent.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Directories under the root not to walk, as seen on the device.
    #[arg(long)]
    skip: Vec<PathBuf>,
    /// Hashing threads; all cores by default.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Print a JSON summary on standard error instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: PolicyCommand) -> Result<ExitCode> {
    match command {
        PolicyCommand::Generate(args) => generate_cmd(args),
        PolicyCommand::Show { file, json } => show(file, json),
        PolicyCommand::Diff { old, new, json } => diff_cmd(old, new, json),
        PolicyCommand::Merge {
            left,
            right,
            output,
            prefer,
        } => merge_cmd(left, right, output, prefer),
        PolicyCommand::Load { file } => load(file),
        PolicyCommand::Add(args) => module_cmds::policy_add(args),
    }
}

fn write_policy(policy: &Policy, output: Option<&PathBuf>) -> Result<()> {
    match output {
        Some(path) => policy
            .save_atomic(path)
            .with_context(|| format!("writing {}", path.display())),
        None => {
            println!("{}", policy.to_json());
            Ok(())
        }
    }
}

fn generate_cmd(args: GenerateArgs) -> Result<ExitCode> {
    let mut options = GenerateOptions::default();
    options.skip.extend(args.skip.iter().cloned());
    options.threads = args.threads;

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{spinner} hashing {pos}/{len} files {bytes_per_sec} {elapsed}")
                .expect("valid progress template"),
        )
    };
    let started = Instant::now();
    let generated = generate(&args.root, &options, |progress| {
        bar.set_length(progress.files_total);
        bar.set_position(progress.files_done);
    })
    .with_context(|| format!("generating a policy from {}", args.root.display()))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    for warning in &generated.warnings {
        eprintln!("portcullis: warning: {warning}");
    }
    write_policy(&generated.policy, args.output.as_ref())?;

    let counts = &generated.counts;
    if args.json {
        let summary = json!({
            "root": args.root,
            "entries": generated.policy.len(),
            "files_seen": counts.files_seen,
            "files_hashed": counts.files_hashed,
            "files_skipped": counts.files_skipped,
            "bytes_hashed": counts.bytes_hashed,
            "warnings": generated.warnings.len(),
            "seconds": seconds,
        });
        eprintln!("{summary}");
    } else {
        eprintln!(
            "generated {} entries from {} files ({} MB hashed) in {seconds:.1}s with {} warnings",
            generated.policy.len(),
            counts.files_seen,
            counts.bytes_hashed / 1_000_000,
            generated.warnings.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show(file: PathBuf, json: bool) -> Result<ExitCode> {
    let policy = Policy::load(&file)?;
    if json {
        println!("{}", policy.to_json());
        return Ok(ExitCode::SUCCESS);
    }
    println!("generator: {}", policy.generator);
    println!("root:      {}", policy.root);
    println!("created:   {}", humantime::format_rfc3339_seconds(policy.created));
    println!("entries:   {}", policy.len());
    for entry in policy.entries() {
        let bound = if entry.path_bound { " path-bound" } else { "" };
        println!("{} {:<17} {}{bound}", entry.sha256, entry.kind.to_string(), entry.path);
    }
    Ok(ExitCode::SUCCESS)
}

fn diff_cmd(old: PathBuf, new: PathBuf, json: bool) -> Result<ExitCode> {
    let old_policy = Policy::load(&old)?;
    let new_policy = Policy::load(&new)?;
    let result = diff(&old_policy, &new_policy);
    if json {
        let describe = |e: &portcullis_policy::Entry| json!({"path": e.path, "sha256": e.sha256.to_hex(), "kind": e.kind.to_string()});
        let out = json!({
            "added": result.added.iter().map(describe).collect::<Vec<_>>(),
            "removed": result.removed.iter().map(describe).collect::<Vec<_>>(),
            "changed": result.changed.iter().map(|c| json!({
                "path": c.new.path, "old_sha256": c.old.sha256.to_hex(), "new_sha256": c.new.sha256.to_hex()
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for entry in &result.added {
            println!("+ {} {}", entry.sha256, entry.path);
        }
        for entry in &result.removed {
            println!("- {} {}", entry.sha256, entry.path);
        }
        for change in &result.changed {
            println!("~ {} -> {} {}", change.old.sha256, change.new.sha256, change.new.path);
        }
    }
    if result.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(EXIT_DIFFERENT))
    }
}

fn merge_cmd(left: PathBuf, right: PathBuf, output: Option<PathBuf>, prefer: Option<Prefer>) -> Result<ExitCode> {
    let left_policy = Policy::load(&left)?;
    let right_policy = Policy::load(&right)?;
    let side = prefer.map(|p| match p {
        Prefer::Left => Side::Left,
        Prefer::Right => Side::Right,
    });
    let merged = merge(&left_policy, &right_policy, side)
        .with_context(|| format!("merging {} and {}; choose a side with --prefer", left.display(), right.display()))?;
    for conflict in &merged.resolved {
        eprintln!("portcullis: conflict resolved by --prefer: {conflict}");
    }
    write_policy(&merged.policy, output.as_ref())?;
    Ok(ExitCode::SUCCESS)
}

fn load(file: PathBuf) -> Result<ExitCode> {
    let policy = Policy::load(&file)?;
    let entries = portcullisd::module_entries(&policy);
    let generation = Client::connect()?
        .replace_policy(&entries)
        .with_context(|| format!("loading {} into the module", file.display()))?;
    println!("loaded {} entries from {}; policy generation {generation}", entries.len(), file.display());
    Ok(ExitCode::SUCCESS)
}
