//! Comparing and merging two policies.

use std::collections::BTreeMap;
use std::fmt;

use crate::{Entry, Policy};

/// The differences between an old policy and a new one. Each list is sorted
/// by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Entries whose path is only in the new policy.
    pub added: Vec<Entry>,
    /// Entries whose path is only in the old policy.
    pub removed: Vec<Entry>,
    /// Paths in both policies whose entries differ.
    pub changed: Vec<Change>,
}

impl Diff {
    /// Returns whether the two policies have the same entries.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// One path whose entry differs between the old and the new policy: in
/// digest, in kind, or in path binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub old: Entry,
    pub new: Entry,
}

/// Compares the entries of `old` and `new`. Metadata (generator, root,
/// created) is not compared.
pub fn diff(old: &Policy, new: &Policy) -> Diff {
    let mut result = Diff::default();
    for (path, side) in pair_entries(old, new) {
        match side {
            (Some(old), None) => result.removed.push(old.clone()),
            (None, Some(new)) => result.added.push(new.clone()),
            (Some(old), Some(new)) if old != new => result.changed.push(Change {
                old: old.clone(),
                new: new.clone(),
            }),
            (Some(_), Some(_)) => {}
            (None, None) => unreachable!("{path} came from neither policy"),
        }
    }
    result
}

/// The policy that wins a conflict in [`merge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

/// A path whose entries differ between the two merged policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub left: Entry,
    pub right: Entry,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = |entry: &Entry| {
            let binding = if entry.path_bound { ", path-bound" } else { "" };
            format!("sha256 {} ({}{binding})", entry.sha256, entry.kind)
        };
        write!(
            f,
            "{}: {} versus {}",
            self.left.path,
            describe(&self.left),
            describe(&self.right)
        )
    }
}

/// The result of a merge in which every conflict was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub policy: Policy,
    /// The conflicts that `prefer` resolved, sorted by path, so that the
    /// caller can report which entries it dropped.
    pub resolved: Vec<Conflict>,
}

/// A merge without a preferred side found conflicts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} in the two policies have different entries, first {}", plural(conflicts.len(), "path", "paths"), conflicts[0])]
pub struct MergeError {
    /// Every conflict, sorted by path. Never empty.
    pub conflicts: Vec<Conflict>,
}

/// Returns the union of the entries of `left` and `right`.
///
/// A path in both policies whose entries differ (in digest, kind or path
/// binding) is a conflict. With `prefer` set, the entry from that side is
/// kept and the conflict is listed in [`Merged::resolved`]. Without it, the
/// merge fails and lists every conflict.
///
/// The merged policy takes its root from `left`, and gets this library's
/// generator string and the current time as created.
pub fn merge(left: &Policy, right: &Policy, prefer: Option<Side>) -> Result<Merged, MergeError> {
    let mut policy = Policy::new(left.root.clone());
    let mut conflicts = Vec::new();

    for (_, side) in pair_entries(left, right) {
        let chosen = match side {
            (Some(entry), None) | (None, Some(entry)) => entry,
            (Some(left), Some(right)) if left == right => left,
            (Some(left), Some(right)) => {
                conflicts.push(Conflict {
                    left: left.clone(),
                    right: right.clone(),
                });
                match prefer {
                    Some(Side::Left) => left,
                    Some(Side::Right) => right,
                    None => continue,
                }
            }
            (None, None) => unreachable!("a path came from neither policy"),
        };
        policy
            .insert(chosen.clone())
            .expect("every Policy entry has a valid path");
    }

    if prefer.is_none() && !conflicts.is_empty() {
        return Err(MergeError { conflicts });
    }
    Ok(Merged {
        policy,
        resolved: conflicts,
    })
}

/// Pairs the entries of two policies by path, in path order.
fn pair_entries<'a>(
    left: &'a Policy,
    right: &'a Policy,
) -> BTreeMap<&'a str, (Option<&'a Entry>, Option<&'a Entry>)> {
    let mut pairs: BTreeMap<&str, (Option<&Entry>, Option<&Entry>)> = BTreeMap::new();
    for entry in left.entries() {
        pairs.entry(&entry.path).or_default().0 = Some(entry);
    }
    for entry in right.entries() {
        pairs.entry(&entry.path).or_default().1 = Some(entry);
    }
    pairs
}

/// Writes "1 path" or "2 paths".
fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
