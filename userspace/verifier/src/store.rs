//! The verifier's SQLite database: devices and their keys, baselines,
//! challenges, and the result of every answer.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use portcullis_attest::measure::MeasurementList;
use portcullis_attest::wire::{Verdict, DEVICE_KEY_LEN, NONCE_LEN};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    device_key BLOB NOT NULL,
    registered_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS enrolments (
    device_id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS baselines (
    device_id TEXT PRIMARY KEY REFERENCES devices(id),
    root TEXT NOT NULL,
    list TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS challenges (
    nonce TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    answered_at INTEGER
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL REFERENCES devices(id),
    nonce TEXT,
    checked_at INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('trusted', 'untrusted', 'rejected')),
    reason TEXT,
    verdict TEXT
);
";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the kernel random source is available");
    bytes
}

/// An issued challenge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChallenge {
    pub nonce: String,
    pub device_id: String,
    pub expires_at: u64,
    pub answered_at: Option<u64>,
}

/// Per-device state for operators, as printed by the report command and
/// served at `/v1/devices/{id}/report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub device_id: String,
    /// "trusted", "untrusted", "no baseline" or "not verified yet".
    pub status: String,
    pub baseline_root: Option<String>,
    pub checked_at: Option<u64>,
    pub changed: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub last_rejection: Option<Rejection>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub at: u64,
    pub reason: String,
}

pub struct Store {
    connection: Connection,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let connection = Connection::open(path)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        connection
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;")
            .and_then(|_| connection.execute_batch(SCHEMA))
            .with_context(|| format!("cannot set up database {}", path.display()))?;
        Ok(Store { connection })
    }

    /// Adds a device with a fresh key; None when the id is taken.
    pub fn register(&self, device_id: &str) -> Result<Option<[u8; DEVICE_KEY_LEN]>> {
        let key = random_bytes::<DEVICE_KEY_LEN>();
        let inserted = self.connection.execute(
            "INSERT OR IGNORE INTO devices (id, device_key, registered_at) VALUES (?1, ?2, ?3)",
            params![device_id, &key[..], now() as i64],
        )?;
        Ok((inserted == 1).then_some(key))
    }

    /// Creates a one-time enrolment token for a device, replacing any
    /// earlier unused one, and returns it.
    pub fn enrol(&self, device_id: &str) -> Result<String> {
        let token = hex::encode(random_bytes::<16>());
        self.connection.execute(
            "INSERT OR REPLACE INTO enrolments (device_id, token, created_at) VALUES (?1, ?2, ?3)",
            params![device_id, token, now() as i64],
        )?;
        Ok(token)
    }

    /// Uses up the device's enrolment token if `token` is it; returns
    /// whether it was.
    pub fn take_enrolment(&self, device_id: &str, token: &str) -> Result<bool> {
        let stored: Option<String> = self
            .connection
            .query_row(
                "SELECT token FROM enrolments WHERE device_id = ?1",
                [device_id],
                |row| row.get(0),
            )
            .optional()?;
        let Some(stored) = stored else {
            return Ok(false);
        };
        if !constant_time_equal(stored.as_bytes(), token.as_bytes()) {
            return Ok(false);
        }
        self.connection
            .execute("DELETE FROM enrolments WHERE device_id = ?1", [device_id])?;
        Ok(true)
    }

    pub fn device_key(&self, device_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .connection
            .query_row(
                "SELECT device_key FROM devices WHERE id = ?1",
                [device_id],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn device_ids(&self) -> Result<Vec<String>> {
        let mut statement = self
            .connection
            .prepare("SELECT id FROM devices ORDER BY id")?;
        let ids = statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Returns the stored baseline and its root.
    pub fn baseline(&self, device_id: &str) -> Result<Option<(MeasurementList, String)>> {
        let row: Option<(String, String)> = self
            .connection
            .query_row(
                "SELECT list, root FROM baselines WHERE device_id = ?1",
                [device_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((list, root)) = row else {
            return Ok(None);
        };
        let list = serde_json::from_str(&list)
            .with_context(|| format!("stored baseline of device {device_id} is not valid"))?;
        Ok(Some((list, root)))
    }

    pub fn store_baseline(
        &self,
        device_id: &str,
        list: &MeasurementList,
        root: &str,
    ) -> Result<()> {
        self.connection.execute(
            "INSERT INTO baselines (device_id, root, list, received_at) VALUES (?1, ?2, ?3, ?4)",
            params![device_id, root, serde_json::to_string(list)?, now() as i64],
        )?;
        Ok(())
    }

    /// Drops a device's baseline so it can upload a new one; returns
    /// whether there was one.
    pub fn delete_baseline(&self, device_id: &str) -> Result<bool> {
        Ok(self
            .connection
            .execute("DELETE FROM baselines WHERE device_id = ?1", [device_id])?
            == 1)
    }

    /// Hands the device a nonce: the oldest operator-issued one it has not
    /// received yet, else a fresh one valid for `ttl_secs`. No nonce is
    /// handed out twice, so a device that lost one gets a new one.
    pub fn challenge(&self, device_id: &str, ttl_secs: u64) -> Result<StoredChallenge> {
        let now = now();
        // Challenges that expired a day ago can no longer explain anything.
        self.connection.execute(
            "DELETE FROM challenges WHERE expires_at < ?1",
            [now.saturating_sub(86_400) as i64],
        )?;
        let pending: Option<StoredChallenge> = self
            .connection
            .query_row(
                "SELECT nonce, device_id, expires_at, answered_at FROM challenges
                 WHERE device_id = ?1 AND delivered = 0 AND answered_at IS NULL AND expires_at > ?2
                 ORDER BY issued_at LIMIT 1",
                params![device_id, now as i64],
                challenge_from_row,
            )
            .optional()?;
        match pending {
            Some(challenge) => {
                self.connection.execute(
                    "UPDATE challenges SET delivered = 1 WHERE nonce = ?1",
                    [&challenge.nonce],
                )?;
                Ok(challenge)
            }
            None => self.insert_challenge(device_id, ttl_secs, true),
        }
    }

    /// Issues a nonce on an operator's request, for the device's next
    /// challenge request.
    pub fn issue_challenge(&self, device_id: &str, ttl_secs: u64) -> Result<StoredChallenge> {
        self.insert_challenge(device_id, ttl_secs, false)
    }

    fn insert_challenge(
        &self,
        device_id: &str,
        ttl_secs: u64,
        delivered: bool,
    ) -> Result<StoredChallenge> {
        let nonce = hex::encode(random_bytes::<NONCE_LEN>());
        let now = now();
        let expires_at = now + ttl_secs;
        self.connection.execute(
            "INSERT INTO challenges (nonce, device_id, issued_at, expires_at, delivered)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![nonce, device_id, now as i64, expires_at as i64, delivered],
        )?;
        Ok(StoredChallenge {
            nonce,
            device_id: device_id.to_string(),
            expires_at,
            answered_at: None,
        })
    }

    pub fn find_challenge(&self, nonce: &str) -> Result<Option<StoredChallenge>> {
        Ok(self
            .connection
            .query_row(
                "SELECT nonce, device_id, expires_at, answered_at FROM challenges WHERE nonce = ?1",
                [nonce],
                challenge_from_row,
            )
            .optional()?)
    }

    /// Marks a challenge answered, so every later answer to it is a replay.
    /// Callers that share a [`Store`] (it is not Sync) hold a lock from
    /// [`Store::find_challenge`] to here, so two answers cannot both be first.
    pub fn mark_answered(&self, nonce: &str) -> Result<()> {
        self.connection.execute(
            "UPDATE challenges SET answered_at = ?2 WHERE nonce = ?1 AND answered_at IS NULL",
            params![nonce, now() as i64],
        )?;
        Ok(())
    }

    pub fn record_verdict(&self, device_id: &str, nonce: &str, verdict: &Verdict) -> Result<()> {
        let outcome = if verdict.trusted {
            "trusted"
        } else {
            "untrusted"
        };
        self.connection.execute(
            "INSERT INTO results (device_id, nonce, checked_at, outcome, verdict) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![device_id, nonce, now() as i64, outcome, serde_json::to_string(verdict)?],
        )?;
        Ok(())
    }

    /// Records a rejected answer; `device_id` must be registered.
    pub fn record_rejection(
        &self,
        device_id: &str,
        nonce: Option<&str>,
        reason: &str,
    ) -> Result<()> {
        self.connection.execute(
            "INSERT INTO results (device_id, nonce, checked_at, outcome, reason) VALUES (?1, ?2, ?3, 'rejected', ?4)",
            params![device_id, nonce, now() as i64, reason],
        )?;
        Ok(())
    }

    /// Builds the report of one device; None when it is not registered.
    pub fn report(&self, device_id: &str) -> Result<Option<Report>> {
        if self.device_key(device_id)?.is_none() {
            return Ok(None);
        }
        let baseline_root: Option<String> = self
            .connection
            .query_row(
                "SELECT root FROM baselines WHERE device_id = ?1",
                [device_id],
                |row| row.get(0),
            )
            .optional()?;
        let last_verdict: Option<(u64, String)> = self
            .connection
            .query_row(
                "SELECT checked_at, verdict FROM results WHERE device_id = ?1 AND outcome != 'rejected'
                 ORDER BY id DESC LIMIT 1",
                [device_id],
                |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
            )
            .optional()?;
        let last_rejection: Option<Rejection> = self
            .connection
            .query_row(
                "SELECT checked_at, reason FROM results WHERE device_id = ?1 AND outcome = 'rejected'
                 ORDER BY id DESC LIMIT 1",
                [device_id],
                |row| Ok(Rejection { at: row.get::<_, i64>(0)? as u64, reason: row.get(1)? }),
            )
            .optional()?;

        let mut report = Report {
            device_id: device_id.to_string(),
            status: String::new(),
            baseline_root,
            checked_at: None,
            changed: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            last_rejection,
        };
        match last_verdict {
            _ if report.baseline_root.is_none() => report.status = "no baseline".into(),
            None => report.status = "not verified yet".into(),
            Some((checked_at, verdict)) => {
                let verdict: Verdict = serde_json::from_str(&verdict).with_context(|| {
                    format!("stored verdict of device {device_id} is not valid")
                })?;
                report.status = if verdict.trusted {
                    "trusted"
                } else {
                    "untrusted"
                }
                .into();
                report.checked_at = Some(checked_at);
                report.changed = verdict.changed;
                report.added = verdict.added;
                report.removed = verdict.removed;
            }
        }
        Ok(Some(report))
    }
}

/// Compares two secrets in time that depends only on their length.
pub fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

fn challenge_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredChallenge> {
    Ok(StoredChallenge {
        nonce: row.get(0)?,
        device_id: row.get(1)?,
        expires_at: row.get::<_, i64>(2)? as u64,
        answered_at: row.get::<_, Option<i64>>(3)?.map(|at| at as u64),
    })
}
