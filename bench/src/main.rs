//! `iot_bench`: TCP echo throughput of our io_uring example server against a tokio and
//! an epoll peer, measured by one and the same load client in the same run.
//!
//! This file holds the command line, the run loop over (connections, size) cells and
//! the two result tables: throughput, then server CPU time per request. Every server runs
//! as its own child process (see `spawn`): ours is the `echo_server` example binary, the
//! peers are this binary re-executed with the hidden `serve tokio|epoll` subcommand. The
//! CPU time is read from outside the child (see `cpu`) at the edges of the measured window.

mod client;
mod cpu;
mod epoll_server;
mod interrupt;
mod spawn;
mod sys;
mod tokio_server;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

const USAGE: &str = "\
usage: iot_bench echo [--connections 1,50] [--sizes 64,4096] [--seconds 4]
                      [--warmup 0.5] [--timeout 5] [--servers ours,tokio,epoll] [--ours PATH]
                      [--cpu-source auto]

TCP echo throughput (round trips per second) of our io_uring example server against a
single-thread tokio and a single-thread epoll echo server. For every (connections, size)
cell each server is started as its own child process, bound to 127.0.0.1 with one worker
thread, and driven by the same one-thread epoll client: every connection sends SIZE bytes,
reads exactly SIZE bytes back, checks them and repeats, for SECONDS after a warm-up.

Besides round trips per second it reports each server process's CPU time (user + system,
all threads) over the same measured window, per round trip (µs/req) and as a share of one
core (cpu%). When the one client thread is the bottleneck, req/s is about equal for all
servers; CPU per request still shows how much work each server spends on a round trip.

  --connections LIST  concurrent connections per cell (default 1,50)
  --sizes LIST        message size in bytes (default 64,4096)
  --seconds S         measured time per cell and server (default 4)
  --warmup S          unmeasured warm-up before it (default 0.5)
  --timeout S         fail a server whose echo stalls this long; also its startup limit x2
                      (default 5)
  --servers LIST      which servers to run, in order (default ours,tokio,epoll)
  --ours PATH         our server binary, run as `PATH --host 127.0.0.1 --port 0 --workers 1`
                      (default target/release/examples/echo_server; skipped with a note
                      when that default does not exist)
  --cpu-source SRC    how server CPU time is read: clock (clock_getcpuclockid, ns),
                      schedstat (/proc/PID/task/*/schedstat, ns), stat (/proc/PID/stat
                      utime+stime, clock ticks) or auto, the first of these that works
                      (default auto)";

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
    /// `None`: auto.
    cpu_source: Option<cpu::Source>,
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
        seconds: 4.0,
        warmup: 0.5,
        timeout: 5.0,
        servers: vec![Kind::Ours, Kind::Tokio, Kind::Epoll],
        ours: None,
        cpu_source: None,
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
            "--cpu-source" => {
                out.cpu_source = match value {
                    "auto" => None,
                    _ => Some(cpu::Source::parse(value).ok_or_else(|| {
                        format!(
                            "--cpu-source: `{value}` is not one of auto, clock, schedstat, stat"
                        )
                    })?),
                }
            }
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
             client can be the limit, pulling req/s ratios toward 1.00x; CPU per request \
             is not capped that way)"
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
    println!("{}", table.throughput_header());

    let mut failures = Vec::new();
    let mut rows = Vec::new();
    let mut cpu_notes = Vec::new();
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
                    Ok(m) => {
                        if let Err(e) = &m.cpu {
                            cpu_notes.push(format!(
                                "{} (conns {conns}, size {size}): no CPU time: {e}",
                                kind.name()
                            ));
                        }
                        cells.push((kind, Cell::Done(m)));
                    }
                    Err(e) => {
                        let msg = format!("{} (conns {conns}, size {size}): {e}", kind.name());
                        eprintln!("error: {msg}");
                        failures.push(msg);
                        cells.push((kind, Cell::Failed));
                    }
                }
            }
            println!("{}", table.throughput_row(conns, size, &cells));
            rows.push((conns, size, cells));
        }
    }

    println!();
    table.print_cpu(&rows, &cpu_notes);

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

/// One server's result in one cell.
struct Measured {
    /// Round trips per second.
    rate: f64,
    /// The server's CPU time over the window, or why it could not be read.
    cpu: Result<Cpu, String>,
}

struct Cpu {
    /// Server CPU time per round trip, in µs.
    us_per_req: f64,
    /// Server CPU time / wall time of the window (1.0 = one core busy all the time).
    busy: f64,
    source: cpu::Source,
    /// For the tick source: the ticks counted in the window (coarse if few).
    ticks: Option<u64>,
}

impl Cpu {
    /// Fewer ticks than this and the tick source's value is flagged as coarse.
    const MIN_TICKS: u64 = 20;

    fn coarse(&self) -> bool {
        self.ticks.is_some_and(|t| t < Cpu::MIN_TICKS)
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
) -> Result<Measured, String> {
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
    let meter = cpu::Meter::new(server.pid(), args.cpu_source);
    let sample = || match &meter {
        Some(m) => m.read(),
        None => Err(format!(
            "cannot read the CPU time of server pid {} via {}",
            server.pid(),
            args.cpu_source
                .map_or("clock, schedstat or stat", |s| s.name())
        )),
    };
    let outcome = client::run(&cfg, sample).map_err(|e| {
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
    let cpu = match (&outcome.probe_start, &outcome.probe_end) {
        (Ok(a), Ok(b)) => {
            let used = b.cpu.saturating_sub(a.cpu).as_secs_f64();
            Ok(Cpu {
                us_per_req: used * 1e6 / outcome.round_trips as f64,
                busy: used / outcome.elapsed.as_secs_f64(),
                source: b.source,
                ticks: a.ticks.zip(b.ticks).map(|(a, b)| b.saturating_sub(a)),
            })
        }
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    };
    Ok(Measured {
        rate: outcome.per_sec(),
        cpu,
    })
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
    Done(Measured),
    Failed,
    Skipped,
}

impl Cell {
    /// `f` of the measurement, or the FAILED / skipped marker.
    fn text(&self, f: impl FnOnce(&Measured) -> String) -> String {
        match self {
            Cell::Done(m) => f(m),
            Cell::Failed => "FAILED".to_string(),
            Cell::Skipped => "skipped".to_string(),
        }
    }
}

/// All server cells of one (connections, size) row, in `--servers` order.
type Row = (usize, usize, Vec<(Kind, Cell)>);

/// A column: cells are right-aligned to the wider of the title and `min`.
struct Col {
    title: String,
    min: usize,
}

impl Col {
    fn new(title: String, min: usize) -> Col {
        Col { title, min }
    }

    fn width(&self) -> usize {
        self.title.chars().count().max(self.min)
    }
}

fn render(cols: &[Col], texts: &[String]) -> String {
    cols.iter()
        .zip(texts)
        .map(|(c, t)| format!("{t:>w$}", w = c.width()))
        .collect::<Vec<_>>()
        .join("  ")
}

/// Fixed-width, right-aligned columns, so throughput rows can be printed as cells finish.
struct Table {
    servers: Vec<Kind>,
    /// Peers that `ours` is compared against (only when ours is a column).
    peers: Vec<Kind>,
    conns_w: usize,
    size_w: usize,
}

const RATE_W: usize = 11; // "999,999,999"
const RATIO_W: usize = 10;
const COARSE: &str = "*";

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
            conns_w: digits(&args.connections),
            size_w: digits(&args.sizes),
        }
    }

    fn lead_cols(&self) -> Vec<Col> {
        vec![
            Col::new("conns".to_string(), self.conns_w),
            Col::new("size".to_string(), self.size_w),
        ]
    }

    /// conns, size, req/s per server, ours/peer ratios, server cpu% per server.
    fn throughput_cols(&self) -> Vec<Col> {
        let mut cols = self.lead_cols();
        for k in &self.servers {
            cols.push(Col::new(format!("{} req/s", k.name()), RATE_W));
        }
        for p in &self.peers {
            cols.push(Col::new(format!("ours/{}", p.name()), RATIO_W));
        }
        for k in &self.servers {
            cols.push(Col::new(format!("{} cpu%", k.name()), 0));
        }
        cols
    }

    /// conns, size, µs/req per server, peer/ours CPU ratios.
    fn cpu_cols(&self) -> Vec<Col> {
        let mut cols = self.lead_cols();
        for k in &self.servers {
            cols.push(Col::new(format!("{} µs/req", k.name()), 0));
        }
        for p in &self.peers {
            cols.push(Col::new(format!("cpu {}/ours", p.name()), 0));
        }
        cols
    }

    fn throughput_header(&self) -> String {
        let cols = self.throughput_cols();
        render(&cols, &titles(&cols))
    }

    fn throughput_row(&self, conns: usize, size: usize, cells: &[(Kind, Cell)]) -> String {
        let mut texts = vec![conns.to_string(), size.to_string()];
        for (_, cell) in cells {
            texts.push(cell.text(|m| thousands(m.rate.round() as u64)));
        }
        let rate = |kind: Kind| measured(cells, kind).map(|m| m.rate);
        for &p in &self.peers {
            texts.push(match (rate(Kind::Ours), rate(p)) {
                (Some(o), Some(r)) if r > 0.0 => format!("{:.2}x", o / r),
                _ => "-".to_string(),
            });
        }
        for (_, cell) in cells {
            texts.push(cell.text(|m| match &m.cpu {
                Ok(c) => format!("{:.0}%{}", c.busy * 100.0, coarse_mark(c)),
                Err(_) => "n/a".to_string(),
            }));
        }
        render(&self.throughput_cols(), &texts)
    }

    fn cpu_row(&self, conns: usize, size: usize, cells: &[(Kind, Cell)]) -> String {
        let mut texts = vec![conns.to_string(), size.to_string()];
        for (_, cell) in cells {
            texts.push(cell.text(|m| match &m.cpu {
                Ok(c) => format!("{:.2}{}", c.us_per_req, coarse_mark(c)),
                Err(_) => "n/a".to_string(),
            }));
        }
        let cpu = |kind: Kind| measured(cells, kind).and_then(|m| m.cpu.as_ref().ok());
        for &p in &self.peers {
            texts.push(match (cpu(Kind::Ours), cpu(p)) {
                (Some(o), Some(c)) if o.us_per_req > 0.0 => {
                    let mark = if o.coarse() || c.coarse() { COARSE } else { "" };
                    format!("{:.2}x{mark}", c.us_per_req / o.us_per_req)
                }
                _ => "-".to_string(),
            });
        }
        render(&self.cpu_cols(), &texts)
    }

    /// The second table, once every cell has run: server CPU time per round trip.
    fn print_cpu(&self, rows: &[Row], notes: &[String]) {
        let all = || {
            rows.iter()
                .flat_map(|(_, _, cells)| cells)
                .filter_map(|(_, c)| match c {
                    Cell::Done(Measured { cpu: Ok(cpu), .. }) => Some(cpu),
                    _ => None,
                })
        };
        let mut sources: Vec<cpu::Source> = Vec::new();
        for c in all() {
            if !sources.contains(&c.source) {
                sources.push(c.source);
            }
        }
        println!(
            "server CPU time per round trip (user + system, all threads of the server process, \
             over the same measured window)"
        );
        let sources: Vec<String> = sources.iter().map(|s| s.describe()).collect();
        if sources.is_empty() {
            println!("source: none could be read");
        } else {
            println!("source: {}", sources.join("; "));
        }
        if !self.peers.is_empty() {
            println!("(cpu X/ours above 1.00x: ours spends less CPU per request than X)");
        }
        if all().any(Cpu::coarse) {
            println!(
                "({COARSE}: under {} clock ticks of server CPU in the window, i.e. coarse; \
                 raise --seconds)",
                Cpu::MIN_TICKS
            );
        }
        println!();
        let cols = self.cpu_cols();
        println!("{}", render(&cols, &titles(&cols)));
        for (conns, size, cells) in rows {
            println!("{}", self.cpu_row(*conns, *size, cells));
        }
        for n in notes {
            println!("{n}");
        }
    }
}

fn titles(cols: &[Col]) -> Vec<String> {
    cols.iter().map(|c| c.title.clone()).collect()
}

fn measured(cells: &[(Kind, Cell)], kind: Kind) -> Option<&Measured> {
    cells.iter().find_map(|(k, c)| match c {
        Cell::Done(m) if *k == kind => Some(m),
        _ => None,
    })
}

fn coarse_mark(c: &Cpu) -> &'static str {
    if c.coarse() {
        COARSE
    } else {
        ""
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
