//! Stop signals as requests, not deaths. systemd, `timeout`, `docker stop` and `kubectl` stop a
//! process with SIGTERM, a closed terminal sends SIGHUP, and a user presses Ctrl-C: each of them
//! asks the lab to stop scheduling connections, let those in flight finish, write everything and
//! mark it partial, then exit with 128 + the signal. A second signal abandons what is in flight.
//!
//! [`install`] runs first thing in `main`, before anything is created, so that a signal at any
//! instant finds the handler in place. The handler only records the signal (an atomic store is
//! all a handler may safely do); the storm and `serve` poll [`requested`] and [`count`].

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// The first stop signal received (0: none yet).
static FIRST: AtomicI32 = AtomicI32::new(0);
/// How many stop signals have arrived.
static COUNT: AtomicU32 = AtomicU32::new(0);

/// The signals that ask the lab to stop.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn record(signal: libc::c_int) {
    let _ = FIRST.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Catches SIGINT, SIGTERM and SIGHUP for the rest of the process's life.
pub fn install() {
    for signal in STOP_SIGNALS {
        // SAFETY: `record` is async-signal-safe (two atomic operations); the sigaction struct
        // is fully initialized before the call.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The first stop signal received, if any.
pub fn requested() -> Option<i32> {
    match FIRST.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// How many stop signals have arrived: 1 stops scheduling, 2 abandons what is in flight.
pub fn count() -> u32 {
    COUNT.load(Ordering::SeqCst)
}

/// The exit code of a run ended by `signal`: 128 + its number (130 for SIGINT, 143 for SIGTERM).
pub fn exit_code(signal: i32) -> u8 {
    (128 + signal).clamp(0, 255) as u8
}

/// The signal's name, for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
