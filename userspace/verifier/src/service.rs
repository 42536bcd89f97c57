//! The verifier's HTTP API as plain request handling: method, path and
//! body in, status and JSON body out. [`crate::server`] carries it over TLS.
//!
//! | request                                | effect                              |
//! |----------------------------------------|-------------------------------------|
//! | `POST /v1/devices`                     | register a device, return its key   |
//! | `GET /v1/devices`                      | reports of all devices              |
//! | `PUT /v1/devices/{id}/baseline`        | store the baseline (once)           |
//! | `POST /v1/devices/{id}/challenges`     | hand out a nonce, each only once    |
//! | `POST /v1/devices/{id}/answers`        | verify an answer, return a verdict  |
//! | `GET /v1/devices/{id}/report`          | the device's report                 |

use std::sync::Mutex;

use anyhow::Result;
use portcullis_attest::wire::{
    self, Answer, BaselineAck, BaselineUpload, Challenge, RegisterRequest, RegisterResponse,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::store::{constant_time_equal, now, Store};

pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl Response {
    fn ok<T: Serialize>(status: u16, value: &T) -> Response {
        match serde_json::to_value(value) {
            Ok(body) => Response { status, body },
            Err(error) => Response::error(500, format!("cannot encode response: {error}")),
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Response {
        Response {
            status,
            body: json!({ "error": message.into() }),
        }
    }
}

pub struct Verifier {
    store: Mutex<Store>,
    nonce_ttl_secs: u64,
    /// Bearer token that the report requests must carry, when set.
    operator_token: Option<String>,
    /// Whether registration needs a token from `portcullis-verifier enrol`.
    require_enrolment: bool,
}

impl Verifier {
    pub fn new(store: Store, nonce_ttl_secs: u64) -> Verifier {
        Verifier {
            store: Mutex::new(store),
            nonce_ttl_secs,
            operator_token: None,
            require_enrolment: false,
        }
    }

    /// Accepts a registration only with the device's one-time enrolment
    /// token, so the first client to ask cannot claim an id.
    pub fn with_required_enrolment(mut self) -> Verifier {
        self.require_enrolment = true;
        self
    }

    /// Requires `Authorization: Bearer <token>` on the report requests,
    /// which name the paths that differ on each device.
    pub fn with_operator_token(mut self, token: String) -> Verifier {
        self.operator_token = Some(token);
        self
    }

    /// Handles one request that carries no Authorization header.
    pub fn handle(&self, method: &str, path: &str, body: &[u8]) -> Response {
        self.handle_authorized(method, path, None, body)
    }

    /// Handles one request. Database failures become 500 and are logged.
    pub fn handle_authorized(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Response {
        let is_report = method == "GET";
        if is_report && !self.is_operator(authorization) {
            log::warn!("rejected {method} {path}: missing or wrong operator token");
            return Response::error(401, "this request needs the operator token");
        }

        let store = self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let result = match (method, segments.as_slice()) {
            ("POST", ["v1", "devices"]) => register(&store, body, self.require_enrolment),
            ("GET", ["v1", "devices"]) => reports(&store),
            ("PUT", ["v1", "devices", id, "baseline"]) => receive_baseline(&store, id, body),
            ("POST", ["v1", "devices", id, "challenges"]) => {
                challenge(&store, id, self.nonce_ttl_secs)
            }
            ("POST", ["v1", "devices", id, "answers"]) => receive_answer(&store, id, body),
            ("GET", ["v1", "devices", id, "report"]) => report(&store, id),
            _ => Ok(Response::error(
                404,
                format!("no such endpoint: {method} {path}"),
            )),
        };
        result.unwrap_or_else(|error| {
            log::error!("{method} {path} failed: {error:#}");
            Response::error(500, "internal error; see the verifier log")
        })
    }
}

impl Verifier {
    fn is_operator(&self, authorization: Option<&str>) -> bool {
        let Some(token) = &self.operator_token else {
            return true;
        };
        let Some(given) = authorization.and_then(|value| value.strip_prefix("Bearer ")) else {
            return false;
        };
        constant_time_equal(given.as_bytes(), token.as_bytes())
    }
}

/// Device ids are path segments and log fields, so they stay plain.
pub fn check_device_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid device id {id:?}: use 1 to 64 of A-Z a-z 0-9 . _ -"
        ))
    }
}

fn register(store: &Store, body: &[u8], require_enrolment: bool) -> Result<Response> {
    let request: RegisterRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => {
            return Ok(Response::error(
                400,
                format!("malformed registration: {error}"),
            ))
        }
    };
    if let Err(message) = check_device_id(&request.device_id) {
        return Ok(Response::error(400, message));
    }
    let id = request.device_id.as_str();
    let reject = |status: u16, reason: String| -> Result<Response> {
        log::warn!("rejected registration of device {id}: {reason}");
        Ok(Response::error(status, reason))
    };
    if store.device_key(id)?.is_some() {
        return reject(409, format!("device {id} is already registered"));
    }
    // NOTE: without required enrolment the first device to claim an id gets
    // its key.
    if require_enrolment {
        let Some(token) = request.enrolment_token.as_deref() else {
            return reject(
                403,
                format!(
                    "device {id} needs an enrolment token; run `portcullis-verifier enrol {id}`"
                ),
            );
        };
        if !store.take_enrolment(id, token)? {
            return reject(
                403,
                format!("enrolment token for device {id} is wrong or already used"),
            );
        }
    }

    match store.register(id)? {
        Some(key) => {
            log::info!("registered device {id}");
            let response = RegisterResponse {
                device_id: id.to_string(),
                device_key: hex::encode(key),
            };
            Ok(Response::ok(201, &response))
        }
        // Another registration of the same id won between the check and here.
        None => reject(409, format!("device {id} is already registered")),
    }
}

fn receive_baseline(store: &Store, id: &str, body: &[u8]) -> Result<Response> {
    let Some(key) = store.device_key(id)? else {
        return Ok(Response::error(
            404,
            format!("device {id} is not registered"),
        ));
    };
    let reject = |status: u16, reason: String| -> Result<Response> {
        log::warn!("rejected baseline of device {id}: {reason}");
        Ok(Response::error(status, reason))
    };
    let upload: BaselineUpload = match serde_json::from_slice(body) {
        Ok(upload) => upload,
        Err(error) => return reject(400, format!("malformed baseline: {error}")),
    };
    if upload.device_id != id {
        return reject(400, format!("baseline names device {:?}", upload.device_id));
    }
    if let Err(reason) = upload.list.check_sorted() {
        return reject(400, format!("baseline list is not sorted: {reason}"));
    }
    let tree = upload.list.tree();
    let root = tree.root();
    if hex::encode(&root) != upload.root {
        return reject(400, "baseline root does not match its list".into());
    }
    let mac = hex::decode(&upload.mac).unwrap_or_default();
    if !wire::verify_baseline_mac(&key, id, upload.list.algorithm, tree.size(), &root, &mac) {
        return reject(403, "baseline MAC does not match the device key".into());
    }

    let ack = BaselineAck {
        root: upload.root.clone(),
        entries: tree.size(),
    };
    match store.baseline(id)? {
        // The device did not see the first acknowledgement and sent again.
        Some((_, stored_root)) if stored_root == upload.root => Ok(Response::ok(200, &ack)),
        Some((_, stored_root)) => reject(
            409,
            format!("device already has baseline {stored_root}; an operator must run rebaseline {id} first"),
        ),
        None => {
            store.store_baseline(id, &upload.list, &upload.root)?;
            log::info!("stored baseline {} of device {id}: {} entries, {}", upload.root, tree.size(), upload.list.algorithm);
            Ok(Response::ok(200, &ack))
        }
    }
}

fn challenge(store: &Store, id: &str, ttl_secs: u64) -> Result<Response> {
    if store.device_key(id)?.is_none() {
        return Ok(Response::error(
            404,
            format!("device {id} is not registered"),
        ));
    }
    if store.baseline(id)?.is_none() {
        return Ok(Response::error(
            409,
            format!("device {id} has no baseline to check against"),
        ));
    }
    let challenge = store.challenge(id, ttl_secs)?;
    log::info!(
        "issued nonce {} to device {id}, expires at {}",
        short(&challenge.nonce),
        challenge.expires_at
    );
    Ok(Response::ok(
        200,
        &Challenge {
            nonce: challenge.nonce,
            expires_at: challenge.expires_at,
        },
    ))
}

fn receive_answer(store: &Store, id: &str, body: &[u8]) -> Result<Response> {
    let Some(key) = store.device_key(id)? else {
        return Ok(Response::error(
            404,
            format!("device {id} is not registered"),
        ));
    };
    let reject = |status: u16, nonce: Option<&str>, reason: String| -> Result<Response> {
        log::warn!(
            "rejected answer of device {id} (nonce {}): {reason}",
            nonce.map_or("-".into(), short)
        );
        store.record_rejection(id, nonce, &reason)?;
        Ok(Response::error(status, reason))
    };

    let answer: Answer = match serde_json::from_slice(body) {
        Ok(answer) => answer,
        Err(error) => return reject(400, None, format!("malformed answer: {error}")),
    };
    let nonce_text = answer.nonce.as_str();
    let Some(challenge) = store.find_challenge(nonce_text)? else {
        return reject(400, None, "unknown nonce".into());
    };
    let nonce = Some(nonce_text);
    // Checked before the nonce is used up, so one device cannot burn
    // another's nonces.
    if challenge.device_id != id {
        return reject(403, nonce, "nonce was issued to another device".into());
    }
    if challenge.answered_at.is_some() {
        return reject(
            409,
            nonce,
            "nonce was already answered; replayed answer".into(),
        );
    }
    store.mark_answered(nonce_text)?;
    if now() > challenge.expires_at {
        return reject(
            410,
            nonce,
            format!("nonce expired at {}", challenge.expires_at),
        );
    }
    let Some((baseline, _)) = store.baseline(id)? else {
        return reject(409, nonce, "device has no baseline".into());
    };
    let Ok(nonce_bytes) = hex::decode(nonce_text) else {
        return reject(400, nonce, "nonce is not valid hex".into());
    };

    match wire::verify_answer(&key, id, &nonce_bytes, &baseline, &answer) {
        Ok(verdict) => {
            store.record_verdict(id, nonce_text, &verdict)?;
            if verdict.trusted {
                log::info!(
                    "device {id} is trusted (nonce {}, tpm: {})",
                    short(nonce_text),
                    answer.tpm.status
                );
            } else {
                log::warn!(
                    "device {id} differs from its baseline (nonce {}): {} changed, {} added, {} removed",
                    short(nonce_text),
                    verdict.changed.len(),
                    verdict.added.len(),
                    verdict.removed.len()
                );
            }
            Ok(Response::ok(200, &verdict))
        }
        Err(reason) => reject(403, nonce, reason),
    }
}

fn report(store: &Store, id: &str) -> Result<Response> {
    match store.report(id)? {
        Some(report) => Ok(Response::ok(200, &report)),
        None => Ok(Response::error(
            404,
            format!("device {id} is not registered"),
        )),
    }
}

fn reports(store: &Store) -> Result<Response> {
    let mut all = Vec::new();
    for id in store.device_ids()? {
        all.extend(store.report(&id)?);
    }
    Ok(Response::ok(200, &all))
}

/// Returns the first 16 hex digits of a nonce, enough to find it in the database.
fn short(nonce: &str) -> String {
    nonce.chars().take(16).collect()
}
