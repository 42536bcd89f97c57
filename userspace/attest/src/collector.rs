//! The attestation collector that portcullisd runs on its own thread:
//! register, make and upload the baseline, then answer a challenge every
//! interval until its stop flag is set.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::agent::{sleep_unless_stopped, Agent, AgentConfig};
use crate::rules::{Rules, DEFAULT_RULES_PATH};

/// The `attest` section of /etc/portcullis/portcullis.json.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Runs the collector at all; a rules file with no rules also turns it off.
    pub enabled: bool,
    /// Verifier base URL, `https://host:port`; required when enabled.
    pub verifier_url: String,
    /// PEM file with the CA certificates trusted for the verifier.
    pub ca_file: PathBuf,
    /// Device id at the verifier; the host name when empty.
    pub device_id: String,
    pub rules_file: PathBuf,
    pub state_dir: PathBuf,
    /// File with the one-time enrolment token from the operator, for a
    /// verifier that requires one; read only until the device is registered.
    pub enrolment_token_file: Option<PathBuf>,
    /// Seconds between challenges.
    pub interval_secs: u64,
    /// Seconds before the first retry of a failed request; doubles up to 60.
    pub retry_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: false,
            verifier_url: String::new(),
            ca_file: PathBuf::from("/etc/portcullis/verifier-ca.pem"),
            device_id: String::new(),
            rules_file: PathBuf::from(DEFAULT_RULES_PATH),
            state_dir: PathBuf::from("/var/lib/portcullis/attest"),
            enrolment_token_file: None,
            interval_secs: 300,
            retry_secs: 5,
        }
    }
}

impl Config {
    /// Parses the collector's section, given as a JSON value; errors name the key.
    pub fn from_json(section: &serde_json::Value) -> Result<Config> {
        serde_json::from_value(section.clone()).context("invalid \"attest\" section")
    }

    fn agent_config(&self) -> Result<AgentConfig> {
        let device_id = if self.device_id.is_empty() {
            host_name()?
        } else {
            self.device_id.clone()
        };
        Ok(AgentConfig {
            verifier_url: self.verifier_url.clone(),
            ca_file: self.ca_file.clone(),
            device_id,
            state_dir: self.state_dir.clone(),
            attempts: u32::MAX,
            first_backoff: Duration::from_secs(self.retry_secs.max(1)),
        })
    }
}

fn read_enrolment_token(file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read enrolment token file {}", file.display()))?;
    Ok(text.trim().to_string())
}

pub fn host_name() -> Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("cannot read the host name")?;
    Ok(name.trim().to_string())
}

/// Starts the collector on its own thread. It returns when `stop` is set,
/// within about 100 ms unless a request or measurement is in progress.
/// Returns None when the configuration or the rules turn attestation off.
pub fn spawn(config: Config, stop: Arc<AtomicBool>) -> Result<Option<JoinHandle<()>>> {
    if !config.enabled {
        log::info!("attestation is disabled in the configuration");
        return Ok(None);
    }
    let rules = Rules::load(&config.rules_file)?;
    if rules.is_empty() {
        log::info!(
            "attestation is off: {} selects no path",
            config.rules_file.display()
        );
        return Ok(None);
    }
    let agent = Agent::new(config.agent_config()?, stop.clone())?;
    let interval = Duration::from_secs(config.interval_secs.max(1));
    let token_file = config.enrolment_token_file.clone();
    let handle = std::thread::Builder::new()
        .name("attest".into())
        .spawn(move || run(&agent, &rules, token_file.as_deref(), interval, &stop))
        .context("cannot start the attestation thread")?;
    Ok(Some(handle))
}

fn run(
    agent: &Agent,
    rules: &Rules,
    token_file: Option<&Path>,
    interval: Duration,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        match cycle(agent, rules, token_file) {
            Ok(()) => {}
            Err(error) => {
                log::error!("attestation cycle failed: {error:#}; trying again in {interval:?}")
            }
        }
        if !sleep_unless_stopped(interval, stop) {
            break;
        }
    }
    log::info!("attestation collector stopped");
}

fn cycle(agent: &Agent, rules: &Rules, token_file: Option<&Path>) -> Result<()> {
    let token = match token_file {
        Some(file) if agent.device()?.is_none() => Some(read_enrolment_token(file)?),
        _ => None,
    };
    agent.register(token.as_deref())?;
    let acknowledged = agent
        .baseline()?
        .is_some_and(|baseline| baseline.acknowledged);
    if !acknowledged {
        if agent.baseline()?.is_none() {
            let (baseline, stats) = agent.make_baseline(rules, false, &|_, _| {})?;
            log::info!(
                "made baseline {} over {} paths ({} files hashed)",
                baseline.root,
                stats.paths,
                stats.files_hashed
            );
        }
        agent.upload_baseline()?;
    }
    let (verdict, stats) = agent.answer_challenge(rules, None)?;
    if verdict.trusted {
        log::info!(
            "verifier reports the device trusted ({} files re-hashed)",
            stats.files_hashed
        );
    } else {
        log::warn!(
            "verifier reports the device untrusted: {} changed, {} added, {} removed",
            verdict.changed.len(),
            verdict.added.len(),
            verdict.removed.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_takes_defaults() {
        let config = Config::from_json(&serde_json::json!({})).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(
            config.rules_file,
            PathBuf::from("/etc/portcullis/baseline.rules")
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let error = Config::from_json(&serde_json::json!({"intervall_secs": 5})).unwrap_err();
        assert!(
            format!("{error:#}").contains("unknown field `intervall_secs`"),
            "{error:#}"
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let error = Config::from_json(&serde_json::json!({"interval_secs": "often"})).unwrap_err();
        assert!(format!("{error:#}").contains("invalid type"), "{error:#}");
    }

    #[test]
    fn disabled_collector_does_not_start() {
        let stop = Arc::new(AtomicBool::new(false));
        assert!(spawn(Config::default(), stop).unwrap().is_none());
    }

    #[test]
    fn commented_rules_do_not_start() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("baseline.rules");
        std::fs::write(&rules, "# tree /usr\n").unwrap();
        let config = Config {
            enabled: true,
            verifier_url: "https://127.0.0.1:1".into(),
            rules_file: rules,
            ..Config::default()
        };
        assert!(spawn(config, Arc::new(AtomicBool::new(false)))
            .unwrap()
            .is_none());
    }
}
