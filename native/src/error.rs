//! One result convention for the whole ABI: `>= 0` is success, negative values are
//! `-errno` (kernel errors, 1..=4095) or one of the `IOT_E_*` codes, which live in a
//! band (<= -5000) that cannot collide with errno.

use std::io;

/// A handle (worker, socket) is null, stale, closed or was never issued.
pub const IOT_E_BAD_HANDLE: i32 = -5001;
/// io_uring is unavailable (kernel without it, `kernel.io_uring_disabled`, seccomp) or
/// lacks an operation this library needs.
pub const IOT_E_UNSUPPORTED: i32 = -5002;
/// The kernel refused to pin or account memory for the ring or its buffers
/// (`ENOMEM`, usually a low `RLIMIT_MEMLOCK`).
pub const IOT_E_MEMLOCK: i32 = -5003;
/// A required pointer argument was NULL.
pub const IOT_E_NULL_POINTER: i32 = -5004;
/// A buffer id is out of range or not owned by the host (double release, or a buffer
/// the kernel or an operation still owns).
pub const IOT_E_BAD_BUFFER: i32 = -5005;
/// An internal panic was caught at the ABI boundary; the worker should be freed.
pub const IOT_E_PANIC: i32 = -5006;
/// The operation does not apply to this kind of handle (e.g. accept on a stream,
/// `iot_recv` on a datagram socket, `iot_socket_close` on a file).
pub const IOT_E_WRONG_SOCKET_KIND: i32 = -5007;
/// Out of address space or memory: mapping the ring or its buffers failed (`ENOMEM`
/// from `mmap`, usually a low `RLIMIT_AS`, `ulimit -v`).
pub const IOT_E_ADDRESS_SPACE: i32 = -5008;
/// A thread could not be started (`RLIMIT_NPROC`, `kernel.threads-max`, or no address
/// space left for its stack).
pub const IOT_E_THREAD: i32 = -5009;
/// A worker made with `IOT_CONFIG_SINGLE_THREAD` was called from a thread other than
/// the one that made it.
pub const IOT_E_WRONG_THREAD: i32 = -5010;
/// The target worker of a message is unknown, freed, or stopped accepting messages.
/// (Messaging errors are numbered from -5020.)
pub const IOT_E_WORKER_GONE: i32 = -5020;

// TLS (numbered from -5040). The reason in words: `iot_tls_error_text` on the socket,
// or the text a failed `iot_tls_config_new` wrote.

/// A TLS configuration could not be built: no or bad PEM, a key that does not match
/// the certificate, no trusted certificates where they are needed, a bad ALPN list.
pub const IOT_E_TLS_CONFIG: i32 = -5040;
/// The peer's certificate is not valid: expired, not yet valid, badly encoded, or
/// revoked.
pub const IOT_E_TLS_BAD_CERTIFICATE: i32 = -5041;
/// The peer's certificate was not issued by a trusted certificate authority.
pub const IOT_E_TLS_UNKNOWN_ISSUER: i32 = -5042;
/// The server's certificate is not valid for the name the client asked for (SNI).
pub const IOT_E_TLS_NAME_MISMATCH: i32 = -5043;
/// The peers share no protocol version, cipher suite or application protocol (ALPN).
pub const IOT_E_TLS_NO_COMMON_PROTOCOL: i32 = -5044;
/// The peer refused the handshake or ended the session with an alert.
pub const IOT_E_TLS_ALERT_RECEIVED: i32 = -5045;
/// The peer does not speak TLS correctly: a malformed or unexpected message (also a
/// plaintext client on a TLS port).
pub const IOT_E_TLS_PROTOCOL: i32 = -5046;
/// A record failed to decrypt or authenticate (corrupted or forged data).
pub const IOT_E_TLS_DECRYPT: i32 = -5047;
/// The server requires a client certificate and the client sent none.
pub const IOT_E_TLS_CERTIFICATE_REQUIRED: i32 = -5048;
/// The socket has no established TLS session for this call (a handshake is missing,
/// still running, failed, or already done).
pub const IOT_E_TLS_STATE: i32 = -5049;

/// Whether `code` is one of the `IOT_E_TLS_*` codes.
pub(crate) fn is_tls(code: i32) -> bool {
    (IOT_E_TLS_STATE..=IOT_E_TLS_CONFIG).contains(&code)
}

/// Internal result type: the error is already an ABI code.
pub(crate) type Result<T> = std::result::Result<T, i32>;

/// Converts an OS error into an ABI code.
pub(crate) fn errno_code(err: &io::Error) -> i32 {
    match err.raw_os_error() {
        Some(errno) if errno > 0 => -errno,
        _ => -libc::EIO,
    }
}

pub(crate) fn from_io(err: io::Error) -> i32 {
    errno_code(&err)
}

/// A resource limit's soft value as text ("unlimited" or a number).
fn limit(resource: libc::__rlimit_resource_t) -> String {
    let mut value = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `value`, which we own.
    if unsafe { libc::getrlimit(resource, &mut value) } != 0 {
        return "unknown".into();
    }
    match value.rlim_cur {
        libc::RLIM_INFINITY => "unlimited".into(),
        n => n.to_string(),
    }
}

/// Whether the address space is limited (`ulimit -v`), which makes `ENOMEM` from
/// mapping memory mean "address space" rather than "locked memory".
pub(crate) fn address_space_limited() -> bool {
    limit(libc::RLIMIT_AS) != "unlimited"
}

/// Text for any ABI code: our own band, else the OS's `strerror` text; limits that
/// explain an error are named with their current values.
pub(crate) fn message(code: i32) -> String {
    let own = match code {
        0 => "success",
        IOT_E_BAD_HANDLE => "invalid handle: null, stale, closed or never issued",
        IOT_E_UNSUPPORTED => {
            "io_uring is unavailable or lacks a required operation: needs Linux >= 6.1 with \
             io_uring enabled (sysctl kernel.io_uring_disabled=0) and not blocked by seccomp \
             (containers often block it); messaging between workers needs Linux >= 6.3"
        }
        IOT_E_MEMLOCK => {
            return format!(
                "the kernel refused to lock memory for the ring or its buffers (ENOMEM): raise \
                 RLIMIT_MEMLOCK (now {} bytes; `ulimit -l`, or LimitMEMLOCK= in systemd) or \
                 lower ring_entries / buffer counts",
                limit(libc::RLIMIT_MEMLOCK)
            )
        }
        IOT_E_ADDRESS_SPACE => {
            return format!(
                "out of address space or memory mapping the ring or its buffers (ENOMEM): \
                 raise RLIMIT_AS (now {} bytes; `ulimit -v`) or lower ring_entries / buffer \
                 counts / buffer_size",
                limit(libc::RLIMIT_AS)
            )
        }
        IOT_E_THREAD => {
            return format!(
                "could not start a thread: raise RLIMIT_NPROC (now {}; `ulimit -u`) or \
                 kernel.threads-max, or leave room in the address space for its stack \
                 (RLIMIT_AS now {} bytes; `ulimit -v`)",
                limit(libc::RLIMIT_NPROC),
                limit(libc::RLIMIT_AS)
            )
        }
        c if c == -libc::EMFILE => {
            return format!(
                "{} (RLIMIT_NOFILE, open files per process, is {}; `ulimit -n`)",
                io::Error::from_raw_os_error(libc::EMFILE),
                limit(libc::RLIMIT_NOFILE)
            )
        }
        c if c == -libc::ENFILE => {
            return format!(
                "{} (the system-wide limit, fs.file-max)",
                io::Error::from_raw_os_error(libc::ENFILE)
            )
        }
        IOT_E_NULL_POINTER => "a required pointer argument was NULL",
        IOT_E_WRONG_THREAD => {
            "a single-thread worker (IOT_CONFIG_SINGLE_THREAD) was called from a thread \
             other than the one that made it"
        }
        IOT_E_BAD_BUFFER => {
            "invalid buffer id: out of range or not owned by the caller (already released, or \
             still in use by an operation)"
        }
        IOT_E_PANIC => "internal error (caught panic); free the worker",
        IOT_E_WRONG_SOCKET_KIND => "operation not valid for this kind of socket or file",
        IOT_E_WORKER_GONE => {
            "target worker is gone: never issued, freed, or stopped accepting messages"
        }
        IOT_E_TLS_CONFIG => "invalid TLS configuration",
        IOT_E_TLS_BAD_CERTIFICATE => "TLS: the peer's certificate is not valid",
        IOT_E_TLS_UNKNOWN_ISSUER => {
            "TLS: the peer's certificate was not issued by a trusted certificate authority"
        }
        IOT_E_TLS_NAME_MISMATCH => {
            "TLS: the server's certificate is not valid for the requested name"
        }
        IOT_E_TLS_NO_COMMON_PROTOCOL => {
            "TLS: no protocol version, cipher suite or application protocol (ALPN) in common"
        }
        IOT_E_TLS_ALERT_RECEIVED => "TLS: the peer sent a fatal alert",
        IOT_E_TLS_PROTOCOL => "TLS: the peer violated the protocol (or does not speak TLS)",
        IOT_E_TLS_DECRYPT => "TLS: a record failed to decrypt or authenticate",
        IOT_E_TLS_CERTIFICATE_REQUIRED => {
            "TLS: the server requires a client certificate and none was sent"
        }
        IOT_E_TLS_STATE => "TLS: no established session for this call on the socket",
        c if c < 0 && c > -4096 => {
            return io::Error::from_raw_os_error(-c).to_string();
        }
        _ => "unknown result code",
    };
    own.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_codes_and_errno_have_text() {
        assert!(message(IOT_E_MEMLOCK).contains("RLIMIT_MEMLOCK"));
        assert!(message(IOT_E_ADDRESS_SPACE).contains("RLIMIT_AS"));
        assert!(message(IOT_E_THREAD).contains("RLIMIT_NPROC"));
        assert!(message(-libc::EMFILE).contains("RLIMIT_NOFILE"));
        assert!(message(-libc::ECONNREFUSED)
            .to_lowercase()
            .contains("refused"));
        assert_eq!(message(-99999), "unknown result code");
    }
}
