//! What the C ABI shares with the host besides functions: the completion record, the
//! configuration and stats structs, and every flag and selector, one file per family.
//! A leaf: the core fills these records and the `ffi` exports pass them through, so
//! both depend on it and it depends on neither.

mod completion;
mod file;
mod socket;
mod tls;
mod worker;

pub use completion::*;
pub use file::*;
pub use socket::*;
pub use tls::*;
pub use worker::*;
