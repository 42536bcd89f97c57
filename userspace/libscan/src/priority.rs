//! Lowers the calling thread's CPU and I/O priority, so a scan yields to
//! the device's real work.

/// `ioprio_set` constants from linux/ioprio.h; the libc crate has none.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_IDLE: libc::c_int = 3;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;

/// Sets the calling thread's nice value to `nice` and, when `idle_io` is
/// set, its I/O class to idle. On Linux both apply to one thread when given
/// its thread id. Failures are logged: a scan at normal priority is slower
/// for others but still correct.
pub fn lower(nice: i32, idle_io: bool) {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };

    // SAFETY: setpriority takes plain integers; PRIO_PROCESS with a thread
    // id changes only that thread on Linux.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if result != 0 {
        log::warn!(
            "libscan: failed to set nice {nice}: {}; scanning at normal CPU priority",
            std::io::Error::last_os_error()
        );
    }

    if idle_io {
        // SAFETY: ioprio_set takes three integers and touches no memory of
        // ours; an invalid value returns an error instead.
        let result = unsafe {
            libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                tid,
                IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
            )
        };
        if result != 0 {
            log::warn!(
                "libscan: failed to set the idle I/O class: {}; scanning at normal I/O priority",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_only_calling_thread() {
        // SAFETY: getpriority and ioprio_get take plain integers.
        let read = || unsafe {
            let tid = libc::gettid();
            let nice = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            let class =
                libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid) >> IOPRIO_CLASS_SHIFT;
            (nice, class)
        };
        let before = read();
        let inside = std::thread::spawn(move || {
            lower(19, true);
            read()
        })
        .join()
        .unwrap();
        assert_eq!(inside, (19, IOPRIO_CLASS_IDLE as i64));
        assert_eq!(read(), before, "the calling test thread keeps its priority");
    }
}
