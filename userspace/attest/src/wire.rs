//! The messages between device and verifier, and the checks on them. Both
//! sides use these types, so the format is defined once.
//!
//! A device registers and receives a device key, a 32-byte secret that only
//! it and the verifier hold. It uploads its baseline with a MAC under that
//! key. To a challenge it answers with the Merkle root of its current
//! measurement list, the entries that differ from the baseline with their
//! inclusion proofs, and a binding: an HMAC-SHA256 under the device key over
//! the device id, the nonce and the root. The verifier applies the listed
//! changes to the stored baseline and accepts only when the rebuilt root is
//! the device's root, so a device cannot leave a change out.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::digest::Algorithm;
use crate::measure::{Measurement, MeasurementList};
use crate::merkle::{self, Tree};

pub const PROTOCOL_VERSION: u32 = 1;
pub const NONCE_LEN: usize = 32;
pub const DEVICE_KEY_LEN: usize = 32;

const BASELINE_CONTEXT: &[u8] = b"portcullis attest baseline v1\0";
const ANSWER_CONTEXT: &[u8] = b"portcullis attest answer v1\0";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub device_id: String,
    /// One-time token from `portcullis-verifier enrol`, needed when the
    /// verifier runs with `--require-enrolment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterResponse {
    pub device_id: String,
    /// Hex device key; the device stores it and never sends it again.
    pub device_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineUpload {
    pub device_id: String,
    pub list: MeasurementList,
    /// Hex Merkle root of `list`.
    pub root: String,
    /// Hex HMAC-SHA256 under the device key, see [`baseline_mac`].
    pub mac: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineAck {
    pub root: String,
    pub entries: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// Hex of [`NONCE_LEN`] random bytes.
    pub nonce: String,
    /// Seconds since the epoch after which the verifier rejects answers.
    pub expires_at: u64,
}

/// A measurement that differs from the baseline, with its place in the
/// device's current tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvedEntry {
    pub index: u64,
    pub entry: Measurement,
    /// Hex audit path, lowest sibling first.
    pub proof: Vec<String>,
}

/// The difference between the current measurement list and the baseline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    pub changed: Vec<ProvedEntry>,
    pub added: Vec<ProvedEntry>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// TPM evidence. Quotes are not produced yet; the field exists so that a
/// quote over the nonce can be added without a new protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmEvidence {
    /// Reason no quote is attached, or "quoted".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub version: u32,
    pub device_id: String,
    pub nonce: String,
    pub algorithm: Algorithm,
    pub baseline_root: String,
    pub tree_size: u64,
    pub root: String,
    /// Hex HMAC-SHA256 under the device key, see [`answer_binding`].
    pub binding: String,
    pub changes: Changes,
    pub tpm: TpmEvidence,
}

/// What the verifier concluded from an accepted answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub trusted: bool,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

type HmacSha256 = Hmac<Sha256>;

fn keyed_mac(key: &[u8], context: &[u8], fields: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(context);
    for field in fields {
        // A length prefix on each field keeps ("ab", "c") apart from ("a", "bc").
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field);
    }
    mac
}

/// Computes the MAC of a baseline upload over the device id, algorithm,
/// size and root.
pub fn baseline_mac(
    key: &[u8],
    device_id: &str,
    algorithm: Algorithm,
    tree_size: u64,
    root: &[u8],
) -> Vec<u8> {
    let size = tree_size.to_be_bytes();
    let fields: [&[u8]; 4] = [
        device_id.as_bytes(),
        algorithm.name().as_bytes(),
        &size,
        root,
    ];
    keyed_mac(key, BASELINE_CONTEXT, &fields)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Checks a baseline upload's MAC in constant time.
pub fn verify_baseline_mac(
    key: &[u8],
    device_id: &str,
    algorithm: Algorithm,
    tree_size: u64,
    root: &[u8],
    mac: &[u8],
) -> bool {
    let size = tree_size.to_be_bytes();
    let fields: [&[u8]; 4] = [
        device_id.as_bytes(),
        algorithm.name().as_bytes(),
        &size,
        root,
    ];
    keyed_mac(key, BASELINE_CONTEXT, &fields)
        .verify_slice(mac)
        .is_ok()
}

/// Computes the binding of an answer to its nonce: the same root under another nonce
/// gives another binding, and only a holder of the device key can make one.
pub fn answer_binding(
    key: &[u8],
    device_id: &str,
    nonce: &[u8],
    algorithm: Algorithm,
    baseline_root: &[u8],
    tree_size: u64,
    root: &[u8],
) -> Vec<u8> {
    let size = tree_size.to_be_bytes();
    let fields: [&[u8]; 6] = [
        device_id.as_bytes(),
        nonce,
        algorithm.name().as_bytes(),
        baseline_root,
        &size,
        root,
    ];
    keyed_mac(key, ANSWER_CONTEXT, &fields)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Lists how `current` differs from `baseline`, with proofs from `tree`,
/// which must be `current.tree()`.
pub fn compute_changes(
    baseline: &MeasurementList,
    current: &MeasurementList,
    tree: &Tree,
) -> Changes {
    let proved = |index: usize| ProvedEntry {
        index: index as u64,
        entry: current.entries[index].clone(),
        proof: tree
            .inclusion_proof(index as u64)
            .expect("index comes from the list the tree was built over")
            .iter()
            .map(hex::encode)
            .collect(),
    };

    let mut changes = Changes::default();
    let (mut old, mut new) = (0, 0);
    while old < baseline.entries.len() || new < current.entries.len() {
        let old_path = baseline.entries.get(old).map(|entry| entry.path.as_str());
        let new_path = current.entries.get(new).map(|entry| entry.path.as_str());
        match (old_path, new_path) {
            (Some(o), Some(n)) if o == n => {
                if baseline.entries[old] != current.entries[new] {
                    changes.changed.push(proved(new));
                }
                old += 1;
                new += 1;
            }
            (Some(o), Some(n)) if o < n => {
                changes.removed.push(o.to_string());
                old += 1;
            }
            (Some(o), None) => {
                changes.removed.push(o.to_string());
                old += 1;
            }
            _ => {
                changes.added.push(proved(new));
                new += 1;
            }
        }
    }
    changes
}

/// Builds the answer to `nonce`.
pub fn make_answer(
    key: &[u8],
    device_id: &str,
    nonce: &[u8],
    baseline: &MeasurementList,
    baseline_root: &[u8],
    current: &MeasurementList,
    tpm: TpmEvidence,
) -> Answer {
    let tree = current.tree();
    let root = tree.root();
    let binding = answer_binding(
        key,
        device_id,
        nonce,
        current.algorithm,
        baseline_root,
        tree.size(),
        &root,
    );
    Answer {
        version: PROTOCOL_VERSION,
        device_id: device_id.to_string(),
        nonce: hex::encode(nonce),
        algorithm: current.algorithm,
        baseline_root: hex::encode(baseline_root),
        tree_size: tree.size(),
        root: hex::encode(&root),
        binding: hex::encode(binding),
        changes: compute_changes(baseline, current, &tree),
        tpm,
    }
}

fn decode_hex(field: &str, value: &str) -> Result<Vec<u8>, String> {
    hex::decode(value).map_err(|error| format!("{field} is not valid hex: {error}"))
}

/// Checks an answer against the nonce the verifier issued and the stored
/// baseline, and returns what differs. The error is the reason to log.
pub fn verify_answer(
    key: &[u8],
    device_id: &str,
    nonce: &[u8],
    baseline: &MeasurementList,
    answer: &Answer,
) -> Result<Verdict, String> {
    if answer.version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} is not {PROTOCOL_VERSION}",
            answer.version
        ));
    }
    if answer.device_id != device_id {
        return Err(format!("answer names device {:?}", answer.device_id));
    }
    if decode_hex("nonce", &answer.nonce)? != nonce {
        return Err("answer is for another nonce".into());
    }
    if answer.algorithm != baseline.algorithm {
        return Err(format!(
            "answer uses {} but the baseline uses {}",
            answer.algorithm, baseline.algorithm
        ));
    }
    let algorithm = baseline.algorithm;
    let baseline_root = baseline.tree().root();
    if decode_hex("baseline_root", &answer.baseline_root)? != baseline_root {
        return Err("answer is against another baseline".into());
    }
    let root = decode_hex("root", &answer.root)?;
    let binding = decode_hex("binding", &answer.binding)?;
    let size = answer.tree_size.to_be_bytes();
    let fields: [&[u8]; 6] = [
        device_id.as_bytes(),
        nonce,
        algorithm.name().as_bytes(),
        &baseline_root,
        &size,
        &root,
    ];
    keyed_mac(key, ANSWER_CONTEXT, &fields)
        .verify_slice(&binding)
        .map_err(|_| "binding does not match the device key, nonce and root".to_string())?;

    for proved in answer.changes.changed.iter().chain(&answer.changes.added) {
        let proof = proved
            .proof
            .iter()
            .map(|sibling| decode_hex("proof", sibling))
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = merkle::leaf_hash(algorithm, &proved.entry.canonical_bytes());
        if !merkle::verify_inclusion(
            algorithm,
            &leaf,
            proved.index,
            answer.tree_size,
            &proof,
            &root,
        ) {
            return Err(format!(
                "inclusion proof for {:?} does not match the root",
                proved.entry.path
            ));
        }
    }

    let rebuilt = apply_changes(baseline, &answer.changes)?;
    let tree = rebuilt.tree();
    if tree.size() != answer.tree_size || tree.root() != root {
        return Err("baseline with the listed changes does not give the device's root".into());
    }

    let paths = |entries: &[ProvedEntry]| entries.iter().map(|p| p.entry.path.clone()).collect();
    Ok(Verdict {
        trusted: answer.changes.is_empty(),
        added: paths(&answer.changes.added),
        removed: answer.changes.removed.clone(),
        changed: paths(&answer.changes.changed),
    })
}

/// Returns `baseline` with the changes applied, or why they do not fit it.
fn apply_changes(baseline: &MeasurementList, changes: &Changes) -> Result<MeasurementList, String> {
    let mut entries: std::collections::BTreeMap<&str, &Measurement> = baseline
        .entries
        .iter()
        .map(|entry| (entry.path.as_str(), entry))
        .collect();
    for path in &changes.removed {
        if entries.remove(path.as_str()).is_none() {
            return Err(format!("removed path {path:?} is not in the baseline"));
        }
    }
    for proved in &changes.changed {
        let slot = entries.get_mut(proved.entry.path.as_str()).ok_or_else(|| {
            format!(
                "changed path {:?} is not in the baseline",
                proved.entry.path
            )
        })?;
        if **slot == proved.entry {
            return Err(format!(
                "changed path {:?} equals its baseline entry",
                proved.entry.path
            ));
        }
        *slot = &proved.entry;
    }
    for proved in &changes.added {
        if baseline.find(&proved.entry.path).is_some() {
            return Err(format!(
                "added path {:?} is already in the baseline",
                proved.entry.path
            ));
        }
        if entries
            .insert(proved.entry.path.as_str(), &proved.entry)
            .is_some()
        {
            return Err(format!(
                "added path {:?} is listed twice",
                proved.entry.path
            ));
        }
    }
    Ok(MeasurementList {
        algorithm: baseline.algorithm,
        entries: entries.into_values().cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Kind;

    const KEY: &[u8] = &[7u8; DEVICE_KEY_LEN];
    const NONCE: &[u8] = &[1u8; NONCE_LEN];

    fn file(path: &str, digest: &str) -> Measurement {
        Measurement {
            path: path.into(),
            kind: Kind::File,
            size: Some(1),
            mode: Some(0o644),
            uid: Some(0),
            gid: Some(0),
            mtime: None,
            link: None,
            digest: Some(digest.into()),
            error: None,
        }
    }

    fn list(entries: Vec<Measurement>) -> MeasurementList {
        MeasurementList {
            algorithm: Algorithm::Sha256,
            entries,
        }
    }

    fn baseline() -> MeasurementList {
        list(
            (0..20)
                .map(|i| file(&format!("/etc/f{i:02}"), &format!("{i:02}")))
                .collect(),
        )
    }

    fn no_tpm() -> TpmEvidence {
        TpmEvidence {
            status: "absent".into(),
            quote: None,
        }
    }

    fn answer_for(current: &MeasurementList, nonce: &[u8]) -> Answer {
        let base = baseline();
        make_answer(
            KEY,
            "dev1",
            nonce,
            &base,
            &base.tree().root(),
            current,
            no_tpm(),
        )
    }

    #[test]
    fn unchanged_device_is_trusted() {
        let answer = answer_for(&baseline(), NONCE);
        assert!(answer.changes.is_empty());
        let verdict = verify_answer(KEY, "dev1", NONCE, &baseline(), &answer).unwrap();
        assert_eq!(
            verdict,
            Verdict {
                trusted: true,
                ..Verdict::default()
            }
        );
    }

    #[test]
    fn changed_added_removed_are_named() {
        let mut current = baseline();
        current.entries[3].digest = Some("ff".into());
        current.entries.remove(10);
        current.entries.push(file("/etc/zz-new", "aa"));
        current.entries.insert(0, file("/etc/a-new", "bb"));

        let answer = answer_for(&current, NONCE);
        let verdict = verify_answer(KEY, "dev1", NONCE, &baseline(), &answer).unwrap();
        assert!(!verdict.trusted);
        assert_eq!(verdict.changed, ["/etc/f03"]);
        assert_eq!(verdict.removed, ["/etc/f10"]);
        assert_eq!(verdict.added, ["/etc/a-new", "/etc/zz-new"]);
    }

    #[test]
    fn different_nonce_gives_different_binding() {
        let first = answer_for(&baseline(), NONCE);
        let second = answer_for(&baseline(), &[2u8; NONCE_LEN]);
        assert_eq!(first.root, second.root);
        assert_ne!(first.binding, second.binding);
    }

    #[test]
    fn answer_to_other_nonce_is_rejected() {
        let answer = answer_for(&baseline(), &[2u8; NONCE_LEN]);
        let error = verify_answer(KEY, "dev1", NONCE, &baseline(), &answer).unwrap_err();
        assert_eq!(error, "answer is for another nonce");
    }

    #[test]
    fn relabelled_nonce_fails_binding() {
        // A replay that rewrites the nonce field of an old answer.
        let mut answer = answer_for(&baseline(), &[2u8; NONCE_LEN]);
        answer.nonce = hex::encode(NONCE);
        let error = verify_answer(KEY, "dev1", NONCE, &baseline(), &answer).unwrap_err();
        assert!(error.starts_with("binding does not match"), "{error}");
    }

    #[test]
    fn wrong_key_fails_binding() {
        let base = baseline();
        let answer = make_answer(
            &[9u8; 32],
            "dev1",
            NONCE,
            &base,
            &base.tree().root(),
            &base,
            no_tpm(),
        );
        let error = verify_answer(KEY, "dev1", NONCE, &base, &answer).unwrap_err();
        assert!(error.starts_with("binding does not match"), "{error}");
    }

    #[test]
    fn hidden_change_is_rejected() {
        // The device changed a file but lists nothing: the root gives it away.
        let mut current = baseline();
        current.entries[5].digest = Some("ee".into());
        let mut answer = answer_for(&current, NONCE);
        answer.changes = Changes::default();
        let error = verify_answer(KEY, "dev1", NONCE, &baseline(), &answer).unwrap_err();
        assert_eq!(
            error,
            "baseline with the listed changes does not give the device's root"
        );
    }

    #[test]
    fn forged_entry_fails_its_proof() {
        let mut current = baseline();
        current.entries[5].digest = Some("ee".into());
        let mut answer = answer_for(&current, NONCE);
        answer.changes.changed[0].entry.digest = Some("05".into());
        let error = verify_answer(KEY, "dev1", NONCE, &baseline(), &answer).unwrap_err();
        assert!(
            error.starts_with("inclusion proof for \"/etc/f05\""),
            "{error}"
        );
    }

    #[test]
    fn malformed_fields_are_rejected() {
        let mut answer = answer_for(&baseline(), NONCE);
        answer.root = "zz".into();
        let error = verify_answer(KEY, "dev1", NONCE, &baseline(), &answer).unwrap_err();
        assert!(error.starts_with("root is not valid hex"), "{error}");

        let mut answer = answer_for(&baseline(), NONCE);
        answer.version = 2;
        assert!(verify_answer(KEY, "dev1", NONCE, &baseline(), &answer).is_err());

        let answer = answer_for(&baseline(), NONCE);
        let error = verify_answer(KEY, "dev2", NONCE, &baseline(), &answer).unwrap_err();
        assert_eq!(error, "answer names device \"dev1\"");
    }

    #[test]
    fn answer_against_other_baseline_is_rejected() {
        let answer = answer_for(&baseline(), NONCE);
        let mut other = baseline();
        other.entries.pop();
        let error = verify_answer(KEY, "dev1", NONCE, &other, &answer).unwrap_err();
        assert_eq!(error, "answer is against another baseline");
    }

    #[test]
    fn baseline_mac_covers_root() {
        let root = baseline().tree().root();
        let mac = baseline_mac(KEY, "dev1", Algorithm::Sha256, 20, &root);
        assert_ne!(
            mac,
            baseline_mac(KEY, "dev1", Algorithm::Sha256, 20, &[0u8; 32])
        );
        assert_ne!(mac, baseline_mac(KEY, "dev2", Algorithm::Sha256, 20, &root));
        assert_ne!(mac, baseline_mac(KEY, "dev1", Algorithm::Sha256, 19, &root));
        assert!(verify_baseline_mac(
            KEY,
            "dev1",
            Algorithm::Sha256,
            20,
            &root,
            &mac
        ));
        assert!(!verify_baseline_mac(
            KEY,
            "dev1",
            Algorithm::Sha256,
            20,
            &root,
            &mac[1..]
        ));
        assert!(!verify_baseline_mac(
            &[8u8; 32],
            "dev1",
            Algorithm::Sha256,
            20,
            &root,
            &mac
        ));
    }
}
