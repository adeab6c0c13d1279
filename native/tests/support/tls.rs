//! TLS test material: a CA and certificates made fresh per test (rcgen), our
//! configurations through the C ABI, rustls peers on std sockets, and a pair of our
//! own sockets (server and client on one worker) handshaking with each other.

use std::ffi::c_char;
use std::net::TcpStream;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::*;

/// A certificate with its key, as PEM.
#[derive(Clone)]
pub struct Identity {
    pub chain: String,
    pub key: String,
    pub der: Vec<u8>,
}

/// A CA and what it issued: a server certificate for localhost and 127.0.0.1, and a
/// client certificate.
pub struct Pki {
    pub ca: String,
    pub server: Identity,
    pub client: Identity,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&ca_key).unwrap();
        let issue = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            Identity {
                chain: cert.pem() + &ca.pem(),
                key: key.serialize_pem(),
                der: cert.der().to_vec(),
            }
        };
        Pki {
            server: issue(vec!["localhost".into(), "127.0.0.1".into()]),
            client: issue(vec!["client.test".into()]),
            ca: ca.pem(),
        }
    }
}

/// ALPN names in wire format.
pub fn alpn_wire(names: &[&str]) -> Vec<u8> {
    names
        .iter()
        .flat_map(|name| std::iter::once(name.len() as u8).chain(name.bytes()))
        .collect()
}

fn ptr(bytes: &[u8]) -> *const u8 {
    if bytes.is_empty() {
        std::ptr::null()
    } else {
        bytes.as_ptr()
    }
}

/// A configuration handle, or the code and reason it was refused.
pub fn try_config(
    flags: u32,
    identity: Option<&Identity>,
    trusted: &str,
    alpn: &[&str],
) -> Result<u64, (i32, String)> {
    let (chain, key) = identity.map_or((&[][..], &[][..]), |i| {
        (i.chain.as_bytes(), i.key.as_bytes())
    });
    let alpn = alpn_wire(alpn);
    let mut handle = 0;
    let mut text = [0 as c_char; 512];
    let code = iot_tls_config_new(
        flags,
        ptr(chain),
        chain.len() as u32,
        ptr(key),
        key.len() as u32,
        ptr(trusted.as_bytes()),
        trusted.len() as u32,
        ptr(&alpn),
        alpn.len() as u32,
        &mut handle,
        text.as_mut_ptr(),
        text.len(),
    );
    match code {
        0 => Ok(handle),
        _ => Err((code, text_of(&text))),
    }
}

pub fn server_config(pki: &Pki, flags: u32, alpn: &[&str]) -> u64 {
    try_config(IOT_TLS_SERVER | flags, Some(&pki.server), &pki.ca, alpn).expect("server config")
}

pub fn client_config(pki: &Pki, flags: u32, alpn: &[&str]) -> u64 {
    try_config(flags, None, &pki.ca, alpn).expect("client config")
}

/// A rustls client configuration trusting `pki`'s CA.
pub fn rustls_client(pki: &Pki, alpn: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// A rustls server configuration with `identity`.
pub fn rustls_server(identity: &Identity) -> Arc<rustls::ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(identity.chain.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(identity.key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

#[allow(deprecated)] // the library's own provider (see its config.rs)
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A rustls client connection on its own std socket.
pub type ClientStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A rustls client stream to 127.0.0.1:`port`, handshake not yet done.
pub fn rustls_stream(config: Arc<rustls::ClientConfig>, port: u16) -> ClientStream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let name = "localhost".try_into().unwrap();
    let connection = rustls::ClientConnection::new(config, name).unwrap();
    rustls::StreamOwned::new(connection, tcp)
}

/// Handshake results of one of our servers and one of our clients on `host`:
/// (server socket, server result, client socket, client result).
pub struct Pair {
    pub server: u64,
    pub server_result: i32,
    pub client: u64,
    pub client_result: i32,
}

impl Host {
    /// Closes every socket of `handles`.
    pub fn close_all(&self, handles: &[u64]) {
        for &handle in handles {
            ok("close", iot_socket_close(self.worker, handle));
        }
    }

    /// Nothing left open, in flight or lent out.
    pub fn assert_idle(&self) {
        let stats = self.stats();
        let held = (
            stats.sockets_open,
            stats.buffers_outstanding,
            stats.ops_in_flight,
        );
        assert_eq!(held, (0, 0, 0), "sockets open, buffers out, ops in flight");
    }

    /// Accepts one connection on `listener` (tag 901) and returns its socket.
    pub fn accept_one(&mut self, listener: u64) -> u64 {
        ok("accept", iot_accept(self.worker, listener, 901, 0, 0));
        let c = self.next_tagged(901);
        assert_eq!(c.result, 0, "accept: {}", message(c.result));
        c.handle
    }

    /// Our server (`server_config`) and our client (`client_config`, asking for
    /// `name`) connect and handshake with each other.
    pub fn tls_pair(&mut self, server_config: u64, client_config: u64, name: &str) -> Pair {
        let (listener, port) = self.listen("127.0.0.1", 0);
        ok("connect", self.connect("127.0.0.1", port, 902, 0));
        let server = self.accept_one(listener);
        let client = self.next_tagged(902);
        assert_eq!(client.result, 0, "connect: {}", message(client.result));
        ok("close listener", iot_socket_close(self.worker, listener));
        ok(
            "tls accept",
            iot_tls_accept(self.worker, server, server_config, 903, 5_000),
        );
        let name = cstr(name);
        ok(
            "tls connect",
            iot_tls_connect(
                self.worker,
                client.handle,
                client_config,
                name.as_ptr(),
                904,
                5_000,
            ),
        );
        let server_done = self.next_tagged(903);
        let client_done = self.next_tagged(904);
        for done in [&server_done, &client_done] {
            assert_eq!(done.kind, IOT_KIND_TLS_HANDSHAKE);
            assert_eq!(done.flags & IOT_COMPLETION_MORE, 0);
        }
        Pair {
            server,
            server_result: server_done.result,
            client: client.handle,
            client_result: client_done.result,
        }
    }

    /// Connects to 127.0.0.1:`port` and runs our client handshake with `config` for
    /// "localhost" (tags 1 and 2); returns the socket once established.
    pub fn tls_connect(&mut self, port: u16, config: u64) -> u64 {
        ok("connect", self.connect("127.0.0.1", port, 1, 0));
        let connected = self.next_tagged(1);
        assert_eq!(
            connected.result,
            0,
            "connect: {}",
            message(connected.result)
        );
        let socket = connected.handle;
        let name = cstr("localhost");
        let code = iot_tls_connect(self.worker, socket, config, name.as_ptr(), 2, 10_000);
        ok("tls connect", code);
        let done = self.next_tagged(2);
        let (result, reason) = (done.result, self.tls_error(socket));
        assert_eq!(result, 0, "handshake: {} {reason}", message(result));
        assert_eq!(done.handle, socket);
        socket
    }

    /// Our server socket after a completed handshake (server configuration `config`)
    /// with a rustls client trusting `pki`'s CA, which is returned with its socket;
    /// the listener it connected to is closed.
    pub fn handshaken(&mut self, pki: &Pki, config: u64) -> (u64, ClientStream) {
        let (listener, port) = self.listen("127.0.0.1", 0);
        let handshaken = self.handshaken_on(listener, port, pki, config);
        ok("close", iot_socket_close(self.worker, listener));
        handshaken
    }

    /// As `handshaken`, the client connecting to `listener` (at `port`), which stays
    /// open.
    pub fn handshaken_on(
        &mut self,
        listener: u64,
        port: u16,
        pki: &Pki,
        config: u64,
    ) -> (u64, ClientStream) {
        let client = rustls_client(pki, &[]);
        let peer = std::thread::spawn(move || {
            let mut stream = rustls_stream(client, port);
            while stream.conn.is_handshaking() {
                stream.conn.complete_io(&mut stream.sock).unwrap();
            }
            stream
        });
        let socket = self.accept_one(listener);
        let result = self.tls_accept(socket, config, 10_000);
        assert_eq!(result, 0, "{} {}", message(result), self.tls_error(socket));
        (socket, peer.join().unwrap())
    }

    /// Starts the server side of a handshake on `socket` and returns its result.
    pub fn tls_accept(&mut self, socket: u64, config: u64, timeout_ms: u32) -> i32 {
        ok(
            "tls accept",
            iot_tls_accept(self.worker, socket, config, 905, timeout_ms),
        );
        self.next_tagged(905).result
    }

    pub fn tls_info(&self, socket: u64) -> iot_tls_info {
        let mut info = iot_tls_info::default();
        ok("tls info", iot_tls_get_info(self.worker, socket, &mut info));
        info
    }

    pub fn tls_text(
        &self,
        socket: u64,
        field: extern "C" fn(u64, u64, *mut c_char, usize) -> i32,
    ) -> Vec<u8> {
        let mut buf = vec![0 as c_char; 4096];
        let len = ok(
            "tls text",
            field(self.worker, socket, buf.as_mut_ptr(), buf.len()),
        );
        buf[..len as usize].iter().map(|&c| c as u8).collect()
    }

    pub fn tls_error(&self, socket: u64) -> String {
        String::from_utf8_lossy(&self.tls_text(socket, iot_tls_error_text)).into_owned()
    }

    /// Echoes everything `socket` receives (multishot receive, tag 906; the received
    /// buffer is sent on as it is) until the peer ends its stream, then shuts down
    /// the sending side (close_notify) and closes. Returns the bytes echoed.
    pub fn echo_until_end(&mut self, socket: u64) -> usize {
        ok(
            "recv",
            iot_recv(self.worker, socket, 906, IOT_OP_MULTISHOT, 0),
        );
        let (mut echoed, mut sends) = (0, 0);
        loop {
            let c = self.next_where(|c| c.tag == 906 || c.tag == 907);
            if c.tag == 907 {
                assert!(c.result >= 0, "echo send: {}", message(c.result));
                sends -= 1;
                continue;
            }
            assert!(c.result >= 0, "echo recv: {}", message(c.result));
            if c.result == 0 {
                break;
            }
            let code = iot_send(
                self.worker,
                socket,
                u32::from(c.buffer_id),
                c.offset,
                c.result as u32,
                907,
                0,
            );
            ok("echo send", code);
            echoed += c.result as usize;
            sends += 1;
        }
        while sends > 0 {
            let c = self.next_tagged(907);
            assert!(c.result >= 0, "echo send: {}", message(c.result));
            sends -= 1;
        }
        ok(
            "shutdown",
            iot_socket_shutdown(self.worker, socket, libc::SHUT_WR, 908),
        );
        assert_eq!(self.next_tagged(908).result, 0);
        ok("close", iot_socket_close(self.worker, socket));
        echoed
    }
}
