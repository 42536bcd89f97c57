//! Policy file round trip, atomic save, and every rejection path with its
//! file name and position.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

use portcullis_policy::{Digest, Entry, Kind, Policy, PolicyError};

const LS_DIGEST: &str = "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988";
const LIBC_DIGEST: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A valid policy file. Each test breaks one line of it.
const VALID: &str = r#"{
  "format": "portcullis-policy",
  "version": 1,
  "generator": "portcullis 0.1.0",
  "root": "/srv/image",
  "created": "2026-12-04T20:00:00Z",
  "entries": [
    { "path": "/usr/lib/libc.so.6", "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "kind": "elf-shared-object" },
    { "path": "/usr/bin/ls", "sha256": "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988", "kind": "elf-executable", "path_bound": true }
  ]
}
"#;

fn sample_policy() -> Policy {
    let mut policy = Policy::parse(VALID.as_bytes(), "sample").unwrap();
    policy
        .add("/usr/bin/run.sh", Digest([7; 32]), Kind::Script)
        .unwrap();
    policy
}

/// Returns the 1-based line and column of the last character of the first
/// `needle` in `text`, which is the position serde_json reports after reading it.
fn position_after(text: &str, needle: &str) -> (usize, usize) {
    let end = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
        + needle.len();
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = end - before.rfind('\n').map_or(0, |newline| newline + 1);
    (line, column)
}

/// Parses `text` as "policy.json" and returns the Parse error's position and
/// message, checking that the displayed error starts with name:line:column.
fn parse_error(text: &str) -> (usize, usize, String) {
    let error = Policy::parse(text.as_bytes(), "policy.json").unwrap_err();
    let display = error.to_string();
    let PolicyError::Parse {
        name,
        line,
        column,
        message,
    } = error
    else {
        panic!("expected a parse error, got {display}");
    };
    assert_eq!(name, "policy.json");
    assert!(
        display.starts_with(&format!("policy.json:{line}:{column}: ")),
        "{display}"
    );
    (line, column, message)
}

#[test]
fn parse_reads_every_field() {
    let policy = Policy::parse(VALID.as_bytes(), "valid").unwrap();

    assert_eq!(policy.generator, "portcullis 0.1.0");
    assert_eq!(policy.root, "/srv/image");
    assert_eq!(
        policy.created,
        UNIX_EPOCH + Duration::from_secs(1_796_414_400)
    );
    assert_eq!(policy.len(), 2);

    let ls = policy.get("/usr/bin/ls").unwrap();
    assert_eq!(ls.sha256.to_string(), LS_DIGEST);
    assert_eq!(ls.kind, Kind::ElfExecutable);
    assert!(ls.path_bound);

    let libc = policy.get("/usr/lib/libc.so.6").unwrap();
    assert_eq!(libc.sha256.to_string(), LIBC_DIGEST);
    assert_eq!(libc.kind, Kind::ElfSharedObject);
    assert!(!libc.path_bound, "path_bound defaults to false");
}

#[test]
fn entries_sorted_by_path() {
    let policy = sample_policy();
    let paths: Vec<&str> = policy.entries().map(|entry| entry.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/usr/bin/ls", "/usr/bin/run.sh", "/usr/lib/libc.so.6"]
    );

    let json = policy.to_json();
    let ls = json.find("/usr/bin/ls").unwrap();
    let run = json.find("/usr/bin/run.sh").unwrap();
    let libc = json.find("/usr/lib/libc.so.6").unwrap();
    assert!(ls < run, "entries out of order in:\n{json}");
    assert!(run < libc, "entries out of order in:\n{json}");
}

#[test]
fn json_round_trip() {
    let policy = sample_policy();
    let json = policy.to_json();

    assert!(json.contains(r#""format": "portcullis-policy""#), "{json}");
    assert!(json.contains(r#""version": 1"#), "{json}");
    assert!(
        json.contains(r#""created": "2026-12-04T20:00:00Z""#),
        "{json}"
    );
    assert!(json.contains(r#""kind": "script""#), "{json}");
    assert_eq!(
        json.matches("path_bound").count(),
        1,
        "only true is written:\n{json}"
    );
    assert!(json.ends_with("}\n"));

    let reparsed = Policy::parse(json.as_bytes(), "round trip").unwrap();
    assert_eq!(reparsed, policy);
}

#[test]
fn new_policy_round_trips() {
    let mut policy = Policy::new("/");
    policy
        .add("/bin/sh", Digest([1; 32]), Kind::ElfExecutable)
        .unwrap();

    let reparsed = Policy::parse(policy.to_json().as_bytes(), "new").unwrap();
    assert_eq!(reparsed, policy);
}

#[test]
fn save_atomic_round_trip() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("policy.json");
    let policy = sample_policy();

    policy.save_atomic(&path).unwrap();
    assert_eq!(Policy::load(&path).unwrap(), policy);
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    let names: Vec<_> = fs::read_dir(directory.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["policy.json"], "temporary file left behind");
}

#[test]
fn save_atomic_replaces_and_keeps_mode() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("policy.json");
    Policy::new("/old").save_atomic(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

    let policy = sample_policy();
    policy.save_atomic(&path).unwrap();

    assert_eq!(Policy::load(&path).unwrap(), policy);
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn save_atomic_failure_keeps_old_file() {
    // Renaming a file over a non-empty directory fails, after the temporary
    // file is written, which is the last step that can fail.
    let directory = tempfile::tempdir().unwrap();
    let target = directory.path().join("policy.json");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), "old contents").unwrap();

    let error = sample_policy().save_atomic(&target).unwrap_err();

    assert!(matches!(error, PolicyError::Save { .. }), "{error}");
    assert!(
        error.to_string().contains(&target.display().to_string()),
        "{error}"
    );
    assert_eq!(
        fs::read_to_string(target.join("keep")).unwrap(),
        "old contents"
    );
    let names: Vec<_> = fs::read_dir(directory.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["policy.json"], "temporary file left behind");
}

#[test]
fn save_atomic_missing_directory_fails() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("missing/policy.json");

    let error = sample_policy().save_atomic(&path).unwrap_err();

    assert!(matches!(error, PolicyError::Save { .. }), "{error}");
    assert!(error.to_string().contains("missing/policy.json"), "{error}");
}

#[test]
fn load_missing_file_names_path() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("absent.json");

    let error = Policy::load(&path).unwrap_err();

    assert!(matches!(error, PolicyError::Read { .. }), "{error}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn load_error_names_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("broken.json");
    fs::write(&path, VALID.replace(r#""version": 1"#, r#""version": 9"#)).unwrap();

    let error = Policy::load(&path).unwrap_err();

    let expected = format!("{}:3:14: unsupported version 9", path.display());
    assert!(error.to_string().starts_with(&expected), "{error}");
}

#[test]
fn reject_malformed_json() {
    let text = VALID.replace(r#""version": 1,"#, r#""version": 1,,"#);
    let (line, column, message) = parse_error(&text);

    assert_eq!((line, column), position_after(&text, "1,,"));
    assert!(message.starts_with("malformed JSON:"), "{message}");
}

#[test]
fn reject_truncated_file() {
    let cut = VALID.find("/usr/bin/ls").unwrap();
    let text = &VALID[..cut];
    let (line, column, message) = parse_error(text);

    let last_line = text.lines().last().unwrap();
    assert_eq!((line, column), (text.lines().count(), last_line.len()));
    assert!(message.starts_with("truncated file:"), "{message}");
}

#[test]
fn reject_empty_file() {
    let (line, column, message) = parse_error("");

    assert_eq!((line, column), (1, 0));
    assert!(message.starts_with("truncated file:"), "{message}");
}

#[test]
fn reject_wrong_format() {
    let text = VALID.replace(r#""portcullis-policy""#, r#""fapolicyd-trust""#);
    let (line, column, message) = parse_error(&text);

    assert_eq!(
        (line, column),
        position_after(&text, r#""fapolicyd-trust""#)
    );
    assert!(
        message.contains(r#"wrong format "fapolicyd-trust""#),
        "{message}"
    );
}

#[test]
fn reject_unsupported_version() {
    let text = VALID.replace(r#""version": 1"#, r#""version": 2"#);
    let (line, column, message) = parse_error(&text);

    assert_eq!((line, column), position_after(&text, r#""version": 2"#));
    assert_eq!(message, "unsupported version 2; supported versions: 1");
}

#[test]
fn reject_bad_digests() {
    let short = "1f2e3d4c";
    let upper = LS_DIGEST.to_uppercase();
    let not_hex = LS_DIGEST.replace('f', "g");
    for bad in [short, upper.as_str(), not_hex.as_str()] {
        let text = VALID.replace(LS_DIGEST, bad);
        let (line, column, message) = parse_error(&text);

        assert_eq!(
            (line, column),
            position_after(&text, &format!("\"{bad}\"")),
            "{bad}"
        );
        assert!(
            message.contains(&format!("invalid sha256 \"{bad}\"")),
            "{message}"
        );
        assert!(message.contains("64 lowercase hex digits"), "{message}");
    }
}

#[test]
fn reject_bad_paths() {
    let cases = [
        ("usr/bin/ls", "must be absolute"),
        ("/usr/bin/../bin/ls", "\"..\""),
        ("/usr//bin/ls", "empty"),
        ("/usr/bin/ls/", "empty"),
        ("/", "below /"),
    ];
    for (bad, reason) in cases {
        let text = VALID.replace(r#""/usr/bin/ls""#, &format!("\"{bad}\""));
        let (line, column, message) = parse_error(&text);

        assert_eq!(
            (line, column),
            position_after(&text, &format!("\"{bad}\"")),
            "{bad}"
        );
        assert!(
            message.contains(&format!("invalid path \"{bad}\"")),
            "{message}"
        );
        assert!(message.contains(reason), "{message}");
    }
}

#[test]
fn reject_relative_root() {
    let text = VALID.replace(r#""/srv/image""#, r#""srv/image""#);
    let (line, column, message) = parse_error(&text);

    assert_eq!((line, column), position_after(&text, r#""srv/image""#));
    assert!(
        message.contains(r#"invalid root "srv/image": must be absolute"#),
        "{message}"
    );
}

#[test]
fn reject_unknown_keys() {
    let top = VALID.replace(r#""root":"#, r#""owner": "x", "root":"#);
    let (line, column, message) = parse_error(&top);
    assert_eq!((line, column), position_after(&top, r#""owner""#));
    assert!(message.contains("unknown field `owner`"), "{message}");

    let entry = VALID.replace(
        r#""kind": "elf-executable""#,
        r#""kind": "elf-executable", "mode": 493"#,
    );
    let (line, column, message) = parse_error(&entry);
    assert_eq!((line, column), position_after(&entry, r#""mode""#));
    assert!(message.contains("unknown field `mode`"), "{message}");
}

#[test]
fn reject_unknown_kind() {
    let text = VALID.replace(r#""elf-executable""#, r#""kernel-module""#);
    let (line, column, message) = parse_error(&text);

    assert_eq!((line, column), position_after(&text, r#""kernel-module""#));
    assert!(
        message.contains("unknown variant `kernel-module`"),
        "{message}"
    );
}

#[test]
fn reject_duplicate_path() {
    let later = r#"{ "path": "/usr/sbin/later", "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "kind": "other" }"#;
    let text = VALID
        .replace(r#""/usr/bin/ls""#, r#""/usr/lib/libc.so.6""#)
        .replace(
            "\"path_bound\": true }\n",
            &format!("\"path_bound\": true }},\n    {later}\n"),
        );
    let (line, column, message) = parse_error(&text);

    // The position is the end of the duplicate entry, not of the array.
    assert_eq!(
        (line, column),
        position_after(&text, r#""path_bound": true }"#)
    );
    assert_eq!(
        message,
        "duplicate path /usr/lib/libc.so.6 in entries[1]: entries[0] has the same path"
    );
}

#[test]
fn reject_bad_created_time() {
    let text = VALID.replace("2026-12-04T20:00:00Z", "04/12/2026");
    let (line, column, message) = parse_error(&text);

    assert_eq!((line, column), position_after(&text, r#""04/12/2026""#));
    assert!(
        message.contains(r#"invalid created time "04/12/2026""#),
        "{message}"
    );
}

#[test]
fn reject_missing_field() {
    let text = VALID.replace("  \"generator\": \"portcullis 0.1.0\",\n", "");
    let (line, _, message) = parse_error(&text);

    assert_eq!(line, text.lines().count(), "reported at the closing brace");
    assert!(message.contains("missing field `generator`"), "{message}");
}

#[test]
fn add_reports_new_and_existing() {
    let mut policy = sample_policy();
    let digest: Digest = LS_DIGEST.parse().unwrap();

    assert!(!policy
        .add("/usr/bin/ls", digest, Kind::ElfExecutable)
        .unwrap());
    assert!(policy
        .add("/usr/bin/cat", digest, Kind::ElfExecutable)
        .unwrap());
    assert_eq!(policy.len(), 4);
    assert_eq!(policy.get("/usr/bin/cat").unwrap().sha256, digest);
}

#[test]
fn add_rejects_changed_digest() {
    let mut policy = sample_policy();

    let error = policy
        .add("/usr/bin/ls", Digest([9; 32]), Kind::ElfExecutable)
        .unwrap_err();

    assert!(matches!(error, PolicyError::Conflict { .. }), "{error}");
    assert!(error.to_string().contains(LS_DIGEST), "{error}");
    assert_eq!(
        policy.get("/usr/bin/ls").unwrap().sha256.to_string(),
        LS_DIGEST
    );
}

#[test]
fn add_rejects_relative_path() {
    let mut policy = sample_policy();

    let error = policy
        .add("bin/ls", Digest([9; 32]), Kind::ElfExecutable)
        .unwrap_err();

    assert!(matches!(error, PolicyError::InvalidPath { .. }), "{error}");
    assert_eq!(policy.len(), 3);
}

#[test]
fn insert_replaces_entry() {
    let mut policy = sample_policy();
    let entry = Entry {
        path: "/usr/bin/ls".to_owned(),
        sha256: Digest([9; 32]),
        kind: Kind::ElfExecutable,
        path_bound: false,
    };

    let old = policy.insert(entry.clone()).unwrap().unwrap();

    assert_eq!(old.sha256.to_string(), LS_DIGEST);
    assert_eq!(policy.get("/usr/bin/ls"), Some(&entry));
}
