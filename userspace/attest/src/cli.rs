//! The `attest` subcommands of the operator CLI: check rules, measure, and
//! run the device agent by hand (register, baseline, upload, challenge).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::agent::{Agent, AgentConfig};
use crate::collector::host_name;
use crate::measure::{self, DigestCache, Stats};
use crate::rules::{Rules, DEFAULT_RULES_PATH};

/// Exit status of `challenge` when the verifier names differing files.
pub const EXIT_UNTRUSTED: u8 = 2;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse a rules file and print what it selects.
    CheckRules {
        #[arg(long, default_value = DEFAULT_RULES_PATH)]
        rules: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Measure what the rules select and print the Merkle root.
    Measure {
        #[arg(long, default_value = DEFAULT_RULES_PATH)]
        rules: PathBuf,
        /// Print every measurement, not only the summary.
        #[arg(long)]
        list: bool,
        #[arg(long)]
        json: bool,
    },
    /// Register this device with the verifier and store its device key.
    Register {
        #[command(flatten)]
        agent: AgentArgs,
        /// One-time token from `portcullis-verifier enrol` on the verifier.
        #[arg(long)]
        enrolment_token: Option<String>,
    },
    /// Measure a baseline, store it, and upload it to the verifier.
    Baseline {
        #[command(flatten)]
        agent: AgentArgs,
        #[arg(long, default_value = DEFAULT_RULES_PATH)]
        rules: PathBuf,
        /// Replace a baseline the verifier already acknowledged.
        #[arg(long)]
        replace: bool,
        /// Store the baseline without uploading it.
        #[arg(long)]
        no_upload: bool,
    },
    /// Upload the stored baseline that the verifier has not acknowledged.
    Upload {
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Fetch a challenge, measure, answer it, and print the verdict.
    /// Exits with status 2 when the device is not trusted.
    Challenge {
        #[command(flatten)]
        agent: AgentArgs,
        #[arg(long, default_value = DEFAULT_RULES_PATH)]
        rules: PathBuf,
        /// Also write the answer sent to this file.
        #[arg(long)]
        save_answer: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print the stored registration and baseline state.
    Status {
        #[arg(long, default_value = "/var/lib/portcullis/attest")]
        state_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Verifier base URL, https://host:port.
    #[arg(long)]
    verifier: String,
    /// PEM file with the CA certificates trusted for the verifier.
    #[arg(long)]
    ca: PathBuf,
    /// Device id at the verifier [default: the host name].
    #[arg(long)]
    device_id: Option<String>,
    #[arg(long, default_value = "/var/lib/portcullis/attest")]
    state_dir: PathBuf,
    /// Attempts per request while the verifier is unreachable.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Milliseconds before the first retry; doubles up to 60 s.
    #[arg(long, default_value_t = 1000)]
    backoff_ms: u64,
}

impl AgentArgs {
    fn agent(&self) -> Result<Agent> {
        let device_id = match &self.device_id {
            Some(id) => id.clone(),
            None => host_name()?,
        };
        let config = AgentConfig {
            verifier_url: self.verifier.clone(),
            ca_file: self.ca.clone(),
            device_id,
            state_dir: self.state_dir.clone(),
            attempts: self.attempts.max(1),
            first_backoff: Duration::from_millis(self.backoff_ms),
        };
        Agent::new(config, Arc::new(AtomicBool::new(false)))
    }
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::CheckRules { rules, json } => check_rules(&rules, json),
        Command::Measure { rules, list, json } => measure_command(&rules, list, json),
        Command::Register {
            agent,
            enrolment_token,
        } => {
            let device = agent.agent()?.register(enrolment_token.as_deref())?;
            println!("registered device {}", device.device_id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Baseline {
            agent,
            rules,
            replace,
            no_upload,
        } => baseline(&agent, &rules, replace, no_upload),
        Command::Upload { agent } => {
            let ack = agent.agent()?.upload_baseline()?;
            println!(
                "verifier acknowledged baseline {} ({} entries)",
                ack.root, ack.entries
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Challenge {
            agent,
            rules,
            save_answer,
            json,
        } => challenge(&agent, &rules, save_answer.as_deref(), json),
        Command::Status { state_dir, json } => status(&state_dir, json),
    }
}

fn check_rules(path: &Path, json: bool) -> Result<ExitCode> {
    let rules = Rules::load(path)?;
    if json {
        let selections: Vec<_> = rules
            .selections
            .iter()
            .map(|s| json!({"path": s.path, "depth": format!("{:?}", s.depth).to_lowercase()}))
            .collect();
        let value = json!({
            "enabled": !rules.is_empty(),
            "algorithm": rules.algorithm,
            "attributes": rules.attributes,
            "selections": selections,
            "excludes": rules.excludes,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if rules.is_empty() {
        println!("{}: no rules, attestation is off", path.display());
    } else {
        println!(
            "{}: {} selections, {} excludes, hash {}",
            path.display(),
            rules.selections.len(),
            rules.excludes.len(),
            rules.algorithm
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(show: bool) -> indicatif::ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} paths {elapsed}")
            .expect("template is valid"),
    );
    bar
}

fn measure_command(path: &Path, list: bool, json: bool) -> Result<ExitCode> {
    let rules = Rules::load(path)?;
    let bar = progress_bar(true);
    let started = Instant::now();
    let output = measure::measure(&rules, &DigestCache::default(), &|_, total| {
        // Workers finish out of order, so count up instead of setting
        // `done`, which could move the bar backwards.
        bar.set_length(total);
        bar.inc(1);
    });
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let root = hex::encode(output.list.tree().root());

    if json {
        let mut value = json!({
            "algorithm": rules.algorithm,
            "root": root,
            "entries": output.list.entries.len(),
            "stats": output.stats,
            "seconds": elapsed.as_secs_f64(),
        });
        if list {
            value["list"] = serde_json::to_value(&output.list.entries)?;
        }
        println!("{}", serde_json::to_string(&value)?);
    } else {
        if list {
            for entry in &output.list.entries {
                println!(
                    "{} {:?} {}",
                    entry.digest.as_deref().unwrap_or("-"),
                    entry.kind,
                    entry.path
                );
            }
        }
        print_stats(&output.stats, elapsed);
        println!("root {}:{root}", rules.algorithm);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stats(stats: &Stats, elapsed: Duration) {
    println!(
        "{} paths, {} files hashed ({} bytes), {} from cache, {} missing, {} unreadable, in {:.3} s",
        stats.paths, stats.files_hashed, stats.bytes_hashed, stats.files_from_cache, stats.missing, stats.unreadable,
        elapsed.as_secs_f64()
    );
}

fn baseline(
    args: &AgentArgs,
    rules_path: &Path,
    replace: bool,
    no_upload: bool,
) -> Result<ExitCode> {
    let rules = Rules::load(rules_path)?;
    if rules.is_empty() {
        println!(
            "{}: no rules, attestation is off; no baseline made",
            rules_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let agent = args.agent()?;
    let bar = progress_bar(true);
    let started = Instant::now();
    let (stored, stats) = agent.make_baseline(&rules, replace, &|_, total| {
        // Workers finish out of order, so count up instead of setting
        // `done`, which could move the bar backwards.
        bar.set_length(total);
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    print_stats(&stats, started.elapsed());
    println!(
        "stored baseline {} of {} entries",
        stored.root,
        stored.list.entries.len()
    );
    if no_upload {
        return Ok(ExitCode::SUCCESS);
    }

    let ack = agent.upload_baseline()?;
    println!(
        "verifier acknowledged baseline {} ({} entries)",
        ack.root, ack.entries
    );
    Ok(ExitCode::SUCCESS)
}

fn challenge(
    args: &AgentArgs,
    rules_path: &Path,
    save_answer: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let rules = Rules::load(rules_path)?;
    let agent = args.agent()?;
    let started = Instant::now();
    let (verdict, stats) = agent.answer_challenge(&rules, save_answer)?;
    if json {
        println!(
            "{}",
            serde_json::to_string(
                &json!({"verdict": verdict, "stats": stats, "seconds": started.elapsed().as_secs_f64()})
            )?
        );
    } else {
        print_stats(&stats, started.elapsed());
        if verdict.trusted {
            println!("trusted");
        } else {
            println!("untrusted");
            for (label, paths) in [
                ("changed", &verdict.changed),
                ("added", &verdict.added),
                ("removed", &verdict.removed),
            ] {
                for path in paths {
                    println!("{label} {path}");
                }
            }
        }
    }
    Ok(if verdict.trusted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNTRUSTED)
    })
}

fn status(state_dir: &Path, json: bool) -> Result<ExitCode> {
    let device: Option<crate::agent::DeviceState> =
        crate::agent::read_json(&state_dir.join("device.json"))?;
    let baseline: Option<crate::agent::StoredBaseline> =
        crate::agent::read_json(&state_dir.join("baseline.json"))?;
    let answered: Vec<String> =
        crate::agent::read_json(&state_dir.join("answered.json"))?.unwrap_or_default();
    let value = json!({
        "device_id": device.as_ref().map(|d| d.device_id.clone()),
        "baseline_root": baseline.as_ref().map(|b| b.root.clone()),
        "baseline_entries": baseline.as_ref().map(|b| b.list.entries.len()),
        "baseline_acknowledged": baseline.as_ref().map(|b| b.acknowledged),
        "nonces_answered": answered.len(),
    });
    if json {
        println!("{}", serde_json::to_string(&value)?);
    } else {
        match &device {
            Some(device) => println!("device {} registered", device.device_id),
            None => println!("device not registered"),
        }
        match &baseline {
            Some(b) => println!(
                "baseline {} of {} entries, {}",
                b.root,
                b.list.entries.len(),
                if b.acknowledged {
                    "acknowledged"
                } else {
                    "not yet acknowledged"
                }
            ),
            None => println!("no baseline"),
        }
        println!("{} nonces answered", answered.len());
    }
    Ok(ExitCode::SUCCESS)
}
