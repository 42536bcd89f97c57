// SPDX-License-Identifier: GPL-2.0

//! Declarations of the functions in glue.c, the module's C side, as glue.h
//! declares them for C.
//!
//! The 6.12 `kernel` crate has no file, crypto, ftrace or generic netlink
//! abstractions, so glue.c wraps those kernel APIs in a few plain functions.
//! Kernel objects cross this boundary as opaque pointers.

use core::ffi::{c_char, c_int, c_void};

/// Opaque `struct file`.
pub(crate) type File = c_void;
/// Opaque `struct sk_buff`.
pub(crate) type SkBuff = c_void;
/// Opaque `struct genl_info`.
pub(crate) type GenlInfo = c_void;

/// Identity of one version of a file's content. Mirrors
/// `struct pc_file_identity` in glue.h.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct FileIdentity {
    pub(crate) ino: u64,
    /// The inode's i_version, when `has_change` is set.
    pub(crate) change: u64,
    pub(crate) ctime_ns: i64,
    pub(crate) mtime_ns: i64,
    pub(crate) size: i64,
    pub(crate) dev: u32,
    pub(crate) generation: u32,
    pub(crate) has_change: u8,
}

/// The task that triggered a hook; mirrors `struct pc_task_info` in glue.h.
#[repr(C)]
pub(crate) struct TaskInfo {
    pub(crate) pid: u32,
    pub(crate) tgid: u32,
    pub(crate) uid: u32,
    pub(crate) comm: [u8; 16],
}

extern "C" {
    pub(crate) fn pc_glue_init() -> c_int;
    pub(crate) fn pc_glue_exit();
    pub(crate) fn pc_hooks_install() -> c_int;
    pub(crate) fn pc_hooks_remove();

    pub(crate) fn pc_file_identity(file: *mut File, id: *mut FileIdentity);
    pub(crate) fn pc_file_digest(file: *mut File, out: *mut u8) -> c_int;
    pub(crate) fn pc_file_path(file: *mut File, buf: *mut c_char, len: usize) -> isize;
    pub(crate) fn pc_current_task(info: *mut TaskInfo);
    pub(crate) fn pc_module_pin();

    pub(crate) fn pc_genl_attr(
        info: *const GenlInfo,
        attr_type: u16,
        data: *mut *const c_void,
        len: *mut u32,
    ) -> c_int;
    pub(crate) fn pc_genl_sender_is_admin(skb: *const SkBuff) -> bool;
    pub(crate) fn pc_genl_sender_portid(info: *const GenlInfo) -> u32;
    pub(crate) fn pc_msg_new(
        cmd: u8,
        info: *mut GenlInfo,
        payload: usize,
        hdr: *mut *mut c_void,
    ) -> *mut SkBuff;
    pub(crate) fn pc_msg_put(msg: *mut SkBuff, attr_type: u16, data: *const c_void, len: u32)
        -> c_int;
    pub(crate) fn pc_msg_put_u64(msg: *mut SkBuff, attr_type: u16, value: u64) -> c_int;
    pub(crate) fn pc_msg_free(msg: *mut SkBuff);
    pub(crate) fn pc_msg_send(msg: *mut SkBuff, hdr: *mut c_void, info: *mut GenlInfo) -> c_int;
    pub(crate) fn pc_events_have_listeners() -> bool;
    pub(crate) fn pc_events_kick();
}
