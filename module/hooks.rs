// SPDX-License-Identifier: GPL-2.0

//! Entry from the hook wrappers of glue.c into the evaluator.
//!
//! glue.c attaches to security_bprm_check(), security_mmap_file() and
//! security_file_mprotect() and calls [`portcullis_check`] only for the cases
//! that concern Portcullis: every exec, and file mappings that are or become
//! executable.

use core::ffi::c_int;
use kernel::prelude::*;

use crate::eval::{self, Context, Decision};
use crate::ffi::File;
use crate::state;
use crate::uapi::hook;

/// Checks `file` for `hook_id`, one of `uapi::hook`.
///
/// Runs in the process context of the task that executes or maps the file,
/// may sleep, and never waits for user space.
///
/// Returns 0 to allow or -EACCES to deny.
#[no_mangle]
pub(crate) extern "C" fn portcullis_check(hook_id: u8, file: *mut File) -> c_int {
    let Some(state) = state::get() else { return 0 };
    if file.is_null() || hook_id >= hook::COUNT {
        return 0;
    }

    let ctx = Context {
        hook: hook_id,
        file,
    };
    match eval::evaluate(state, &ctx) {
        Decision::Allow => 0,
        Decision::Deny => EACCES.to_errno(),
    }
}
