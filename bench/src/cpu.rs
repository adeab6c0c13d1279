//! CPU time used by a server child process (all its threads, user + system), read from
//! outside the process at the start and the end of the measured window.
//!
//! Sources, best first; the first that works for the process at hand is used for both
//! samples of a run:
//! 1. the process CPU-time clock (`clock_getcpuclockid(pid)` + `clock_gettime`): ns, the
//!    same per-thread runtime the scheduler keeps (what `schedstat` shows), but brought up
//!    to date for a thread that is on a CPU right now and including threads that exited;
//! 2. `/proc/PID/task/*/schedstat`, first field: ns on CPU, summed over live threads;
//! 3. `/proc/PID/stat` fields 14 + 15 (utime + stime): clock ticks, usually 10 ms.

use std::fs;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    Clock,
    Schedstat,
    Ticks,
}

impl Source {
    /// All sources, best first: the order `auto` tries them in.
    pub const ALL: [Source; 3] = [Source::Clock, Source::Schedstat, Source::Ticks];

    pub fn name(self) -> &'static str {
        match self {
            Source::Clock => "clock",
            Source::Schedstat => "schedstat",
            Source::Ticks => "stat",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|src| src.name() == s)
    }

    pub fn describe(self) -> String {
        match self {
            Source::Clock => "process CPU-time clock (clock_getcpuclockid), ns".to_string(),
            Source::Schedstat => "/proc/PID/task/*/schedstat, ns".to_string(),
            Source::Ticks => format!(
                "/proc/PID/stat utime+stime, {} ms ticks",
                1000 / clock_ticks_per_sec()
            ),
        }
    }
}

/// Reads one process's CPU time with the first source that works for it.
pub struct Meter {
    pid: libc::pid_t,
    source: Source,
    clock: libc::clockid_t,
}

/// One reading: the CPU time so far, where it came from, and for [`Source::Ticks`] the
/// raw tick count.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub cpu: Duration,
    pub source: Source,
    pub ticks: Option<u64>,
}

impl Meter {
    /// Uses `only` if given, else the first of [`Source::ALL`] that works for `pid`;
    /// `None` when that cannot read the process.
    pub fn new(pid: u32, only: Option<Source>) -> Option<Meter> {
        match only {
            Some(source) => Meter::with_source(pid, source),
            None => Source::ALL
                .into_iter()
                .find_map(|source| Meter::with_source(pid, source)),
        }
    }

    /// A meter for `pid` on `source`, if one reading through it succeeds.
    pub fn with_source(pid: u32, source: Source) -> Option<Meter> {
        let pid = libc::pid_t::try_from(pid).ok()?;
        let mut meter = Meter {
            pid,
            source,
            clock: 0,
        };
        if source == Source::Clock {
            // SAFETY: writes one clockid_t into a local.
            if unsafe { libc::clock_getcpuclockid(pid, &mut meter.clock) } != 0 {
                return None;
            }
        }
        let first = meter.read().ok()?;
        // schedstat reads "0 0 0" when the kernel keeps no scheduler info; a server that
        // has already printed its port has run for more than 0 ns.
        if source == Source::Schedstat && first.cpu.is_zero() {
            return None;
        }
        Some(meter)
    }

    pub fn read(&self) -> Result<Sample, String> {
        match self.source {
            Source::Clock => {
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: writes one timespec into a local.
                if unsafe { libc::clock_gettime(self.clock, &mut ts) } != 0 {
                    return Err(format!(
                        "clock_gettime(CPU clock of {}): {}",
                        self.pid,
                        std::io::Error::last_os_error()
                    ));
                }
                Ok(Sample {
                    cpu: Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
                    source: self.source,
                    ticks: None,
                })
            }
            Source::Schedstat => {
                let dir = format!("/proc/{}/task", self.pid);
                let entries = fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
                let mut ns = 0u64;
                for entry in entries {
                    let path = entry.map_err(|e| format!("{dir}: {e}"))?.path();
                    match fs::read_to_string(path.join("schedstat")) {
                        Ok(text) => {
                            ns += parse_schedstat(&text).ok_or_else(|| {
                                format!(
                                    "{}/schedstat: unexpected `{}`",
                                    path.display(),
                                    text.trim()
                                )
                            })?
                        }
                        // The thread exited between listing and reading: it is gone either way.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(format!("{}/schedstat: {e}", path.display())),
                    }
                }
                Ok(Sample {
                    cpu: Duration::from_nanos(ns),
                    source: self.source,
                    ticks: None,
                })
            }
            Source::Ticks => {
                let path = format!("/proc/{}/stat", self.pid);
                let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                let ticks =
                    parse_stat_ticks(&text).ok_or_else(|| format!("{path}: unexpected format"))?;
                let hz = clock_ticks_per_sec();
                Ok(Sample {
                    cpu: Duration::from_nanos(ticks.saturating_mul(1_000_000_000 / hz)),
                    source: self.source,
                    ticks: Some(ticks),
                })
            }
        }
    }
}

/// `sysconf(_SC_CLK_TCK)`, 100 if that fails.
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: plain sysconf query.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// First field of `/proc/PID/task/TID/schedstat`: nanoseconds on a CPU.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// utime + stime (fields 14 and 15) of `/proc/PID/stat`, in clock ticks. The command
/// name (field 2) is in parentheses and may itself hold spaces and `)`, so fields are
/// counted from the last `)`, which is followed by field 3.
pub fn parse_stat_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn parses_schedstat() {
        assert_eq!(
            parse_schedstat("1015829145 30011292 743\n"),
            Some(1_015_829_145)
        );
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
    }

    #[test]
    fn parses_stat_ticks() {
        let line = "30116 (cat) R 30113 30113 27606 0 -1 4194304 99 0 1 0 7 5 0 0 20 0 1 0 \
                    162969 3133440 382";
        assert_eq!(parse_stat_ticks(line), Some(12));
        // A command name with spaces and parentheses does not shift the fields.
        let odd = "42 (a) b (c) S 1 42 42 0 -1 0 0 0 0 0 100 23 0 0 20 0 2 0 1 1 1";
        assert_eq!(parse_stat_ticks(odd), Some(123));
        assert_eq!(parse_stat_ticks("42 (cut short) S 1 2"), None);
    }

    #[test]
    fn sources_agree_on_a_busy_process() {
        // A child of its own: this test process's other threads (other tests) come and
        // go, and a thread that exited leaves the process clock but not the task list.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        let read = |source| {
            Meter::with_source(pid, source)
                .unwrap_or_else(|| panic!("{source:?} unavailable"))
                .read()
                .expect("read")
        };
        // Let it burn until its clock shows 0.3 s (on a busy machine that takes longer
        // than 0.3 s of wall time), bounded in wall time; then stop it, so every source
        // reads the same moment.
        let give_up = Instant::now() + Duration::from_secs(20);
        while read(Source::Clock).cpu < Duration::from_millis(300) && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: signals our own child, which has not been reaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
        let check = || {
            let clock = read(Source::Clock).cpu.as_secs_f64();
            assert!(clock >= 0.25, "clock {clock}");
            let tick = 1.0 / clock_ticks_per_sec() as f64;
            for source in [Source::Schedstat, Source::Ticks] {
                let Some(meter) = Meter::with_source(pid, source) else {
                    continue; // not every kernel has schedstat
                };
                let v = meter.read().expect("read").cpu.as_secs_f64();
                assert!(
                    (v - clock).abs() < 0.01 + 2.0 * tick,
                    "{source:?} {v} vs clock {clock}"
                );
            }
            assert!(read(Source::Ticks).ticks.is_some());
            assert_eq!(Meter::new(pid, None).map(|m| m.source), Some(Source::Clock));
        };
        let outcome = std::panic::catch_unwind(check);
        child.kill().expect("kill sh");
        child.wait().expect("reap sh");
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}
