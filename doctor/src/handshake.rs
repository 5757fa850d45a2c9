//! Check 8 (`--connect`): a real TLS handshake, presenting the certificate,
//! with the outcome translated into the cause.
//!
//! Offline checks say whether the certificate is sound; only the server can
//! say whether *it* accepts it (its trusted CAs, its CRL, whether it asks for
//! a certificate at all). TLS reports rejections as one-word alerts, and
//! under TLS 1.3 a rejected client certificate is not even reported during
//! the handshake: the client has already finished when the server reads the
//! certificate, so the alert arrives on the first read. That is why a small
//! `GET /` is sent after the handshake, and why an unexplained close under
//! TLS 1.3 is retried with TLS 1.2, where the server answers in the
//! handshake.
//!
//! rustls with the ring provider is used as the client: no system OpenSSL,
//! the same behaviour on every machine.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mtls_authz_policy::timefmt::format_rfc3339;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::json;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::files::Cert;
use super::{dn, Check, Status};

/// Which TLS version to offer, when not both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 only: rejections come as alerts inside the handshake.
    V12,
    /// TLS 1.3 only.
    V13,
}

/// `HOST:PORT`, `[v6]:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        let bad = || format!("--connect '{text}': expected HOST:PORT (e.g. 127.0.0.1:8443 or [::1]:8443)");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() || host.contains(':') && !text.starts_with('[') {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        Ok(Target { host: host.to_owned(), port })
    }
}

/// The client certificate to present.
pub struct ClientAuth {
    /// Leaf first, then the intermediates to send.
    pub chain: Vec<Vec<u8>>,
    pub key: PrivateKeyDer<'static>,
    /// The leaf's notAfter, to word a certificate_expired alert.
    pub not_after: Option<i64>,
}

/// Everything the handshake check needs.
pub struct Settings<'a> {
    pub target: &'a Target,
    pub sni: Option<&'a str>,
    pub roots: &'a [Cert],
    /// "--server-ca" or "--ca": where the roots came from, for messages.
    pub roots_flag: &'static str,
    pub client: Option<ClientAuth>,
    pub tls: Option<TlsVersion>,
    pub timeout: Duration,
    /// Summaries of the offline checks that failed, to point at in a rejection.
    pub local_failures: Vec<String>,
}

/// What the server said about client certificates.
#[derive(Debug, Clone, Default)]
struct Asked {
    ca_names: Vec<String>,
    schemes: Vec<String>,
    sent: bool,
}

/// Presents our certificate (if any) and records that the server asked.
#[derive(Debug)]
struct Recorder {
    key: Option<Arc<CertifiedKey>>,
    asked: Mutex<Option<Asked>>,
}

impl ResolvesClientCert for Recorder {
    fn resolve(&self, root_hint_subjects: &[&[u8]], sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let usable = self.key.as_ref().filter(|k| k.key.choose_scheme(sigschemes).is_some()).cloned();
        let asked = Asked {
            ca_names: root_hint_subjects.iter().map(|h| name_from_der(h)).collect(),
            schemes: sigschemes.iter().map(|s| format!("{s:?}")).collect(),
            sent: usable.is_some(),
        };
        if let Ok(mut slot) = self.asked.lock() {
            *slot = Some(asked);
        }
        usable
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

fn name_from_der(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok((_, name)) => dn(&name),
        Err(_) => format!("(undecodable name, {} bytes)", der.len()),
    }
}

/// The webpki verifier, remembering the certificate the server showed, so a
/// rejection can say what the certificate was for and who issued it.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(end_entity.as_ref().to_vec());
        }
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Handshake,
    AfterHandshake,
}

#[derive(Debug)]
enum Failure {
    /// Could not even build the TLS client (bad roots, unusable key, bad name).
    Setup {
        cause: &'static str,
        summary: String,
        fix: String,
    },
    Resolve(String),
    Io(io::Error),
    Tls(rustls::Error),
    /// The server closed the TCP connection without a TLS alert.
    Eof,
}

/// One connection attempt, and everything observed during it.
#[derive(Debug)]
struct Attempt {
    stage: Stage,
    failure: Option<Failure>,
    address: Option<SocketAddr>,
    version: Option<String>,
    cipher: Option<String>,
    asked: Option<Asked>,
    server_cert: Option<Vec<u8>>,
    status_line: Option<String>,
    timed_out_waiting: bool,
}

impl Attempt {
    fn new() -> Attempt {
        Attempt {
            stage: Stage::Connect,
            failure: None,
            address: None,
            version: None,
            cipher: None,
            asked: None,
            server_cert: None,
            status_line: None,
            timed_out_waiting: false,
        }
    }

    fn alert(&self) -> Option<AlertDescription> {
        match &self.failure {
            Some(Failure::Tls(rustls::Error::AlertReceived(a))) => Some(*a),
            _ => None,
        }
    }

    /// Closed after a TLS 1.3 handshake with no reason given: worth a TLS 1.2 retry.
    fn ambiguous_tls13_close(&self) -> bool {
        self.stage == Stage::AfterHandshake
            && self.version.as_deref() == Some("TLSv1.3")
            && self.status_line.is_none()
            && matches!(self.failure, Some(Failure::Eof) | Some(Failure::Io(_)))
    }
}

/// Run the check.
pub fn check(s: Settings<'_>) -> Check {
    let first = attempt(&s, s.tls);
    let (outcome, note) = if s.tls.is_none() && first.ambiguous_tls13_close() {
        let retry = attempt(&s, Some(TlsVersion::V12));
        if retry.alert().is_some() || retry.status_line.is_some() {
            (retry, Some("TLS 1.3 closed the connection without giving a reason; this is the result of a retry with TLS 1.2".to_owned()))
        } else {
            (first, None)
        }
    } else {
        (first, None)
    };
    let mut check = classify(&s, &outcome);
    if let Some(n) = note {
        check.detail.insert(0, n);
    }
    check
}

fn versions(tls: Option<TlsVersion>) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static BOTH: [&rustls::SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];
    static V12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static V13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match tls {
        None => &BOTH,
        Some(TlsVersion::V12) => &V12,
        Some(TlsVersion::V13) => &V13,
    }
}

fn setup(cause: &'static str, summary: String, fix: &str) -> Failure {
    Failure::Setup { cause, summary, fix: fix.to_owned() }
}

fn attempt(s: &Settings<'_>, tls: Option<TlsVersion>) -> Attempt {
    let mut a = Attempt::new();
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let mut roots = RootCertStore::empty();
    for cert in s.roots {
        let _ = roots.add(CertificateDer::from(cert.der.clone()));
    }
    if roots.is_empty() {
        a.failure = Some(setup(
            "no_server_ca",
            format!("no certificate in {} can be used to verify the server", s.roots_flag),
            "Pass the CA that issued the server's certificate with --server-ca.",
        ));
        return a;
    }
    let inner = match WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build() {
        Ok(v) => v,
        Err(e) => {
            a.failure = Some(setup("no_server_ca", format!("{} cannot be used to verify the server: {e}", s.roots_flag), ""));
            return a;
        }
    };
    let verifier = Arc::new(RecordingVerifier { inner, seen: Mutex::new(None) });

    let key = match &s.client {
        Some(c) => match provider.key_provider.load_private_key(c.key.clone_key()) {
            Ok(signing) => {
                let chain = c.chain.iter().map(|d| CertificateDer::from(d.clone())).collect();
                Some(Arc::new(CertifiedKey::new(chain, signing)))
            }
            Err(e) => {
                a.failure = Some(setup(
                    "key_unusable",
                    format!("the TLS client cannot use the private key: {e}"),
                    "Use an unencrypted RSA (2048+), EC P-256/P-384 or Ed25519 key.",
                ));
                return a;
            }
        },
        None => None,
    };
    let recorder = Arc::new(Recorder { key, asked: Mutex::new(None) });

    let config = match ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions(tls)) {
        Ok(b) => b.dangerous().with_custom_certificate_verifier(verifier.clone()).with_client_cert_resolver(recorder.clone()),
        Err(e) => {
            a.failure = Some(setup("tls_error", format!("cannot configure TLS: {e}"), ""));
            return a;
        }
    };
    let name_text = s.sni.unwrap_or(&s.target.host).to_owned();
    let server_name = match ServerName::try_from(name_text.clone()) {
        Ok(n) => n,
        Err(_) => {
            a.failure = Some(setup(
                "bad_server_name",
                format!("'{name_text}' is not a valid DNS name or IP address for SNI"),
                "Pass --sni with the DNS name in the server's certificate.",
            ));
            return a;
        }
    };

    let sock = match connect(s.target, s.timeout, &mut a) {
        Some(sock) => sock,
        None => return a,
    };
    let conn = match ClientConnection::new(Arc::new(config), server_name) {
        Ok(c) => c,
        Err(e) => {
            a.failure = Some(Failure::Tls(e));
            return a;
        }
    };
    a.stage = Stage::Handshake;
    let host_header = if s.target.host.contains(':') { format!("[{}]", s.target.host) } else { s.target.host.clone() };
    talk(conn, sock, s.timeout, &host_header, &mut a);
    a.asked = recorder.asked.lock().ok().and_then(|g| g.clone());
    a.server_cert = verifier.seen.lock().ok().and_then(|g| g.clone());
    a
}

fn connect(target: &Target, timeout: Duration, a: &mut Attempt) -> Option<TcpStream> {
    let addrs: Vec<SocketAddr> = match (target.host.as_str(), target.port).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            a.failure = Some(Failure::Resolve(e.to_string()));
            return None;
        }
    };
    let mut last: Option<io::Error> = None;
    for addr in addrs {
        a.address = Some(addr);
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(sock) => {
                let _ = sock.set_read_timeout(Some(timeout));
                let _ = sock.set_write_timeout(Some(timeout));
                let _ = sock.set_nodelay(true);
                return Some(sock);
            }
            Err(e) => last = Some(e),
        }
    }
    a.failure = Some(match last {
        Some(e) => Failure::Io(e),
        None => Failure::Resolve("the name has no addresses".into()),
    });
    None
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Handshake, then `GET /` and the first line of the answer. Bounded: every
/// socket operation has the timeout, and the whole exchange three times it.
fn talk(mut conn: ClientConnection, mut sock: TcpStream, timeout: Duration, host: &str, a: &mut Attempt) {
    let deadline = Instant::now() + timeout * 3;
    while conn.is_handshaking() {
        if Instant::now() > deadline {
            a.failure = Some(Failure::Io(io::Error::new(io::ErrorKind::TimedOut, "handshake deadline")));
            return;
        }
        while conn.wants_write() {
            if let Err(e) = conn.write_tls(&mut sock) {
                // The server may have sent an alert before closing: read it.
                if let Some(f) = read_pending_alert(&mut conn, &mut sock) {
                    a.failure = Some(f);
                } else {
                    a.failure = Some(Failure::Io(e));
                }
                return;
            }
        }
        if !conn.is_handshaking() {
            break;
        }
        match conn.read_tls(&mut sock) {
            Ok(0) => {
                a.failure = Some(Failure::Eof);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                a.failure = Some(Failure::Io(e));
                return;
            }
        }
        if let Err(e) = conn.process_new_packets() {
            let _ = conn.write_tls(&mut sock); // our own alert, as a courtesy
            a.failure = Some(Failure::Tls(e));
            return;
        }
    }
    a.stage = Stage::AfterHandshake;
    a.version = conn.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    });
    a.cipher = conn.negotiated_cipher_suite().map(|c| format!("{:?}", c.suite()));

    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mtls-authz-doctor\r\nConnection: close\r\n\r\n");
    if conn.writer().write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut write_failed: Option<io::Error> = None;
    while conn.wants_write() {
        if let Err(e) = conn.write_tls(&mut sock) {
            write_failed = Some(e);
            break;
        }
    }
    let mut response: Vec<u8> = Vec::new();
    loop {
        if Instant::now() > deadline {
            a.timed_out_waiting = true;
            return;
        }
        let eof = match conn.read_tls(&mut sock) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if is_timeout(&e) => {
                a.timed_out_waiting = true;
                return;
            }
            Err(e) => {
                a.failure = Some(Failure::Io(write_failed.take().unwrap_or(e)));
                return;
            }
        };
        match conn.process_new_packets() {
            Err(e) => {
                a.failure = Some(Failure::Tls(e));
                return;
            }
            Ok(state) => {
                let n = state.plaintext_bytes_to_read();
                if n > 0 {
                    let mut buf = vec![0u8; n];
                    if let Ok(got) = conn.reader().read(&mut buf) {
                        response.extend_from_slice(buf.get(..got).unwrap_or_default());
                    }
                }
            }
        }
        if let Some(end) = response.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(response.get(..end).unwrap_or_default()).into_owned();
            a.status_line = Some(line);
            return;
        }
        if eof || response.len() > 16 * 1024 {
            if response.is_empty() {
                a.failure = Some(Failure::Eof);
            } else {
                a.status_line = Some(String::from_utf8_lossy(&response).chars().take(80).collect());
            }
            return;
        }
    }
}

/// After a failed write: is there an alert waiting in the receive buffer?
fn read_pending_alert(conn: &mut ClientConnection, sock: &mut TcpStream) -> Option<Failure> {
    for _ in 0..4 {
        match conn.read_tls(sock) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    return Some(Failure::Tls(e));
                }
            }
        }
    }
    None
}

/// The TLS name of an alert (RFC 8446 section 6), as servers log it.
pub fn alert_name(a: AlertDescription) -> String {
    let code = u8::from(a);
    let name = match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return format!("alert {code}"),
    };
    name.to_owned()
}

/// (status, cause, summary, fix).
type Verdict = (Status, &'static str, String, String);

fn classify(s: &Settings<'_>, a: &Attempt) -> Check {
    let addr = format!("{}:{}", s.target.host, s.target.port);
    let sni = s.sni.unwrap_or(&s.target.host);
    let sent = a.asked.as_ref().is_some_and(|x| x.sent);
    let asked = a.asked.is_some();
    let had_key = s.client.is_some();

    let mut detail: Vec<String> = Vec::new();
    detail.push(format!(
        "connected to {} as '{sni}'{}",
        a.address.map(|x| x.to_string()).unwrap_or_else(|| addr.clone()),
        if s.sni.is_none() && s.target.host.parse::<std::net::IpAddr>().is_ok() { " (an IP address: no SNI sent)" } else { "" }
    ));
    if let Some(v) = &a.version {
        detail.push(format!("negotiated {v}, {}", a.cipher.clone().unwrap_or_default()));
    }
    match &a.asked {
        Some(x) => {
            detail.push(format!(
                "server asked for a client certificate; {}",
                if x.sent {
                    "ours was sent"
                } else if had_key {
                    "ours was NOT sent: none of the server's signature algorithms fits our key"
                } else {
                    "none was sent (no --key given)"
                }
            ));
            if !x.ca_names.is_empty() {
                detail.push(format!(
                    "server accepts certificates from: {}",
                    x.ca_names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
                ));
            }
            if !x.sent && had_key {
                detail.push(format!("server's signature algorithms: {}", x.schemes.join(", ")));
            }
        }
        None if a.stage == Stage::AfterHandshake => detail.push("server did not ask for a client certificate".into()),
        None => {}
    }
    let server_cert = a.server_cert.as_deref().and_then(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c));
    let server_names: Vec<String> = server_cert
        .as_ref()
        .map(|c| {
            let mut names = Vec::new();
            if let Ok(Some(san)) = c.subject_alternative_name() {
                for n in &san.value.general_names {
                    match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_owned()),
                        x509_parser::extensions::GeneralName::IPAddress(ip) => names.push(ip_text(ip)),
                        _ => {}
                    }
                }
            }
            names
        })
        .unwrap_or_default();
    if let Some(c) = &server_cert {
        detail.push(format!(
            "server certificate: '{}', issued by '{}', names: {}",
            dn(c.subject()),
            dn(c.issuer()),
            if server_names.is_empty() { "-".to_owned() } else { server_names.join(", ") }
        ));
    }
    if let Some(line) = &a.status_line {
        detail.push(format!("HTTP answer to GET /: {line}"));
    }

    let verdict: Verdict = match &a.failure {
        None => success(s, a, sent, asked, had_key),
        Some(Failure::Setup { cause, summary, fix }) => (Status::Fail, cause, summary.clone(), fix.clone()),
        Some(Failure::Resolve(e)) => (
            Status::Fail,
            "dns",
            format!("cannot resolve '{}': {e}", s.target.host),
            "Check the host name, or connect to an IP address and pass the certificate's name with --sni.".into(),
        ),
        Some(Failure::Io(e)) => io_verdict(a.stage, e, &addr, s.timeout, sent),
        Some(Failure::Eof) => eof_verdict(a.stage, sent),
        Some(Failure::Tls(rustls::Error::AlertReceived(alert))) => alert_verdict(*alert, s, a, sent, asked, had_key),
        Some(Failure::Tls(rustls::Error::InvalidCertificate(e))) => server_cert_verdict(e, s, sni, &server_cert, &server_names),
        Some(Failure::Tls(rustls::Error::InvalidMessage(e))) if a.stage == Stage::Handshake => (
            Status::Fail,
            "not_tls",
            format!("the server on {addr} does not speak TLS (unexpected bytes: {e:?}); plain HTTP on this port?"),
            "Connect to the TLS listener's port.".into(),
        ),
        Some(Failure::Tls(e @ rustls::Error::PeerIncompatible(_))) => (
            Status::Fail,
            "tls_incompatible",
            format!("no common ground with the server: {e}"),
            "Check the server's TLS versions, cipher suites and signature algorithms (try --tls 1.2 or --tls 1.3).".into(),
        ),
        Some(Failure::Tls(e)) => {
            (Status::Fail, "tls_error", format!("TLS error: {e}"), "See the server's log for its side of the handshake.".into())
        }
    };
    let (status, cause, summary, fix) = verdict;
    if status == Status::Fail && !s.local_failures.is_empty() && a.stage != Stage::Connect {
        detail.push("offline checks that failed and may explain it:".into());
        detail.extend(s.local_failures.iter().map(|f| format!("  {f}")));
    }
    let data = json!({
        "address": addr,
        "sni": sni,
        "tls_version": a.version,
        "cipher_suite": a.cipher,
        "alert": a.alert().map(alert_name),
        "client_cert_requested": asked,
        "client_cert_sent": sent,
        "acceptable_ca_names": a.asked.as_ref().map(|x| x.ca_names.clone()).unwrap_or_default(),
        "server_certificate": server_cert.as_ref().map(|c| json!({"subject": dn(c.subject()), "issuer": dn(c.issuer()), "names": server_names})),
        "http_status_line": a.status_line,
    });
    let mut check = Check::new("handshake", status, summary).detail(detail).data(data);
    if status != Status::Pass {
        check = check.cause(cause);
        if !fix.is_empty() {
            check = check.fix(fix);
        }
    }
    check
}

fn ip_text(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        std::net::IpAddr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        std::net::IpAddr::from(v6).to_string()
    } else {
        "(bad IP)".into()
    }
}

fn success(s: &Settings<'_>, a: &Attempt, sent: bool, asked: bool, had_key: bool) -> Verdict {
    let version = a.version.clone().unwrap_or_default();
    let answer = match (&a.status_line, a.timed_out_waiting) {
        (Some(line), _) => format!("; server answered '{line}'"),
        (None, true) => format!("; no HTTP answer within {} s", s.timeout.as_secs()),
        (None, false) => String::new(),
    };
    if sent {
        (Status::Pass, "", format!("handshake ok ({version}): the server accepted our client certificate{answer}"), String::new())
    } else if asked {
        (
            Status::Warn,
            "client_cert_optional",
            format!("handshake ok ({version}) without a client certificate: the server asked for one but does not require it{answer}"),
            if had_key {
                "Our key fits none of the server's signature algorithms (see detail).".into()
            } else {
                "Pass --key to present the certificate. If the server must require one, set require_client_certificate: true (Envoy)."
                    .into()
            },
        )
    } else {
        (
            Status::Warn,
            "client_cert_not_requested",
            format!(
                "handshake ok ({version}), but the server did not ask for a client certificate: this listener does not do mTLS{answer}"
            ),
            "Envoy: give the listener's DownstreamTlsContext a validation_context and require_client_certificate: true.".into(),
        )
    }
}

fn io_verdict(stage: Stage, e: &io::Error, addr: &str, timeout: Duration, sent: bool) -> Verdict {
    let secs = timeout.as_secs();
    match (stage, e.kind()) {
        (Stage::Connect, io::ErrorKind::ConnectionRefused) => (
            Status::Fail,
            "connection_refused",
            format!("connection refused: nothing listens on {addr}"),
            "Check the address and port, and that the server (the Envoy listener) is running: `ss -ltn`.".into(),
        ),
        (Stage::Connect, _) if is_timeout(e) => (
            Status::Fail,
            "connect_timeout",
            format!("connection timed out: no answer from {addr} within {secs} s"),
            "The host is down or a firewall drops the packets; check the address and the network path.".into(),
        ),
        (Stage::Connect, _) => {
            (Status::Fail, "connect_failed", format!("cannot connect to {addr}: {e}"), "Check the address and the network path.".into())
        }
        (Stage::Handshake, _) if is_timeout(e) => (
            Status::Fail,
            "handshake_timeout",
            format!("the TLS handshake did not finish within {secs} s"),
            "The port accepts connections but does not answer TLS: is it the TLS listener?".into(),
        ),
        (Stage::Handshake, _) => (
            Status::Fail,
            "connection_reset",
            format!("the server reset the connection during the handshake ({e})"),
            "See the server's log for the TLS error on its side.".into(),
        ),
        (_, _) => eof_verdict(Stage::AfterHandshake, sent),
    }
}

fn eof_verdict(stage: Stage, sent: bool) -> Verdict {
    if stage == Stage::Handshake {
        (
            Status::Fail,
            "closed_during_handshake",
            "the server closed the connection during the handshake without a TLS alert".into(),
            "See the server's log (Envoy: the listener's TLS error); also check that this port is the TLS listener.".into(),
        )
    } else {
        let why = if sent { ": this is how some servers reject a client certificate under TLS 1.3" } else { "" };
        (
            Status::Fail,
            "closed_after_handshake",
            format!("the server closed the connection right after the handshake without answering{why}"),
            "See the server's log for its side; try --tls 1.2, where rejections arrive as alerts.".into(),
        )
    }
}

fn alert_verdict(alert: AlertDescription, s: &Settings<'_>, a: &Attempt, sent: bool, asked: bool, had_key: bool) -> Verdict {
    let name = alert_name(alert);
    let when = if a.stage == Stage::AfterHandshake { " after the handshake" } else { "" };
    let trust_fix = "Make the server trust the CA that issued our certificate (Envoy: validation_context.trusted_ca), \
                     or use a certificate from a CA it trusts; if an intermediate is involved, append it to the client's \
                     certificate file so the client sends it.";
    match u8::from(alert) {
        116 | 41 => cert_required(&name, when, had_key),
        40 if asked && !sent => cert_required(&name, when, had_key),
        40 if sent => (
            Status::Fail,
            "handshake_failure",
            format!("the server rejected the handshake{when} (alert handshake_failure) after receiving our certificate"),
            "Usually the certificate is not accepted; see the server's log for the reason.".into(),
        ),
        40 => (
            Status::Fail,
            "handshake_failure",
            format!("the server found nothing in common with us (alert handshake_failure{when}): TLS version, cipher suite or signature algorithm"),
            "Compare the server's TLS settings with TLS 1.2/1.3 and modern ciphers; try --tls 1.2.".into(),
        ),
        48 => (
            Status::Fail,
            "server_untrusted_ca",
            format!("server does not trust our CA (alert unknown_ca{when}): the chain of our certificate does not end at a CA the server trusts"),
            trust_fix.into(),
        ),
        42 | 46 => (
            Status::Fail,
            "server_rejected_certificate",
            format!("server does not trust our certificate (alert {name}{when})"),
            format!("The server found our certificate unacceptable; see the offline checks and the server's log. {trust_fix}"),
        ),
        43 => (
            Status::Fail,
            "server_unsupported_certificate",
            format!("server does not accept our certificate for client authentication (alert unsupported_certificate{when}); usually its extendedKeyUsage lacks clientAuth"),
            "Reissue the certificate with extendedKeyUsage=clientAuth.".into(),
        ),
        45 => {
            let when_expired = s.client.as_ref().and_then(|c| c.not_after).map(|t| format!(" (not after {})", format_rfc3339(t))).unwrap_or_default();
            (
                Status::Fail,
                "client_cert_expired",
                format!("our certificate expired{when_expired}: the server rejected it with certificate_expired{when} (or it is not yet valid, or a CA of its chain expired)"),
                "Issue a new certificate and deploy it with its key; check the clocks if the dates look right.".into(),
            )
        }
        44 => (
            Status::Fail,
            "client_cert_revoked",
            format!("server says our certificate is revoked (alert certificate_revoked{when})"),
            "Issue a new certificate; if it should not be revoked, check the CRL the server loaded.".into(),
        ),
        51 => (
            Status::Fail,
            "client_signature_rejected",
            format!("server could not verify our handshake signature (alert decrypt_error{when}): the private key probably does not belong to the certificate"),
            "Deploy the key that belongs to this certificate (see the key check).".into(),
        ),
        49 => (
            Status::Fail,
            "access_denied",
            format!("server refused access (alert access_denied{when})"),
            "The server's access control rejected this client; see its log.".into(),
        ),
        70 => (
            Status::Fail,
            "protocol_version",
            format!("no TLS version in common with the server (alert protocol_version{when})"),
            "The server needs another TLS version; try --tls 1.2 or --tls 1.3.".into(),
        ),
        112 => (
            Status::Fail,
            "sni_unrecognized",
            format!("server does not serve the name we sent as SNI, '{}' (alert unrecognized_name{when})", s.sni.unwrap_or(&s.target.host)),
            "Pass --sni with a name the listener serves (Envoy: a filter chain's server_names).".into(),
        ),
        _ => (
            Status::Fail,
            "tls_alert",
            format!("server aborted the connection with alert {name}{when}"),
            "See the server's log for the reason.".into(),
        ),
    }
}

fn cert_required(name: &str, when: &str, had_key: bool) -> Verdict {
    let why = if had_key { "" } else { ": no --key given" };
    (
        Status::Fail,
        "client_cert_required",
        format!("server demands a certificate, and none was sent{why} (alert {name}{when})"),
        if had_key {
            "Our certificate was not sent: see the detail for the server's accepted signature algorithms.".into()
        } else {
            "Pass the certificate's key with --key; the client must present a certificate on this listener.".into()
        },
    )
}

fn server_cert_verdict(
    e: &CertificateError,
    s: &Settings<'_>,
    sni: &str,
    server_cert: &Option<x509_parser::certificate::X509Certificate<'_>>,
    server_names: &[String],
) -> Verdict {
    let issuer = server_cert.as_ref().map(|c| dn(c.issuer())).unwrap_or_else(|| "?".into());
    let names = if server_names.is_empty() { "no DNS/IP names".to_owned() } else { server_names.join(", ") };
    match e {
        CertificateError::UnknownIssuer => (
            Status::Fail,
            "server_cert_untrusted",
            format!("server certificate not trusted by {}: it was issued by '{issuer}', which is not a CA in that file", s.roots_flag),
            "Pass the CA that issued the server's certificate with --server-ca (the server's CA is often not the client CA).".into(),
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
            Status::Fail,
            "server_name_mismatch",
            format!("SNI/name mismatch: the server certificate is for {names}, not '{sni}'"),
            "Connect with --sni set to a name in the server's certificate, or reissue the server certificate with that name as a SAN."
                .into(),
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
            Status::Fail,
            "server_cert_expired",
            format!(
                "the server certificate expired{}",
                server_cert.as_ref().map(|c| format!(" {}", format_rfc3339(c.validity().not_after.timestamp()))).unwrap_or_default()
            ),
            "Renew the server's certificate.".into(),
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
            Status::Fail,
            "server_cert_not_yet_valid",
            "the server certificate is not valid yet".into(),
            "Check the clocks here and on the server (`date -u`).".into(),
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
            Status::Fail,
            "server_cert_invalid",
            "the server certificate may not be used by a TLS server (its extendedKeyUsage lacks serverAuth)".into(),
            "Reissue the server certificate with extendedKeyUsage=serverAuth.".into(),
        ),
        other => (
            Status::Fail,
            "server_cert_invalid",
            format!("the server certificate was rejected: {other:?}"),
            "Check the server's certificate chain against --server-ca.".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(Target::parse("127.0.0.1:8443").unwrap(), Target { host: "127.0.0.1".into(), port: 8443 });
        assert_eq!(Target::parse("[::1]:443").unwrap(), Target { host: "::1".into(), port: 443 });
        assert_eq!(Target::parse("envoy:10000").unwrap().host, "envoy");
        for bad in ["localhost", ":443", "host:", "host:0", "host:99999", "::1:443"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn alert_names_are_the_rfc_ones() {
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(alert_name(AlertDescription::CertificateRequired), "certificate_required");
        assert_eq!(alert_name(AlertDescription::Unknown(200)), "alert 200");
    }
}
