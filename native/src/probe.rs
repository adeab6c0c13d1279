//! Kernel feature probe: creation fails cleanly when an opcode we rely on is missing,
//! and operations newer than the Linux 6.1 baseline check the probe before they start.

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
    opcode::RecvMsg::CODE,
    opcode::Read::CODE,
    opcode::Write::CODE,
    opcode::Readv::CODE,
    opcode::Writev::CODE,
    opcode::ReadFixed::CODE,
    opcode::WriteFixed::CODE,
    opcode::Fsync::CODE,
    opcode::Fallocate::CODE,
    opcode::OpenAt::CODE,
    opcode::Statx::CODE,
];

/// Probes the ring; fails when an opcode every worker needs is missing.
pub(crate) fn check(ring: &IoUring) -> Result<Probe> {
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|_| IOT_E_UNSUPPORTED)?;
    for &code in REQUIRED {
        require(&probe, code)?;
    }
    Ok(probe)
}

/// `IOT_E_UNSUPPORTED` unless the kernel knows opcode `code`.
pub(crate) fn require(probe: &Probe, code: u8) -> Result<()> {
    if probe.is_supported(code) {
        Ok(())
    } else {
        Err(IOT_E_UNSUPPORTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opcode_missing_from_the_probe_is_unsupported() {
        // A probe the kernel never filled knows no opcode, like a kernel too old.
        let empty = Probe::new();
        assert_eq!(
            require(&empty, opcode::Ftruncate::CODE),
            Err(IOT_E_UNSUPPORTED)
        );
    }
}
