// SPDX-License-Identifier: GPL-2.0

//! Decision events: a bounded queue filled by the hooks and drained by a
//! worker that sends each event to the netlink multicast group.
//!
//! A hook never waits for user space or for the netlink layer. It takes a
//! spinlock only long enough to store a pointer, and an event that does not
//! fit, or that no socket would receive, is counted as dropped.

use core::ffi::c_void;
use core::sync::atomic::Ordering;
use kernel::prelude::*;

use crate::ffi::{self, SkBuff, TaskInfo};
use crate::policy::Digest;
use crate::state::{self, State};
use crate::uapi::{attr, cmd};

/// Number of events the queue can contain before it drops new ones.
const QUEUE_CAPACITY: usize = 1024;

/// One decision, as sent to user space.
pub(crate) struct Event {
    pub(crate) hook: u8,
    pub(crate) verdict: u8,
    pub(crate) reason: u8,
    pub(crate) mode: u8,
    pub(crate) task: TaskInfo,
    pub(crate) path: KVec<u8>,
    pub(crate) digest: Option<Digest>,
    pub(crate) device: u32,
    pub(crate) inode: u64,
    pub(crate) generation: u64,
}

/// Returns the task the current hook runs for.
pub(crate) fn current_task() -> TaskInfo {
    let mut task = TaskInfo {
        pid: 0,
        tgid: 0,
        uid: 0,
        comm: [0; 16],
    };
    // SAFETY: `task` is a valid, writable `TaskInfo`, which has the layout of
    // `struct pc_task_info`.
    unsafe { ffi::pc_current_task(&mut task) };
    task
}

/// A ring of queued events.
///
/// # Invariants
///
/// `slots` has `QUEUE_CAPACITY` elements; the `len` slots starting at `head`
/// (wrapping) are `Some`, all others `None`.
pub(crate) struct EventQueue {
    slots: KVec<Option<KBox<Event>>>,
    head: usize,
    len: usize,
}

impl EventQueue {
    pub(crate) fn new() -> Result<Self> {
        let mut slots = KVec::with_capacity(QUEUE_CAPACITY, GFP_KERNEL)?;
        for _ in 0..QUEUE_CAPACITY {
            slots.push(None, GFP_KERNEL)?;
        }
        Ok(Self {
            slots,
            head: 0,
            len: 0,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores `event`, or gives it back when the queue is full.
    fn push(&mut self, event: KBox<Event>) -> core::result::Result<(), KBox<Event>> {
        if self.len == QUEUE_CAPACITY {
            return Err(event);
        }
        let tail = (self.head + self.len) % QUEUE_CAPACITY;
        self.slots[tail] = Some(event);
        self.len += 1;
        Ok(())
    }

    fn pop(&mut self) -> Option<KBox<Event>> {
        if self.len == 0 {
            return None;
        }
        let event = self.slots[self.head].take();
        self.head = (self.head + 1) % QUEUE_CAPACITY;
        self.len -= 1;
        event
    }
}

/// Queues an event for the worker. Never sleeps except to allocate.
pub(crate) fn queue(state: &State, event: Event) {
    // SAFETY: no precondition; the family is registered while hooks run.
    if !unsafe { ffi::pc_events_have_listeners() } {
        state.events_dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Ok(event) = KBox::new(event, GFP_KERNEL) else {
        state.events_dropped.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let rejected = state.events.lock().push(event);
    match rejected {
        Ok(()) => {
            // SAFETY: no precondition; schedules the worker of glue.c.
            unsafe { ffi::pc_events_kick() };
        }
        Err(event) => {
            state.events_dropped.fetch_add(1, Ordering::Relaxed);
            drop(event);
        }
    }
}

/// Sends every queued event; runs in the worker of glue.c.
#[no_mangle]
pub(crate) extern "C" fn portcullis_drain_events() {
    let Some(state) = state::get() else { return };
    loop {
        let event = state.events.lock().pop();
        let Some(event) = event else { break };
        match send(&event) {
            Ok(()) => state.events_sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => state.events_dropped.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// An unsent netlink message; freed unless sent.
pub(crate) struct Message {
    skb: *mut SkBuff,
    hdr: *mut c_void,
}

impl Message {
    /// Starts a reply to `info`, or a multicast event when `info` is null,
    /// with room for `payload` bytes of attributes.
    pub(crate) fn new(command: u8, info: *mut ffi::GenlInfo, payload: usize) -> Result<Self> {
        let mut hdr = core::ptr::null_mut();
        // SAFETY: `info` is null or the request being handled, and `hdr` is
        // a valid place for the header pointer.
        let skb = unsafe { ffi::pc_msg_new(command, info, payload, &mut hdr) };
        if skb.is_null() {
            return Err(ENOMEM);
        }
        Ok(Self { skb, hdr })
    }

    pub(crate) fn put(&mut self, attr_type: u16, data: &[u8]) -> Result {
        // SAFETY: `self.skb` is a message being built, and `data` is valid
        // for `data.len()` bytes.
        let err = unsafe {
            ffi::pc_msg_put(self.skb, attr_type, data.as_ptr() as *const c_void, data.len() as u32)
        };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }

    /// Adds a string attribute with its terminating NUL.
    pub(crate) fn put_str(&mut self, attr_type: u16, text: &[u8]) -> Result {
        let mut buf = KVec::with_capacity(text.len() + 1, GFP_KERNEL)?;
        buf.extend_from_slice(text, GFP_KERNEL)?;
        buf.push(0, GFP_KERNEL)?;
        self.put(attr_type, &buf)
    }

    pub(crate) fn put_u8(&mut self, attr_type: u16, value: u8) -> Result {
        self.put(attr_type, &[value])
    }

    pub(crate) fn put_u32(&mut self, attr_type: u16, value: u32) -> Result {
        self.put(attr_type, &value.to_ne_bytes())
    }

    pub(crate) fn put_u64(&mut self, attr_type: u16, value: u64) -> Result {
        // SAFETY: `self.skb` is a message being built.
        let err = unsafe { ffi::pc_msg_put_u64(self.skb, attr_type, value) };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }

    /// Sends the message as a reply to `info`, or to the event group when
    /// `info` is null.
    pub(crate) fn send(self, info: *mut ffi::GenlInfo) -> Result {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this.skb` and `this.hdr` come from `pc_msg_new`, and
        // `pc_msg_send` consumes the message, so it is not freed again.
        let err = unsafe { ffi::pc_msg_send(this.skb, this.hdr, info) };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        // SAFETY: the message was never sent, so this is its only owner.
        unsafe { ffi::pc_msg_free(self.skb) };
    }
}

fn nul_terminated(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn send(event: &Event) -> Result {
    // The path and comm plus at most 16 fixed-size attributes of 16 bytes.
    let payload = event.path.len() + 1 + event.task.comm.len() + 16 * 16;
    let mut msg = Message::new(cmd::EVENT, core::ptr::null_mut(), payload)?;
    msg.put_u8(attr::HOOK, event.hook)?;
    msg.put_u8(attr::VERDICT, event.verdict)?;
    msg.put_u8(attr::REASON, event.reason)?;
    msg.put_u8(attr::MODE, event.mode)?;
    msg.put_u32(attr::PID, event.task.pid)?;
    msg.put_u32(attr::TGID, event.task.tgid)?;
    msg.put_u32(attr::UID, event.task.uid)?;
    msg.put_str(attr::COMM, nul_terminated(&event.task.comm))?;
    msg.put_str(attr::PATH, &event.path)?;
    if let Some(digest) = &event.digest {
        msg.put(attr::DIGEST, digest)?;
    }
    msg.put_u32(attr::DEVICE, event.device)?;
    msg.put_u64(attr::INODE, event.inode)?;
    msg.put_u64(attr::POLICY_GENERATION, event.generation)?;
    msg.send(core::ptr::null_mut())
}
