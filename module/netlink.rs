// SPDX-License-Identifier: GPL-2.0

//! Generic netlink commands of the `portcullis` family.
//!
//! glue.c registers the family with an attribute policy, so the kernel has
//! already rejected unknown attributes and wrong types or lengths before a
//! command arrives here. The nested policy entries are walked again here with
//! their lengths checked, and each command parses all its input before it
//! changes anything, so a malformed request changes nothing.

use core::ffi::{c_int, c_void};
use core::sync::atomic::Ordering;
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::audit::Message;
use crate::ffi::{self, GenlInfo, SkBuff};
use crate::policy::{Digest, Entry, Policy, Staging, MAX_ENTRIES};
use crate::state::{self, State};
use crate::uapi::{self, attr, cmd, entry_attr, entry_flags, hook, mode};

/// A request being handled.
struct Request {
    skb: *mut SkBuff,
    info: *mut GenlInfo,
}

impl Request {
    /// Returns the payload of a top-level attribute, if present.
    fn attr(&self, attr_type: u16) -> Option<&[u8]> {
        let mut data: *const c_void = core::ptr::null();
        let mut len = 0u32;
        // SAFETY: `self.info` is the request being handled; `data` and `len`
        // are valid places for the results.
        let found = unsafe { ffi::pc_genl_attr(self.info, attr_type, &mut data, &mut len) };
        if found == 0 {
            return None;
        }
        // SAFETY: the attribute lies inside the request's skb, which stays
        // valid while the command is handled, and is `len` bytes long.
        Some(unsafe { core::slice::from_raw_parts(data as *const u8, len as usize) })
    }

    fn u8_attr(&self, attr_type: u16) -> Result<Option<u8>> {
        match self.attr(attr_type) {
            None => Ok(None),
            Some([value]) => Ok(Some(*value)),
            Some(_) => Err(EINVAL),
        }
    }

    fn u32_attr(&self, attr_type: u16) -> Result<Option<u32>> {
        match self.attr(attr_type) {
            None => Ok(None),
            Some(bytes) => {
                let bytes: [u8; 4] = bytes.try_into().map_err(|_| EINVAL)?;
                Ok(Some(u32::from_ne_bytes(bytes)))
            }
        }
    }

    fn require_admin(&self) -> Result {
        // SAFETY: `self.skb` is the request's skb.
        if unsafe { ffi::pc_genl_sender_is_admin(self.skb) } {
            Ok(())
        } else {
            Err(EPERM)
        }
    }

    fn sender(&self) -> u32 {
        // SAFETY: `self.info` is the request being handled.
        unsafe { ffi::pc_genl_sender_portid(self.info) }
    }
}

/// Handles one command; called by the family's doit in glue.c.
///
/// Returns 0 or a negative errno, which the sender gets in its netlink ack.
#[no_mangle]
pub(crate) extern "C" fn portcullis_genl_cmd(command: u8, skb: *mut SkBuff, info: *mut GenlInfo) -> c_int {
    let Some(state) = state::get() else {
        return ENODEV.to_errno();
    };
    let request = Request { skb, info };
    let result = match command {
        cmd::GET_STATUS => get_status(state, &request),
        cmd::SET_MODE => set_mode(state, &request),
        cmd::POLICY_BEGIN => policy_begin(state, &request),
        cmd::POLICY_CHUNK => policy_chunk(state, &request),
        cmd::POLICY_COMMIT => policy_commit(state, &request),
        cmd::POLICY_ABORT => policy_abort(state, &request),
        cmd::ADD_ENTRIES => add_entries(state, &request),
        cmd::LOCK => lock(state, &request),
        cmd::SET_AUDIT => set_audit(state, &request),
        _ => Err(EINVAL),
    };
    match result {
        Ok(()) => 0,
        Err(err) => err.to_errno(),
    }
}

fn get_status(state: &State, request: &Request) -> Result {
    let policy = state.policy();
    let (cache_size, hits, misses) = {
        let cache = state.cache.lock();
        (cache.len(), cache.hits, cache.misses)
    };
    let queued = state.events.lock().len();

    let mut msg = Message::new(cmd::GET_STATUS, request.info, 1024)?;
    msg.put_u32(attr::PROTOCOL_VERSION, uapi::PROTOCOL_VERSION as u32)?;
    msg.put_str(attr::MODULE_VERSION, uapi::MODULE_VERSION.as_bytes())?;
    msg.put_u8(attr::MODE, state.mode())?;
    msg.put_u8(attr::LOCKED, state.locked.load(Ordering::Relaxed) as u8)?;
    msg.put_u8(attr::AUDIT_ALLOWED, state.audit_allowed.load(Ordering::Relaxed) as u8)?;
    msg.put_u64(attr::POLICY_GENERATION, policy.generation)?;
    msg.put_u32(attr::POLICY_SIZE, policy.len() as u32)?;
    msg.put_u32(attr::CACHE_SIZE, cache_size as u32)?;
    msg.put_u64(attr::CACHE_HITS, hits)?;
    msg.put_u64(attr::CACHE_MISSES, misses)?;
    msg.put_u64(attr::EVENTS_SENT, state.events_sent.load(Ordering::Relaxed))?;
    msg.put_u64(attr::EVENTS_DROPPED, state.events_dropped.load(Ordering::Relaxed))?;
    msg.put_u64(attr::EVENTS_QUEUED, queued as u64)?;

    let counter_attrs = [
        (hook::BPRM_CHECK, attr::ALLOWED_BPRM_CHECK, attr::DENIED_BPRM_CHECK),
        (hook::MMAP_FILE, attr::ALLOWED_MMAP_FILE, attr::DENIED_MMAP_FILE),
        (hook::FILE_MPROTECT, attr::ALLOWED_FILE_MPROTECT, attr::DENIED_FILE_MPROTECT),
    ];
    for (hook_id, allowed, denied) in counter_attrs {
        let counters = &state.hooks[hook_id as usize];
        msg.put_u64(allowed, counters.allowed.load(Ordering::Relaxed))?;
        msg.put_u64(denied, counters.denied.load(Ordering::Relaxed))?;
    }
    msg.send(request.info)
}

fn set_mode(state: &State, request: &Request) -> Result {
    request.require_admin()?;
    let new_mode = request.u8_attr(attr::MODE)?.ok_or(EINVAL)?;
    if new_mode > mode::ENFORCE {
        return Err(EINVAL);
    }

    let _admin = state.staging.lock();
    if state.locked.load(Ordering::Relaxed) && new_mode < state.mode() {
        return Err(EPERM);
    }
    let old_mode = state.mode.swap(new_mode, Ordering::Relaxed);
    if old_mode != new_mode {
        pr_info!("mode changed from {} to {}\n", mode_name(old_mode), mode_name(new_mode));
    }
    Ok(())
}

fn mode_name(value: u8) -> &'static str {
    match value {
        mode::OFF => "off",
        mode::LEARN => "learn",
        mode::ENFORCE => "enforce",
        _ => "unknown",
    }
}

fn policy_begin(state: &State, request: &Request) -> Result {
    request.require_admin()?;
    // A later begin replaces an abandoned load, for instance of a loader that
    // crashed between chunks.
    *state.staging.lock() = Some(Staging::new(request.sender()));
    Ok(())
}

fn policy_chunk(state: &State, request: &Request) -> Result {
    request.require_admin()?;
    let entries = parse_entries(request.attr(attr::ENTRIES).ok_or(EINVAL)?)?;

    let mut staging = state.staging.lock();
    match staging.as_mut() {
        Some(staged) if staged.owner == request.sender() => staged.append(entries),
        Some(_) => Err(EBUSY),
        None => Err(EINVAL),
    }
}

fn policy_commit(state: &State, request: &Request) -> Result {
    request.require_admin()?;
    let expected = request.u32_attr(attr::ENTRY_COUNT)?;

    let mut staging = state.staging.lock();
    match staging.as_ref() {
        Some(staged) if staged.owner == request.sender() => {}
        Some(_) => return Err(EBUSY),
        None => return Err(EINVAL),
    }
    let Some(staged) = staging.take() else {
        return Err(EINVAL);
    };
    if let Some(expected) = expected {
        if expected as usize != staged.entries.len() {
            return Err(EINVAL);
        }
    }

    let old = state.policy();
    let new = Policy::new(old.generation + 1, staged.entries);
    if state.locked.load(Ordering::Relaxed) && !old.is_subset_of(&new) {
        return Err(EPERM);
    }
    let generation = install(state, new)?;
    reply_generation(request, cmd::POLICY_COMMIT, generation)
}

fn policy_abort(state: &State, request: &Request) -> Result {
    request.require_admin()?;
    let mut staging = state.staging.lock();
    match staging.as_ref() {
        Some(staged) if staged.owner == request.sender() => {
            *staging = None;
            Ok(())
        }
        Some(_) => Err(EBUSY),
        None => Ok(()),
    }
}

fn add_entries(state: &State, request: &Request) -> Result {
    request.require_admin()?;
    let entries = parse_entries(request.attr(attr::ENTRIES).ok_or(EINVAL)?)?;

    let _admin = state.staging.lock();
    let new = state.policy().with_added(entries)?;
    let generation = install(state, new)?;
    reply_generation(request, cmd::ADD_ENTRIES, generation)
}

/// Puts `new` in force. The caller holds the staging lock, so generations
/// are handed out in order.
fn install(state: &State, new: Policy) -> Result<u64> {
    let generation = new.generation;
    let size = new.len();
    let new = Arc::new(new, GFP_KERNEL)?;
    let old = core::mem::replace(&mut *state.policy.lock(), new);
    // Dropped outside the spinlock: freeing a large policy takes a while.
    drop(old);
    pr_info!("policy generation {} in force with {} entries\n", generation, size);
    Ok(generation)
}

fn reply_generation(request: &Request, command: u8, generation: u64) -> Result {
    let mut msg = Message::new(command, request.info, 64)?;
    msg.put_u64(attr::POLICY_GENERATION, generation)?;
    msg.send(request.info)
}

fn lock(state: &State, request: &Request) -> Result {
    request.require_admin()?;
    let _admin = state.staging.lock();
    if !state.locked.swap(true, Ordering::Relaxed) {
        // SAFETY: no precondition; takes a module reference that is never
        // put, so the module cannot be unloaded until reboot.
        unsafe { ffi::pc_module_pin() };
        pr_info!("locked: the mode can no longer be lowered nor entries removed until reboot\n");
    }
    Ok(())
}

fn set_audit(state: &State, request: &Request) -> Result {
    request.require_admin()?;
    let value = request.u8_attr(attr::AUDIT_ALLOWED)?.ok_or(EINVAL)?;
    if value > 1 {
        return Err(EINVAL);
    }
    state.audit_allowed.store(value == 1, Ordering::Relaxed);
    Ok(())
}

/// Size of a netlink attribute header.
const NLA_HDRLEN: usize = 4;
/// Netlink attribute type bits; the two high bits are flags.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Iterates over the attributes in a netlink attribute stream.
struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    /// The attribute's type and payload, or an error for a truncated stream.
    type Item = Result<(u16, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = split_attribute(self.rest);
        match parsed {
            Ok((attr_type, payload, rest)) => {
                self.rest = rest;
                Some(Ok((attr_type, payload)))
            }
            Err(err) => {
                self.rest = &[];
                Some(Err(err))
            }
        }
    }
}

fn split_attribute(bytes: &[u8]) -> Result<(u16, &[u8], &[u8])> {
    if bytes.len() < NLA_HDRLEN {
        return Err(EINVAL);
    }
    let len = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
    let attr_type = u16::from_ne_bytes([bytes[2], bytes[3]]) & NLA_TYPE_MASK;
    if len < NLA_HDRLEN || len > bytes.len() {
        return Err(EINVAL);
    }
    let payload = &bytes[NLA_HDRLEN..len];
    let aligned = (len + 3) & !3;
    let rest = if aligned >= bytes.len() {
        &[][..]
    } else {
        &bytes[aligned..]
    };
    Ok((attr_type, payload, rest))
}

/// Parses the payload of `attr::ENTRIES`: a nest of nests, each one entry.
fn parse_entries(payload: &[u8]) -> Result<KVVec<Entry>> {
    let mut entries = KVVec::new();
    for item in (Attributes { rest: payload }) {
        let (_, nest) = item?;
        if entries.len() >= MAX_ENTRIES {
            return Err(E2BIG);
        }
        entries.push(parse_entry(nest)?, GFP_KERNEL)?;
    }
    Ok(entries)
}

fn parse_entry(nest: &[u8]) -> Result<Entry> {
    let mut digest: Option<Digest> = None;
    let mut path: Option<&[u8]> = None;
    let mut flags = 0u32;
    for item in (Attributes { rest: nest }) {
        let (attr_type, payload) = item?;
        match attr_type {
            entry_attr::DIGEST => digest = Some(payload.try_into().map_err(|_| EINVAL)?),
            entry_attr::PATH => path = Some(strip_nul(payload)?),
            entry_attr::FLAGS => {
                let bytes: [u8; 4] = payload.try_into().map_err(|_| EINVAL)?;
                flags = u32::from_ne_bytes(bytes);
            }
            _ => return Err(EINVAL),
        }
    }

    let digest = digest.ok_or(EINVAL)?;
    if flags & !entry_flags::ALL != 0 {
        return Err(EINVAL);
    }
    let path_bound = flags & entry_flags::PATH_BOUND != 0;
    let path = match (path_bound, path) {
        (true, Some(path)) if !path.is_empty() => {
            let mut copy = KVec::with_capacity(path.len(), GFP_KERNEL)?;
            copy.extend_from_slice(path, GFP_KERNEL)?;
            Some(copy)
        }
        (true, _) => return Err(EINVAL),
        (false, _) => None,
    };
    Ok(Entry {
        digest,
        flags,
        path,
    })
}

/// Returns a NUL-terminated string attribute without its NUL.
fn strip_nul(payload: &[u8]) -> Result<&[u8]> {
    match payload.split_last() {
        Some((0, text)) if !text.contains(&0) => Ok(text),
        _ => Err(EINVAL),
    }
}
