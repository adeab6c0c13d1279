//! io_uring transport: one worker (ring + in-flight operations) per host thread or
//! Dart isolate, driven through the C ABI in [`ffi`].
//!
//! Layers, bottom up; no module uses one above it:
//! - `abi`: the records, flags and kinds the host shares (a leaf);
//! - `driver`: the ring, what a CQE is for (`user_data`), one kernel attempt with its
//!   timeout, the slab of ops in flight and the routing of CQEs to them (`in_flight`),
//!   waiting on a ring; `op`: one file per operation family, each with its payload, its
//!   SQE and its result handling;
//! - what a worker owns besides its ring: `buffers` (with `pieces`), `sockets`, `recv_credit`,
//!   `messaging` (with `mailbox`, `handoff`, `payloads`), `notifier`;
//! - `worker`: a ring's driver and the resources its ops use, glued together (its
//!   files: `finish`, `end`, `receive`, `ordered`, `cancel`);
//! - the host's calls by family (`stream`, `tcp`, `udp`, `unix`, `datagram`, `files`,
//!   `messages`, `options`, `address`), and `registry`/`transport` across workers;
//! - `ffi`: the exports, which only check and convert arguments.

mod abi;
mod address;
mod buffers;
mod datagram;
mod driver;
mod error;
mod files;
mod handoff;
mod mailbox;
mod messages;
mod messaging;
mod notifier;
mod op;
mod options;
mod payloads;
mod pieces;
mod probe;
mod recv_credit;
mod recycled;
mod registry;
mod ring_growth;
mod slots;
mod sockets;
mod stream;
mod tcp;
mod thread_token;
mod tls;
mod transport;
mod udp;
mod unix;
mod worker;

pub mod ffi;

pub use abi::*;
pub use error::*;
