// SPDX-License-Identifier: GPL-2.0

//! The one place where Portcullis decides whether a file may run.

use core::sync::atomic::Ordering;
use kernel::prelude::*;

use crate::audit::{self, Event};
use crate::cache::Cached;
use crate::digest;
use crate::ffi::{File, FileIdentity};
use crate::policy::{Digest, Lookup, Policy};
use crate::state::State;
use crate::uapi::{mode, reason, verdict};

/// Input of the evaluator, built by a hook.
pub(crate) struct Context {
    /// One of `uapi::hook`.
    pub(crate) hook: u8,
    /// The file to be executed or mapped executable; valid for the whole
    /// evaluation because the hook's caller holds a reference to it.
    pub(crate) file: *mut File,
}

/// Result of the evaluator for a hook.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allow,
    Deny,
}

/// Identity, digest and cache entry of the file in one evaluation.
struct Measured {
    identity: FileIdentity,
    digest: Result<Digest>,
    cached: Option<Cached>,
}

fn measure(state: &State, file: *mut File) -> Measured {
    let identity = digest::identity(file);
    let cached = state.cache.lock().get(&identity);
    let digest = match &cached {
        Some(cached) => Ok(cached.digest),
        // Hashed without holding the cache lock: reading may sleep long.
        None => digest::sha256(file),
    };
    Measured {
        identity,
        digest,
        cached,
    }
}

/// Returns the cached lookup of the file if it was made under this policy
/// generation.
fn cached_lookup(policy: &Policy, measured: &Measured) -> Option<Lookup> {
    match measured.cached.and_then(|c| c.lookup) {
        Some((generation, lookup)) if generation == policy.generation => Some(lookup),
        _ => None,
    }
}

/// Looks the file up in `policy`, reading its path only when every entry
/// with this digest is path-bound.
fn look_up(policy: &Policy, digest: &Digest, path_dependent: bool, file: *mut File) -> Lookup {
    if !path_dependent {
        return policy.lookup(digest, None);
    }
    match digest::path(file) {
        Ok(path) => policy.lookup(digest, Some(&path)),
        Err(_) => Lookup::PathMismatch,
    }
}

/// Records the digest and `lookup`, which is `None` when the lookup depends
/// on the path. Skips the cache write when the entry would not change.
fn remember(state: &State, measured: &Measured, digest: &Digest, lookup: Option<(u64, Lookup)>) {
    let cached = Cached {
        digest: *digest,
        lookup,
        reported_generation: measured.cached.and_then(|c| c.reported_generation),
    };
    if measured.cached == Some(cached) {
        return;
    }
    // A failed insert only costs a hash on the next use.
    let _ = state.cache.lock().put(&measured.identity, cached);
}

/// Decides whether the file in `ctx` may be executed or mapped executable,
/// reports the decision, and counts it.
pub(crate) fn evaluate(state: &State, ctx: &Context) -> Decision {
    let current_mode = state.mode();
    if current_mode == mode::OFF {
        return Decision::Allow;
    }

    let policy = state.policy();
    let measured = measure(state, ctx.file);
    let (lookup, why) = match &measured.digest {
        Ok(digest) => {
            let lookup = match cached_lookup(&policy, &measured) {
                Some(lookup) => lookup,
                None => {
                    let path_dependent = policy.needs_path(digest);
                    let lookup = look_up(&policy, digest, path_dependent, ctx.file);
                    let to_cache = (!path_dependent).then_some((policy.generation, lookup));
                    remember(state, &measured, digest, to_cache);
                    lookup
                }
            };
            let why = match lookup {
                Lookup::Approved => reason::APPROVED,
                Lookup::PathMismatch => reason::PATH_MISMATCH,
                Lookup::NotInPolicy => reason::NOT_IN_POLICY,
            };
            (lookup, why)
        }
        Err(_) => (Lookup::NotInPolicy, reason::DIGEST_FAILED),
    };

    let approved = lookup == Lookup::Approved;
    let decision = if approved || current_mode != mode::ENFORCE {
        Decision::Allow
    } else {
        Decision::Deny
    };
    count(state, ctx.hook, decision);

    if should_report(state, &measured, &policy, current_mode, approved, decision) {
        report(state, ctx, &measured, &policy, current_mode, decision, why);
    }
    decision
}

fn count(state: &State, hook: u8, decision: Decision) {
    let Some(counters) = state.hooks.get(hook as usize) else {
        return;
    };
    match decision {
        Decision::Allow => counters.allowed.fetch_add(1, Ordering::Relaxed),
        Decision::Deny => counters.denied.fetch_add(1, Ordering::Relaxed),
    };
}

/// Denials are always reported. In learn mode an unapproved file is reported
/// once per policy generation, so that the daemon learns it without a flood.
/// Other allowed decisions are reported only when audit_allowed is set.
fn should_report(
    state: &State,
    measured: &Measured,
    policy: &Policy,
    current_mode: u8,
    approved: bool,
    decision: Decision,
) -> bool {
    if decision == Decision::Deny {
        return true;
    }
    if state.audit_allowed.load(Ordering::Relaxed) {
        return true;
    }
    if current_mode != mode::LEARN || approved {
        return false;
    }
    if measured.digest.is_err() {
        return true;
    }
    let reported = measured.cached.and_then(|c| c.reported_generation);
    if reported == Some(policy.generation) {
        return false;
    }
    state
        .cache
        .lock()
        .mark_reported(&measured.identity, policy.generation);
    true
}

fn report(
    state: &State,
    ctx: &Context,
    measured: &Measured,
    policy: &Policy,
    current_mode: u8,
    decision: Decision,
    why: u8,
) {
    let path = match digest::path(ctx.file) {
        Ok(path) => path,
        Err(_) => KVec::new(),
    };
    let event = Event {
        hook: ctx.hook,
        verdict: match decision {
            Decision::Allow => verdict::ALLOW,
            Decision::Deny => verdict::DENY,
        },
        reason: why,
        mode: current_mode,
        task: audit::current_task(),
        path,
        digest: measured.digest.as_ref().ok().copied(),
        device: measured.identity.dev,
        inode: measured.identity.ino,
        generation: policy.generation,
    };
    audit::queue(state, event);
}
