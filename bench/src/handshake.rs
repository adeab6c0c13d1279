//! The TLS mode's handshake table: connections per second (connect, full handshake,
//! one echo, close) for each server over the rounds, alternating servers, with the
//! server's CPU time per connection and the client's CPU share.

use crate::servers::ServerSpec;
use crate::table::{paired_ratio, thousands, Grid, Stat, PAIRED};

/// One server's result in one round.
pub struct Measured {
    /// The round it was measured in, from 0 (set by [`run`]).
    pub round: usize,
    pub rate: f64,
    /// Server CPU time per connection, µs (None: unreadable).
    pub us_per_conn: Option<f64>,
    pub client_busy: f64,
}

/// Runs `measure` for every server that `runs`, `rounds` times in a rotated order,
/// prints each result and then the table (ratios for `pairs`); returns the failures.
pub fn run(
    specs: &[ServerSpec],
    runs: &dyn Fn(&ServerSpec) -> bool,
    rounds: usize,
    pairs: &[(usize, usize)],
    measure: impl Fn(&ServerSpec) -> Result<Measured, String>,
) -> Vec<String> {
    println!();
    let mut results: Vec<Vec<Measured>> = specs.iter().map(|_| Vec::new()).collect();
    let mut failures = Vec::new();
    for round in 0..rounds {
        for k in 0..specs.len() {
            let i = (k + round) % specs.len();
            if !runs(&specs[i]) {
                continue;
            }
            match measure(&specs[i]) {
                Ok(mut m) => {
                    m.round = round;
                    println!(
                        "handshakes round {}: {} {} conn/s, {}, client {:.0}%",
                        round + 1,
                        specs[i].name,
                        thousands(m.rate.round() as u64),
                        m.us_per_conn
                            .map_or("no CPU time".to_string(), |u| format!("{u:.1} µs/conn")),
                        m.client_busy * 100.0
                    );
                    results[i].push(m);
                }
                Err(e) => {
                    let msg = format!("{} (handshakes): {e}", specs[i].name);
                    eprintln!("error: {msg}");
                    failures.push(msg);
                }
            }
            if crate::interrupt::interrupted() {
                return failures;
            }
        }
    }
    println!();
    println!(
        "new connections per second: connect + full TLS handshake (no resumption) + one \
         64 B echo + close_notify + close; median [min-max]"
    );
    println!("{PAIRED}");
    let mut grid = Grid::new(Vec::new());
    for s in specs {
        grid.title(format!("{} conn/s", s.name));
    }
    for &(a, b) in pairs {
        grid.title(format!("{}/{}", specs[a].name, specs[b].name));
    }
    for s in specs {
        grid.title(format!("{} µs/conn", s.name));
    }
    for &(a, b) in pairs {
        grid.title(format!("cpu {}/{}", specs[b].name, specs[a].name));
    }
    grid.title("client cpu%".to_string());
    let rates: Vec<_> = results
        .iter()
        .map(|r| Stat::of(r.iter().map(|m| m.rate).collect()))
        .collect();
    let cpus: Vec<_> = results
        .iter()
        .map(|r| Stat::of(r.iter().filter_map(|m| m.us_per_conn).collect()))
        .collect();
    let show = |s: &Option<Stat>, fmt: &dyn Fn(f64) -> String| {
        s.map_or_else(|| "n/a".to_string(), |s| s.show(fmt))
    };
    let mut texts = Vec::new();
    for rate in &rates {
        texts.push(show(rate, &|v| thousands(v.round() as u64)));
    }
    let rate = |i: usize| results[i].iter().map(|m| (m.round, m.rate));
    let cpu = |i: usize| {
        results[i]
            .iter()
            .filter_map(|m| m.us_per_conn.map(|u| (m.round, u)))
    };
    for &(a, b) in pairs {
        texts.push(paired_ratio(rate(a), rate(b)));
    }
    for cpu in &cpus {
        texts.push(show(cpu, &|v| format!("{v:.1}")));
    }
    for &(a, b) in pairs {
        texts.push(paired_ratio(cpu(b), cpu(a)));
    }
    let client = results
        .iter()
        .flatten()
        .map(|m| m.client_busy * 100.0)
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
    texts.push(client.map_or("-".to_string(), |v| format!("{v:.0}%")));
    grid.row(texts);
    grid.print();
    println!("(client cpu%: the load client's thread, highest of all runs; near 100% the client was the limit)");
    failures
}
