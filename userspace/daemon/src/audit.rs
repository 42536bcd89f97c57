//! The audit log: one JSON object per decision, one per line, rotated by
//! size.
//!
//! Rotation renames files and never rewrites them, and a line is always
//! written whole to one file, so no line is lost or split by rotation.

use portcullis_netlink::Event;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One line of the log.
#[derive(Serialize)]
struct Record<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a Event,
}

pub struct AuditLog {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: File,
    size: u64,
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl AuditLog {
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<AuditLog> {
        let (file, size) = open_append(path)?;
        Ok(AuditLog {
            path: path.to_owned(),
            max_bytes,
            keep,
            file,
            size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event, rotating first when the line would not fit.
    pub fn write_event(&mut self, event: &Event) -> io::Result<()> {
        let record = Record {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            event,
        };
        let mut line = serde_json::to_vec(&record)?;
        line.push(b'\n');
        self.write_line(&line)
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Shifts path.N-1 to path.N down to path to path.1, dropping the oldest,
    /// and starts an empty log.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        if self.keep == 0 {
            fs::remove_file(&self.path)?;
        } else {
            for n in (1..self.keep).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        let (file, size) = open_append(&self.path)?;
        self.file = file;
        self.size = size;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_netlink::{Hook, Mode, Reason, Verdict};

    fn event(i: u32) -> Event {
        Event {
            hook: Hook::BprmCheck,
            verdict: Verdict::Deny,
            reason: Reason::NotInPolicy,
            mode: Mode::Enforce,
            pid: i,
            tgid: i,
            uid: 0,
            comm: "sh".into(),
            path: format!("/tmp/file-{i}"),
            sha256: Some("ab".repeat(32)),
            device: 1,
            inode: i as u64,
            policy_generation: 1,
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    #[test]
    fn audit_line_has_event_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = AuditLog::open(&path, 1 << 20, 3).unwrap();
        log.write_event(&event(7)).unwrap();

        let lines = lines(&path);
        assert_eq!(lines.len(), 1);
        let value: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        for key in ["time", "hook", "verdict", "mode", "pid", "uid", "comm", "path", "sha256", "policy_generation"] {
            assert!(value.get(key).is_some(), "missing {key} in {}", lines[0]);
        }
        assert_eq!(value["path"], "/tmp/file-7");
        assert_eq!(value["verdict"], "deny");
    }

    #[test]
    fn rotation_loses_no_line_and_splits_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = AuditLog::open(&path, 4096, 100).unwrap();
        for i in 0..500 {
            log.write_event(&event(i)).unwrap();
        }

        let mut all = Vec::new();
        for n in (1..=100).rev() {
            all.extend(lines(&rotated(&path, n)));
        }
        all.extend(lines(&path));
        assert!(rotated(&path, 2).exists(), "the log was never rotated");
        assert_eq!(all.len(), 500);
        for (i, line) in all.iter().enumerate() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["pid"], i as u64, "line {i} out of order");
        }
        assert!(fs::metadata(&path).unwrap().len() <= 4096);
    }

    #[test]
    fn rotation_keeps_only_the_configured_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = AuditLog::open(&path, 4096, 2).unwrap();
        for i in 0..500 {
            log.write_event(&event(i)).unwrap();
        }
        assert!(rotated(&path, 1).exists());
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        // The newest lines survive: the last one written is in the live log.
        assert!(lines(&path).last().unwrap().contains("/tmp/file-499"));
    }

    #[test]
    fn reopening_appends_to_the_existing_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.log");
        AuditLog::open(&path, 1 << 20, 3).unwrap().write_event(&event(1)).unwrap();
        AuditLog::open(&path, 1 << 20, 3).unwrap().write_event(&event(2)).unwrap();
        assert_eq!(lines(&path).len(), 2);
    }
}
