//! The device agent: registers with the verifier, uploads the baseline and
//! answers challenges, over HTTPS with ureq.
//!
//! Its state lives in one directory: the device key, the baseline and
//! whether the verifier acknowledged it, the digest cache, and the nonces
//! already answered. A baseline stays stored until the verifier has
//! acknowledged it, across restarts. A nonce is recorded before its answer
//! is sent and never answered again, even when the send failed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::measure::{self, DigestCache, MeasurementList, Stats};
use crate::rules::Rules;
use crate::wire::{
    self, Answer, BaselineAck, BaselineUpload, Challenge, RegisterRequest, RegisterResponse,
    TpmEvidence, Verdict,
};

/// Nonces kept in the answered list; older ones have long expired.
const ANSWERED_NONCES_KEPT: usize = 1024;

/// Verifier address, trust and state settings of the device agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Base URL, `https://host:port`.
    pub verifier_url: String,
    /// PEM file with the certificates that may sign the verifier's; the
    /// system roots are not used.
    pub ca_file: PathBuf,
    pub device_id: String,
    pub state_dir: PathBuf,
    /// Attempts for each request before giving up, at least 1.
    pub attempts: u32,
    /// Delay before the first retry; it doubles up to one minute.
    pub first_backoff: Duration,
}

/// The device's registration, stored as `device.json` with mode 0600.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceState {
    pub device_id: String,
    pub device_key: String,
}

/// The baseline, stored as `baseline.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredBaseline {
    pub list: MeasurementList,
    pub root: String,
    pub acknowledged: bool,
}

pub struct Agent {
    config: AgentConfig,
    http: ureq::Agent,
    stop: Arc<AtomicBool>,
}

impl Agent {
    pub fn new(config: AgentConfig, stop: Arc<AtomicBool>) -> Result<Agent> {
        if !config.verifier_url.starts_with("https://") {
            bail!(
                "verifier URL {:?} must start with https://",
                config.verifier_url
            );
        }
        let http = ureq::AgentBuilder::new()
            .tls_config(Arc::new(client_tls_config(&config.ca_file)?))
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build();
        std::fs::create_dir_all(&config.state_dir).with_context(|| {
            format!(
                "cannot create state directory {}",
                config.state_dir.display()
            )
        })?;
        Ok(Agent { config, http, stop })
    }

    fn state_path(&self, name: &str) -> PathBuf {
        self.config.state_dir.join(name)
    }

    pub fn device(&self) -> Result<Option<DeviceState>> {
        read_json(&self.state_path("device.json"))
    }

    pub fn baseline(&self) -> Result<Option<StoredBaseline>> {
        read_json(&self.state_path("baseline.json"))
    }

    /// Registers the device unless it already has a device key.
    /// `enrolment_token` is the operator's one-time token, if the verifier
    /// requires one.
    pub fn register(&self, enrolment_token: Option<&str>) -> Result<DeviceState> {
        if let Some(device) = self.device()? {
            if device.device_id != self.config.device_id {
                bail!(
                    "{} belongs to device {:?}, not {:?}; use another state directory",
                    self.state_path("device.json").display(),
                    device.device_id,
                    self.config.device_id
                );
            }
            return Ok(device);
        }
        let request = RegisterRequest {
            device_id: self.config.device_id.clone(),
            enrolment_token: enrolment_token.map(str::to_string),
        };
        let response: RegisterResponse = self.request("POST", "/v1/devices", Some(&request))?;
        let device = DeviceState {
            device_id: response.device_id,
            device_key: response.device_key,
        };
        write_json(&self.state_path("device.json"), &device, 0o600)?;
        log::info!(
            "registered device {} with {}",
            device.device_id,
            self.config.verifier_url
        );
        Ok(device)
    }

    fn device_key(&self) -> Result<(DeviceState, Vec<u8>)> {
        let device = self.device()?.ok_or_else(|| {
            anyhow!(
                "device {} is not registered; register it first",
                self.config.device_id
            )
        })?;
        let key = hex::decode(&device.device_key).with_context(|| {
            format!(
                "{}: device_key is not valid hex",
                self.state_path("device.json").display()
            )
        })?;
        Ok((device, key))
    }

    /// Measures what `rules` selects and stores it as the baseline to
    /// upload. An acknowledged baseline is replaced only when `replace`.
    pub fn make_baseline(
        &self,
        rules: &Rules,
        replace: bool,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<(StoredBaseline, Stats)> {
        if let Some(existing) = self.baseline()? {
            if existing.acknowledged && !replace {
                bail!(
                    "the verifier already has baseline {}; pass --replace once the operator has run rebaseline",
                    existing.root
                );
            }
        }
        let output = measure::measure(rules, &self.load_cache(), progress);
        self.store_cache(&output.cache)?;
        let root = hex::encode(output.list.tree().root());
        let baseline = StoredBaseline {
            list: output.list,
            root,
            acknowledged: false,
        };
        write_json(&self.state_path("baseline.json"), &baseline, 0o600)?;
        Ok((baseline, output.stats))
    }

    /// Sends the stored baseline until the verifier acknowledges it.
    pub fn upload_baseline(&self) -> Result<BaselineAck> {
        let (device, key) = self.device_key()?;
        let mut baseline = self.baseline()?.ok_or_else(|| {
            anyhow!(
                "no baseline in {}; make one first",
                self.config.state_dir.display()
            )
        })?;
        let root = hex::decode(&baseline.root).context("stored baseline root is not valid hex")?;
        let tree_size = baseline.list.entries.len() as u64;
        let mac = wire::baseline_mac(
            &key,
            &device.device_id,
            baseline.list.algorithm,
            tree_size,
            &root,
        );
        let upload = BaselineUpload {
            device_id: device.device_id.clone(),
            list: baseline.list.clone(),
            root: baseline.root.clone(),
            mac: hex::encode(mac),
        };

        let path = format!("/v1/devices/{}/baseline", device.device_id);
        let ack: BaselineAck = self.request("PUT", &path, Some(&upload))?;
        if ack.root != baseline.root {
            bail!(
                "verifier acknowledged root {} but the baseline root is {}",
                ack.root,
                baseline.root
            );
        }
        baseline.acknowledged = true;
        write_json(&self.state_path("baseline.json"), &baseline, 0o600)?;
        log::info!(
            "verifier acknowledged baseline {} of {} entries",
            ack.root,
            ack.entries
        );
        Ok(ack)
    }

    /// Fetches a challenge, measures, and sends the answer once. When
    /// `save_answer` is given the answer is also written there.
    pub fn answer_challenge(
        &self,
        rules: &Rules,
        save_answer: Option<&Path>,
    ) -> Result<(Verdict, Stats)> {
        let (device, key) = self.device_key()?;
        let baseline = self
            .baseline()?
            .filter(|baseline| baseline.acknowledged)
            .ok_or_else(|| anyhow!("no acknowledged baseline; upload one first"))?;
        if baseline.list.algorithm != rules.algorithm {
            bail!(
                "rules select {} but the baseline uses {}; make a new baseline",
                rules.algorithm,
                baseline.list.algorithm
            );
        }

        let path = format!("/v1/devices/{}/challenges", device.device_id);
        let challenge: Challenge = self.request::<(), _>("POST", &path, None)?;
        let nonce =
            hex::decode(&challenge.nonce).context("verifier sent a nonce that is not valid hex")?;
        if nonce.len() != wire::NONCE_LEN {
            bail!(
                "verifier sent a nonce of {} bytes, expected {}",
                nonce.len(),
                wire::NONCE_LEN
            );
        }
        self.record_answered(&challenge.nonce)?;

        let cache = self.load_cache();
        let output = measure::measure(rules, &cache, &|_, _| {});
        // With nothing re-hashed the new cache is the old one less any
        // vanished paths, so an equal length means nothing to write.
        if output.stats.files_hashed > 0 || output.cache.len() != cache.len() {
            self.store_cache(&output.cache)?;
        }
        let baseline_root =
            hex::decode(&baseline.root).context("stored baseline root is not valid hex")?;
        let answer = wire::make_answer(
            &key,
            &device.device_id,
            &nonce,
            &baseline.list,
            &baseline_root,
            &output.list,
            tpm_evidence(),
        );
        if let Some(file) = save_answer {
            write_json(file, &answer, 0o600)?;
        }

        let path = format!("/v1/devices/{}/answers", device.device_id);
        // One attempt only: a second send of this nonce's answer is what a
        // replay looks like, so a failure waits for the next challenge.
        let verdict: Verdict = self.send::<Answer, Verdict>("POST", &path, Some(&answer))?;
        Ok((verdict, output.stats))
    }

    fn record_answered(&self, nonce: &str) -> Result<()> {
        let file = self.state_path("answered.json");
        let mut answered: Vec<String> = read_json(&file)?.unwrap_or_default();
        if answered.iter().any(|seen| seen == nonce) {
            bail!("nonce {nonce} was already answered; an answer is sent once per nonce");
        }
        answered.push(nonce.to_string());
        if answered.len() > ANSWERED_NONCES_KEPT {
            answered.drain(..answered.len() - ANSWERED_NONCES_KEPT);
        }
        write_json(&file, &answered, 0o600)
    }

    fn load_cache(&self) -> DigestCache {
        let file = self.state_path("cache.json");
        match read_json(&file) {
            Ok(cache) => cache.unwrap_or_default(),
            Err(error) => {
                // The cache only saves work, so a bad one is dropped.
                log::warn!("ignoring digest cache: {error:#}; every file is hashed again");
                DigestCache::default()
            }
        }
    }

    fn store_cache(&self, cache: &DigestCache) -> Result<()> {
        write_json(&self.state_path("cache.json"), cache, 0o600)
    }

    /// Sends a request, retrying with doubling backoff while the verifier
    /// is unreachable or answers 5xx. A 4xx is final.
    fn request<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let mut delay = self.config.first_backoff;
        let mut attempt = 1;
        loop {
            match self.send(method, path, body) {
                Ok(value) => return Ok(value),
                Err(error) if attempt < self.config.attempts && is_retryable(&error) => {
                    log::warn!(
                        "{method} {path} failed (attempt {attempt} of {}): {error:#}; retrying in {delay:?}",
                        self.config.attempts
                    );
                    if !sleep_unless_stopped(delay, &self.stop) {
                        bail!("stopped while waiting to retry {method} {path}");
                    }
                    delay = (delay * 2).min(Duration::from_secs(60));
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.config.verifier_url.trim_end_matches('/'));
        let request = self
            .http
            .request(method, &url)
            .set("Content-Type", "application/json");
        let result = match body {
            Some(body) => request.send_string(&serde_json::to_string(body)?),
            None => request.call(),
        };
        match result {
            Ok(response) => {
                let text = response
                    .into_string()
                    .with_context(|| format!("cannot read response to {method} {url}"))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("invalid response to {method} {url}"))
            }
            Err(ureq::Error::Status(code, response)) => {
                let text = response.into_string().unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|value| {
                        value
                            .get("error")
                            .and_then(|e| e.as_str())
                            .map(str::to_string)
                    })
                    .unwrap_or(text);
                Err(HttpStatus { code, message }).with_context(|| format!("{method} {url}"))
            }
            Err(error) => {
                Err(anyhow::Error::new(error)
                    .context(format!("{method} {url}: verifier unreachable")))
            }
        }
    }
}

/// A status the verifier returned, with its error message.
#[derive(Debug, thiserror::Error)]
#[error("verifier returned {code}: {message}")]
pub struct HttpStatus {
    pub code: u16,
    pub message: String,
}

fn is_retryable(error: &anyhow::Error) -> bool {
    match error.downcast_ref::<HttpStatus>() {
        Some(status) => status.code >= 500,
        None => error
            .chain()
            .any(|cause| cause.is::<ureq::Transport>() || cause.is::<ureq::Error>()),
    }
}

/// Sleeps for `delay` in short steps; returns false when `stop` was set.
pub fn sleep_unless_stopped(delay: Duration, stop: &AtomicBool) -> bool {
    let step = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < delay {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(step.min(delay - slept));
        slept += step;
    }
    !stop.load(Ordering::Relaxed)
}

fn client_tls_config(ca_file: &Path) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("cannot read CA file {}", ca_file.display()))?;
    for (index, certificate) in certificates.enumerate() {
        let certificate = certificate.with_context(|| {
            format!(
                "{}: certificate {} is not valid PEM",
                ca_file.display(),
                index + 1
            )
        })?;
        roots.add(certificate).with_context(|| {
            format!(
                "{}: certificate {} is not a usable CA",
                ca_file.display(),
                index + 1
            )
        })?;
    }
    if roots.is_empty() {
        bail!("CA file {} contains no certificate", ca_file.display());
    }
    // rustls 0.23.48 deprecates the ring provider because it lacks the
    // post-quantum key exchange; ring is kept because the aws-lc-rs provider
    // needs cmake and a much longer build on the device toolchains.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Says whether a TPM quote is attached. Quoting is not implemented, so
/// the status names the device node when one exists.
// TODO: attach a TPM2_Quote over the nonce where a TPM is present.
pub fn tpm_evidence() -> TpmEvidence {
    let node = ["/dev/tpmrm0", "/dev/tpm0"]
        .into_iter()
        .find(|node| Path::new(node).exists());
    let status = match node {
        Some(node) => format!("TPM at {node} not used: quoting is not implemented"),
        None => "no TPM: /dev/tpmrm0 and /dev/tpm0 are absent".to_string(),
    };
    TpmEvidence {
        status,
        quote: None,
    }
}

/// Reads a JSON state file; a missing file is None, a malformed one an
/// error naming the file, line and column.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{} is not valid", path.display()))
}

/// Writes a JSON file through a temporary file and a rename, so a crash
/// leaves the old content or the new, never a mix.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T, mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temporary)?;
        let mut writer = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut writer, value)?;
        let file = writer.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(state_dir: &Path) -> Result<Agent> {
        let ca = state_dir.join("ca.pem");
        std::fs::write(&ca, "").unwrap();
        Agent::new(
            AgentConfig {
                verifier_url: "https://127.0.0.1:1".into(),
                ca_file: ca,
                device_id: "dev1".into(),
                state_dir: state_dir.into(),
                attempts: 1,
                first_backoff: Duration::from_millis(10),
            },
            Arc::new(AtomicBool::new(false)),
        )
    }

    #[test]
    fn plain_http_url_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let config = AgentConfig {
            verifier_url: "http://127.0.0.1:1".into(),
            ca_file: dir.path().join("ca.pem"),
            device_id: "d".into(),
            state_dir: dir.path().into(),
            attempts: 1,
            first_backoff: Duration::from_millis(10),
        };
        let error = Agent::new(config, Arc::new(AtomicBool::new(false)))
            .err()
            .unwrap();
        assert!(error.to_string().contains("must start with https://"));
    }

    #[test]
    fn empty_ca_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let error = agent(dir.path()).err().unwrap();
        assert!(
            error.to_string().contains("contains no certificate"),
            "{error:#}"
        );
    }

    #[test]
    fn malformed_state_file_names_position() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baseline.json");
        std::fs::write(&file, "{\"list\": [}").unwrap();
        let error = read_json::<StoredBaseline>(&file).unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("baseline.json is not valid"), "{text}");
        assert!(text.contains("line 1 column"), "{text}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"list\": [}");
    }

    #[test]
    fn stop_flag_cuts_sleep_short() {
        let stop = AtomicBool::new(true);
        let started = std::time::Instant::now();
        assert!(!sleep_unless_stopped(Duration::from_secs(30), &stop));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
