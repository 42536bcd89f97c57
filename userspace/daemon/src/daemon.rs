//! The daemon's main loop.

use anyhow::{Context, Result};
use log::{error, info, warn};
use portcullis_netlink::{Client, EventStream, Mode};
use portcullis_policy::Policy;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::AuditLog;
use crate::collectors::Collectors;
use crate::config::Config;
use crate::learn::Learner;
use crate::module_entries;

/// How often learned entries are written and drop counters are read.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);

pub struct Daemon {
    config_path: PathBuf,
    config: Config,
    client: Client,
    events: EventStream,
    audit: AuditLog,
    learner: Option<Learner>,
    events_dropped: u64,
    overruns: u64,
    reload: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    collectors: Option<Collectors>,
}

/// Loads the policy file; in learn mode a missing file is an empty policy.
fn load_policy(config: &Config) -> Result<Policy> {
    if config.mode == Mode::Learn && !config.policy.exists() {
        info!("policy {} does not exist yet; learning from an empty policy", config.policy.display());
        return Ok(Policy::new("/"));
    }
    Ok(Policy::load(&config.policy)?)
}

/// Puts `policy` and the settings of `config` in force in the module.
///
/// The order avoids a moment that is stricter or looser than both the old
/// and the new settings. When the mode goes down (enforce to learn), the
/// mode changes first, so no file is denied by the new policy under the old
/// mode. Otherwise the policy goes in force first, so the stronger mode
/// never runs with the old policy.
fn apply(client: &mut Client, config: &Config, policy: &Policy) -> Result<()> {
    let current = client.status()?.mode;
    let lowering = current.is_some_and(|mode| config.mode < mode);
    if lowering {
        set_mode(client, config.mode)?;
    }
    let generation = client
        .replace_policy(&module_entries(policy))
        .with_context(|| format!("loading policy {} into the module", config.policy.display()))?;
    info!(
        "policy {} loaded: {} entries, generation {generation}",
        config.policy.display(),
        policy.len()
    );
    client.set_audit_allowed(config.audit_allowed)?;
    if !lowering {
        set_mode(client, config.mode)?;
    }
    if config.lock {
        client.lock().context("locking the module")?;
        info!("module locked until reboot");
    }
    Ok(())
}

fn set_mode(client: &mut Client, mode: Mode) -> Result<()> {
    client
        .set_mode(mode)
        .with_context(|| format!("setting mode {mode}"))?;
    info!("mode {mode}");
    Ok(())
}

impl Daemon {
    /// Reads the configuration and policy, puts them in force, and
    /// subscribes to events.
    pub fn start(config_path: &Path) -> Result<Daemon> {
        let (config, collector_configs) = Config::load_with_collectors(config_path)?;
        let policy = load_policy(&config)?;
        let mut client = Client::connect()?;
        let status = client.status()?;
        info!(
            "connected to portcullis module {} (protocol {})",
            status.module_version, status.protocol_version
        );

        // Subscribe before applying, so no decision under the new policy is
        // missed.
        let events = client.subscribe()?;
        events.set_timeout(Some(Duration::from_millis(200)))?;
        apply(&mut client, &config, &policy)?;

        let audit = AuditLog::open(&config.audit_log.path, config.audit_log.max_bytes, config.audit_log.keep)
            .with_context(|| format!("opening audit log {}", config.audit_log.path.display()))?;
        let learner = (config.mode == Mode::Learn).then(|| Learner::new(&config.policy, policy));

        let reload = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))?;
        signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
        signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;

        let collectors = Collectors::start(collector_configs, &stop);

        Ok(Daemon {
            config_path: config_path.to_owned(),
            config,
            client,
            events,
            audit,
            learner,
            events_dropped: status.events_dropped,
            overruns: 0,
            reload,
            stop,
            collectors: Some(collectors),
        })
    }

    /// Runs until SIGTERM or SIGINT. The module keeps enforcing the last
    /// policy after the daemon exits.
    pub fn run(&mut self) -> Result<()> {
        info!("running; audit log {}", self.audit.path().display());
        let mut last_housekeeping = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if self.reload.swap(false, Ordering::Relaxed) {
                // Learn what already ran before the policy file is reread.
                self.drain_events();
                self.housekeeping();
                self.reload();
            }
            self.receive_event();
            if last_housekeeping.elapsed() >= HOUSEKEEPING_INTERVAL {
                self.housekeeping();
                last_housekeeping = Instant::now();
            }
        }
        self.housekeeping();
        let _ = self.audit.flush();
        if let Some(collectors) = self.collectors.take() {
            collectors.join();
        }
        info!("stopping; the module keeps its mode and policy");
        Ok(())
    }

    /// Waits for one event and records it; returns false when none came
    /// before the socket's timeout.
    fn receive_event(&mut self) -> bool {
        match self.events.next_event() {
            Ok(Some(event)) => {
                if let Err(err) = self.audit.write_event(&event) {
                    error!("writing audit log {}: {err}", self.audit.path().display());
                }
                if let Some(learner) = &mut self.learner {
                    learner.observe(&event);
                }
                true
            }
            Ok(None) => false,
            Err(err) => {
                warn!("receiving events: {err}");
                false
            }
        }
    }

    /// Records the events already waiting in the socket.
    fn drain_events(&mut self) {
        while self.receive_event() {}
    }

    fn housekeeping(&mut self) {
        if let Some(learner) = &mut self.learner {
            match learner.flush() {
                Ok(added) if !added.is_empty() => {
                    let entries: Vec<_> = added.iter().map(crate::module_entry).collect();
                    match self.client.add_entries(&entries) {
                        Ok(generation) => info!(
                            "learned {} files; policy {} written, generation {generation}",
                            entries.len(),
                            self.config.policy.display()
                        ),
                        Err(err) => error!("adding learned entries to the module: {err}"),
                    }
                }
                Ok(_) => {}
                Err(err) => error!("writing learned policy {}: {err}", self.config.policy.display()),
            }
        }

        match self.client.status() {
            Ok(status) if status.events_dropped > self.events_dropped => {
                warn!(
                    "the module dropped {} events since the last check ({} in all)",
                    status.events_dropped - self.events_dropped,
                    status.events_dropped
                );
                self.events_dropped = status.events_dropped;
            }
            Ok(_) => {}
            Err(err) => warn!("reading module status: {err}"),
        }
        if self.events.overruns > self.overruns {
            warn!(
                "the event socket overflowed {} times since the last check; events were lost",
                self.events.overruns - self.overruns
            );
            self.overruns = self.events.overruns;
        }
    }

    /// Rereads the configuration and the policy; a file that fails to load
    /// is rejected and the running configuration and policy stay in force.
    fn reload(&mut self) {
        info!("SIGHUP: reloading {}", self.config_path.display());
        let config = match Config::load(&self.config_path) {
            Ok(config) => config,
            Err(err) => {
                error!("rejected new configuration: {err}; keeping the running one");
                return;
            }
        };
        let policy = match load_policy(&config) {
            Ok(policy) => policy,
            Err(err) => {
                error!("rejected new policy: {err:#}; keeping the policy in force");
                return;
            }
        };
        if let Err(err) = apply(&mut self.client, &config, &policy) {
            error!("applying the reloaded configuration failed: {err:#}");
            return;
        }
        if config.audit_log != self.config.audit_log {
            match AuditLog::open(&config.audit_log.path, config.audit_log.max_bytes, config.audit_log.keep) {
                Ok(audit) => self.audit = audit,
                Err(err) => error!("opening audit log {}: {err}; keeping the old one", config.audit_log.path.display()),
            }
        }
        self.learner = (config.mode == Mode::Learn).then(|| Learner::new(&config.policy, policy));
        // NOTE: collectors keep the settings they started with; a change to
        // feature_set or to their sections takes effect when the daemon
        // restarts.
        if config.feature_set != self.config.feature_set
            || config.attest != self.config.attest
            || config.libscan != self.config.libscan
            || config.flow != self.config.flow
        {
            warn!("collector settings changed; they take effect when portcullisd restarts");
        }
        self.config = config;
    }
}
