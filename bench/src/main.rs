//! `iot_bench`: TCP echo throughput of our io_uring example server against a tokio and
//! an epoll peer, or of any servers named on the command line (the Dart servers of
//! `tool/bench_dart.sh`), measured by one and the same load client in the same run.
//!
//! This file holds the command line and the run loop over (connections, size) cells and
//! rounds; `table` prints the results. Every server runs as its own child process (see
//! `spawn`): ours is the `echo_server` example binary, the peers are this binary
//! re-executed with the hidden `serve tokio|epoll` subcommand, named servers are their
//! command. CPU time (see `cpu`) and memory (see `memory`) are read from outside.

mod client;
mod cpu;
mod epoll_server;
mod handshake;
mod interrupt;
mod memory;
mod servers;
mod spawn;
mod sys;
mod table;
mod tls;
mod tokio_server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use servers::{Launch, ServerSpec, DEFAULT_OURS, DEFAULT_OURS_TLS};
use table::{Cell, Cpu, Measured, Row, Tables};

const USAGE: &str = "\
usage: iot_bench echo [--connections 50,500,2000,10000] [--sizes 64,4096] [--seconds 3]
                      [--rounds 1] [--warmup 0.5] [--timeout 5]
                      [--servers ours,tokio,epoll] [--server NAME=COMMAND]...
                      [--baseline NAME] [--ours PATH]
                      [--cpu-source auto]

TCP echo throughput (round trips per second) of our io_uring example server against a
single-thread tokio and a single-thread epoll echo server. For every (connections, size)
cell and round each server is started as its own child process, bound to 127.0.0.1 with
one worker thread, and driven by the same one-thread epoll client: every connection makes
one round trip (the connections are opened in two halves and the server's memory is read
after each half's round trips, all connections idle: memory per connection is what the
second half added, not what the server pays once), then every
connection sends SIZE bytes, reads exactly SIZE bytes back, checks them and repeats, for
SECONDS after a warm-up. Rounds run the servers in a rotated order each time.

Reported per server: req/s, its CPU time (user + system, all threads) per round trip and
as a share of one core, resident bytes per idle connection and peak resident size; the
client thread's own CPU share shows when the client was the limit. The first server of
--servers is compared against each of the others (or each against --baseline). Values
are medians with [min-max].

  --connections LIST  concurrent connections per cell (default 50,500,2000,10000; the
                      open-file limit is raised to the hard limit for client and servers)
  --sizes LIST        message size in bytes (default 64,4096)
  --seconds S         measured time per cell, round and server (default 3)
  --rounds N          measurements per cell and server, alternating (default 1)
  --warmup S          unmeasured warm-up before it (default 0.5)
  --timeout S         fail a server whose echo stalls this long; also its startup limit x2
                      (default 5)
  --servers LIST      which servers to run, in order (default ours,tokio,epoll); names are
                      ours, tokio, epoll or one given with --server
  --server NAME=CMD   a server started as CMD (split on whitespace), which must print
                      `listening on HOST:PORT`; repeatable (tls: given --cert/--key too)
  --baseline NAME     compare every other server against this one
  --ours PATH         our server binary, run as `PATH --host 127.0.0.1 --port 0 --workers 1`
                      (default target/release/examples/echo_server; skipped with a note
                      when that default does not exist)
  --cpu-source SRC    how server CPU time is read: clock (clock_getcpuclockid, ns),
                      schedstat (/proc/PID/task/*/schedstat, ns), stat (/proc/PID/stat
                      utime+stime, clock ticks) or auto, the first of these that works
                      (default auto)

usage: iot_bench tls [the options above] [--handshake-seconds 3]
                     [--handshake-concurrency 8]

The same over TLS: our TLS example server (default
target/release/examples/tls_echo_server, run with --cert/--key) against a single-thread
tokio + tokio-rustls echo server, both given one ECDSA P-256 certificate made at start,
driven by a one-thread TLS load client (rustls, ring provider, X25519 offered first).
Defaults: --servers ours,tokio, --connections 50,500 (epoll has no TLS mode). Each
connection's first round trip includes its full handshake. Then a handshake table: per
server and round, HANDSHAKE-CONCURRENCY connections at a time each connect, make a full
handshake (no resumption), one 64 B echo, close_notify and close, for
HANDSHAKE-SECONDS after the warm-up (0: no handshake table); new connections per second
and the server's CPU time per connection.";

struct EchoArgs {
    connections: Vec<usize>,
    sizes: Vec<usize>,
    seconds: f64,
    rounds: usize,
    warmup: f64,
    timeout: f64,
    servers: Vec<String>,
    /// Compare every server against this one (else: the first against the others).
    baseline: Option<String>,
    custom: Vec<ServerSpec>,
    ours: Option<PathBuf>,
    /// `None`: auto.
    cpu_source: Option<cpu::Source>,
    /// `iot_bench tls`: the TLS servers and client, and the handshake loop.
    tls: bool,
    /// TLS: measured seconds of the handshake loop per server and round (0: none).
    handshake_seconds: f64,
    /// TLS: connections in flight in the handshake loop.
    handshake_concurrency: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("echo") => echo_main(&args[1..], false),
        Some("tls") => echo_main(&args[1..], true),
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
        [kind, chain, key] if kind == "tokio-tls" => tls::serve_tokio(chain, key),
        _ => {
            eprintln!("usage: iot_bench serve tokio|epoll|tokio-tls CHAIN.pem KEY.pem");
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

fn parse_echo_args(args: &[String], tls: bool) -> Result<EchoArgs, String> {
    let mut out = EchoArgs {
        connections: if tls {
            vec![50, 500]
        } else {
            vec![50, 500, 2000, 10000]
        },
        sizes: vec![64, 4096],
        seconds: 3.0,
        rounds: 1,
        warmup: 0.5,
        timeout: 5.0,
        servers: if tls {
            vec!["ours".to_string(), "tokio".to_string()]
        } else {
            ["ours", "tokio", "epoll"].map(String::from).to_vec()
        },
        baseline: None,
        custom: Vec::new(),
        ours: None,
        cpu_source: None,
        tls,
        handshake_seconds: 3.0,
        handshake_concurrency: 8,
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
            "--rounds" => {
                out.rounds = match parse_list(flag, value)?.as_slice() {
                    [n] if *n <= 100 => *n,
                    _ => return Err(format!("--rounds: `{value}` is not a count of 1 to 100")),
                }
            }
            "--warmup" => out.warmup = parse_secs(flag, value, true)?,
            "--timeout" => out.timeout = parse_secs(flag, value, false)?,
            "--servers" => {
                out.servers = Vec::new();
                for name in value.split(',').map(str::trim) {
                    if !out.servers.iter().any(|s| s == name) {
                        out.servers.push(name.to_string());
                    }
                }
            }
            "--baseline" => out.baseline = Some(value.to_string()),
            "--handshake-seconds" if tls => out.handshake_seconds = parse_secs(flag, value, true)?,
            "--handshake-concurrency" if tls => {
                out.handshake_concurrency = match parse_list(flag, value)?.as_slice() {
                    [n] if *n <= 1000 => *n,
                    _ => return Err(format!("{flag}: `{value}` is not a count of 1 to 1000")),
                }
            }
            "--server" => out.custom.push(ServerSpec::parse_custom(value)?),
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

/// The servers named by `--servers`, resolved against the built-ins and `--server`s.
fn resolve_servers(args: &EchoArgs) -> Result<Vec<ServerSpec>, String> {
    if let Some(base) = &args.baseline {
        if !args.servers.contains(base) {
            return Err(format!("--baseline {base} is not one of --servers"));
        }
    }
    args.servers
        .iter()
        .map(|name| {
            args.custom
                .iter()
                .find(|s| &s.name == name)
                .cloned()
                .or_else(|| ServerSpec::builtin(name).filter(|_| !args.tls || name != "epoll"))
                .ok_or_else(|| {
                    format!(
                        "unknown server `{name}` (expected ours, tokio, epoll (not with tls) or a \
                         --server NAME)"
                    )
                })
        })
        .collect()
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

fn echo_main(args: &[String], tls: bool) -> ExitCode {
    let (mut args, specs) = match parse_echo_args(args, tls).and_then(|a| {
        let specs = resolve_servers(&a)?;
        Ok((a, specs))
    }) {
        Ok(v) => v,
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
    let default_ours = if args.tls {
        DEFAULT_OURS_TLS
    } else {
        DEFAULT_OURS
    };
    let ours_path = args
        .ours
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_ours));
    let ours_skipped = specs.iter().any(|s| s.launch == Launch::Ours) && !ours_path.is_file();
    if ours_skipped {
        if args.ours.is_some() {
            eprintln!("error: --ours {}: no such file", ours_path.display());
            return ExitCode::from(2);
        }
        notes.push(format!(
            "ours: SKIPPED, {default_ours} not found (build it with \
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
    let runs = |spec: &ServerSpec| !(spec.launch == Launch::Ours && ours_skipped);
    if !specs.iter().any(runs) {
        eprintln!("error: no server left to run");
        return ExitCode::from(2);
    }
    args.connections.dedup();
    args.sizes.dedup();
    // TLS: one certificate for every server, and the client configurations.
    let tls = match args.tls.then(TlsSetup::new).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!(
        "{}echo, 1 server thread each, client: 1 thread epoll, {} s per cell, {} round(s)",
        if args.tls { "TLS " } else { "" },
        args.seconds,
        args.rounds
    );
    if args.tls {
        println!(
            "(TLS: rustls client, ring provider; ECDSA P-256 server certificate; the first \
             round trip of each connection includes its full handshake)"
        );
    }
    println!(
        "(+{} s warm-up; each connection ping-pongs SIZE bytes and checks the echo; \
         127.0.0.1 only; a fresh server process per cell and round)",
        args.warmup
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("{cores} cores; open-file limit {}", fd_limit());
    for spec in &specs {
        match &spec.launch {
            Launch::Ours if !ours_skipped => {
                println!("ours: {} --workers 1", ours_path.display())
            }
            Launch::Command(words) => println!("{}: {}", spec.name, words.join(" ")),
            _ => {}
        }
    }
    for note in &notes {
        println!("{note}");
    }
    println!();

    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for &conns in &args.connections {
        for &size in &args.sizes {
            let mut cells: Vec<Cell> = specs
                .iter()
                .map(|s| Cell {
                    skipped: !runs(s),
                    ..Cell::default()
                })
                .collect();
            for round in 0..args.rounds {
                // Rotate the order every round, so no server always runs first or last.
                for k in 0..specs.len() {
                    let i = (k + round) % specs.len();
                    let spec = &specs[i];
                    if cells[i].skipped {
                        continue;
                    }
                    let result = run_one(
                        spec,
                        &ours_path,
                        &self_exe,
                        conns,
                        size,
                        &args,
                        tls.as_ref(),
                    );
                    if interrupt::interrupted() {
                        eprintln!("interrupted; servers stopped");
                        return ExitCode::from(130);
                    }
                    match result {
                        Ok(mut m) => {
                            m.round = round;
                            println!(
                                "{conns} x {size} round {}: {} {} req/s, {}, client {:.0}%",
                                round + 1,
                                spec.name,
                                table::thousands(m.rate.round() as u64),
                                m.cpu.as_ref().map_or_else(
                                    |e| format!("no CPU time: {e}"),
                                    |c| format!("{:.2} µs/req", c.us_per_req)
                                ),
                                m.client_busy * 100.0
                            );
                            cells[i].rounds.push(m);
                        }
                        Err(e) => {
                            let msg = format!("{} (conns {conns}, size {size}): {e}", spec.name);
                            eprintln!("error: {msg}");
                            failures.push(msg);
                            cells[i].failed += 1;
                        }
                    }
                }
            }
            rows.push(Row { conns, size, cells });
        }
    }

    println!();
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let pairs = ratio_pairs(&names, args.baseline.as_deref());
    Tables {
        servers: &names,
        pairs: &pairs,
    }
    .print(&rows, &notes);

    if let Some(tls) = tls.as_ref().filter(|_| args.handshake_seconds > 0.0) {
        let run = |spec: &ServerSpec| handshake_one(spec, &ours_path, &self_exe, &args, tls);
        let result = handshake::run(&specs, &runs, args.rounds, &pairs, run);
        if interrupt::interrupted() {
            eprintln!("interrupted; servers stopped");
            return ExitCode::from(130);
        }
        failures.extend(result);
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

/// Which servers are compared: each against `baseline` when given, else the first
/// against each of the others (as indexes into `names`: subject, other).
fn ratio_pairs(names: &[String], baseline: Option<&str>) -> Vec<(usize, usize)> {
    match baseline.and_then(|b| names.iter().position(|n| n == b)) {
        Some(base) => (0..names.len())
            .filter(|&i| i != base)
            .map(|i| (i, base))
            .collect(),
        None => (1..names.len()).map(|i| (0, i)).collect(),
    }
}

/// Starts one server, measures it with the client, stops it (the guard's drop).
fn run_one(
    spec: &ServerSpec,
    ours: &Path,
    self_exe: &PathBuf,
    connections: usize,
    size: usize,
    args: &EchoArgs,
    tls: Option<&TlsSetup>,
) -> Result<Measured, String> {
    let timeout = Duration::from_secs_f64(args.timeout);
    let cmd = spec.command(ours, self_exe, tls.map(|t| &t.material));
    let mut server = spawn::Server::spawn(&spec.name, cmd, timeout * 2)?;
    let pid = server.pid();
    let cfg = client::Config {
        port: server.port(),
        connections,
        size,
        warmup: Duration::from_secs_f64(args.warmup),
        measure: Duration::from_secs_f64(args.seconds),
        stall_timeout: timeout,
    };
    let meter = cpu::Meter::new(pid, args.cpu_source);
    let sample = || match &meter {
        Some(m) => m.read(),
        None => Err(format!(
            "cannot read the CPU time of server pid {pid} via {}",
            args.cpu_source
                .map_or("clock, schedstat or stat", |s| s.name())
        )),
    };
    let measured = match tls {
        Some(tls) => tls::run(&cfg, &tls.resuming, sample, || memory::read(pid)).map(|(o, s)| {
            tls.note_session(&spec.name, s);
            o
        }),
        None => client::run(&cfg, sample, || memory::read(pid)),
    };
    let outcome = measured.map_err(|e| {
        if interrupt::interrupted() {
            return e;
        }
        // A reset connection is often a crashed server: say so if it exited.
        match server.check_running_within(Duration::from_millis(500)) {
            Err(dead) => format!("{e}; {dead}"),
            Ok(()) => e,
        }
    })?;
    let end = memory::read(pid);
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
    Ok(Measured::new(
        outcome.per_sec(),
        cpu,
        outcome.client_busy,
        connections,
        outcome.idle,
        end,
    ))
}

/// The TLS mode's certificate (files for the servers) and client configurations,
/// and the session each server negotiated (printed once).
struct TlsSetup {
    material: tls::Material,
    /// The echo client's (sessions kept: each connection makes one handshake anyway).
    resuming: std::sync::Arc<rustls::ClientConfig>,
    /// The handshake loop's (no resumption: every handshake is full).
    full: std::sync::Arc<rustls::ClientConfig>,
    noted: std::cell::RefCell<Vec<String>>,
}

impl TlsSetup {
    fn new() -> Result<TlsSetup, String> {
        let material = tls::Material::new()?;
        Ok(TlsSetup {
            resuming: material.client(true)?,
            full: material.client(false)?,
            material,
            noted: Default::default(),
        })
    }

    fn note_session(&self, server: &str, session: String) {
        let mut noted = self.noted.borrow_mut();
        if !noted.iter().any(|n| n == server) {
            println!("{server}: negotiated {session}");
            noted.push(server.to_string());
        }
    }
}

/// Starts one server and runs the handshake loop against it.
fn handshake_one(
    spec: &ServerSpec,
    ours: &Path,
    self_exe: &PathBuf,
    args: &EchoArgs,
    tls: &TlsSetup,
) -> Result<handshake::Measured, String> {
    let timeout = Duration::from_secs_f64(args.timeout);
    let cmd = spec.command(ours, self_exe, Some(&tls.material));
    let mut server = spawn::Server::spawn(&spec.name, cmd, timeout * 2)?;
    let pid = server.pid();
    let cfg = tls::HandshakeConfig {
        port: server.port(),
        concurrency: args.handshake_concurrency,
        warmup: Duration::from_secs_f64(args.warmup),
        measure: Duration::from_secs_f64(args.handshake_seconds),
        stall_timeout: timeout,
    };
    let meter = cpu::Meter::new(pid, args.cpu_source);
    let sample = || match &meter {
        Some(m) => m.read().map(|s| s.cpu),
        None => Err(format!("cannot read the CPU time of server pid {pid}")),
    };
    let outcome = tls::handshakes(&cfg, &tls.full, sample)?;
    server.check_running()?;
    let us_per_conn = match (&outcome.probe_start, &outcome.probe_end) {
        (Ok(a), Ok(b)) => {
            Some(b.saturating_sub(*a).as_secs_f64() * 1e6 / outcome.round_trips as f64)
        }
        _ => None,
    };
    Ok(handshake::Measured {
        round: 0,
        rate: outcome.per_sec(),
        us_per_conn,
        client_busy: outcome.client_busy,
    })
}

/// Raises the soft open-file limit to the hard one, for many connections (servers
/// started afterwards inherit it).
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

/// The soft open-file limit now.
fn fd_limit() -> u64 {
    // SAFETY: getrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur as u64
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn resolves_named_servers() {
        let args: Vec<String> = ["--servers", "dart,epoll", "--server", "dart=x --port 0"]
            .map(String::from)
            .to_vec();
        let parsed = parse_echo_args(&args, false).expect("parsed");
        let specs = resolve_servers(&parsed).expect("resolved");
        assert_eq!(specs[0].name, "dart");
        assert_eq!(specs[1].launch, Launch::Peer);
        let unknown = parse_echo_args(&["--servers".to_string(), "nginx".to_string()], false)
            .expect("parsed");
        assert!(resolve_servers(&unknown).is_err());
        let names = ["a", "b", "c"].map(String::from);
        assert_eq!(ratio_pairs(&names, None), [(0, 1), (0, 2)]);
        assert_eq!(ratio_pairs(&names, Some("c")), [(0, 2), (1, 2)]);
    }

    #[test]
    fn tls_mode_defaults_and_refuses_epoll() {
        let parsed = parse_echo_args(&[], true).expect("parsed");
        assert!(parsed.tls);
        assert_eq!(parsed.servers, ["ours", "tokio"]);
        assert_eq!(parsed.connections, [50, 500]);
        let epoll = ["--servers", "ours,epoll"].map(String::from);
        let parsed = parse_echo_args(&epoll, true).expect("parsed");
        assert!(resolve_servers(&parsed).is_err());
        let handshake = ["--handshake-concurrency", "4"].map(String::from);
        assert!(parse_echo_args(&handshake, false).is_err(), "TLS only");
        assert_eq!(
            parse_echo_args(&handshake, true)
                .expect("parsed")
                .handshake_concurrency,
            4
        );
    }
}
