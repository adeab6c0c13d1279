//! The ring side of a worker: the io_uring instance (`ring`) and its registered files
//! (`fixed_files`), how CQEs are told apart (`user_data`), how one kernel attempt of an
//! op and its timeout settle (`attempt`), where timeout SQEs' timespecs wait for the
//! submit (`timespecs`), the slab of ops in flight and what each CQE
//! means for them (`in_flight`), and how a host waits (`wait`). It knows ops only
//! through one trait (`in_flight::Tracked`), and nothing of sockets, files or buffers.

pub(crate) mod attempt;
pub(crate) mod fixed_files;
pub(crate) mod in_flight;
pub(crate) mod ring;
mod timespecs;
pub(crate) mod user_data;
mod wait;

pub(crate) use wait::submit_and_wait;
