// SPDX-License-Identifier: GPL-2.0

//! File identity, content digest and path, through glue.c.

use core::ffi::c_char;
use kernel::prelude::*;

use crate::ffi::{self, File, FileIdentity};
use crate::policy::Digest;
use crate::uapi;

/// Reads the identity of the file's current content version.
pub(crate) fn identity(file: *mut File) -> FileIdentity {
    let mut id = FileIdentity::default();
    // SAFETY: `file` is the open file that the hook received, valid for the
    // duration of the hook, and `id` is a valid, writable `FileIdentity`.
    unsafe { ffi::pc_file_identity(file, &mut id) };
    id
}

/// Computes the SHA-256 of the file's whole content. Sleeps.
pub(crate) fn sha256(file: *mut File) -> Result<Digest> {
    let mut digest = [0u8; 32];
    // SAFETY: `file` is valid for the duration of the hook, and `digest` has
    // room for the `DIGEST_LEN` bytes that `pc_file_digest` writes.
    let err = unsafe { ffi::pc_file_digest(file, digest.as_mut_ptr()) };
    if err != 0 {
        return Err(Error::from_errno(err));
    }
    Ok(digest)
}

/// Returns the file's path, without a NUL, as `d_path` gives it (a deleted
/// file ends in " (deleted)", a memfd is "/memfd:NAME").
pub(crate) fn path(file: *mut File) -> Result<KVec<u8>> {
    let capacity = uapi::PATH_MAX as usize;
    let mut buf = KVec::<u8>::with_capacity(capacity, GFP_KERNEL)?;
    // SAFETY: `file` is valid for the duration of the hook and `buf` owns
    // `capacity` writable bytes.
    let len = unsafe { ffi::pc_file_path(file, buf.as_mut_ptr() as *mut c_char, capacity) };
    if len < 0 {
        return Err(Error::from_errno(len as i32));
    }
    let len = len as usize;
    if len >= capacity {
        return Err(ERANGE);
    }
    // SAFETY: `pc_file_path` initialised the first `len + 1` bytes and
    // `len < capacity`.
    unsafe { buf.set_len(len) };
    Ok(buf)
}
