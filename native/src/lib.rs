//! io_uring transport: one worker (ring + in-flight operations) per host thread or
//! Dart isolate, driven through the C ABI in [`ffi`].
//!
//! The safe core (`worker`, `buffers`, `sockets`, `tcp`, `messaging`, ...) holds all
//! logic; `ffi` only checks and converts arguments.

mod buffers;
mod completion;
mod config;
mod error;
mod handoff;
mod messaging;
mod notifier;
mod ops;
mod payloads;
mod probe;
mod registry;
mod slots;
mod sockets;
mod tcp;
mod transport;
mod worker;

pub mod ffi;

pub use completion::*;
pub use config::iot_config;
pub use error::*;
