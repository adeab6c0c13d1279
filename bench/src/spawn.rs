//! Server child processes: start one, learn its port from its `listening on HOST:PORT`
//! line, and stop it (SIGTERM, then SIGKILL after a bounded wait) whenever the guard drops.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::interrupt;

/// How long a server gets to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// How often waits wake up to look at the interrupt flag and the child.
const POLL: Duration = Duration::from_millis(100);

/// A running server child. Dropping it stops the process.
pub struct Server {
    name: String,
    child: Child,
    port: u16,
}

impl Server {
    /// Spawns `cmd` and waits up to `timeout` for it to print `listening on HOST:PORT`.
    /// Other stdout lines of the child are forwarded to stderr, prefixed with `name`;
    /// its stderr is inherited.
    pub fn spawn(name: &str, mut cmd: Command, timeout: Duration) -> Result<Server, String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: the closure only makes async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // If the bench dies without running its destructors, the server dies too.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        // From here on the guard owns the child: every early return stops it.
        let mut server = Server {
            name: name.to_string(),
            child,
            port: 0,
        };

        let (tx, rx) = mpsc::channel();
        let prefix = name.to_string();
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.is_some() {
                    if let Some(port) = parse_listening(&line) {
                        let _ = tx.take().expect("checked").send(port);
                        continue;
                    }
                }
                eprintln!("[{prefix}] {line}");
            }
        });

        let deadline = Instant::now() + timeout;
        loop {
            match rx.recv_timeout(POLL) {
                Ok(port) => {
                    server.port = port;
                    return Ok(server);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if interrupt::interrupted() {
                        return Err("interrupted".to_string());
                    }
                    server.check_running()?;
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "no `listening on HOST:PORT` line within {:.1} s",
                            timeout.as_secs_f64()
                        ));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stdout closed without the line: report the exit status if there is one soon.
                    server.check_running_within(Duration::from_secs(1))?;
                    return Err(
                        "server closed its stdout without printing `listening on HOST:PORT`"
                            .to_string(),
                    );
                }
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The child's process id (valid while the guard lives: the child is reaped only on drop
    /// or once it has exited).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Like [`Server::check_running`], but gives a dying child up to `grace` to finish
    /// exiting, so a crash that reset the connections is reported as a crash.
    pub fn check_running_within(&mut self, grace: Duration) -> Result<(), String> {
        let until = Instant::now() + grace;
        loop {
            self.check_running()?;
            if Instant::now() >= until {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Fails if the child has exited (e.g. crashed during a run).
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("server exited unexpectedly ({status})")),
            Err(e) => Err(format!("cannot query server process: {e}")),
        }
    }

    /// SIGTERM, wait up to [`TERM_GRACE`], then SIGKILL and reap.
    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // already exited and reaped (or unknowable): nothing to signal
        }
        // The child is not reaped yet, so its pid cannot have been reused.
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                _ => return,
            }
        }
        eprintln!(
            "{}: did not exit {:.0} s after SIGTERM; sending SIGKILL",
            self.name,
            TERM_GRACE.as_secs_f64()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses `listening on HOST:PORT` (HOST may be an IPv4 address or a bracketed IPv6 one).
pub fn parse_listening(line: &str) -> Option<u16> {
    let addr = line.trim().strip_prefix("listening on ")?;
    let (_host, port) = addr.rsplit_once(':')?;
    port.parse().ok().filter(|&p| p != 0)
}
