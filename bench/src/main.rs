//! `iot_bench`: TCP echo throughput of our io_uring example server against a tokio and
//! an epoll peer, measured by one and the same load client in the same run.
//!
//! This file holds the command line, the run loop over (connections, size) cells and
//! the result table. Every server runs as its own child process (see `spawn`): ours is
//! the `echo_server` example binary, the peers are this binary re-executed with the
//! hidden `serve tokio|epoll` subcommand.

mod client;
mod epoll_server;
mod interrupt;
mod spawn;
mod sys;
mod tokio_server;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

const USAGE: &str = "\
usage: iot_bench echo [--connections 1,50] [--sizes 64,4096] [--seconds 3]
                      [--warmup 0.5] [--timeout 5] [--servers ours,tokio,epoll] [--ours PATH]

TCP echo throughput (round trips per second) of our io_uring example server against a
single-thread tokio and a single-thread epoll echo server. For every (connections, size)
cell each server is started as its own child process, bound to 127.0.0.1 with one worker
thread, and driven by the same one-thread epoll client: every connection sends SIZE bytes,
reads exactly SIZE bytes back, checks them and repeats, for SECONDS after a warm-up.

  --connections LIST  concurrent connections per cell (default 1,50)
  --sizes LIST        message size in bytes (default 64,4096)
  --seconds S         measured time per cell and server (default 3)
  --warmup S          unmeasured warm-up before it (default 0.5)
  --timeout S         fail a server whose echo stalls this long; also its startup limit x2
                      (default 5)
  --servers LIST      which servers to run, in order (default ours,tokio,epoll)
  --ours PATH         our server binary, run as `PATH --host 127.0.0.1 --port 0 --workers 1`
                      (default target/release/examples/echo_server; skipped with a note
                      when that default does not exist)";

const DEFAULT_OURS: &str = "target/release/examples/echo_server";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ours,
    Tokio,
    Epoll,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Tokio => "tokio",
            Kind::Epoll => "epoll",
        }
    }

    fn parse(s: &str) -> Result<Kind, String> {
        match s {
            "ours" => Ok(Kind::Ours),
            "tokio" => Ok(Kind::Tokio),
            "epoll" => Ok(Kind::Epoll),
            _ => Err(format!(
                "unknown server `{s}` (expected ours, tokio or epoll)"
            )),
        }
    }
}

struct EchoArgs {
    connections: Vec<usize>,
    sizes: Vec<usize>,
    seconds: f64,
    warmup: f64,
    timeout: f64,
    servers: Vec<Kind>,
    ours: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("echo") => echo_main(&args[1..]),
        Some("serve") => serve_main(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Hidden subcommand: run one peer server in this process (used by the driver only).
fn serve_main(args: &[String]) -> ExitCode {
    let result = match args {
        [kind] if kind == "tokio" => tokio_server::serve(),
        [kind] if kind == "epoll" => epoll_server::serve(),
        _ => {
            eprintln!("usage: iot_bench serve tokio|epoll");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iot_bench serve {}: {e}", args[0]);
            ExitCode::FAILURE
        }
    }
}

fn parse_echo_args(args: &[String]) -> Result<EchoArgs, String> {
    let mut out = EchoArgs {
        connections: vec![1, 50],
        sizes: vec![64, 4096],
        seconds: 3.0,
        warmup: 0.5,
        timeout: 5.0,
        servers: vec![Kind::Ours, Kind::Tokio, Kind::Epoll],
        ours: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .as_str();
        match flag.as_str() {
            "--connections" => out.connections = parse_list(flag, value)?,
            "--sizes" => out.sizes = parse_list(flag, value)?,
            "--seconds" => out.seconds = parse_secs(flag, value, false)?,
            "--warmup" => out.warmup = parse_secs(flag, value, true)?,
            "--timeout" => out.timeout = parse_secs(flag, value, false)?,
            "--servers" => {
                out.servers = value
                    .split(',')
                    .map(|s| Kind::parse(s.trim()))
                    .collect::<Result<_, _>>()?;
                out.servers.dedup();
            }
            "--ours" => out.ours = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(out)
}

fn parse_list(flag: &str, value: &str) -> Result<Vec<usize>, String> {
    value
        .split(',')
        .map(|s| match s.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{flag}: `{s}` is not a positive integer")),
        })
        .collect()
}

fn parse_secs(flag: &str, value: &str, zero_ok: bool) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(s) if s.is_finite() && s <= 3600.0 && (s > 0.0 || (zero_ok && s == 0.0)) => Ok(s),
        _ => Err(format!(
            "{flag}: `{value}` is not a valid number of seconds"
        )),
    }
}

fn echo_main(args: &[String]) -> ExitCode {
    let mut args = match parse_echo_args(args) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    interrupt::install();
    raise_fd_limit();

    // Resolve our server binary; without an explicit --ours a missing default is skipped.
    let mut notes = Vec::new();
    let ours_path = args
        .ours
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OURS));
    let mut ours_skipped = false;
    if args.servers.contains(&Kind::Ours) && !ours_path.is_file() {
        if args.ours.is_some() {
            eprintln!("error: --ours {}: no such file", ours_path.display());
            return ExitCode::from(2);
        }
        ours_skipped = true;
        notes.push(format!(
            "ours: SKIPPED, {DEFAULT_OURS} not found (build it with \
             `cargo build --release -p iouring_transport --examples`)"
        ));
    }
    let self_exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot locate the iot_bench binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run_kinds: Vec<Kind> = args
        .servers
        .iter()
        .copied()
        .filter(|&k| !(k == Kind::Ours && ours_skipped))
        .collect();
    if run_kinds.is_empty() {
        eprintln!("error: no server left to run");
        return ExitCode::from(2);
    }
    args.connections.dedup();
    args.sizes.dedup();

    println!(
        "echo, 1 server thread each, client: 1 thread epoll, {} s per cell",
        args.seconds
    );
    println!(
        "(+{} s warm-up; each connection ping-pongs SIZE bytes and checks the echo; \
         127.0.0.1 only; a fresh server process per cell)",
        args.warmup
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    if cores <= 2 {
        println!(
            "({cores} cores: client and server each saturate one; with many connections the \
             client can be the limit, pulling ratios toward 1.00x)"
        );
    }
    if run_kinds.contains(&Kind::Ours) {
        println!("ours: {} --workers 1", ours_path.display());
    }
    for note in &notes {
        println!("{note}");
    }
    println!();

    let table = Table::new(&args);
    println!("{}", table.header());

    let mut failures = Vec::new();
    for &conns in &args.connections {
        for &size in &args.sizes {
            let mut cells = Vec::new();
            for &kind in &args.servers {
                if !run_kinds.contains(&kind) {
                    cells.push((kind, Cell::Skipped));
                    continue;
                }
                let result = run_one(kind, &ours_path, &self_exe, conns, size, &args);
                if interrupt::interrupted() {
                    eprintln!("interrupted; servers stopped");
                    return ExitCode::from(130);
                }
                match result {
                    Ok(rate) => cells.push((kind, Cell::Rate(rate))),
                    Err(e) => {
                        let msg = format!("{} (conns {conns}, size {size}): {e}", kind.name());
                        eprintln!("error: {msg}");
                        failures.push(msg);
                        cells.push((kind, Cell::Failed));
                    }
                }
            }
            println!("{}", table.row(conns, size, &cells));
        }
    }

    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("\n{} run(s) FAILED:", failures.len());
        for f in &failures {
            println!("  {f}");
        }
        ExitCode::FAILURE
    }
}

/// Starts one server, measures it with the client, stops it (the guard's drop).
fn run_one(
    kind: Kind,
    ours: &PathBuf,
    self_exe: &PathBuf,
    connections: usize,
    size: usize,
    args: &EchoArgs,
) -> Result<f64, String> {
    let cmd = match kind {
        Kind::Ours => {
            let mut c = Command::new(ours);
            c.args(["--host", "127.0.0.1", "--port", "0", "--workers", "1"]);
            c
        }
        Kind::Tokio | Kind::Epoll => {
            let mut c = Command::new(self_exe);
            c.args(["serve", kind.name()]);
            c
        }
    };
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut server = spawn::Server::spawn(kind.name(), cmd, timeout * 2)?;
    let cfg = client::Config {
        port: server.port(),
        connections,
        size,
        warmup: Duration::from_secs_f64(args.warmup),
        measure: Duration::from_secs_f64(args.seconds),
        stall_timeout: timeout,
    };
    let outcome = client::run(&cfg).map_err(|e| {
        if interrupt::interrupted() {
            return e;
        }
        // A reset connection is often a crashed server: say so if it exited.
        match server.check_running_within(Duration::from_millis(500)) {
            Err(dead) => format!("{e}; {dead}"),
            Ok(()) => e,
        }
    })?;
    server.check_running()?;
    Ok(outcome.per_sec())
}

/// Raises the soft open-file limit to the hard one, for many connections.
fn raise_fd_limit() {
    // SAFETY: get/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

enum Cell {
    Rate(f64),
    Failed,
    Skipped,
}

/// Fixed-width, right-aligned columns, so rows can be printed as cells finish.
struct Table {
    servers: Vec<Kind>,
    /// Peers that `ours` is compared against (only when ours is a column).
    peers: Vec<Kind>,
    conns_w: usize,
    size_w: usize,
}

const RATE_W: usize = 11; // "999,999,999"
const RATIO_W: usize = 10;

impl Table {
    fn new(args: &EchoArgs) -> Table {
        let digits = |v: &[usize]| v.iter().map(|n| n.to_string().len()).max().unwrap_or(1);
        let peers = if args.servers.contains(&Kind::Ours) {
            args.servers
                .iter()
                .copied()
                .filter(|&k| k != Kind::Ours)
                .collect()
        } else {
            Vec::new()
        };
        Table {
            servers: args.servers.clone(),
            peers,
            conns_w: digits(&args.connections).max("conns".len()),
            size_w: digits(&args.sizes).max("size".len()),
        }
    }

    fn header(&self) -> String {
        let mut cols = vec![
            format!("{:>w$}", "conns", w = self.conns_w),
            format!("{:>w$}", "size", w = self.size_w),
        ];
        for k in &self.servers {
            let title = format!("{} req/s", k.name());
            cols.push(format!("{title:>RATE_W$}"));
        }
        for p in &self.peers {
            let title = format!("ours/{}", p.name());
            cols.push(format!("{title:>RATIO_W$}"));
        }
        cols.join("  ")
    }

    fn row(&self, conns: usize, size: usize, cells: &[(Kind, Cell)]) -> String {
        let mut cols = vec![
            format!("{conns:>w$}", w = self.conns_w),
            format!("{size:>w$}", w = self.size_w),
        ];
        let title_w = |k: Kind| (k.name().len() + " req/s".len()).max(RATE_W);
        for (k, cell) in cells {
            let text = match cell {
                Cell::Rate(r) => thousands(r.round() as u64),
                Cell::Failed => "FAILED".to_string(),
                Cell::Skipped => "skipped".to_string(),
            };
            cols.push(format!("{text:>w$}", w = title_w(*k)));
        }
        let rate = |kind: Kind| {
            cells.iter().find_map(|(k, c)| match c {
                Cell::Rate(r) if *k == kind => Some(*r),
                _ => None,
            })
        };
        for &p in &self.peers {
            let title_w = ("ours/".len() + p.name().len()).max(RATIO_W);
            let text = match (rate(Kind::Ours), rate(p)) {
                (Some(o), Some(r)) if r > 0.0 => format!("{:.2}x", o / r),
                _ => "-".to_string(),
            };
            cols.push(format!("{text:>title_w$}"));
        }
        cols.join("  ")
    }
}

/// 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let head = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = digits[..head].to_string();
    for group in digits.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("ASCII digits"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(41210), "41,210");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn parses_listening_line() {
        assert_eq!(
            spawn::parse_listening("listening on 127.0.0.1:4242"),
            Some(4242)
        );
        assert_eq!(spawn::parse_listening("listening on [::1]:80\n"), Some(80));
        assert_eq!(spawn::parse_listening("listening on 127.0.0.1:0"), None);
        assert_eq!(spawn::parse_listening("hello"), None);
    }
}
