//! Process-wide worker registry: handles are ids that are never reused, so a stale or
//! garbage handle is simply not found. Lookups are safe from any thread.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;

use crate::error::{Result, IOT_E_BAD_HANDLE, IOT_E_PANIC};
use crate::worker::Worker;

/// A registered worker. `worker` is `None` once freed, for callers that looked it up
/// just before. `ring_fd` duplicates the ring's fd so waiting (and, from other workers,
/// messaging) needs no lock and never names a closed or reused fd.
pub(crate) struct Cell {
    worker: Mutex<Option<Worker>>,
    pub(crate) ring_fd: OwnedFd,
}

fn workers() -> &'static DashMap<u64, Arc<Cell>> {
    static WORKERS: OnceLock<DashMap<u64, Arc<Cell>>> = OnceLock::new();
    WORKERS.get_or_init(DashMap::new)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn insert(worker: Worker) -> Result<u64> {
    let id = worker.id;
    // SAFETY: the ring fd is open for as long as `worker` lives; we only duplicate it.
    let ring_fd = unsafe { BorrowedFd::borrow_raw(worker.ring.as_raw_fd()) }
        .try_clone_to_owned()
        .map_err(crate::error::from_io)?;
    workers().insert(
        id,
        Arc::new(Cell {
            worker: Mutex::new(Some(worker)),
            ring_fd,
        }),
    );
    Ok(id)
}

fn cell(id: u64) -> Result<Arc<Cell>> {
    workers()
        .get(&id)
        .map(|c| c.clone())
        .ok_or(IOT_E_BAD_HANDLE)
}

/// Runs `f` on worker `id` under its lock.
pub(crate) fn with<T>(id: u64, f: impl FnOnce(&mut Worker) -> Result<T>) -> Result<T> {
    let cell = cell(id)?;
    let mut guard = cell.worker.lock().map_err(|_| IOT_E_PANIC)?;
    let worker = guard.as_mut().ok_or(IOT_E_BAD_HANDLE)?;
    f(worker)
}

/// Unregisters worker `id` and hands it back for shutdown.
pub(crate) fn remove(id: u64) -> Result<Worker> {
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
    let Some(to_submit) = with(id, |w| w.prepare_wait())? else {
        return Ok(true);
    };
    crate::worker::submit_and_wait(cell.ring_fd.as_fd(), to_submit, timeout_ms)?;
    with(id, |w| Ok(w.has_pending()))
}
