//! The transport: every worker of the process, reachable by id from any thread (the
//! registry), and what acts on all of them: asking every worker to stop, and choosing
//! the least-loaded worker for an acceptor that feeds several.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use io_uring::IoUring;

use crate::driver::user_data::Wire;
use crate::error::{from_io, Result, IOT_E_PANIC, IOT_E_UNSUPPORTED, IOT_E_WORKER_GONE};
use crate::mailbox::{self, Admission};
use crate::registry;

/// Entries of the transport's own ring, and how many workers one round asks.
const CONTROL_ENTRIES: u32 = 64;
/// Bound on waiting for one round's MSG_RING results (they complete at submission).
const CONTROL_WAIT_MS: u32 = 5_000;

/// A small ring of the transport's own, used only to post broadcasts: the caller need
/// not own a worker, and a host blocked in `iot_worker_wait` wakes only for a CQE.
static CONTROL: Mutex<Option<IoUring>> = Mutex::new(None);

/// Posts an `IOT_KIND_STOP_REQUESTED` message with `value` into every live worker that
/// has not stopped. Returns how many were asked.
pub(crate) fn request_stop(value: u32) -> Result<u32> {
    if !mailbox::supported() {
        return Err(IOT_E_UNSUPPORTED);
    }
    let mut control = CONTROL.lock().map_err(|_| IOT_E_PANIC)?;
    if control.is_none() {
        *control = Some(IoUring::new(CONTROL_ENTRIES).map_err(from_io)?);
    }
    let ring = control.as_mut().ok_or(IOT_E_PANIC)?;
    let mut asked = 0;
    for round in registry::ids().chunks(CONTROL_ENTRIES as usize) {
        // Workers freed or stopped since `ids` are skipped.
        let mut admissions: Vec<Admission> = round
            .iter()
            .filter_map(|&id| registry::admit(id).ok())
            .collect();
        match post_round(ring, &mut admissions, value) {
            Ok(n) => asked += n,
            Err(code) => {
                // SQEs left unsubmitted name ring fds only these admissions keep open:
                // closing the ring discards them before the fds can be reused.
                *control = None;
                return Err(code);
            }
        }
    }
    Ok(asked)
}

fn post_round(ring: &mut IoUring, admissions: &mut [Admission], value: u32) -> Result<u32> {
    // Whatever an earlier, timed-out round left behind names other admissions.
    ring.completion().for_each(drop);
    for (index, admission) in admissions.iter().enumerate() {
        let entry = admission
            .entry(0, Wire::StopRequest, value as i32)
            .user_data(index as u64);
        // SAFETY: a MSG_RING data entry points at no memory; the ring has room for a
        // whole round (CONTROL_ENTRIES) and is empty between rounds.
        unsafe { ring.submission().push(&entry) }.map_err(|_| -libc::EBUSY)?;
    }
    let ts = io_uring::types::Timespec::new()
        .sec(u64::from(CONTROL_WAIT_MS / 1000))
        .nsec((CONTROL_WAIT_MS % 1000) * 1_000_000);
    let args = io_uring::types::SubmitArgs::new().timespec(&ts);
    let mut reaped = 0;
    let mut asked = 0;
    while reaped < admissions.len() {
        match ring
            .submitter()
            .submit_with_args(admissions.len() - reaped, &args)
        {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => break,
            Err(e) => return Err(from_io(e)),
            Ok(_) => {}
        }
        for cqe in ring.completion() {
            reaped += 1;
            if let Some(admission) = admissions.get_mut(cqe.user_data() as usize) {
                if cqe.result() >= 0 {
                    admission.posted();
                    asked += 1;
                }
            }
        }
    }
    // Not reaped in time (never seen: data messages complete at submission): count them
    // as posted, since settling them here could settle a message twice.
    if reaped < admissions.len() {
        admissions.iter_mut().for_each(Admission::posted);
    }
    Ok(asked)
}

/// The candidate with the lowest load (open sockets plus messages on their way to it),
/// skipping workers that are gone or stopped. Ties go round-robin: each call starts its
/// scan one candidate further. Reads only atomics; takes no worker lock.
pub(crate) fn least_loaded(candidates: &[u64]) -> Result<u64> {
    static NEXT_START: AtomicUsize = AtomicUsize::new(0);
    if candidates.is_empty() {
        return Err(-libc::EINVAL);
    }
    let start = NEXT_START.fetch_add(1, Ordering::Relaxed);
    let mut best: Option<(u64, u64)> = None;
    for i in 0..candidates.len() {
        let id = candidates[(start + i) % candidates.len()];
        let Ok(cell) = registry::cell(id) else {
            continue;
        };
        if cell.mailbox.is_closed() {
            continue;
        }
        let load = cell.mailbox.load();
        if best.map_or(true, |(lowest, _)| load < lowest) {
            best = Some((load, id));
        }
    }
    best.map(|(_, id)| id).ok_or(IOT_E_WORKER_GONE)
}
