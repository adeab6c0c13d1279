//! The result tables: every cell's measurements over the rounds, shown as the median
//! with the [min-max] range, and the first server's ratios against each of the others,
//! taken within each round (see [`paired_ratio`]).

use crate::client::Halves;
use crate::cpu;
use crate::memory::Memory;

/// One server's result in one round of one cell.
pub struct Measured {
    /// The round it was measured in, from 0 (the caller sets it).
    pub round: usize,
    /// Round trips per second.
    pub rate: f64,
    /// The server's CPU time over the window, or why it could not be read.
    pub cpu: Result<Cpu, String>,
    /// The client thread's CPU time / the window.
    pub client_busy: f64,
    /// Resident bytes per connection once every connection made one round trip and sat
    /// idle: what the second half of them added (see `client::Halves`).
    pub idle_per_conn: Option<f64>,
    /// The server's peak resident size over its life (`VmHWM`), bytes.
    pub peak: Option<u64>,
}

impl Measured {
    pub fn new(
        rate: f64,
        cpu: Result<Cpu, String>,
        client_busy: f64,
        conns: usize,
        idle: Halves<Result<Memory, String>>,
        end: Result<Memory, String>,
    ) -> Measured {
        let idle_per_conn = match (&idle.at_half, &idle.at_all) {
            (Ok(half), Ok(all)) => {
                Some(all.resident.saturating_sub(half.resident) as f64 / (conns - idle.half) as f64)
            }
            _ => None,
        };
        Measured {
            round: 0,
            rate,
            cpu,
            client_busy,
            idle_per_conn,
            peak: end.ok().map(|m| m.peak),
        }
    }
}

pub struct Cpu {
    /// Server CPU time per round trip, in µs.
    pub us_per_req: f64,
    /// Server CPU time / wall time of the window (1.0 = one core busy all the time).
    pub busy: f64,
    pub source: cpu::Source,
    /// For the tick source: the ticks counted in the window (coarse if few).
    pub ticks: Option<u64>,
}

impl Cpu {
    /// Fewer ticks than this and the tick source's value is flagged as coarse.
    pub const MIN_TICKS: u64 = 20;

    fn coarse(&self) -> bool {
        self.ticks.is_some_and(|t| t < Cpu::MIN_TICKS)
    }
}

/// One server's rounds in one cell (failed rounds are left out and counted).
#[derive(Default)]
pub struct Cell {
    pub rounds: Vec<Measured>,
    pub failed: usize,
    pub skipped: bool,
}

impl Cell {
    /// The median and range of `f` over the rounds that have it.
    fn stat(&self, f: impl Fn(&Measured) -> Option<f64>) -> Option<Stat> {
        Stat::of(self.rounds.iter().filter_map(f).collect())
    }

    fn rate(&self) -> Option<Stat> {
        self.stat(rate)
    }

    fn us_per_req(&self) -> Option<Stat> {
        self.stat(us_per_req)
    }

    /// `f` of each round that has it, with the round.
    fn per_round<'a>(
        &'a self,
        f: impl Fn(&Measured) -> Option<f64> + 'a,
    ) -> impl Iterator<Item = (usize, f64)> + 'a {
        self.rounds
            .iter()
            .filter_map(move |m| f(m).map(|v| (m.round, v)))
    }

    fn coarse(&self) -> bool {
        self.rounds
            .iter()
            .any(|m| m.cpu.as_ref().is_ok_and(Cpu::coarse))
    }

    /// What to print instead of a value, when there is none.
    fn missing(&self) -> String {
        if self.skipped {
            "skipped".to_string()
        } else if self.failed > 0 {
            "FAILED".to_string()
        } else {
            "n/a".to_string()
        }
    }

    fn show(&self, stat: Option<Stat>, fmt: impl Fn(f64) -> String) -> String {
        match stat {
            Some(s) => format!("{}{}", s.show(fmt), self.failed_mark()),
            None => self.missing(),
        }
    }

    fn failed_mark(&self) -> String {
        if self.failed > 0 {
            format!(" ({} failed)", self.failed)
        } else {
            String::new()
        }
    }
}

/// The median and range of a measurement over the rounds.
#[derive(Clone, Copy)]
pub struct Stat {
    median: f64,
    min: f64,
    max: f64,
    count: usize,
}

impl Stat {
    /// Of `values` (`None` when there are none).
    pub fn of(mut values: Vec<f64>) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        let median = if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        };
        Some(Stat {
            median,
            min: values[0],
            max: values[values.len() - 1],
            count: values.len(),
        })
    }

    /// `median [min-max]`, or the median alone from one round.
    pub fn show(&self, fmt: impl Fn(f64) -> String) -> String {
        match self.count {
            1 => fmt(self.median),
            _ => format!("{} [{}-{}]", fmt(self.median), fmt(self.min), fmt(self.max)),
        }
    }
}

/// All servers' cells of one (connections, size) row, in `--servers` order.
pub struct Row {
    pub conns: usize,
    pub size: usize,
    pub cells: Vec<Cell>,
}

const COARSE: &str = "*";

fn rate(m: &Measured) -> Option<f64> {
    Some(m.rate)
}

fn us_per_req(m: &Measured) -> Option<f64> {
    m.cpu.as_ref().ok().map(|c| c.us_per_req)
}

/// Prints the tables for `servers`, with ratios for each (subject, other) pair of
/// indexes in `pairs`.
pub struct Tables<'a> {
    pub servers: &'a [String],
    pub pairs: &'a [(usize, usize)],
}

impl Tables<'_> {
    pub fn print(&self, rows: &[Row], notes: &[String]) {
        let names = |&(a, b): &(usize, usize)| (&self.servers[a], &self.servers[b]);
        let mut t = Grid::new(self.lead());
        for s in self.servers {
            t.title(format!("{s} req/s"));
        }
        for (a, b) in self.pairs.iter().map(names) {
            t.title(format!("{a}/{b}"));
        }
        for s in self.servers {
            t.title(format!("{s} cpu%"));
        }
        t.title("client cpu%".to_string());
        for row in rows {
            let mut texts = lead(row);
            for cell in &row.cells {
                texts.push(cell.show(cell.rate(), |v| thousands(v.round() as u64)));
            }
            for &(a, b) in self.pairs {
                let (a, b) = (&row.cells[a], &row.cells[b]);
                texts.push(paired_ratio(a.per_round(rate), b.per_round(rate)));
            }
            for cell in &row.cells {
                let busy = cell.stat(|m| m.cpu.as_ref().ok().map(|c| c.busy * 100.0));
                texts.push(cell.show(busy, |v| format!("{v:.0}%")));
            }
            let client = row
                .cells
                .iter()
                .flat_map(|c| &c.rounds)
                .map(|m| m.client_busy * 100.0)
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
            texts.push(client.map_or("-".to_string(), |v| format!("{v:.0}%")));
            t.row(texts);
        }
        println!("round trips per second, median [min-max] over the rounds");
        println!("{PAIRED}");
        println!("(client cpu%: the load client's thread, highest of the row; near 100% the client was the limit)");
        t.print();

        println!();
        println!(
            "server CPU time per round trip, µs (user + system, all threads of the server \
             process, over the same window)"
        );
        if let Some(source) = rows
            .iter()
            .flat_map(|r| &r.cells)
            .flat_map(|c| &c.rounds)
            .find_map(|m| m.cpu.as_ref().ok().map(|c| c.source))
        {
            println!("source: {}", source.describe());
        }
        println!("(cpu Y/X above 1.00x: X spends less CPU per round trip than Y)");
        let mut t = Grid::new(self.lead());
        for s in self.servers {
            t.title(format!("{s} µs/req"));
        }
        for (a, b) in self.pairs.iter().map(names) {
            t.title(format!("cpu {b}/{a}"));
        }
        let mut any_coarse = false;
        for row in rows {
            let mut texts = lead(row);
            for cell in &row.cells {
                let mark = if cell.coarse() { COARSE } else { "" };
                any_coarse |= cell.coarse();
                texts.push(cell.show(cell.us_per_req(), |v| format!("{v:.2}{mark}")));
            }
            for &(a, b) in self.pairs {
                let (a, b) = (&row.cells[a], &row.cells[b]);
                texts.push(paired_ratio(
                    b.per_round(us_per_req),
                    a.per_round(us_per_req),
                ));
            }
            t.row(texts);
        }
        t.print();
        if any_coarse {
            println!(
                "({COARSE}: under {} clock ticks of server CPU in a window, i.e. coarse; raise --seconds)",
                Cpu::MIN_TICKS
            );
        }

        println!();
        println!(
            "server memory: resident bytes per connection once all are idle after one round \
             trip (what the second half of the connections added: opened in two halves), and peak resident \
             size (VmHWM) over the server's life"
        );
        let mut t = Grid::new(self.lead());
        for s in self.servers {
            t.title(format!("{s} B/conn"));
        }
        for s in self.servers {
            t.title(format!("{s} peak MiB"));
        }
        for row in rows {
            let mut texts = lead(row);
            for cell in &row.cells {
                texts.push(cell.show(cell.stat(|m| m.idle_per_conn), |v| format!("{v:.0}")));
            }
            for cell in &row.cells {
                let peak = cell.stat(|m| m.peak.map(|p| p as f64 / (1 << 20) as f64));
                texts.push(cell.show(peak, |v| format!("{v:.1}")));
            }
            t.row(texts);
        }
        t.print();
        for n in notes {
            println!("{n}");
        }
    }

    fn lead(&self) -> Vec<String> {
        vec!["conns".to_string(), "size".to_string()]
    }
}

fn lead(row: &Row) -> Vec<String> {
    vec![row.conns.to_string(), row.size.to_string()]
}

/// How the tables' ratio columns are read.
pub const PAIRED: &str = "(X/Y: the two servers' ratio within each round, which runs them one \
     after another, so a round's machine speed cancels out; median [min-max] over the rounds)";

/// `a / b` within each round that measured both (`(round, value)` pairs), as the
/// median [min-max] of those ratios. A noisy machine's speed drifts from round to
/// round more than servers differ, so a ratio of the two medians (each from other
/// rounds' moments) can say less than the ratios of neighbours in time.
pub fn paired_ratio(
    a: impl IntoIterator<Item = (usize, f64)>,
    b: impl IntoIterator<Item = (usize, f64)>,
) -> String {
    let b: Vec<(usize, f64)> = b.into_iter().collect();
    let ratios = a
        .into_iter()
        .filter_map(|(round, a)| {
            let (_, b) = b.iter().find(|(r, _)| *r == round)?;
            (*b > 0.0).then(|| a / b)
        })
        .collect();
    Stat::of(ratios).map_or_else(|| "-".to_string(), |s| s.show(|v| format!("{v:.2}x")))
}

/// Right-aligned columns as wide as their widest text.
pub(crate) struct Grid {
    titles: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Grid {
    pub(crate) fn new(titles: Vec<String>) -> Grid {
        Grid {
            titles,
            rows: Vec::new(),
        }
    }

    pub(crate) fn title(&mut self, title: String) {
        self.titles.push(title);
    }

    pub(crate) fn row(&mut self, texts: Vec<String>) {
        self.rows.push(texts);
    }

    pub(crate) fn print(&self) {
        let widths: Vec<usize> = (0..self.titles.len())
            .map(|i| {
                std::iter::once(&self.titles)
                    .chain(&self.rows)
                    .filter_map(|r| r.get(i))
                    .map(|t| t.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for texts in std::iter::once(&self.titles).chain(&self.rows) {
            let line: Vec<String> = texts
                .iter()
                .zip(&widths)
                .map(|(t, w)| format!("{t:>w$}"))
                .collect();
            println!("{}", line.join("  "));
        }
    }
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
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

    fn measured(round: usize, rate: f64) -> Measured {
        Measured {
            round,
            rate,
            cpu: Err("none".to_string()),
            client_busy: 0.5,
            idle_per_conn: None,
            peak: None,
        }
    }

    #[test]
    fn median_and_range_of_rounds() {
        let cell = Cell {
            rounds: vec![measured(0, 3.0), measured(1, 1.0), measured(2, 2.0)],
            ..Cell::default()
        };
        let s = cell.rate().expect("rounds");
        assert_eq!((s.median, s.min, s.max, s.count), (2.0, 1.0, 3.0, 3));
        let even = Cell {
            rounds: vec![measured(0, 4.0), measured(2, 2.0)],
            ..Cell::default()
        };
        assert_eq!(even.rate().expect("rounds").median, 3.0);
        assert_eq!(Cell::default().show(None, |v| v.to_string()), "n/a");
    }

    #[test]
    fn ratios_pair_the_rounds_that_measured_both() {
        // Round 1 of `b` failed: its ratio is left out, not paired with another round.
        let a = [(0, 3.0), (1, 1.0), (2, 2.0)];
        let b = [(0, 2.0), (2, 4.0)];
        assert_eq!(paired_ratio(a, b), "1.00x [0.50x-1.50x]");
        assert_eq!(paired_ratio([(0, 3.0)], [(0, 2.0)]), "1.50x");
        assert_eq!(paired_ratio([(0, 3.0)], [(1, 2.0)]), "-");
        assert_eq!(paired_ratio([(0, 3.0)], [(0, 0.0)]), "-");
    }
}
