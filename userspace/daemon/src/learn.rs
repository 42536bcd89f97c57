//! Learn mode: every file the module reports as not yet approved is added to
//! the policy file and to the policy in force.

use log::{info, warn};
use portcullis_netlink::{Event, Hook, Reason, Verdict};
use portcullis_policy::{Digest, Entry, Kind, Policy};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Collects newly seen files and writes them to the policy file.
pub struct Learner {
    path: PathBuf,
    policy: Policy,
    /// Entries added since the last flush, for the module.
    pending: Vec<Entry>,
}

/// Guesses the kind of a file from its first bytes and the hook that saw it.
fn classify(path: &Path, hook: Hook) -> Kind {
    let mut head = [0u8; 4];
    let read = File::open(path).and_then(|mut f| f.read(&mut head));
    match (read, &head) {
        (Ok(4), b"\x7fELF") if hook == Hook::BprmCheck => Kind::ElfExecutable,
        (Ok(4), b"\x7fELF") => Kind::ElfSharedObject,
        (Ok(n), _) if n >= 2 && head.starts_with(b"#!") => Kind::Script,
        _ => Kind::Other,
    }
}

/// Checks that a reported path names a file that can be found again by path.
fn is_learnable_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("/memfd:") && !path.ends_with(" (deleted)")
}

impl Learner {
    pub fn new(path: &Path, policy: Policy) -> Learner {
        Learner {
            path: path.to_owned(),
            policy,
            pending: Vec::new(),
        }
    }

    /// Records `event` if it reports a file that is not yet approved.
    /// Returns true when the policy changed.
    pub fn observe(&mut self, event: &Event) -> bool {
        if event.verdict != Verdict::Allow
            || !matches!(event.reason, Reason::NotInPolicy | Reason::PathMismatch)
        {
            return false;
        }
        let Some(sha256) = event.sha256.as_deref() else {
            return false;
        };
        if !is_learnable_path(&event.path) {
            info!("not learning {}: it has no stable path", event.path);
            return false;
        }
        let Ok(digest) = sha256.parse::<Digest>() else {
            warn!("not learning {}: invalid digest {sha256}", event.path);
            return false;
        };

        let entry = Entry {
            path: event.path.clone(),
            sha256: digest,
            kind: classify(Path::new(&event.path), event.hook),
            path_bound: false,
        };
        match self.policy.add(&entry.path, entry.sha256, entry.kind) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(portcullis_policy::PolicyError::Conflict { .. }) => {
                if let Err(err) = self.policy.insert(entry.clone()) {
                    warn!("not learning {}: {err}", event.path);
                    return false;
                }
                info!("learned a new digest for {}, replacing the old one", event.path);
            }
            Err(err) => {
                warn!("not learning {}: {err}", event.path);
                return false;
            }
        }
        info!("learned {} (sha256 {sha256})", event.path);
        self.pending.push(entry);
        true
    }

    /// Writes the policy file atomically if it changed and returns the
    /// entries added since the last flush.
    pub fn flush(&mut self) -> Result<Vec<Entry>, portcullis_policy::PolicyError> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        self.policy.save_atomic(&self.path)?;
        Ok(std::mem::take(&mut self.pending))
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_netlink::Mode;

    fn event(path: &str, verdict: Verdict, reason: Reason, sha: Option<String>) -> Event {
        Event {
            hook: Hook::BprmCheck,
            verdict,
            reason,
            mode: Mode::Learn,
            pid: 1,
            tgid: 1,
            uid: 0,
            comm: "sh".into(),
            path: path.into(),
            sha256: sha,
            device: 1,
            inode: 1,
            policy_generation: 1,
        }
    }

    #[test]
    fn learner_writes_new_files_to_policy() {
        let dir = tempfile::tempdir().unwrap();
        let policy_path = dir.path().join("policy.json");
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let script = script.to_str().unwrap().to_string();
        let mut learner = Learner::new(&policy_path, Policy::new("/"));

        let sha = "cd".repeat(32);
        assert!(learner.observe(&event(&script, Verdict::Allow, Reason::NotInPolicy, Some(sha.clone()))));
        assert!(!learner.observe(&event(&script, Verdict::Allow, Reason::NotInPolicy, Some(sha.clone()))));
        let added = learner.flush().unwrap();
        assert_eq!(added.len(), 1);

        let saved = Policy::load(&policy_path).unwrap();
        let entry = saved.get(&script).unwrap();
        assert_eq!(entry.sha256.to_hex(), sha);
        assert_eq!(entry.kind, Kind::Script);
        assert!(learner.flush().unwrap().is_empty());
    }

    #[test]
    fn learner_skips_denials_and_unstable_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut learner = Learner::new(&dir.path().join("p.json"), Policy::new("/"));
        let sha = Some("ab".repeat(32));
        assert!(!learner.observe(&event("/bin/x", Verdict::Deny, Reason::NotInPolicy, sha.clone())));
        assert!(!learner.observe(&event("/bin/x", Verdict::Allow, Reason::Approved, sha.clone())));
        assert!(!learner.observe(&event("/memfd:x (deleted)", Verdict::Allow, Reason::NotInPolicy, sha.clone())));
        assert!(!learner.observe(&event("/tmp/gone (deleted)", Verdict::Allow, Reason::NotInPolicy, sha)));
        assert!(!learner.observe(&event("/bin/y", Verdict::Allow, Reason::DigestFailed, None)));
        assert!(learner.flush().unwrap().is_empty());
        assert!(!dir.path().join("p.json").exists());
    }

    #[test]
    fn learner_replaces_changed_digest() {
        let dir = tempfile::tempdir().unwrap();
        let mut learner = Learner::new(&dir.path().join("p.json"), Policy::new("/"));
        learner.observe(&event("/bin/x", Verdict::Allow, Reason::NotInPolicy, Some("ab".repeat(32))));
        assert!(learner.observe(&event("/bin/x", Verdict::Allow, Reason::NotInPolicy, Some("cd".repeat(32)))));
        assert_eq!(learner.policy().get("/bin/x").unwrap().sha256.to_hex(), "cd".repeat(32));
    }
}
