//! The optional collectors: attestation, the library scan and flow
//! metering, each from its own crate, each on its own thread.

use log::{error, info};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::{Config, ConfigError};

/// The parsed sections of the collectors in the feature set.
pub struct CollectorConfigs {
    pub attest: Option<portcullis_attest::collector::Config>,
    pub libscan: Option<portcullis_libscan::collector::Config>,
    pub flow: Option<portcullis_flow::Config>,
}

fn section_error(file: &Path, section: &str, err: impl std::fmt::Display) -> ConfigError {
    ConfigError {
        file: file.to_owned(),
        key: section.to_string(),
        message: err.to_string(),
    }
}

/// Prefixes the key named in a collector's error message with its section,
/// unless the message already does.
fn anyhow_error(file: &Path, section: &str, err: anyhow::Error) -> ConfigError {
    let message = format!("{err:#}");
    ConfigError {
        file: file.to_owned(),
        key: section.to_string(),
        message,
    }
}

impl CollectorConfigs {
    /// Parses every collector section present, whether or not its feature
    /// is on, and keeps those of the features that are on.
    pub fn parse(config: &Config, bytes: &[u8], file: &Path) -> Result<CollectorConfigs, ConfigError> {
        let empty = serde_json::Value::Object(Default::default());

        let attest_section = config.attest.as_ref().unwrap_or(&empty);
        let mut attest = portcullis_attest::collector::Config::from_json(attest_section)
            .map_err(|err| anyhow_error(file, "attest", err))?;
        let attest = if config.has_feature("attestation") {
            if config.attest.as_ref().and_then(|s| s.get("enabled")) == Some(&serde_json::Value::Bool(false)) {
                return Err(section_error(
                    file,
                    "attest.enabled",
                    "false, but \"attestation\" is in feature_set; remove one of the two",
                ));
            }
            attest.enabled = true;
            Some(attest)
        } else {
            None
        };

        let libscan_section = config.libscan.as_ref().unwrap_or(&empty);
        let libscan = portcullis_libscan::collector::Config::from_json(libscan_section)
            .map_err(|err| anyhow_error(file, "libscan", err))?;
        let libscan = config.has_feature("libscan").then_some(libscan);

        let text = std::str::from_utf8(bytes).map_err(|err| section_error(file, "", err))?;
        let flow = portcullis_flow::Config::parse(text, file).map_err(|err| section_error(file, "flow", err))?;
        let flow = config.has_feature("flow").then_some(flow);

        Ok(CollectorConfigs { attest, libscan, flow })
    }
}

/// The running collectors.
#[derive(Default)]
pub struct Collectors {
    threads: Vec<(&'static str, JoinHandle<()>)>,
    libscan: Option<portcullis_libscan::collector::Collector>,
}

impl Collectors {
    /// Starts the collectors of the features that are on. A collector that
    /// fails to start is logged and skipped; the Approved Application List
    /// does not depend on it.
    pub fn start(configs: CollectorConfigs, stop: &Arc<AtomicBool>) -> Collectors {
        let mut running = Collectors::default();
        if let Some(config) = configs.attest {
            match portcullis_attest::collector::spawn(config, Arc::clone(stop)) {
                Ok(Some(handle)) => {
                    info!("attestation collector started");
                    running.threads.push(("attestation", handle));
                }
                Ok(None) => info!("attestation collector has nothing to measure; not started"),
                Err(err) => error!("attestation collector failed to start: {err:#}"),
            }
        }
        if let Some(config) = configs.libscan {
            match portcullis_libscan::collector::spawn(config, Arc::clone(stop)) {
                Ok(collector) => {
                    info!("library scan collector started");
                    running.libscan = Some(collector);
                }
                Err(err) => error!("library scan collector failed to start: {err}"),
            }
        }
        if let Some(config) = configs.flow {
            match portcullis_flow::collector::spawn(config, Arc::clone(stop)) {
                Ok(handle) => {
                    info!("flow collector started");
                    let handle = std::thread::spawn(move || match handle.join() {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => error!("flow collector stopped: {err:#}"),
                        Err(_) => error!("flow collector panicked"),
                    });
                    running.threads.push(("flow", handle));
                }
                Err(err) => error!("flow collector failed to start: {err}"),
            }
        }
        running
    }

    /// Waits for every collector after the stop flag was set.
    pub fn join(self) {
        if let Some(libscan) = self.libscan {
            libscan.join();
        }
        for (name, handle) in self.threads {
            if handle.join().is_err() {
                error!("{name} collector panicked");
            }
        }
    }
}
