//! The daemon's configuration file.

use portcullis_netlink::Mode;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::collectors::CollectorConfigs;

pub const DEFAULT_PATH: &str = "/etc/portcullis/portcullis.json";

/// Collectors that this build of the daemon can run: the Approved
/// Application List, remote attestation, the library scan, flow metering.
pub const FEATURES: &[&str] = &["aal", "attestation", "libscan", "flow"];

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Mode set at start and on reload.
    #[serde(deserialize_with = "deserialize_mode")]
    pub mode: Mode,
    /// Policy file loaded into the module; learn mode adds to it.
    pub policy: PathBuf,
    /// Lock the module after loading the policy and setting the mode.
    #[serde(default)]
    pub lock: bool,
    /// Ask the module to report allowed decisions too, not only denials.
    #[serde(default)]
    pub audit_allowed: bool,
    #[serde(default)]
    pub audit_log: AuditLogConfig,
    /// Collectors to run; "aal" is the Approved Application List itself.
    #[serde(default = "default_features")]
    pub feature_set: Vec<String>,
    /// Section of the attestation collector; see `portcullis_attest`.
    #[serde(default)]
    pub attest: Option<serde_json::Value>,
    /// Section of the library scan; see `portcullis_libscan`.
    #[serde(default)]
    pub libscan: Option<serde_json::Value>,
    /// Section of flow metering; see `portcullis_flow`.
    #[serde(default)]
    pub flow: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLogConfig {
    pub path: PathBuf,
    /// The log is rotated when a line would take it past this size.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept beside the log: path.1 (newest) to path.N.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

impl Default for AuditLogConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/var/log/portcullis/audit.log"),
            max_bytes: default_max_bytes(),
            keep: default_keep(),
        }
    }
}

fn default_max_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_keep() -> u32 {
    5
}

fn default_features() -> Vec<String> {
    vec!["aal".to_string()]
}

fn deserialize_mode<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Mode, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// A configuration file that cannot be used, with the key at fault.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted path of the key, such as `audit_log.max_bytes`; empty when the
    /// file as a whole is at fault.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: key \"{}\": {}", self.file.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_collectors(path).map(|(config, _)| config)
    }

    /// Reads the file once and returns the configuration with the parsed
    /// sections of the collectors that feature_set turns on.
    pub fn load_with_collectors(path: &Path) -> Result<(Config, CollectorConfigs), ConfigError> {
        let bytes = std::fs::read(path).map_err(|err| ConfigError {
            file: path.to_owned(),
            key: String::new(),
            message: format!("cannot read: {err}"),
        })?;
        Config::parse_with_collectors(&bytes, path)
    }

    pub fn parse(bytes: &[u8], path: &Path) -> Result<Config, ConfigError> {
        Config::parse_with_collectors(bytes, path).map(|(config, _)| config)
    }

    fn parse_with_collectors(bytes: &[u8], path: &Path) -> Result<(Config, CollectorConfigs), ConfigError> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let config: Config = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let key = err.path().to_string();
            ConfigError {
                file: path.to_owned(),
                key: if key == "." { String::new() } else { key },
                message: err.into_inner().to_string(),
            }
        })?;
        config.validate(path)?;
        // Each collector parses its own section; it is checked here, so a
        // bad section rejects the whole file before anything changes.
        let collectors = CollectorConfigs::parse(&config, bytes, path)?;
        Ok((config, collectors))
    }

    pub fn has_feature(&self, name: &str) -> bool {
        self.feature_set.iter().any(|f| f == name)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let error = |key: String, message: String| ConfigError {
            file: path.to_owned(),
            key,
            message,
        };
        for (i, feature) in self.feature_set.iter().enumerate() {
            if !FEATURES.contains(&feature.as_str()) {
                return Err(error(
                    format!("feature_set[{i}]"),
                    format!("unknown feature \"{feature}\"; this build supports: {}", FEATURES.join(", ")),
                ));
            }
        }
        if !self.feature_set.iter().any(|f| f == "aal") {
            return Err(error(
                "feature_set".into(),
                "\"aal\" is required: the daemon's main job is the Approved Application List".into(),
            ));
        }
        if self.audit_log.max_bytes < 4096 {
            return Err(error(
                "audit_log.max_bytes".into(),
                format!("{} is too small; use at least 4096", self.audit_log.max_bytes),
            ));
        }
        if !self.policy.is_absolute() {
            return Err(error("policy".into(), format!("{} is not an absolute path", self.policy.display())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text.as_bytes(), Path::new("/etc/portcullis/portcullis.json"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(r#"{"mode": "enforce", "policy": "/etc/portcullis/policy.json"}"#).unwrap();
        assert_eq!(config.mode, Mode::Enforce);
        assert!(!config.lock);
        assert_eq!(config.feature_set, vec!["aal"]);
        assert_eq!(config.audit_log, AuditLogConfig::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse(r#"{"mode": "learn", "policy": "/p", "polcy": "/x"}"#).unwrap_err();
        assert_eq!(err.key, "polcy");
        assert!(err.message.contains("unknown field `polcy`"), "{err}");
        assert!(err.to_string().contains("portcullis.json"), "{err}");
    }

    #[test]
    fn unknown_nested_key_is_named_with_its_path() {
        let err = parse(r#"{"mode": "learn", "policy": "/p", "audit_log": {"path": "/l", "size": 5}}"#).unwrap_err();
        assert_eq!(err.key, "audit_log.size");
        assert!(err.message.contains("unknown field `size`"), "{err}");
    }

    #[test]
    fn bad_mode_is_named() {
        let err = parse(r#"{"mode": "strict", "policy": "/p"}"#).unwrap_err();
        assert_eq!(err.key, "mode");
        assert!(err.message.contains("\"strict\""), "{err}");
    }

    #[test]
    fn bad_type_is_named() {
        let err = parse(r#"{"mode": "off", "policy": "/p", "audit_log": {"path": "/l", "max_bytes": "big"}}"#).unwrap_err();
        assert_eq!(err.key, "audit_log.max_bytes");
    }

    #[test]
    fn collector_section_errors_name_the_key() {
        let err = parse(
            r#"{"mode": "off", "policy": "/p", "feature_set": ["aal", "libscan"],
                "libscan": {"interval": "often"}}"#,
        )
        .unwrap_err();
        assert!(err.key.starts_with("libscan"), "{err}");

        let err = parse(
            r#"{"mode": "off", "policy": "/p", "feature_set": ["aal", "flow"],
                "flow": {"collectors": [{"address": "nowhere"}]}}"#,
        )
        .unwrap_err();
        assert!(err.key.starts_with("flow"), "{err}");

        let err = parse(
            r#"{"mode": "off", "policy": "/p", "feature_set": ["aal", "attestation"],
                "attest": {"verifier_url": "https://127.0.0.1:1", "colour": 1}}"#,
        )
        .unwrap_err();
        assert!(err.key.starts_with("attest"), "{err}");
        assert!(err.message.contains("colour"), "{err}");
    }

    #[test]
    fn sections_of_features_not_enabled_are_still_checked() {
        let err = parse(r#"{"mode": "off", "policy": "/p", "libscan": {"bogus": 1}}"#).unwrap_err();
        assert!(err.key.starts_with("libscan"), "{err}");
    }

    #[test]
    fn unknown_feature_is_named_with_its_index() {
        let err = parse(r#"{"mode": "off", "policy": "/p", "feature_set": ["aal", "teleport"]}"#).unwrap_err();
        assert_eq!(err.key, "feature_set[1]");
        assert!(err.message.contains("teleport"), "{err}");
    }

    #[test]
    fn missing_policy_is_reported() {
        let err = parse(r#"{"mode": "off"}"#).unwrap_err();
        assert!(err.message.contains("missing field `policy`"), "{err}");
    }

    #[test]
    fn relative_policy_path_is_rejected() {
        let err = parse(r#"{"mode": "off", "policy": "policy.json"}"#).unwrap_err();
        assert_eq!(err.key, "policy");
    }

    #[test]
    fn malformed_json_names_the_position() {
        let err = parse("{\"mode\": \"off\",\n \"policy\": }").unwrap_err();
        assert!(err.message.contains("line 2"), "{err}");
    }
}
