//! Process-wide worker registry: handles are ids that are never reused, so a stale or
//! garbage handle is simply not found. Lookups are safe from any thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;

use crate::error::{Result, IOT_E_BAD_HANDLE, IOT_E_PANIC};
use crate::worker::Worker;

/// A worker and its lock. `None` once freed, for callers that looked it up just before.
pub(crate) type Cell = Mutex<Option<Worker>>;

fn workers() -> &'static DashMap<u64, Arc<Cell>> {
    static WORKERS: OnceLock<DashMap<u64, Arc<Cell>>> = OnceLock::new();
    WORKERS.get_or_init(DashMap::new)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn insert(worker: Worker) -> u64 {
    let id = worker.id;
    workers().insert(id, Arc::new(Mutex::new(Some(worker))));
    id
}

/// Runs `f` on worker `id` under its lock.
pub(crate) fn with<T>(id: u64, f: impl FnOnce(&mut Worker) -> Result<T>) -> Result<T> {
    let cell = workers()
        .get(&id)
        .map(|c| c.clone())
        .ok_or(IOT_E_BAD_HANDLE)?;
    let mut guard = cell.lock().map_err(|_| IOT_E_PANIC)?;
    let worker = guard.as_mut().ok_or(IOT_E_BAD_HANDLE)?;
    f(worker)
}

/// Unregisters worker `id` and hands it back for shutdown.
pub(crate) fn remove(id: u64) -> Result<Worker> {
    let (_, cell) = workers().remove(&id).ok_or(IOT_E_BAD_HANDLE)?;
    let mut guard = cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.take().ok_or(IOT_E_BAD_HANDLE)
}
