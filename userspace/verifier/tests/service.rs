//! The verifier's request handling against a real SQLite database, and the
//! device agent against the verifier over HTTPS on 127.0.0.1.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis_attest::agent::{Agent, AgentConfig};
use portcullis_attest::digest::Algorithm;
use portcullis_attest::measure::{Kind, Measurement, MeasurementList};
use portcullis_attest::rules::Rules;
use portcullis_attest::wire::{self, Answer, Challenge, RegisterResponse, TpmEvidence};
use portcullis_verifier::service::Verifier;
use portcullis_verifier::store::Store;
use serde_json::Value;

fn verifier(dir: &Path, ttl: u64) -> Verifier {
    Verifier::new(Store::open(&dir.join("verifier.db")).unwrap(), ttl)
}

fn call(verifier: &Verifier, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = verifier.handle(
        method,
        path,
        serde_json::to_string(body).unwrap().as_bytes(),
    );
    (response.status, response.body)
}

fn entry(path: &str, digest: &str) -> Measurement {
    Measurement {
        path: path.into(),
        kind: Kind::File,
        size: Some(4),
        mode: Some(0o755),
        uid: Some(0),
        gid: Some(0),
        mtime: None,
        link: None,
        digest: Some(digest.into()),
        error: None,
    }
}

fn baseline_list() -> MeasurementList {
    MeasurementList {
        algorithm: Algorithm::Sha256,
        entries: vec![
            entry("/bin/a", "aa"),
            entry("/bin/b", "bb"),
            entry("/bin/c", "cc"),
        ],
    }
}

/// Registers dev1 and stores the baseline; returns the device key.
fn enrol(verifier: &Verifier) -> Vec<u8> {
    let (status, body) = call(
        verifier,
        "POST",
        "/v1/devices",
        &serde_json::json!({"device_id": "dev1"}),
    );
    assert_eq!(status, 201, "{body}");
    let registered: RegisterResponse = serde_json::from_value(body).unwrap();
    let key = hex::decode(registered.device_key).unwrap();

    let list = baseline_list();
    let root = list.tree().root();
    let mac = wire::baseline_mac(&key, "dev1", list.algorithm, 3, &root);
    let upload = serde_json::json!({"device_id": "dev1", "list": list, "root": hex::encode(&root), "mac": hex::encode(mac)});
    let (status, body) = call(verifier, "PUT", "/v1/devices/dev1/baseline", &upload);
    assert_eq!(status, 200, "{body}");
    key
}

fn fresh_nonce(verifier: &Verifier) -> Vec<u8> {
    let (status, body) = call(
        verifier,
        "POST",
        "/v1/devices/dev1/challenges",
        &Value::Null,
    );
    assert_eq!(status, 200, "{body}");
    let challenge: Challenge = serde_json::from_value(body).unwrap();
    hex::decode(challenge.nonce).unwrap()
}

fn answer(key: &[u8], nonce: &[u8], current: &MeasurementList) -> Answer {
    let baseline = baseline_list();
    let tpm = TpmEvidence {
        status: "absent".into(),
        quote: None,
    };
    wire::make_answer(
        key,
        "dev1",
        nonce,
        &baseline,
        &baseline.tree().root(),
        current,
        tpm,
    )
}

fn report(verifier: &Verifier) -> Value {
    let (status, body) = call(verifier, "GET", "/v1/devices/dev1/report", &Value::Null);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn unchanged_device_is_trusted_once_per_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier(dir.path(), 60);
    let key = enrol(&verifier);
    assert_eq!(report(&verifier)["status"], "not verified yet");

    let nonce = fresh_nonce(&verifier);
    let answer = serde_json::to_value(answer(&key, &nonce, &baseline_list())).unwrap();
    let (status, body) = call(&verifier, "POST", "/v1/devices/dev1/answers", &answer);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["trusted"], true);
    assert_eq!(report(&verifier)["status"], "trusted");

    let (status, body) = call(&verifier, "POST", "/v1/devices/dev1/answers", &answer);
    assert_eq!(status, 409);
    assert!(
        body["error"].as_str().unwrap().contains("replayed"),
        "{body}"
    );
    let report = report(&verifier);
    assert!(report["last_rejection"]["reason"]
        .as_str()
        .unwrap()
        .contains("already answered"));
}

#[test]
fn verifier_names_differing_files() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier(dir.path(), 60);
    let key = enrol(&verifier);

    let mut current = baseline_list();
    current.entries[0].digest = Some("a2".into());
    current.entries.remove(1);
    current.entries.push(entry("/bin/d", "dd"));
    let nonce = fresh_nonce(&verifier);
    let answer = serde_json::to_value(answer(&key, &nonce, &current)).unwrap();
    let (status, body) = call(&verifier, "POST", "/v1/devices/dev1/answers", &answer);
    assert_eq!(status, 200, "{body}");

    let report = report(&verifier);
    assert_eq!(report["status"], "untrusted");
    assert_eq!(report["changed"], serde_json::json!(["/bin/a"]));
    assert_eq!(report["removed"], serde_json::json!(["/bin/b"]));
    assert_eq!(report["added"], serde_json::json!(["/bin/d"]));
}

#[test]
fn bad_answers_never_mark_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier(dir.path(), 60);
    let key = enrol(&verifier);
    let post = |body: &Value| call(&verifier, "POST", "/v1/devices/dev1/answers", body);

    // Malformed JSON.
    let response = verifier.handle("POST", "/v1/devices/dev1/answers", b"{\"version\": 1,");
    assert_eq!(response.status, 400);
    assert!(response.body["error"]
        .as_str()
        .unwrap()
        .starts_with("malformed answer"));

    // A nonce the verifier never issued.
    let (status, _) =
        post(&serde_json::to_value(answer(&key, &[5u8; 32], &baseline_list())).unwrap());
    assert_eq!(status, 400);

    // Forged: made without the device key.
    let nonce = fresh_nonce(&verifier);
    let (status, body) =
        post(&serde_json::to_value(answer(&[0u8; 32], &nonce, &baseline_list())).unwrap());
    assert_eq!(status, 403);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("binding does not match"));

    // The forged attempt used up its nonce, so the genuine answer is a replay.
    let (status, _) = post(&serde_json::to_value(answer(&key, &nonce, &baseline_list())).unwrap());
    assert_eq!(status, 409);

    assert_eq!(report(&verifier)["status"], "not verified yet");
}

#[test]
fn expired_nonce_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier(dir.path(), 0);
    let key = enrol(&verifier);
    let nonce = fresh_nonce(&verifier);
    // Expiry has one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    let answer = serde_json::to_value(answer(&key, &nonce, &baseline_list())).unwrap();
    let (status, body) = call(&verifier, "POST", "/v1/devices/dev1/answers", &answer);
    assert_eq!(status, 410, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("nonce expired"));
    assert_eq!(report(&verifier)["status"], "not verified yet");
}

#[test]
fn baseline_is_accepted_once() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier(dir.path(), 60);
    let key = enrol(&verifier);

    // The same baseline again is acknowledged, as after a lost reply.
    let list = baseline_list();
    let root = list.tree().root();
    let mac = hex::encode(wire::baseline_mac(&key, "dev1", list.algorithm, 3, &root));
    let same = serde_json::json!({"device_id": "dev1", "list": list, "root": hex::encode(&root), "mac": mac});
    assert_eq!(
        call(&verifier, "PUT", "/v1/devices/dev1/baseline", &same).0,
        200
    );

    let mut other = baseline_list();
    other.entries.pop();
    let root = other.tree().root();
    let mac = hex::encode(wire::baseline_mac(&key, "dev1", other.algorithm, 2, &root));
    let upload = serde_json::json!({"device_id": "dev1", "list": other, "root": hex::encode(&root), "mac": mac});
    let (status, body) = call(&verifier, "PUT", "/v1/devices/dev1/baseline", &upload);
    assert_eq!(status, 409, "{body}");

    let bad_mac = serde_json::json!({"device_id": "dev1", "list": other, "root": hex::encode(&root), "mac": "00"});
    assert_eq!(
        call(&verifier, "PUT", "/v1/devices/dev1/baseline", &bad_mac).0,
        403
    );

    // A truncated upload is rejected with its position and the stored
    // baseline stays.
    let stored_root = report(&verifier)["baseline_root"].clone();
    let body = serde_json::to_string(&same).unwrap();
    let response = verifier.handle(
        "PUT",
        "/v1/devices/dev1/baseline",
        &body.as_bytes()[..body.len() / 2],
    );
    assert_eq!(response.status, 400);
    let message = response.body["error"].as_str().unwrap();
    assert!(message.starts_with("malformed baseline: EOF"), "{message}");
    assert!(message.contains("line 1 column"), "{message}");
    assert_eq!(report(&verifier)["baseline_root"], stored_root);
    assert_eq!(
        stored_root,
        serde_json::json!(hex::encode(baseline_list().tree().root()))
    );
}

#[test]
fn operator_nonce_is_handed_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("verifier.db")).unwrap();
    store.register("dev1").unwrap();
    let issued = store.issue_challenge("dev1", 60).unwrap();

    let first = store.challenge("dev1", 60).unwrap();
    assert_eq!(first.nonce, issued.nonce);
    let second = store.challenge("dev1", 60).unwrap();
    assert_ne!(second.nonce, issued.nonce);
    let third = store.challenge("dev1", 60).unwrap();
    assert_ne!(third.nonce, second.nonce);
}

#[test]
fn other_device_cannot_use_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier(dir.path(), 60);
    let key = enrol(&verifier);
    let (status, _) = call(
        &verifier,
        "POST",
        "/v1/devices",
        &serde_json::json!({"device_id": "dev2"}),
    );
    assert_eq!(status, 201);

    let nonce = fresh_nonce(&verifier);
    let answer = serde_json::to_value(answer(&key, &nonce, &baseline_list())).unwrap();
    let (status, body) = call(&verifier, "POST", "/v1/devices/dev2/answers", &answer);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "nonce was issued to another device");

    // dev1's nonce is still open for dev1.
    let (status, body) = call(&verifier, "POST", "/v1/devices/dev1/answers", &answer);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["trusted"], true);
}

#[test]
fn reports_need_operator_token() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier(dir.path(), 60).with_operator_token("s3cret".into());
    let key = enrol(&verifier);

    let denied = verifier.handle("GET", "/v1/devices/dev1/report", b"");
    assert_eq!(denied.status, 401);
    let wrong = verifier.handle_authorized("GET", "/v1/devices", Some("Bearer s3creT"), b"");
    assert_eq!(wrong.status, 401);
    let short = verifier.handle_authorized("GET", "/v1/devices", Some("Bearer s3cre"), b"");
    assert_eq!(short.status, 401);
    let allowed =
        verifier.handle_authorized("GET", "/v1/devices/dev1/report", Some("Bearer s3cret"), b"");
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.body["status"], "not verified yet");

    // Device requests carry no token and still work.
    let nonce = fresh_nonce(&verifier);
    let answer = serde_json::to_value(answer(&key, &nonce, &baseline_list())).unwrap();
    let (status, _) = call(&verifier, "POST", "/v1/devices/dev1/answers", &answer);
    assert_eq!(status, 200);
}

#[test]
fn enrolment_token_is_required_once() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier(dir.path(), 60).with_required_enrolment();
    let store = Store::open(&dir.path().join("verifier.db")).unwrap();
    let register = |body: Value| call(&verifier, "POST", "/v1/devices", &body);

    let (status, body) = register(serde_json::json!({"device_id": "dev1"}));
    assert_eq!(status, 403);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("needs an enrolment token"),
        "{body}"
    );

    let token = store.enrol("dev1").unwrap();
    let (status, body) =
        register(serde_json::json!({"device_id": "dev1", "enrolment_token": "00"}));
    assert_eq!(status, 403);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("wrong or already used"),
        "{body}"
    );

    // A token enrols only the device it was made for.
    let (status, _) = register(serde_json::json!({"device_id": "dev2", "enrolment_token": token}));
    assert_eq!(status, 403);

    let (status, body) =
        register(serde_json::json!({"device_id": "dev1", "enrolment_token": token}));
    assert_eq!(status, 201, "{body}");
    let (status, _) = register(serde_json::json!({"device_id": "dev1", "enrolment_token": token}));
    assert_eq!(status, 409);
    assert!(
        !store.take_enrolment("dev1", &token).unwrap(),
        "token is used up"
    );
}

#[test]
fn registration_checks_id() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier(dir.path(), 60);
    let (status, _) = call(
        &verifier,
        "POST",
        "/v1/devices",
        &serde_json::json!({"device_id": "../x"}),
    );
    assert_eq!(status, 400);
    let (status, _) = call(
        &verifier,
        "POST",
        "/v1/devices",
        &serde_json::json!({"device_id": "ok-1"}),
    );
    assert_eq!(status, 201);
    let (status, _) = call(
        &verifier,
        "POST",
        "/v1/devices",
        &serde_json::json!({"device_id": "ok-1"}),
    );
    assert_eq!(status, 409);
}

/// Starts the verifier over HTTPS on an ephemeral loopback port; returns
/// its URL.
fn start_https(dir: &Path, stop: Arc<AtomicBool>) -> String {
    portcullis_verifier::cert::generate(&dir.join("tls"), &["127.0.0.1".to_string()]).unwrap();
    let tls = portcullis_verifier::server::server_tls_config(
        &dir.join("tls/cert.pem"),
        &dir.join("tls/key.pem"),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let verifier = Arc::new(verifier(dir, 60));
    std::thread::spawn(move || {
        portcullis_verifier::server::serve(listener, tls, verifier, &stop).unwrap()
    });
    url
}

fn agent(dir: &Path, url: &str, ca: &Path) -> Agent {
    let config = AgentConfig {
        verifier_url: url.into(),
        ca_file: ca.into(),
        device_id: "dev1".into(),
        state_dir: dir.join("state"),
        attempts: 2,
        first_backoff: Duration::from_millis(50),
    };
    Agent::new(config, Arc::new(AtomicBool::new(false))).unwrap()
}

#[test]
fn agent_over_https_detects_changes() {
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let url = start_https(dir.path(), stop.clone());
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for name in ["keep", "edit", "delete"] {
        std::fs::write(files.join(name), name).unwrap();
    }
    let rules = Rules::parse(&format!("tree {}\n", files.display()), "test.rules").unwrap();

    let agent = agent(dir.path(), &url, &dir.path().join("tls/ca.pem"));
    agent.register(None).unwrap();
    agent.make_baseline(&rules, false, &|_, _| {}).unwrap();
    agent.upload_baseline().unwrap();
    let (verdict, _) = agent.answer_challenge(&rules, None).unwrap();
    assert!(verdict.trusted);

    std::fs::write(files.join("edit"), "edited").unwrap();
    std::fs::remove_file(files.join("delete")).unwrap();
    std::fs::write(files.join("new"), "new").unwrap();
    let (verdict, stats) = agent.answer_challenge(&rules, None).unwrap();
    assert!(!verdict.trusted);
    assert_eq!(verdict.changed, [format!("{}/edit", files.display())]);
    assert_eq!(verdict.removed, [format!("{}/delete", files.display())]);
    assert_eq!(verdict.added, [format!("{}/new", files.display())]);
    assert_eq!(
        stats.files_hashed, 2,
        "only the edited and the new file are read again"
    );
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn collector_attests_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let stop_server = Arc::new(AtomicBool::new(false));
    let url = start_https(dir.path(), stop_server.clone());
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("app"), "binary").unwrap();
    let rules = dir.path().join("baseline.rules");
    std::fs::write(&rules, format!("tree {}\n", files.display())).unwrap();
    let section = serde_json::json!({
        "enabled": true,
        "verifier_url": url,
        "ca_file": dir.path().join("tls/ca.pem"),
        "device_id": "dev1",
        "rules_file": rules,
        "state_dir": dir.path().join("state"),
        "interval_secs": 1,
        "retry_secs": 1,
    });
    let config = portcullis_attest::collector::Config::from_json(&section).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let handle = portcullis_attest::collector::spawn(config, stop.clone())
        .unwrap()
        .expect("collector starts");
    let store = Store::open(&dir.path().join("verifier.db")).unwrap();
    let mut status = String::new();
    for _ in 0..300 {
        status = store
            .report("dev1")
            .unwrap()
            .map(|report| report.status)
            .unwrap_or_default();
        if status == "trusted" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, "trusted");

    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    stop_server.store(true, Ordering::Relaxed);
}

#[test]
fn agent_rejects_verifier_with_other_ca() {
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let url = start_https(dir.path(), stop.clone());
    portcullis_verifier::cert::generate(&dir.path().join("other"), &["127.0.0.1".to_string()])
        .unwrap();
    let agent = agent(dir.path(), &url, &dir.path().join("other/ca.pem"));
    let error = agent.register(None).unwrap_err();
    assert!(format!("{error:#}").contains("certificate"), "{error:#}");
    assert!(!dir.path().join("state/device.json").exists());
    stop.store(true, Ordering::Relaxed);
}
