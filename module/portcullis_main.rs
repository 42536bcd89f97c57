// SPDX-License-Identifier: GPL-2.0

//! Portcullis: enforces an Approved Application List on Linux devices.
//!
//! A file may be executed, or mapped or mprotected executable, only if the
//! SHA-256 of its content is in the policy that user space loaded. The module
//! hashes each file in the kernel on first sight, caches the digest per inode
//! version, and reports decisions over the `portcullis` generic netlink
//! family. A loadable module cannot register LSM hooks, so glue.c attaches to
//! the security_* functions through ftrace.
//!
//! Layout: `hooks` receives the calls, `eval` decides, `policy` contains the
//! list, `cache` and `digest` measure files, `netlink` handles commands,
//! `audit` queues and sends events, `state` contains what they share.

use core::pin::Pin;
use kernel::prelude::*;

mod audit;
mod cache;
mod digest;
mod eval;
mod ffi;
mod hooks;
mod netlink;
mod policy;
mod state;

#[allow(dead_code, unreachable_pub)]
#[path = "../uapi/portcullis_uapi.rs"]
mod uapi;

module! {
    type: Portcullis,
    name: "portcullis",
    author: "Portcullis developers",
    description: "Approved Application List enforcement on exec, mmap and mprotect",
    license: "GPL",
}

struct Portcullis {
    state: Pin<KBox<state::State>>,
}

impl kernel::Module for Portcullis {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut state = KBox::pin_init(state::State::new()?, GFP_KERNEL)?;
        // SAFETY: the pointer only shares the pinned state with the C
        // callbacks, which never move it. The invariant of `state::STATE`
        // states how long it stays published.
        state::publish(unsafe { state.as_mut().get_unchecked_mut() });

        // SAFETY: no precondition; undone by `pc_glue_exit`.
        let err = unsafe { ffi::pc_glue_init() };
        if err != 0 {
            state::publish(core::ptr::null_mut());
            return Err(Error::from_errno(err));
        }
        // SAFETY: the state the hooks call into is published above.
        let err = unsafe { ffi::pc_hooks_install() };
        if err != 0 {
            // SAFETY: `pc_glue_init` succeeded and no hook is attached.
            unsafe { ffi::pc_glue_exit() };
            state::publish(core::ptr::null_mut());
            return Err(Error::from_errno(err));
        }

        pr_info!(
            "version {} loaded, protocol {}, mode off\n",
            uapi::MODULE_VERSION,
            uapi::PROTOCOL_VERSION
        );
        Ok(Portcullis { state })
    }
}

impl Drop for Portcullis {
    fn drop(&mut self) {
        // SAFETY: the hooks were installed by `init`; this waits until no
        // wrapper runs any more.
        unsafe { ffi::pc_hooks_remove() };
        // SAFETY: `pc_glue_init` succeeded in `init`; after this no netlink
        // command or event worker runs.
        unsafe { ffi::pc_glue_exit() };
        state::publish(core::ptr::null_mut());
        let dropped = self
            .state
            .events_dropped
            .load(core::sync::atomic::Ordering::Relaxed);
        pr_info!("unloaded; {} events were dropped in all\n", dropped);
    }
}
