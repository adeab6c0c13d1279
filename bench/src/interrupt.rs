//! Ctrl-C / SIGTERM / SIGHUP handling for the bench driver.
//!
//! The first signal only raises a flag: every loop in the driver polls it at least every
//! 100 ms, unwinds with an error and so drops the child guards, which stop the servers.
//! A second signal exits at once; the children then die through `PR_SET_PDEATHSIG`.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP (without SA_RESTART, so blocking
/// calls return EINTR and the flag is seen promptly).
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only touches an atomic and `_exit`.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut act.sa_mask);
            act.sa_flags = 0;
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// True once a termination signal has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}
