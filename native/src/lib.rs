//! io_uring transport: one worker (ring + in-flight operations) per host thread or
//! Dart isolate, driven through the C ABI in [`ffi`].
//!
//! The safe core (`worker`, `buffers`, `sockets`, `stream`, `tcp`, `udp`, `unix`,
//! `datagram`, `files`, `messaging`, ...) holds all logic; `ffi` only checks and
//! converts arguments.

mod accept_backoff;
mod address;
mod buffers;
mod completion;
mod config;
mod datagram;
mod error;
mod file_stream;
mod files;
mod handoff;
mod messaging;
mod notifier;
mod ops;
mod options;
mod payloads;
mod probe;
mod recv_credit;
mod registry;
mod slots;
mod sockets;
mod stream;
mod tcp;
mod transport;
mod udp;
mod unix;
mod worker;

pub mod ffi;

pub use completion::*;
pub use config::{iot_config, IOT_CONFIG_REGISTER_BUFFERS};
pub use error::*;
pub use files::{
    iot_buffer_slice, iot_file_info, IOT_OFFSET_CURRENT, IOT_OPEN_APPEND, IOT_OPEN_CREATE,
    IOT_OPEN_EXCLUSIVE, IOT_OPEN_READ, IOT_OPEN_TRUNCATE, IOT_OPEN_WRITE, IOT_SYNC_DATA_ONLY,
};
pub use options::*;
pub use unix::IOT_UNIX_REPLACE_STALE;
