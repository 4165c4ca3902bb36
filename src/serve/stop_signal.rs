//! SIGTERM and SIGINT for `hisp serve`: blocked in every thread and taken by one waiting thread,
//! so that a stop (systemd, Ctrl-C) runs the daemon's orderly stop instead of killing it mid-job.

use std::io;

/// The signals that ask the daemon to stop.
fn stop_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset adds valid signal numbers to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks the stop signals in the calling thread and in every thread it starts afterwards (they
/// inherit its mask): call it before starting any, so that only `wait` receives them.
pub(crate) fn block() -> io::Result<()> {
    let set = stop_set();
    // SAFETY: a valid set and a null old-set pointer.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Waits until a stop signal arrives (they must be blocked: see `block`); returns its name.
pub(crate) fn wait() -> io::Result<&'static str> {
    let set = stop_set();
    let mut signal: libc::c_int = 0;
    // SAFETY: a valid set and a valid out pointer.
    let rc = unsafe { libc::sigwait(&set, &mut signal) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(if signal == libc::SIGINT { "SIGINT" } else { "SIGTERM" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_stop_signal_is_taken_by_wait() {
        // In a thread of its own, whose mask only it changes: the signal goes to that thread.
        let waited = std::thread::spawn(|| {
            block().unwrap();
            // SAFETY: sends SIGTERM to this thread only.
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGTERM) };
            wait().unwrap()
        });
        assert_eq!(waited.join().unwrap(), "SIGTERM");
    }
}
