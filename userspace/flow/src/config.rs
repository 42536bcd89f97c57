//! The `flow` section of /etc/portcullis/portcullis.json.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// Default pin of the eBPF flow table, read by `flow show`.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/portcullis/flows";

/// Configuration of the flow collector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Interface names to meter at TC ingress and egress. Interfaces that
    /// do not exist yet are attached when they appear.
    pub interfaces: Vec<String>,
    /// Meter to use.
    pub source: SourceChoice,
    pub collectors: Vec<CollectorConfig>,
    /// A flow still active after this many seconds is exported, and its
    /// counters start again from zero.
    pub active_timeout_secs: u64,
    /// A flow without packets for this many seconds is exported and removed.
    pub idle_timeout_secs: u64,
    /// How often the flow table is read, in milliseconds.
    pub poll_interval_ms: u64,
    /// How often templates are sent again to UDP collectors, in seconds.
    pub template_refresh_secs: u64,
    /// Capacity of the eBPF flow table, in flows.
    pub max_flows: u32,
    /// Fill ratio of the flow table, in percent, above which the oldest
    /// flows are exported early and removed (counted as evictions).
    pub eviction_threshold_percent: u8,
    /// IPFIX observation domain id, also used as the NetFlow v9 source id.
    pub observation_domain: u32,
    /// Largest IPFIX message or NetFlow v9 packet, in bytes.
    pub max_message_bytes: usize,
    /// File that exported records are appended to as JSON lines.
    pub json_lines_path: Option<PathBuf>,
    /// Pin path of the eBPF flow table for `flow show`, on a mounted BPF
    /// file system. Null leaves the table unpinned.
    pub pin_path: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interfaces: Vec::new(),
            source: SourceChoice::Auto,
            collectors: Vec::new(),
            active_timeout_secs: 60,
            idle_timeout_secs: 15,
            poll_interval_ms: 1000,
            template_refresh_secs: 60,
            max_flows: 16384,
            eviction_threshold_percent: 90,
            observation_domain: 1,
            max_message_bytes: 1400,
            json_lines_path: None,
            pin_path: Some(PathBuf::from(DEFAULT_PIN_PATH)),
        }
    }
}

/// Meter choice of the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceChoice {
    /// eBPF at TC, and conntrack when the BPF programs cannot be loaded.
    Auto,
    Ebpf,
    Conntrack,
}

/// One collector that receives exports over UDP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// `host:port` with a literal IPv4 or IPv6 address, e.g.
    /// `127.0.0.1:4739` or `[::1]:4739`.
    #[serde(deserialize_with = "socket_address")]
    pub address: SocketAddr,
    #[serde(default)]
    pub protocol: ExportProtocol,
}

/// Export format sent to a collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportProtocol {
    #[default]
    Ipfix,
    Netflow9,
}

impl fmt::Display for ExportProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExportProtocol::Ipfix => "IPFIX",
            ExportProtocol::Netflow9 => "NetFlow v9",
        })
    }
}

fn socket_address<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid collector address {text:?}: expected IP:PORT such as 127.0.0.1:4739 or [::1]:4739"
        ))
    })
}

/// A configuration that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: invalid value at key `{key}`: {message}")]
    Invalid { path: PathBuf, key: String, message: String },
    #[error("{path}: {message}")]
    Check { path: PathBuf, message: String },
}

impl Config {
    /// Reads the `flow` section of a portcullis.json file. A missing
    /// section gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text, path)
    }

    /// Parses the `flow` section of the portcullis.json text `text`;
    /// `path` only names the input in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let file: FileWithFlowSection = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            ConfigError::Invalid {
                path: path.to_path_buf(),
                key: err.path().to_string(),
                message: err.inner().to_string(),
            }
        })?;
        let config = file.flow.unwrap_or_default();
        config.check().map_err(|message| ConfigError::Check { path: path.to_path_buf(), message })?;
        Ok(config)
    }

    /// Checks the values that parse but cannot work.
    fn check(&self) -> Result<(), String> {
        if self.poll_interval_ms == 0 {
            return Err("flow.poll_interval_ms must be at least 1".to_string());
        }
        if self.idle_timeout_secs == 0 || self.active_timeout_secs == 0 {
            return Err("flow.idle_timeout_secs and flow.active_timeout_secs must be at least 1".to_string());
        }
        if self.max_flows == 0 {
            return Err("flow.max_flows must be at least 1".to_string());
        }
        if !(1..=100).contains(&self.eviction_threshold_percent) {
            return Err(format!(
                "flow.eviction_threshold_percent is {}, expected 1 to 100",
                self.eviction_threshold_percent
            ));
        }
        if self.max_message_bytes < 512 || self.max_message_bytes > 65507 {
            return Err(format!(
                "flow.max_message_bytes is {}, expected 512 to 65507 (the UDP maximum)",
                self.max_message_bytes
            ));
        }
        for name in &self.interfaces {
            if name.is_empty() || name.len() > 15 || name.contains('/') {
                return Err(format!("flow.interfaces: invalid interface name {name:?}"));
            }
        }
        Ok(())
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

/// The whole portcullis.json file, of which only `flow` is read here; the
/// other sections belong to other parts of the daemon.
#[derive(Deserialize)]
struct FileWithFlowSection {
    #[serde(default)]
    flow: Option<Config>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("portcullis.json"))
    }

    #[test]
    fn missing_section_gives_defaults() {
        let config = parse(r#"{"policy": {"path": "/etc/x"}}"#).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn full_section_parses() {
        let config = parse(
            r#"{"flow": {
                "interfaces": ["eth0", "wlan0"],
                "source": "ebpf",
                "collectors": [
                    {"address": "127.0.0.1:4739"},
                    {"address": "[::1]:2055", "protocol": "netflow9"}
                ],
                "active_timeout_secs": 120,
                "idle_timeout_secs": 5
            }}"#,
        )
        .unwrap();
        assert_eq!(config.interfaces, ["eth0", "wlan0"]);
        assert_eq!(config.source, SourceChoice::Ebpf);
        assert_eq!(config.collectors[0].address, "127.0.0.1:4739".parse().unwrap());
        assert_eq!(config.collectors[0].protocol, ExportProtocol::Ipfix);
        assert_eq!(config.collectors[1].protocol, ExportProtocol::Netflow9);
        assert_eq!(config.active_timeout_secs, 120);
        assert_eq!(config.idle_timeout_secs, 5);
        assert_eq!(config.max_flows, Config::default().max_flows);
    }

    #[test]
    fn malformed_collector_address_names_key() {
        let err = parse(r#"{"flow": {"collectors": [{"address": "127.0.0.1:4739"}, {"address": "collector:99999"}]}}"#)
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("flow.collectors[1].address"), "{message}");
        assert!(message.contains("\"collector:99999\""), "{message}");
        assert!(message.contains("portcullis.json"), "{message}");
    }

    #[test]
    fn address_without_port_rejected() {
        let err = parse(r#"{"flow": {"collectors": [{"address": "127.0.0.1"}]}}"#).unwrap_err();
        assert!(err.to_string().contains("flow.collectors[0].address"), "{err}");
    }

    #[test]
    fn unknown_key_rejected() {
        let err = parse(r#"{"flow": {"idle_timeout": 5}}"#).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("idle_timeout"), "{message}");
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn unknown_protocol_rejected() {
        let err = parse(r#"{"flow": {"collectors": [{"address": "127.0.0.1:1", "protocol": "sflow"}]}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("flow.collectors[0].protocol"), "{err}");
    }

    #[test]
    fn zero_poll_interval_rejected() {
        let err = parse(r#"{"flow": {"poll_interval_ms": 0}}"#).unwrap_err();
        assert!(err.to_string().contains("poll_interval_ms"), "{err}");
    }

    #[test]
    fn syntax_error_names_position() {
        let err = parse("{\"flow\": {\"interfaces\": [\"eth0\"\n}}").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
