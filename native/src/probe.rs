//! Kernel feature probe: creation fails cleanly when an opcode we rely on is missing.

use io_uring::{opcode, IoUring, Probe};

use crate::error::{Result, IOT_E_UNSUPPORTED};

const REQUIRED: &[u8] = &[
    opcode::Accept::CODE,
    opcode::Connect::CODE,
    opcode::Recv::CODE,
    opcode::Send::CODE,
    opcode::Shutdown::CODE,
    opcode::AsyncCancel::CODE,
    opcode::LinkTimeout::CODE,
];

pub(crate) fn check(ring: &IoUring) -> Result<()> {
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|_| IOT_E_UNSUPPORTED)?;
    if REQUIRED.iter().all(|&code| probe.is_supported(code)) {
        Ok(())
    } else {
        Err(IOT_E_UNSUPPORTED)
    }
}
