//! TLS configurations: built once from PEM (a server's or a client's), kept in a
//! process-wide table under a handle, and shared by every worker's sessions (rustls
//! configurations are immutable behind an `Arc`, and their session caches are
//! thread-safe, so resumption works across workers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CipherSuite, ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite,
    SupportedProtocolVersion,
};

use crate::abi::*;
use crate::error::{Result, IOT_E_BAD_HANDLE, IOT_E_TLS_CONFIG};

/// The system's CA bundle (Debian, Ubuntu, Arch, Alpine with ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

pub(crate) enum TlsConfig {
    Server(Arc<ServerConfig>),
    Client(Arc<ClientConfig>),
}

/// What a configuration is made of, as the host gave it.
pub(crate) struct TlsConfigSpec<'a> {
    pub(crate) flags: u32,
    /// The certificate chain, leaf first (a server's; a client's for client auth).
    pub(crate) certificate_pem: &'a [u8],
    pub(crate) private_key_pem: &'a [u8],
    /// Certificates to trust: a client's roots for servers, a server's for clients.
    pub(crate) trusted_pem: &'a [u8],
    /// Application protocols in preference order, in ALPN wire format (each name
    /// preceded by its length byte).
    pub(crate) alpn: &'a [u8],
}

/// A configuration error: its code and the reason in words.
pub(crate) type ConfigError = (i32, String);

fn invalid(reason: impl Into<String>) -> ConfigError {
    (IOT_E_TLS_CONFIG, reason.into())
}

impl TlsConfig {
    pub(crate) fn build(spec: &TlsConfigSpec) -> std::result::Result<TlsConfig, ConfigError> {
        let versions = versions(spec.flags)?;
        let alpn = alpn_list(spec.alpn)?;
        let chain = certificates(spec.certificate_pem, "certificate")?;
        let key = match spec.private_key_pem.is_empty() {
            true => None,
            false => Some(
                PrivateKeyDer::from_pem_slice(spec.private_key_pem)
                    .map_err(|e| invalid(format!("private key: {e}")))?,
            ),
        };
        // ring, not aws-lc-rs: it builds for x86_64 and i686 with only a C compiler.
        // rustls deprecates it for lacking the post-quantum key exchange (X25519MLKEM768),
        // which only aws-lc-rs offers; peers fall back to X25519.
        #[allow(deprecated)]
        let mut provider = rustls::crypto::ring::default_provider();
        // X25519 first, as browsers and openssl offer it: the ring provider lists
        // P-384 first, whose key exchange costs a server about 1.1 ms more per
        // handshake here.
        use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
        provider.kx_groups = vec![X25519, SECP256R1, SECP384R1];
        prefer_cheap_suites(&mut provider.cipher_suites);
        let provider = Arc::new(provider);
        let rustls_error = |e: rustls::Error| invalid(e.to_string());
        if spec.flags & IOT_TLS_SERVER != 0 {
            let (Some(key), false) = (key, chain.is_empty()) else {
                return Err(invalid(
                    "a server needs a certificate chain and its private key",
                ));
            };
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&versions)
                .map_err(rustls_error)?;
            let client_auth = IOT_TLS_CLIENT_AUTH_OPTIONAL | IOT_TLS_CLIENT_AUTH_REQUIRED;
            let builder = if spec.flags & client_auth != 0 {
                let roots = Arc::new(roots(spec, "client certificates")?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = match spec.flags & IOT_TLS_CLIENT_AUTH_REQUIRED {
                    0 => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier.build().map_err(|e| invalid(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            } else {
                builder.with_no_client_auth()
            };
            let mut config = builder.with_single_cert(chain, key).map_err(rustls_error)?;
            config.alpn_protocols = alpn;
            // The server picks the suite from its own order, as Go's and BoringSSL's
            // (dart:io's) servers do, not the first the client offers.
            config.ignore_client_order = true;
            return Ok(TlsConfig::Server(Arc::new(config)));
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(rustls_error)?
            .with_root_certificates(roots(spec, "servers")?);
        let mut config = match (key, chain.is_empty()) {
            (Some(key), false) => builder
                .with_client_auth_cert(chain, key)
                .map_err(rustls_error)?,
            (None, true) => builder.with_no_client_auth(),
            _ => {
                return Err(invalid(
                    "a client certificate needs its private key, and back",
                ))
            }
        };
        config.alpn_protocols = alpn;
        Ok(TlsConfig::Client(Arc::new(config)))
    }
}

/// Orders `suites` as the cheapest first at the same security: AES-128-GCM before
/// AES-256-GCM (fewer rounds, and TLS 1.3's SHA-256 key schedule instead of SHA-384's,
/// which has no assembly in ring for 32-bit x86, where it took a tenth of a server's
/// handshake), and ChaCha20-Poly1305 before both on a CPU without AES instructions.
fn prefer_cheap_suites(suites: &mut [SupportedCipherSuite]) {
    let chacha_rank = if aes_in_hardware() { 3 } else { 0 };
    suites.sort_by_key(|suite| match suite.suite() {
        CipherSuite::TLS13_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 1,
        CipherSuite::TLS13_AES_256_GCM_SHA384
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 2,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => chacha_rank,
        _ => 4,
    });
}

fn aes_in_hardware() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    return std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    return std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull");
    #[allow(unreachable_code)]
    false
}

fn versions(
    flags: u32,
) -> std::result::Result<Vec<&'static SupportedProtocolVersion>, ConfigError> {
    let tls12 = &rustls::version::TLS12;
    let tls13 = &rustls::version::TLS13;
    match (
        flags & IOT_TLS_ONLY_TLS12 != 0,
        flags & IOT_TLS_ONLY_TLS13 != 0,
    ) {
        (false, false) => Ok(vec![tls13, tls12]),
        (true, false) => Ok(vec![tls12]),
        (false, true) => Ok(vec![tls13]),
        (true, true) => Err(invalid("only TLS 1.2 and only TLS 1.3 exclude each other")),
    }
}

/// The certificates in `pem` (none when it is empty).
fn certificates(
    pem: &[u8],
    what: &str,
) -> std::result::Result<Vec<CertificateDer<'static>>, ConfigError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{what} PEM: {e}")))
}

/// The trusted certificates of `spec` (and the system's, when asked), for verifying
/// `whom`; an error when there are none.
fn roots(spec: &TlsConfigSpec, whom: &str) -> std::result::Result<RootCertStore, ConfigError> {
    let mut store = RootCertStore::empty();
    let mut add = |pem: &[u8]| -> std::result::Result<(), ConfigError> {
        for certificate in certificates(pem, "trusted certificate")? {
            store
                .add(certificate)
                .map_err(|e| invalid(format!("trusted certificate: {e}")))?;
        }
        Ok(())
    };
    add(spec.trusted_pem)?;
    if spec.flags & IOT_TLS_SYSTEM_ROOTS != 0 {
        let system = std::fs::read(SYSTEM_ROOTS)
            .map_err(|e| invalid(format!("system CA certificates ({SYSTEM_ROOTS}): {e}")))?;
        add(&system)?;
    }
    if store.is_empty() {
        return Err(invalid(format!(
            "no trusted certificates to verify {whom} with"
        )));
    }
    Ok(store)
}

/// ALPN wire format (length-prefixed names) into a list.
fn alpn_list(mut wire: &[u8]) -> std::result::Result<Vec<Vec<u8>>, ConfigError> {
    let mut names = Vec::new();
    while let Some((&len, rest)) = wire.split_first() {
        let len = usize::from(len);
        if len == 0 || len > rest.len() {
            return Err(invalid(
                "ALPN list: each name needs its length (1..=255) first",
            ));
        }
        names.push(rest[..len].to_vec());
        wire = &rest[len..];
    }
    Ok(names)
}

fn configs() -> &'static DashMap<u64, Arc<TlsConfig>> {
    static CONFIGS: OnceLock<DashMap<u64, Arc<TlsConfig>>> = OnceLock::new();
    CONFIGS.get_or_init(DashMap::new)
}

/// Handles are never reused, so a freed one is simply not found.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

/// Keeps `config` under a new handle.
pub(crate) fn register(config: TlsConfig) -> u64 {
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    configs().insert(handle, Arc::new(config));
    handle
}

/// The configuration under `handle`.
pub(crate) fn get(handle: u64) -> Result<Arc<TlsConfig>> {
    configs()
        .get(&handle)
        .map(|entry| entry.value().clone())
        .ok_or(IOT_E_BAD_HANDLE)
}

/// Forgets `handle`; sessions made with it keep their configuration.
pub(crate) fn free(handle: u64) -> Result<()> {
    configs().remove(&handle).map(drop).ok_or(IOT_E_BAD_HANDLE)
}
