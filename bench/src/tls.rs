//! The TLS mode (`iot_bench tls`): the certificate both servers are given, the
//! tokio + tokio-rustls peer server, and the TLS load client, which is the plain one
//! (`client`) with a rustls `ClientConnection` per connection that every read and write
//! goes through. Also the handshake loop: a few connections at a time, each a new TCP
//! connection, a full handshake (no resumption), one echo and a close.
//!
//! rustls with the ring provider everywhere (as the library uses): both servers and
//! the client offer the same versions and suites, so they negotiate the same session.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection};

use crate::client::{in_halves, thread_cpu, until_first_echoes, Config, Halves, Outcome};
use crate::interrupt;
use crate::sys::{self, Epoll, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP};

const TICK: Duration = Duration::from_millis(100);

#[allow(deprecated)] // the provider the library uses (see native/src/tls/config.rs)
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA and a server certificate for localhost it issued (ECDSA P-256, rcgen's
/// default), as files in a directory of their own that goes with this value.
pub struct Material {
    dir: PathBuf,
    pub chain: PathBuf,
    pub key: PathBuf,
    ca: String,
}

impl Material {
    pub fn new() -> Result<Material, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let fail = |e: rcgen::Error| format!("certificate: {e}");
        let ca_key = KeyPair::generate().map_err(fail)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "iot_bench CA");
        let ca = params.self_signed(&ca_key).map_err(fail)?;
        let key = KeyPair::generate().map_err(fail)?;
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .map_err(fail)?
            .signed_by(&key, &ca, &ca_key)
            .map_err(fail)?;
        let dir = std::env::temp_dir().join(format!("iot_bench_tls_{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let material = Material {
            chain: dir.join("chain.pem"),
            key: dir.join("key.pem"),
            dir,
            ca: ca.pem(),
        };
        let write = |path: &Path, text: String| {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(&material.chain, leaf.pem() + &ca.pem())?;
        write(&material.key, key.serialize_pem())?;
        Ok(material)
    }

    /// A client configuration trusting the CA; `resume`: whether sessions are kept
    /// for resumption (the handshake loop wants every handshake full).
    pub fn client(&self, resume: bool) -> Result<Arc<ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca.as_bytes()) {
            let cert = cert.map_err(|e| format!("CA: {e}"))?;
            roots.add(cert).map_err(|e| format!("CA: {e}"))?;
        }
        // The client offers X25519 first (as browsers, curl and OpenSSL do), so the
        // servers' key exchange is that one whatever their own order (the ring
        // provider's default puts P-384 first, which costs far more).
        #[allow(deprecated)]
        let mut provider = rustls::crypto::ring::default_provider();
        provider.kx_groups.sort_by_key(|group| match group.name() {
            rustls::NamedGroup::X25519 => 0,
            rustls::NamedGroup::secp256r1 => 1,
            _ => 2,
        });
        // And AES-128-GCM first, as browsers offer it: our server picks that by its
        // own order, tokio-rustls's default follows the client's, so both servers
        // run the same suite.
        provider
            .cipher_suites
            .sort_by_key(|suite| match suite.suite() {
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
                _ => 1,
            });
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Ok(Arc::new(config))
    }
}

impl Drop for Material {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The tokio peer with TLS: the tokio echo server's loop (current_thread runtime, a
/// task per connection) with tokio-rustls's acceptor in front; the echo ends with
/// close_notify.
pub fn serve_tokio(chain: &str, key: &str) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(ErrorKind::InvalidData, format!("{what}: {e}"))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain)
        .map_err(|e| bad(chain, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(chain, &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("versions", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad("certificate", &e))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (socket, _) = listener.accept().await?;
            socket.set_nodelay(true)?;
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let accepting = acceptor.accept(socket);
                let Ok(Ok(mut tls)) =
                    tokio::time::timeout(Duration::from_secs(10), accepting).await
                else {
                    return;
                };
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if tls.write_all(&buf[..n]).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
                let _ = tls.shutdown().await;
            });
        }
    })
}

/// One TLS connection of the load client.
struct Conn {
    stream: TcpStream,
    tls: ClientConnection,
    req: Vec<u8>,
    resp: Vec<u8>,
    seq: u64,
    got: usize,
    /// Whether EPOLLOUT is registered (only while records wait for the socket).
    want_out: bool,
    last_progress: Instant,
}

impl Conn {
    fn open(
        addr: SocketAddr,
        config: &Arc<ClientConfig>,
        ep: &Epoll,
        token: u64,
        size: usize,
        timeout: Duration,
    ) -> Result<Conn, String> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("connect {addr} (connection {token}): {e}"))?;
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_nonblocking(true))
            .map_err(|e| format!("socket options: {e}"))?;
        let name = ServerName::try_from("localhost").expect("a DNS name");
        let tls = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
        ep.add(stream.as_raw_fd(), EPOLLIN | EPOLLRDHUP, token)
            .map_err(|e| format!("epoll_ctl: {e}"))?;
        // Per-connection pseudo-random bytes, as the plain client sends.
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ token.wrapping_mul(0xA24B_AED4_963E_E407);
        let req = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Ok(Conn {
            stream,
            tls,
            req,
            resp: vec![0; size],
            seq: 0,
            got: 0,
            want_out: false,
            last_progress: Instant::now(),
        })
    }

    /// Hands the next request (sequence number stamped in) to rustls, which keeps it
    /// until the handshake is done and then seals it.
    fn next_request(&mut self, token: u64) -> Result<(), String> {
        self.seq += 1;
        let stamp = self.seq.to_le_bytes();
        let n = stamp.len().min(self.req.len());
        self.req[..n].copy_from_slice(&stamp[..n]);
        self.got = 0;
        self.tls
            .writer()
            .write_all(&self.req)
            .map_err(|e| format!("connection {token}: rustls refused the request: {e}"))
    }

    /// Writes the records rustls has ready as far as the socket takes them;
    /// (de)registers EPOLLOUT as needed.
    fn flush(&mut self, ep: &Epoll, token: u64) -> Result<(), String> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("connection {token}: send failed: {e}")),
            }
        }
        let want_out = self.tls.wants_write();
        if want_out != self.want_out {
            let interest = if want_out {
                EPOLLIN | EPOLLOUT
            } else {
                EPOLLIN
            } | EPOLLRDHUP;
            ep.modify(self.stream.as_raw_fd(), interest, token)
                .map_err(|e| format!("epoll_ctl: {e}"))?;
            self.want_out = want_out;
        }
        Ok(())
    }

    /// Reads what the socket has through rustls. Returns `Echoed` when the whole echo
    /// has arrived and matched.
    fn read(&mut self, token: u64) -> Result<Read2, String> {
        let size = self.resp.len();
        loop {
            match self.tls.read_tls(&mut self.stream) {
                Ok(0) => {
                    return Err(format!(
                        "connection {token}: server closed the connection (request {}, \
                         received {}/{size} bytes)",
                        self.seq, self.got
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Read2::More),
                Err(e) => return Err(format!("connection {token}: recv failed: {e}")),
            }
            let state = self
                .tls
                .process_new_packets()
                .map_err(|e| format!("connection {token}: TLS: {e}"))?;
            if state.plaintext_bytes_to_read() > size - self.got {
                return Err(format!(
                    "connection {token}: {} bytes more than the echo of request {}",
                    state.plaintext_bytes_to_read() - (size - self.got),
                    self.seq
                ));
            }
            while self.got < size {
                match self.tls.reader().read(&mut self.resp[self.got..]) {
                    Ok(0) => {
                        return Err(format!(
                            "connection {token}: server ended the session (request {}, \
                             received {}/{size} bytes)",
                            self.seq, self.got
                        ))
                    }
                    Ok(n) => self.got += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("connection {token}: TLS read: {e}")),
                }
            }
            if self.got == size {
                if self.resp != self.req {
                    let at = self
                        .resp
                        .iter()
                        .zip(&self.req)
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    return Err(format!(
                        "connection {token}: echo mismatch on request {} at byte {at} of {size}",
                        self.seq
                    ));
                }
                return Ok(Read2::Echoed);
            }
        }
    }
}

enum Read2 {
    More,
    Echoed,
}

/// The plain client's measurement (see `client::run`) over TLS connections: every
/// connection's first round trip includes its handshake; then ping-pong for the
/// warm-up and the measured window.
pub fn run<S, M>(
    cfg: &Config,
    config: &Arc<ClientConfig>,
    mut probe: impl FnMut() -> S,
    mut idle_probe: impl FnMut() -> M,
) -> Result<(Outcome<S, Halves<M>>, String), String> {
    let mut pump = Pump {
        ep: Epoll::new().map_err(|e| format!("epoll_create: {e}"))?,
        events: sys::events(cfg.connections.min(1024)),
        conns: Vec::with_capacity(cfg.connections),
        total: 0,
        next_check: Instant::now() + TICK,
        stall: cfg.stall_timeout,
    };
    let idle = in_halves(
        cfg.connections,
        |count| pump.grow(config, count, cfg),
        &mut idle_probe,
    )?;
    let session = pump.conns[0]
        .tls
        .negotiated_cipher_suite()
        .map(|s| format!("{:?} {:?}", s.version().version, s.suite()))
        .map(
            |s| match pump.conns[0].tls.negotiated_key_exchange_group() {
                Some(group) => format!("{s} {:?}", group.name()),
                None => s,
            },
        )
        .unwrap_or_default();

    pump.start_all()?;
    let warm_end = Instant::now() + cfg.warmup;
    let end = warm_end + cfg.measure;
    let mut measured_from = None;
    let mut now = Instant::now();
    loop {
        if measured_from.is_none() && now >= warm_end {
            let at_start = probe();
            measured_from = Some((pump.total, now, thread_cpu(), at_start));
        }
        if now >= end {
            break;
        }
        let wake = if measured_from.is_none() {
            warm_end
        } else {
            end
        };
        now = pump.turn(wake, true)?;
    }
    let probe_end = probe();
    let client_end = thread_cpu();
    let (at_start, from, client_start, probe_start) = measured_from.expect("set before the end");
    let round_trips = pump.total - at_start;
    if round_trips == 0 {
        return Err("server stalled: no round trip completed in the measured window".into());
    }
    let elapsed = now - from;
    let outcome = Outcome {
        round_trips,
        elapsed,
        client_busy: (client_end - client_start).as_secs_f64() / elapsed.as_secs_f64(),
        idle,
        probe_start,
        probe_end,
    };
    Ok((outcome, session))
}

struct Pump {
    ep: Epoll,
    events: Vec<sys::Event>,
    conns: Vec<Conn>,
    total: u64,
    next_check: Instant,
    stall: Duration,
}

impl Pump {
    /// Opens connections until there are `count`, and has each new one make one round
    /// trip (its handshake first), none followed by the next: then all are idle.
    fn grow(
        &mut self,
        config: &Arc<ClientConfig>,
        count: usize,
        cfg: &Config,
    ) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], cfg.port));
        let first = self.conns.len();
        for i in first..count {
            if interrupt::interrupted() {
                return Err("interrupted".to_string());
            }
            let conn = Conn::open(
                addr,
                config,
                &self.ep,
                i as u64,
                cfg.size,
                cfg.stall_timeout,
            )?;
            self.conns.push(conn);
        }
        self.start(first)?;
        until_first_echoes(count, self.total, cfg.stall_timeout, |deadline| {
            self.turn(deadline, false).map(|_| self.total)
        })
    }

    fn start_all(&mut self) -> Result<(), String> {
        self.start(0)
    }

    /// Every connection from index `first` on sends its next request.
    fn start(&mut self, first: usize) -> Result<(), String> {
        let now = Instant::now();
        for (i, c) in self.conns.iter_mut().enumerate().skip(first) {
            c.last_progress = now;
            c.next_request(i as u64)?;
            c.flush(&self.ep, i as u64)?;
        }
        Ok(())
    }

    fn turn(&mut self, wake: Instant, repeat: bool) -> Result<Instant, String> {
        let now = Instant::now();
        if now >= self.next_check {
            if interrupt::interrupted() {
                return Err("interrupted".to_string());
            }
            stalls(&self.conns, now, self.stall)?;
            self.next_check = now + TICK;
        }
        let n = self.wait(wake.min(self.next_check), now)?;
        let now = Instant::now();
        for k in 0..n {
            let ev = self.events[k];
            let token = sys::token(&ev);
            let flags = sys::flags(&ev) as libc::c_int;
            let c = &mut self.conns[token as usize];
            if flags & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR) != 0 {
                if let Read2::Echoed = c.read(token)? {
                    self.total += 1;
                    c.last_progress = now;
                    if repeat {
                        c.next_request(token)?;
                    } else {
                        c.last_progress = now + self.stall * 100;
                    }
                }
            }
            c.flush(&self.ep, token)?;
        }
        Ok(now)
    }

    fn wait(&mut self, until: Instant, now: Instant) -> Result<usize, String> {
        let timeout_ms = until
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000) as i32;
        self.ep
            .wait(&mut self.events, timeout_ms)
            .map_err(|e| format!("epoll_wait: {e}"))
    }
}

fn stalls(conns: &[Conn], now: Instant, stall: Duration) -> Result<(), String> {
    for (i, c) in conns.iter().enumerate() {
        let idle = now.saturating_duration_since(c.last_progress);
        if idle >= stall {
            return Err(format!(
                "server stalled: connection {i} of {} has had no complete echo for {:.1} s \
                 (request {}, received {}/{} bytes, handshaking: {})",
                conns.len(),
                idle.as_secs_f64(),
                c.seq,
                c.got,
                c.req.len(),
                c.tls.is_handshaking()
            ));
        }
    }
    Ok(())
}

/// The handshake loop's settings.
pub struct HandshakeConfig {
    pub port: u16,
    /// Connections in flight at a time.
    pub concurrency: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub stall_timeout: Duration,
}

/// Connections per second, each: connect, a full handshake (the config must not
/// resume), one 64-byte echo, close_notify, then close. `concurrency` of them run at once; a finished one is replaced at once.
/// `probe` samples the server's CPU time at the two ends of the measured window.
pub fn handshakes<S>(
    cfg: &HandshakeConfig,
    config: &Arc<ClientConfig>,
    mut probe: impl FnMut() -> S,
) -> Result<Outcome<S, ()>, String> {
    const SIZE: usize = 64;
    let addr = SocketAddr::from(([127, 0, 0, 1], cfg.port));
    let ep = Epoll::new().map_err(|e| format!("epoll_create: {e}"))?;
    let open = |token: usize| -> Result<Conn, String> {
        let mut c = Conn::open(addr, config, &ep, token as u64, SIZE, cfg.stall_timeout)?;
        c.next_request(token as u64)?;
        c.flush(&ep, token as u64)?;
        Ok(c)
    };
    let mut conns: Vec<Conn> = (0..cfg.concurrency).map(open).collect::<Result<_, _>>()?;
    let mut events = sys::events(cfg.concurrency.max(1));
    let mut total = 0u64;
    let warm_end = Instant::now() + cfg.warmup;
    let end = warm_end + cfg.measure;
    let mut measured_from = None;
    let mut now = Instant::now();
    let mut next_check = now + TICK;
    loop {
        if measured_from.is_none() && now >= warm_end {
            measured_from = Some((total, now, thread_cpu(), probe()));
        }
        if now >= end {
            break;
        }
        if now >= next_check {
            if interrupt::interrupted() {
                return Err("interrupted".to_string());
            }
            stalls(&conns, now, cfg.stall_timeout)?;
            next_check = now + TICK;
        }
        let until = if measured_from.is_none() {
            warm_end
        } else {
            end
        };
        let timeout_ms = until
            .min(next_check)
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000) as i32;
        let n = ep
            .wait(&mut events, timeout_ms)
            .map_err(|e| format!("epoll_wait: {e}"))?;
        now = Instant::now();
        for ev in &events[..n] {
            let token = sys::token(ev) as usize;
            let c = &mut conns[token];
            match c.read(token as u64)? {
                Read2::Echoed => {
                    // close_notify and close, without waiting for the server's own
                    // close_notify: dart:io's SecureSocket never sends one back.
                    // Closing the socket also takes it out of the epoll set.
                    c.tls.send_close_notify();
                    c.flush(&ep, token as u64)?;
                    total += 1;
                    conns[token] = open(token)?;
                    continue;
                }
                Read2::More => {}
            }
            conns[token].flush(&ep, token as u64)?;
        }
    }
    let probe_end = probe();
    let client_end = thread_cpu();
    let (at_start, from, client_start, probe_start) = measured_from.expect("set before the end");
    let elapsed = now - from;
    if total == at_start {
        return Err("no connection finished in the measured window".into());
    }
    Ok(Outcome {
        round_trips: total - at_start,
        elapsed,
        client_busy: (client_end - client_start).as_secs_f64() / elapsed.as_secs_f64(),
        idle: (),
        probe_start,
        probe_end,
    })
}
