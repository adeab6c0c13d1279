//! Messages per second between two threads: workers posting into each other's
//! completion queues with IORING_OP_MSG_RING (driven through the C ABI, the path Dart
//! uses), beside `std::sync::mpsc` channels with explicit park/unpark wake-ups, in the
//! same run. A benchmark, not a test.
//!
//! ```text
//! cargo run --release -p iouring_transport --example msgring_bench -- [--seconds 0.4] [--rounds 3]
//! ```
//!
//! Scenarios, each run `--rounds` times per transport for `--seconds`, the transports
//! alternating so drift in the machine hits both; the table shows medians:
//! - stream: the producer keeps up to `WINDOW` messages unacknowledged; the consumer
//!   returns a credit message every `CREDIT_EVERY` messages (flow control both sides).
//! - ping-pong: one message in flight, each answered before the next (latency-bound).
//!
//! Both sides block when idle: ring hosts in `iot_worker_wait`, channel hosts in
//! `thread::park`, woken by the kernel's CQE post or by `Thread::unpark`.

use std::sync::mpsc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use iouring_transport::ffi::*;
use iouring_transport::*;

const WINDOW: u64 = 256;
const CREDIT_EVERY: u64 = 64;
/// Tag of the producer's last message: the consumer stops.
const END: u64 = u64::MAX;
/// Bound on one blocking wait, so a lost wake-up would show as slowness, not a hang.
const WAIT_MS: u32 = 100;

/// A failed call ends the benchmark with its reason (a resource limit is no panic).
fn check(what: &str, code: i32) -> i32 {
    if code < 0 {
        let mut text = [0 as std::ffi::c_char; 256];
        iot_error_message(code, text.as_mut_ptr(), text.len());
        // SAFETY: iot_error_message NUL-terminates within the buffer.
        let text = unsafe { std::ffi::CStr::from_ptr(text.as_ptr()) }.to_string_lossy();
        eprintln!("msgring_bench: {what}: {text} ({code})");
        std::process::exit(1);
    }
    code
}

/// Starts a thread, or ends the benchmark cleanly when none can be had.
fn spawn<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new().spawn(body).unwrap_or_else(|err| {
        eprintln!("msgring_bench: cannot start a thread: {err}");
        std::process::exit(1)
    })
}

/// A worker driven like an isolate drives one: drain, act, flush, block when idle.
struct Ring {
    worker: u64,
    batch: Vec<iot_completion>,
}

impl Ring {
    fn new() -> Ring {
        let mut worker = 0;
        check("worker", iot_worker_new(std::ptr::null(), &mut worker));
        Ring {
            worker,
            batch: vec![iot_completion::default(); 256],
        }
    }

    /// Submits what was queued and returns the completions ready, blocking first if
    /// there are none.
    fn turn(&mut self) -> &[iot_completion] {
        check("flush", iot_worker_flush(self.worker));
        let mut n = self.drain();
        if n == 0 {
            check("wait", iot_worker_wait(self.worker, WAIT_MS));
            n = self.drain();
        }
        &self.batch[..n]
    }

    fn drain(&mut self) -> usize {
        let capacity = self.batch.len() as u32;
        check(
            "drain",
            iot_worker_drain(self.worker, self.batch.as_mut_ptr(), capacity),
        ) as usize
    }

    fn send(&self, target: u64, tag: u64) {
        check("send", iot_message_send(self.worker, target, tag, 0));
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        iot_worker_free(self.worker);
    }
}

/// Messages the consumer received, and the seconds it took.
type Outcome = (u64, f64);

fn ring_stream(seconds: f64) -> Outcome {
    let (mut producer, mut consumer) = (Ring::new(), Ring::new());
    let (p, c) = (producer.worker, consumer.worker);
    let consume = spawn(move || {
        let (mut received, mut unacked) = (0u64, 0u64);
        let start = Instant::now();
        loop {
            let mut ended = false;
            for done in consumer.turn() {
                if done.kind == IOT_KIND_MESSAGE {
                    ended |= done.tag == END;
                    received += 1;
                    unacked += 1;
                }
            }
            if unacked >= CREDIT_EVERY {
                consumer.send(p, unacked);
                unacked = 0;
            }
            if ended {
                return (received - 1, start.elapsed().as_secs_f64());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut sent, mut credit) = (0u64, WINDOW);
    while Instant::now() < deadline {
        while credit > 0 {
            producer.send(c, sent);
            sent += 1;
            credit -= 1;
        }
        for done in producer.turn() {
            if done.kind == IOT_KIND_MESSAGE {
                credit += done.tag;
            }
        }
    }
    producer.send(c, END);
    check("flush", iot_worker_flush(producer.worker));
    consume.join().expect("consumer thread")
}

fn ring_ping_pong(seconds: f64) -> Outcome {
    let (mut pinger, mut ponger) = (Ring::new(), Ring::new());
    let (ping, pong) = (pinger.worker, ponger.worker);
    let answer = spawn(move || loop {
        let mut ended = false;
        for done in ponger.turn() {
            if done.kind == IOT_KIND_MESSAGE {
                ended |= done.tag == END;
                check("pong", iot_message_send(pong, ping, done.tag, 0));
            }
        }
        if ended {
            check("flush", iot_worker_flush(pong));
            return;
        }
    });
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut round_trips = 0u64;
    while Instant::now() < deadline {
        pinger.send(pong, round_trips);
        while !pinger
            .turn()
            .iter()
            .any(|done| done.kind == IOT_KIND_MESSAGE)
        {}
        round_trips += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    pinger.send(pong, END);
    check("flush", iot_worker_flush(pinger.worker));
    answer.join().expect("ponger thread");
    (round_trips * 2, elapsed)
}

/// A channel end plus the thread to unpark after sending on it.
struct Peer<T> {
    tx: mpsc::Sender<T>,
    thread: Thread,
}

impl<T> Peer<T> {
    fn send(&self, value: T) {
        // The receiver may be parked: a channel alone wakes nobody who is not in recv.
        let _ = self.tx.send(value);
        self.thread.unpark();
    }
}

/// Receives what is there; parks (bounded) only when nothing is.
fn receive_batch<T>(rx: &mpsc::Receiver<T>, out: &mut Vec<T>) {
    out.clear();
    out.extend(rx.try_iter());
    if out.is_empty() {
        thread::park_timeout(Duration::from_millis(u64::from(WAIT_MS)));
        out.extend(rx.try_iter());
    }
}

fn channel_stream(seconds: f64) -> Outcome {
    let (data_tx, data_rx) = mpsc::channel::<u64>();
    let (credit_tx, credit_rx) = mpsc::channel::<u64>();
    let credits = Peer {
        tx: credit_tx,
        thread: thread::current(),
    };
    let consume = spawn(move || {
        let (mut received, mut unacked) = (0u64, 0u64);
        let mut batch = Vec::new();
        let start = Instant::now();
        loop {
            receive_batch(&data_rx, &mut batch);
            let ended = batch.contains(&END);
            received += batch.len() as u64;
            unacked += batch.len() as u64;
            if unacked >= CREDIT_EVERY {
                credits.send(unacked);
                unacked = 0;
            }
            if ended {
                return (received - 1, start.elapsed().as_secs_f64());
            }
        }
    });
    let data = Peer {
        tx: data_tx,
        thread: consume.thread().clone(),
    };
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut sent, mut credit) = (0u64, WINDOW);
    let mut batch = Vec::new();
    while Instant::now() < deadline {
        while credit > 0 {
            let _ = data.tx.send(sent);
            sent += 1;
            credit -= 1;
        }
        // One wake-up per batch, as the ring side submits once per turn.
        data.thread.unpark();
        receive_batch(&credit_rx, &mut batch);
        credit += batch.iter().sum::<u64>();
    }
    data.send(END);
    consume.join().expect("consumer thread")
}

fn channel_ping_pong(seconds: f64) -> Outcome {
    let (ping_tx, ping_rx) = mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = mpsc::channel::<u64>();
    let pongs = Peer {
        tx: pong_tx,
        thread: thread::current(),
    };
    let answer = spawn(move || {
        let mut batch = Vec::new();
        loop {
            receive_batch(&ping_rx, &mut batch);
            for &tag in &batch {
                pongs.send(tag);
            }
            if batch.contains(&END) {
                return;
            }
        }
    });
    let pings = Peer {
        tx: ping_tx,
        thread: answer.thread().clone(),
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut round_trips = 0u64;
    let mut batch = Vec::new();
    while Instant::now() < deadline {
        pings.send(round_trips);
        loop {
            receive_batch(&pong_rx, &mut batch);
            if !batch.is_empty() {
                break;
            }
        }
        round_trips += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    pings.send(END);
    answer.join().expect("ponger thread");
    (round_trips * 2, elapsed)
}

fn rate((messages, seconds): Outcome) -> f64 {
    messages as f64 / seconds
}

struct Args {
    seconds: f64,
    rounds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args {
        seconds: 0.4,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = || format!("bad {flag} {value}");
        match flag.as_str() {
            "--seconds" => parsed.seconds = value.parse().map_err(|_| bad())?,
            "--rounds" => parsed.rounds = value.parse().map_err(|_| bad())?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !(0.05..=60.0).contains(&parsed.seconds) || !(1..=20).contains(&parsed.rounds) {
        return Err("--seconds must be in 0.05..=60 and --rounds in 1..=20".into());
    }
    Ok(parsed)
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if iot_messaging_supported() != 1 {
        eprintln!("this kernel cannot pass flags through IORING_OP_MSG_RING (needs >= 6.3)");
        std::process::exit(1);
    }
    type Scenario = (&'static str, fn(f64) -> Outcome, fn(f64) -> Outcome);
    let scenarios: [Scenario; 2] = [
        ("stream, window 256, credit/64", ring_stream, channel_stream),
        ("ping-pong, 1 in flight", ring_ping_pong, channel_ping_pong),
    ];
    println!(
        "{:<30} {:>16} {:>18} {:>8}",
        "scenario (2 threads)", "MSG_RING msg/s", "mpsc+park msg/s", "ratio"
    );
    for (name, ring, channel) in scenarios {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..args.rounds {
            ours.push(rate(ring(args.seconds)));
            theirs.push(rate(channel(args.seconds)));
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "{:<30} {:>16.0} {:>18.0} {:>7.2}x",
            name,
            ours,
            theirs,
            ours / theirs
        );
    }
}
