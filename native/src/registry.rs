//! Process-wide worker registry, the transport's table of workers: handles are ids that
//! are never reused, so a stale or garbage handle is simply not found. Lookups are safe
//! from any thread, and every worker is reachable by id from every other one.

use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;

use crate::error::{
    Result, IOT_E_BAD_HANDLE, IOT_E_PANIC, IOT_E_UNSUPPORTED, IOT_E_WORKER_GONE, IOT_E_WRONG_THREAD,
};
use crate::mailbox::{self, Admission, Mailbox};
use crate::slots::MAX_WORKER_ID;
use crate::sockets::MAX_HANDLE_WORKER_ID;
use crate::worker::Worker;

/// A registered worker. `worker` is `None` once freed, for callers that looked it up
/// just before; `mailbox` is what other threads reach of it without its lock (waiting
/// on its ring, messaging it).
pub(crate) struct Cell {
    worker: Mutex<Option<Worker>>,
    pub(crate) mailbox: Arc<Mailbox>,
    /// The thread a single-thread worker belongs to (`Worker::owner`).
    owner: Option<u64>,
}

impl Cell {
    /// `IOT_E_WRONG_THREAD` when a single-thread worker is called from another thread:
    /// the kernel would refuse its ring there (`EEXIST`).
    fn check_thread(&self) -> Result<()> {
        match self.owner {
            Some(owner) if owner != crate::thread_token::this_thread() => Err(IOT_E_WRONG_THREAD),
            _ => Ok(()),
        }
    }
}

/// Every FFI call on a worker looks its id up: ids are sequential numbers, not
/// attacker-chosen keys, so one multiplication spreads them (instead of SipHash).
#[derive(Clone, Copy, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(FIBONACCI);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(FIBONACCI);
    }
}

/// 2^64 divided by the golden ratio: consecutive ids land far apart.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

type Workers = DashMap<u64, Arc<Cell>, BuildHasherDefault<IdHasher>>;

fn workers() -> &'static Workers {
    static WORKERS: OnceLock<Workers> = OnceLock::new();
    WORKERS.get_or_init(Workers::default)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh worker id. Ids stop at `MAX_HANDLE_WORKER_ID` (16 million workers per
/// process), so socket and file handles can name their worker in 24 bits, and payload
/// and hand-off slots their holder in 31.
pub(crate) fn next_id() -> Result<u64> {
    const _: () = assert!(MAX_HANDLE_WORKER_ID <= MAX_WORKER_ID);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if id > MAX_HANDLE_WORKER_ID {
        return Err(-libc::EMFILE);
    }
    Ok(id)
}

pub(crate) fn insert(worker: Worker) -> Result<u64> {
    let id = worker.id;
    let mailbox = worker.messaging.mailbox.clone();
    let owner = worker.owner;
    workers().insert(
        id,
        Arc::new(Cell {
            worker: Mutex::new(Some(worker)),
            mailbox,
            owner,
        }),
    );
    Ok(id)
}

pub(crate) fn cell(id: u64) -> Result<Arc<Cell>> {
    workers()
        .get(&id)
        .map(|c| c.clone())
        .ok_or(IOT_E_BAD_HANDLE)
}

/// Counts one message on its way to worker `target`, unless it is gone or stopped.
pub(crate) fn admit(target: u64) -> Result<Admission> {
    if !mailbox::supported() {
        return Err(IOT_E_UNSUPPORTED);
    }
    let cell = cell(target).map_err(|_| IOT_E_WORKER_GONE)?;
    Admission::new(target, cell.mailbox.clone())
}

/// Ids of every registered worker at this moment.
pub(crate) fn ids() -> Vec<u64> {
    workers().iter().map(|entry| *entry.key()).collect()
}

/// Runs `f` on worker `id` under its lock.
pub(crate) fn with<T>(id: u64, f: impl FnOnce(&mut Worker) -> Result<T>) -> Result<T> {
    let cell = cell(id)?;
    cell.check_thread()?;
    let mut guard = cell.worker.lock().map_err(|_| IOT_E_PANIC)?;
    let worker = guard.as_mut().ok_or(IOT_E_BAD_HANDLE)?;
    f(worker)
}

/// Unregisters worker `id` and hands it back for shutdown.
pub(crate) fn remove(id: u64) -> Result<Worker> {
    cell(id)?.check_thread()?;
    let (_, cell) = workers().remove(&id).ok_or(IOT_E_BAD_HANDLE)?;
    let mut guard = cell
        .worker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.take().ok_or(IOT_E_BAD_HANDLE)
}

/// Submits, then blocks without holding the worker's lock until a completion is
/// pending or `timeout_ms` passes (0 = no limit). Returns whether one is pending.
pub(crate) fn wait(id: u64, timeout_ms: u32) -> Result<bool> {
    let cell = cell(id)?;
    // Counted as waiting before the check for pending completions, under the lock: a
    // completion another thread puts in `ready` after it (no CQE of its own, or a CQE
    // that thread reaped) then posts a CQE to wake this one.
    let (signal, prepared) = with(id, |w| {
        w.signal.begin_waiting();
        Ok((w.signal.clone(), w.prepare_wait()))
    })?;
    let waited = match prepared {
        Ok(Some(to_submit)) => {
            crate::driver::submit_and_wait(cell.mailbox.ring_fd.as_fd(), to_submit, timeout_ms)
        }
        Ok(None) => Ok(()),
        Err(code) => Err(code),
    };
    signal.done_waiting();
    waited?;
    with(id, |w| Ok(w.has_pending()))
}
