//! A server child's memory, read from `/proc/PID/status`: resident now (`VmRSS`) and the
//! peak so far (`VmHWM`), in bytes.

use std::fs;

#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub resident: u64,
    pub peak: u64,
}

pub fn read(pid: u32) -> Result<Memory, String> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_status(&text).ok_or_else(|| format!("{path}: no VmRSS/VmHWM lines"))
}

/// The `VmRSS` and `VmHWM` lines of a status file (their values are in kB).
pub fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
    };
    Some(Memory {
        resident: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let text = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t1\n";
        let m = parse_status(text).expect("parsed");
        assert_eq!((m.resident, m.peak), (1024 * 1024, 2048 * 1024));
        assert!(parse_status("Name:\tx\n").is_none());
    }

    #[test]
    fn reads_this_process() {
        let m = read(std::process::id()).expect("own status");
        assert!(m.resident > 0 && m.peak >= m.resident);
    }
}
