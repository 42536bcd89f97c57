//! diff and merge of two policies.

use portcullis_policy::{diff, merge, Digest, Entry, Kind, Policy, Side};

fn entry(path: &str, byte: u8) -> Entry {
    Entry {
        path: path.to_owned(),
        sha256: Digest([byte; 32]),
        kind: Kind::ElfExecutable,
        path_bound: false,
    }
}

fn policy(entries: &[Entry]) -> Policy {
    let mut policy = Policy::new("/srv/image");
    for entry in entries {
        policy.insert(entry.clone()).unwrap();
    }
    policy
}

fn paths(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.path.as_str()).collect()
}

#[test]
fn diff_finds_added_removed_changed() {
    let old = policy(&[entry("/bin/a", 1), entry("/bin/b", 2), entry("/bin/c", 3)]);
    let new = policy(&[entry("/bin/b", 2), entry("/bin/c", 4), entry("/bin/d", 5)]);

    let difference = diff(&old, &new);

    assert_eq!(paths(&difference.added), ["/bin/d"]);
    assert_eq!(paths(&difference.removed), ["/bin/a"]);
    assert_eq!(difference.changed.len(), 1);
    assert_eq!(difference.changed[0].old, entry("/bin/c", 3));
    assert_eq!(difference.changed[0].new, entry("/bin/c", 4));
    assert!(!difference.is_empty());
}

#[test]
fn diff_counts_path_binding_change() {
    let old = policy(&[entry("/bin/a", 1)]);
    let mut bound = entry("/bin/a", 1);
    bound.path_bound = true;
    let new = policy(&[bound]);

    let difference = diff(&old, &new);

    assert_eq!(difference.changed.len(), 1);
    assert!(difference.changed[0].new.path_bound);
}

#[test]
fn diff_of_equal_policies_is_empty() {
    let a = policy(&[entry("/bin/a", 1)]);
    let mut b = a.clone();
    b.root = "/elsewhere".to_owned();

    assert!(diff(&a, &b).is_empty());
}

#[test]
fn merge_takes_union() {
    let left = policy(&[entry("/bin/a", 1), entry("/bin/b", 2)]);
    let right = policy(&[entry("/bin/b", 2), entry("/bin/c", 3)]);

    let merged = merge(&left, &right, None).unwrap();

    let expected = [entry("/bin/a", 1), entry("/bin/b", 2), entry("/bin/c", 3)];
    assert_eq!(
        merged.policy.entries().cloned().collect::<Vec<_>>(),
        expected
    );
    assert!(merged.resolved.is_empty());
    assert_eq!(merged.policy.root, "/srv/image");
}

#[test]
fn merge_conflict_without_preference_fails() {
    let left = policy(&[entry("/bin/a", 1), entry("/bin/b", 2), entry("/bin/c", 3)]);
    let right = policy(&[entry("/bin/a", 9), entry("/bin/b", 2), entry("/bin/c", 8)]);

    let error = merge(&left, &right, None).unwrap_err();

    assert_eq!(error.conflicts.len(), 2);
    assert_eq!(error.conflicts[0].left, entry("/bin/a", 1));
    assert_eq!(error.conflicts[0].right, entry("/bin/a", 9));
    assert_eq!(error.conflicts[1].left.path, "/bin/c");
    let message = error.to_string();
    assert!(
        message.starts_with("2 paths in the two policies have different entries"),
        "{message}"
    );
    assert!(message.contains("/bin/a"), "{message}");
}

#[test]
fn merge_prefers_chosen_side() {
    let left = policy(&[entry("/bin/a", 1), entry("/bin/b", 2)]);
    let right = policy(&[entry("/bin/a", 9), entry("/bin/c", 3)]);

    let from_left = merge(&left, &right, Some(Side::Left)).unwrap();
    let from_right = merge(&left, &right, Some(Side::Right)).unwrap();

    assert_eq!(from_left.policy.get("/bin/a"), Some(&entry("/bin/a", 1)));
    assert_eq!(from_right.policy.get("/bin/a"), Some(&entry("/bin/a", 9)));
    for merged in [&from_left, &from_right] {
        assert_eq!(merged.policy.len(), 3);
        assert_eq!(merged.resolved.len(), 1);
        assert_eq!(merged.resolved[0].left.path, "/bin/a");
    }
}
