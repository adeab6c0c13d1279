//! When io_uring is unavailable (here: blocked by a seccomp filter, as in many
//! containers), creating a worker fails with IOT_E_UNSUPPORTED and a clear message.
//! The filter is installed in a child process (this test binary re-run), so no other
//! test loses io_uring.

use std::process::Command;

use iouring_transport::ffi::*;
use iouring_transport::*;

const CHILD_ENV: &str = "IOT_TEST_SECCOMP_CHILD";

/// Makes `io_uring_setup` fail with `errno` for this thread and its future children.
fn block_io_uring_setup(errno: u32) {
    let nr = libc::SYS_io_uring_setup as u32;
    let filter = [
        // A = seccomp_data.nr
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: libc::BPF_RET as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | errno,
        },
        libc::sock_filter {
            code: libc::BPF_RET as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: plain prctl calls with a valid, live filter program.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program),
            0
        );
    }
}

#[test]
fn worker_creation_fails_cleanly_without_io_uring() {
    if let Ok(errno) = std::env::var(CHILD_ENV) {
        block_io_uring_setup(errno.parse().unwrap());
        let mut worker = 0;
        let code = iot_worker_new(std::ptr::null(), &mut worker);
        assert_eq!(code, IOT_E_UNSUPPORTED);
        assert_eq!(worker, 0);
        return;
    }
    for errno in [libc::ENOSYS, libc::EPERM] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "worker_creation_fails_cleanly_without_io_uring",
                "--nocapture",
            ])
            .env(CHILD_ENV, errno.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child with io_uring_setup -> errno {errno} failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }
}
