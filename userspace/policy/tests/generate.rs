//! Policy generation over a fixture root built from host files.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use portcullis_policy::{generate, Digest, GenerateOptions, Kind, Progress};
use sha2::{Digest as _, Sha256};

/// A host ELF executable and a host shared object to copy into fixtures.
const HOST_EXECUTABLE: &str = "/bin/true";

fn host_shared_object() -> PathBuf {
    let candidates = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/aarch64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
    ];
    let found = candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file());
    found.expect("no libc.so.6 found on the host to copy as a shared object")
}

fn sha256_of(path: &Path) -> Digest {
    Digest(Sha256::digest(fs::read(path).unwrap()).into())
}

fn write(path: &Path, contents: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn copy(from: &Path, to: &Path, mode: u32) {
    write(to, &fs::read(from).unwrap(), mode);
}

fn entry_summary(generated: &portcullis_policy::Generated) -> Vec<(String, Kind, Digest)> {
    let entries = generated.policy.entries();
    entries
        .map(|entry| (entry.path.clone(), entry.kind, entry.sha256))
        .collect()
}

#[test]
fn generate_fixture_entries() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path();

    copy(
        Path::new(HOST_EXECUTABLE),
        &base.join("usr/bin/true"),
        0o755,
    );
    fs::hard_link(
        base.join("usr/bin/true"),
        base.join("usr/bin/true-hardlink"),
    )
    .unwrap();
    copy(
        &host_shared_object(),
        &base.join("usr/lib/libc.so.6"),
        0o644,
    );
    write(
        &base.join("usr/bin/hello.sh"),
        b"#!/bin/sh\necho hello\n",
        0o755,
    );

    // Absolute target, resolved inside the root: no entry of its own.
    fs::create_dir_all(base.join("bin")).unwrap();
    symlink("/usr/bin/true", base.join("bin/true")).unwrap();
    // This target exists on the host but not in the root: it dangles.
    symlink("/etc/hostname", base.join("usr/bin/host-link")).unwrap();
    // A directory symlink, as in merged-/usr images: not walked.
    symlink("usr/lib", base.join("lib")).unwrap();

    write(&base.join("etc/data.conf"), b"key = value\n", 0o644);
    write(
        &base.join("usr/bin/not-a-script"),
        b"plain text with an execute bit\n",
        0o755,
    );
    write(&base.join("usr/share/noexec.sh"), b"#!/bin/sh\n", 0o644);
    copy(Path::new(HOST_EXECUTABLE), &base.join("proc/1/exe"), 0o755);

    let updates = Mutex::new(Vec::new());
    let generated = generate(base, &GenerateOptions::default(), |progress: &Progress| {
        updates.lock().unwrap().push(*progress);
    })
    .unwrap();

    let executable = sha256_of(Path::new(HOST_EXECUTABLE));
    let expected = vec![
        (
            "/usr/bin/hello.sh".to_owned(),
            Kind::Script,
            sha256_of(&base.join("usr/bin/hello.sh")),
        ),
        ("/usr/bin/true".to_owned(), Kind::ElfExecutable, executable),
        (
            "/usr/bin/true-hardlink".to_owned(),
            Kind::ElfExecutable,
            executable,
        ),
        (
            "/usr/lib/libc.so.6".to_owned(),
            Kind::ElfSharedObject,
            sha256_of(&host_shared_object()),
        ),
    ];
    assert_eq!(entry_summary(&generated), expected);
    assert!(generated.policy.entries().all(|entry| !entry.path_bound));
    assert_eq!(
        generated.policy.root,
        fs::canonicalize(base).unwrap().to_str().unwrap()
    );
    assert!(generated.warnings.is_empty(), "{:?}", generated.warnings);

    let counts = generated.counts;
    // Regular files: true, true-hardlink, libc, hello.sh, data.conf,
    // not-a-script, noexec.sh. Symlinks to files: bin/true, host-link.
    assert_eq!(counts.files_seen, 9);
    assert_eq!(counts.files_hashed, 3, "the hard link is hashed once");
    // data.conf, not-a-script, noexec.sh and the dangling host-link.
    assert_eq!(counts.files_skipped, 4);
    assert_eq!(counts.directories_skipped, 1, "/proc");
    let hashed_sizes = ["usr/bin/true", "usr/lib/libc.so.6", "usr/bin/hello.sh"]
        .iter()
        .map(|path| fs::metadata(base.join(path)).unwrap().len())
        .sum::<u64>();
    assert_eq!(counts.bytes_hashed, hashed_sizes);

    let updates = updates.into_inner().unwrap();
    let first = updates.first().unwrap();
    let last = updates
        .iter()
        .max_by_key(|progress| progress.files_done)
        .unwrap();
    assert_eq!((first.files_done, first.bytes_done), (0, 0));
    // Six inodes are examined: the hard link is one of them.
    assert_eq!(first.files_total, 6);
    assert_eq!(updates.len(), 7, "one call before hashing and one per file");
    assert_eq!(last.files_done, last.files_total);
    assert_eq!(last.bytes_done, last.bytes_total);
}

#[test]
fn generate_symlink_target_inside_root() {
    // The link's absolute target must be read from the root, not the host,
    // where /bin/true is a different file.
    let root = tempfile::tempdir().unwrap();
    let base = root.path();
    write(&base.join("opt/tool/run"), b"#!/bin/sh\nexit 0\n", 0o755);
    symlink("/opt/tool/run", base.join("opt/tool/run-link")).unwrap();
    fs::create_dir_all(base.join("bin")).unwrap();
    symlink("/opt/tool/run", base.join("bin/true")).unwrap();

    let generated = generate(base, &GenerateOptions::default(), |_: &Progress| {}).unwrap();

    let expected = vec![(
        "/opt/tool/run".to_owned(),
        Kind::Script,
        sha256_of(&base.join("opt/tool/run")),
    )];
    assert_eq!(entry_summary(&generated), expected);
    assert_eq!(generated.counts.files_seen, 3);
    assert_eq!(generated.counts.files_hashed, 1);
}

#[test]
fn generate_respects_skip_list() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path();
    copy(
        Path::new(HOST_EXECUTABLE),
        &base.join("usr/bin/true"),
        0o755,
    );
    copy(
        Path::new(HOST_EXECUTABLE),
        &base.join("var/cache/true"),
        0o755,
    );
    // The link is walked, but its target is in a skipped subtree.
    symlink("/var/cache/true", base.join("usr/bin/cached")).unwrap();
    let options = GenerateOptions {
        skip: vec![PathBuf::from("/var")],
        threads: Some(2),
    };

    let generated = generate(base, &options, |_: &Progress| {}).unwrap();

    let paths: Vec<&str> = generated
        .policy
        .entries()
        .map(|entry| entry.path.as_str())
        .collect();
    assert_eq!(paths, ["/usr/bin/true"]);
    assert_eq!(generated.counts.directories_skipped, 1);
    assert_eq!(generated.counts.files_skipped, 1, "the link into /var");
}

#[test]
fn generate_warns_on_non_utf8_name() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let root = tempfile::tempdir().unwrap();
    let base = root.path();
    copy(
        Path::new(HOST_EXECUTABLE),
        &base.join("usr/bin/true"),
        0o755,
    );
    let bad_name = OsStr::from_bytes(b"tool-\xff");
    copy(
        Path::new(HOST_EXECUTABLE),
        &base.join("usr/bin").join(bad_name),
        0o755,
    );

    let generated = generate(base, &GenerateOptions::default(), |_: &Progress| {}).unwrap();

    let paths: Vec<&str> = generated
        .policy
        .entries()
        .map(|entry| entry.path.as_str())
        .collect();
    assert_eq!(paths, ["/usr/bin/true"]);
    assert_eq!(generated.warnings.len(), 1, "{:?}", generated.warnings);
    let canonical = fs::canonicalize(base).unwrap();
    assert_eq!(
        generated.warnings[0].path,
        canonical.join("usr/bin").join(bad_name)
    );
    assert!(generated.warnings[0].message.contains("not valid UTF-8"));
}

#[test]
fn generate_missing_root_fails() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("absent");

    let error = generate(&missing, &GenerateOptions::default(), |_: &Progress| {}).unwrap_err();

    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
}

/// The user that the unreadable-file test runs as when started by root.
const NOBODY: u32 = 65534;

/// Checks that unreadable files and directories become warnings. Root
/// bypasses file modes, so under root the test runs itself again as the user
/// nobody in a child process, where chmod 000 takes effect.
#[test]
fn generate_warns_on_unreadable_files() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        check_unreadable_files();
        return;
    }

    // Copy the test binary where the user nobody can run it, because the build
    // directory may be closed to other users.
    let staging = tempfile::tempdir().unwrap();
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let binary = staging.path().join("generate-test");
    fs::copy(std::env::current_exe().unwrap(), &binary).unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    let scratch = staging.path().join("tmp");
    fs::create_dir(&scratch).unwrap();
    std::os::unix::fs::chown(&scratch, Some(NOBODY), Some(NOBODY)).unwrap();

    let output = Command::new(&binary)
        .args([
            "generate_warns_on_unreadable_files",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("TMPDIR", &scratch)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child run as nobody failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "child did not run the test:\n{stdout}\n{stderr}"
    );
}

fn check_unreadable_files() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path();
    copy(
        Path::new(HOST_EXECUTABLE),
        &base.join("usr/bin/true"),
        0o755,
    );
    copy(
        Path::new(HOST_EXECUTABLE),
        &base.join("usr/bin/secret"),
        0o000,
    );
    copy(
        Path::new(HOST_EXECUTABLE),
        &base.join("usr/locked/inside"),
        0o755,
    );
    fs::set_permissions(base.join("usr/locked"), fs::Permissions::from_mode(0o000)).unwrap();
    assert!(
        fs::File::open(base.join("usr/bin/secret")).is_err(),
        "test needs an unreadable file"
    );

    let generated = generate(base, &GenerateOptions::default(), |_: &Progress| {}).unwrap();

    let paths: Vec<&str> = generated
        .policy
        .entries()
        .map(|entry| entry.path.as_str())
        .collect();
    assert_eq!(paths, ["/usr/bin/true"]);

    let canonical = fs::canonicalize(base).unwrap();
    let warnings: Vec<String> = generated.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(generated.warnings[0].path, canonical.join("usr/bin/secret"));
    assert!(
        warnings[0].contains("failed to open: Permission denied"),
        "{warnings:?}"
    );
    assert_eq!(generated.warnings[1].path, canonical.join("usr/locked"));
    assert!(
        warnings[1].contains("failed to list: Permission denied"),
        "{warnings:?}"
    );

    // Let the temporary directory be removed.
    fs::set_permissions(base.join("usr/locked"), fs::Permissions::from_mode(0o755)).unwrap();
}
