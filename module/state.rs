// SPDX-License-Identifier: GPL-2.0

//! The module's global state and the counters shown in status.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use kernel::prelude::*;
use kernel::sync::{new_mutex, new_spinlock, Arc, Mutex, SpinLock};

use crate::audit::EventQueue;
use crate::cache::VerdictCache;
use crate::policy::{Policy, Staging};
use crate::uapi::{hook, mode};

/// Decision counters of one hook.
pub(crate) struct HookCounters {
    pub(crate) allowed: AtomicU64,
    pub(crate) denied: AtomicU64,
}

#[pin_data]
pub(crate) struct State {
    /// One of `uapi::mode`.
    pub(crate) mode: AtomicU8,
    /// Set once by the lock command, never cleared.
    pub(crate) locked: AtomicBool,
    /// Whether allowed decisions are sent as events, not only denials.
    pub(crate) audit_allowed: AtomicBool,
    pub(crate) hooks: [HookCounters; hook::COUNT as usize],
    pub(crate) events_sent: AtomicU64,
    pub(crate) events_dropped: AtomicU64,

    /// The policy in force; replaced whole, never changed in place.
    #[pin]
    pub(crate) policy: SpinLock<Arc<Policy>>,
    /// Serialises the commands that change state, and contains a policy being
    /// loaded in chunks.
    #[pin]
    pub(crate) staging: Mutex<Option<Staging>>,
    #[pin]
    pub(crate) cache: Mutex<VerdictCache>,
    #[pin]
    pub(crate) events: SpinLock<EventQueue>,
}

impl State {
    pub(crate) fn new() -> Result<impl PinInit<Self, Error>> {
        let policy = Arc::new(Policy::empty(), GFP_KERNEL)?;
        let events = EventQueue::new()?;
        Ok(try_pin_init!(Self {
            mode: AtomicU8::new(mode::OFF),
            locked: AtomicBool::new(false),
            audit_allowed: AtomicBool::new(false),
            hooks: [const {
                HookCounters {
                    allowed: AtomicU64::new(0),
                    denied: AtomicU64::new(0),
                }
            }; hook::COUNT as usize],
            events_sent: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            policy <- new_spinlock!(policy, "portcullis_policy"),
            staging <- new_mutex!(None, "portcullis_staging"),
            cache <- new_mutex!(VerdictCache::new(), "portcullis_cache"),
            events <- new_spinlock!(events, "portcullis_events"),
        }? Error))
    }

    /// Returns the policy in force; the caller keeps it alive even if it is
    /// replaced meanwhile.
    pub(crate) fn policy(&self) -> Arc<Policy> {
        self.policy.lock().clone()
    }

    pub(crate) fn mode(&self) -> u8 {
        self.mode.load(Ordering::Relaxed)
    }
}

/// The state the C callbacks reach.
///
/// # Invariants
///
/// Null, or points to the module's pinned `State`. It is published before
/// the hooks and the netlink family are registered and cleared only after
/// both are gone and no callback can still run (see `Portcullis::drop`).
static STATE: AtomicPtr<State> = AtomicPtr::new(core::ptr::null_mut());

pub(crate) fn publish(state: *mut State) {
    STATE.store(state, Ordering::Release);
}

/// Returns the published state, or `None` before init and after exit.
pub(crate) fn get() -> Option<&'static State> {
    let ptr = STATE.load(Ordering::Acquire);
    // SAFETY: by the invariant of `STATE`, a non-null pointer points to the
    // pinned `State`, which outlives every caller of this function.
    unsafe { ptr.as_ref() }
}
