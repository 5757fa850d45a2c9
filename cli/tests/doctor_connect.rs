//! `mtls-authz doctor --connect` against a real TLS server: a rustls server
//! on 127.0.0.1 (ephemeral port) that requires client certificates from one
//! CA, started inside the test. Each way a handshake goes wrong must come
//! back as its cause in words, over TLS 1.3 (where client-certificate
//! rejections arrive after the handshake) and TLS 1.2 (inside it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod doctor_support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use doctor_support::{assert_check, check, days, doctor_json, p, Ca, Leaf, Setup};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

/// Start a TLS server for `localhost`/127.0.0.1 with a certificate from
/// `server_ca`; it requires client certificates from `client_ca` (or asks
/// for none). It answers one HTTP request per connection with 200 "ok".
fn start_server(server_ca: &Ca, client_ca: Option<&Ca>) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let leaf = server_ca.leaf(&Leaf::server());
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(CertificateDer::from(ca.issuer.der().to_vec())).unwrap();
            builder.with_client_cert_verifier(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap())
        }
        None => builder.with_no_client_auth(),
    };
    let config = Arc::new(
        builder
            .with_single_cert(
                vec![CertificateDer::from(leaf.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
            )
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Detached: the accept loop ends with the test process.
    thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let config = config.clone();
            thread::spawn(move || serve(config, sock));
        }
    });
    port
}

fn serve(config: Arc<ServerConfig>, sock: TcpStream) {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = sock.set_write_timeout(Some(Duration::from_secs(5)));
    let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), sock);
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                request.extend_from_slice(&buf[..n]);
                if request.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => {
                // rustls has written its alert. Drain what the client still
                // sends before closing, so the kernel does not answer it with a
                // reset that could overtake the alert.
                let _ = tls.sock.shutdown(Shutdown::Write);
                let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(500)));
                let mut sink = [0u8; 4096];
                while matches!(tls.sock.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
        }
    }
    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn connect_args(s: &Setup, port: u16, extra: &[&str]) -> Vec<String> {
    let mut args = s.base();
    args.extend(["--connect".to_owned(), format!("127.0.0.1:{port}"), "--sni".into(), "localhost".into()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

const VERSIONS: [Option<&str>; 3] = [None, Some("1.3"), Some("1.2")];

fn with_tls(mut args: Vec<String>, tls: Option<&str>) -> Vec<String> {
    if let Some(v) = tls {
        args.extend(["--tls".into(), v.into()]);
    }
    args
}

#[test]
fn healthy_certificate_is_accepted() {
    let s = Setup::new("connect-healthy");
    let port = start_server(&s.root, Some(&s.root));
    for tls in VERSIONS {
        let run = doctor_json(&with_tls(connect_args(&s, port, &[]), tls));
        assert_eq!(run.code, 0, "{tls:?}: {run:#?}");
        let c = assert_check(&run, "handshake", "pass", None, &["handshake ok", "accepted our client certificate", "HTTP/1.1 200 OK"]);
        assert_eq!(c["data"]["client_cert_requested"], true);
        assert_eq!(c["data"]["client_cert_sent"], true);
        assert_eq!(c["data"]["http_status_line"], "HTTP/1.1 200 OK");
        assert_eq!(c["data"]["alert"], serde_json::Value::Null);
        assert_eq!(c["data"]["tls_version"], if tls == Some("1.2") { "TLSv1.2" } else { "TLSv1.3" });
        assert_eq!(c["data"]["acceptable_ca_names"][0], "CN=Doctor Test Root CA,O=Doctor Test", "{c}");
    }
}

#[test]
fn rogue_ca_certificate_is_not_trusted_by_the_server() {
    let s = Setup::new("connect-rogue");
    let port = start_server(&s.root, Some(&s.root));
    let rogue = Ca::root("Rogue CA");
    let leaf = rogue.leaf(&Leaf::client());
    let cert = s.write("rogue.pem", &leaf.pem);
    let key = s.write("rogue.key", &leaf.key_pem);
    for tls in VERSIONS {
        let args = vec!["--cert", &cert, "--key", &key, "--ca", &p(&s.ca)].into_iter().map(str::to_owned).collect::<Vec<_>>();
        let mut args = with_tls(args, tls);
        args.extend(["--connect".into(), format!("127.0.0.1:{port}"), "--sni".into(), "localhost".into()]);
        let run = doctor_json(&args);
        assert_eq!(run.code, 1);
        let c = assert_check(&run, "handshake", "fail", Some("server_untrusted_ca"), &["server does not trust our CA", "unknown_ca"]);
        assert_eq!(c["data"]["alert"], "unknown_ca", "{tls:?}");
        assert_eq!(c["data"]["client_cert_sent"], true);
        // The offline chain check says the same thing first, and the handshake points at it.
        assert_check(&run, "chain", "fail", Some("missing_issuer"), &["CN=Rogue CA"]);
        assert!(c["detail"].to_string().contains("chain: missing intermediate or untrusted CA"), "{c}");
    }
}

#[test]
fn no_certificate_when_the_server_demands_one() {
    let s = Setup::new("connect-nocert");
    let port = start_server(&s.root, Some(&s.root));
    for tls in VERSIONS {
        let mut args = with_tls(vec!["--cert".into(), p(&s.cert), "--ca".into(), p(&s.ca)], tls);
        args.extend(["--connect".into(), format!("127.0.0.1:{port}"), "--sni".into(), "localhost".into()]);
        let run = doctor_json(&args);
        assert_eq!(run.code, 1, "{tls:?}: {run:#?}");
        let c = assert_check(
            &run,
            "handshake",
            "fail",
            Some("client_cert_required"),
            &["server demands a certificate", "none was sent", "no --key given"],
        );
        assert_eq!(c["data"]["client_cert_requested"], true);
        assert_eq!(c["data"]["client_cert_sent"], false);
        assert!(c["fix"].as_str().unwrap().contains("--key"));
    }
}

#[test]
fn expired_certificate_is_rejected_by_the_server() {
    let s = Setup::new("connect-expired");
    let port = start_server(&s.root, Some(&s.root));
    let leaf = s.root.leaf(&Leaf { not_before: days(-100), not_after: days(-1), ..Leaf::client() });
    let cert = s.write("expired.pem", &leaf.pem);
    let key = s.write("expired.key", &leaf.key_pem);
    let run = doctor_json(&[
        "--cert",
        &cert,
        "--key",
        &key,
        "--ca",
        &p(&s.ca),
        "--connect",
        &format!("127.0.0.1:{port}"),
        "--sni",
        "localhost",
        "--tls",
        "1.2",
    ]);
    assert_check(&run, "validity", "fail", Some("expired"), &[]);
    let c = assert_check(&run, "handshake", "fail", Some("client_cert_expired"), &["our certificate expired"]);
    assert_eq!(c["data"]["alert"], "certificate_expired");
}

#[test]
fn server_certificate_problems_are_ours_to_fix() {
    let s = Setup::new("connect-server-cert");
    let port = start_server(&s.root, Some(&s.root));
    // --server-ca that did not issue the server's certificate.
    let other = Ca::root("Unrelated CA");
    let other_pem = s.write("other-ca.pem", other.pem());
    let run = doctor_json(&connect_args(&s, port, &["--server-ca", &other_pem]));
    assert_eq!(run.code, 1);
    let c = assert_check(
        &run,
        "handshake",
        "fail",
        Some("server_cert_untrusted"),
        &["server certificate not trusted by --server-ca", "CN=Doctor Test Root CA"],
    );
    assert_eq!(
        c["data"]["server_certificate"]["subject"], "CN=localhost,O=shop",
        "the engine's RFC 4514 spelling, as explain shows a subject"
    );

    // A name the server certificate does not carry.
    let mut args = s.base();
    args.extend(["--connect".into(), format!("127.0.0.1:{port}"), "--sni".into(), "payments.internal".into()]);
    let run = doctor_json(&args);
    assert_check(&run, "handshake", "fail", Some("server_name_mismatch"), &["SNI/name mismatch", "localhost", "payments.internal"]);

    // No --sni: the IP address is verified against the certificate's IP SAN.
    let mut args = s.base();
    args.extend(["--connect".into(), format!("127.0.0.1:{port}")]);
    let run = doctor_json(&args);
    assert_check(&run, "handshake", "pass", None, &["handshake ok"]);
}

#[test]
fn wrong_key_is_caught_by_the_server_too() {
    let s = Setup::new("connect-wrong-key");
    let port = start_server(&s.root, Some(&s.root));
    let other = s.root.leaf(&Leaf::client());
    let key = s.write("other.key", &other.key_pem);
    let run = doctor_json(&[
        "--cert",
        &p(&s.cert),
        "--key",
        &key,
        "--ca",
        &p(&s.ca),
        "--connect",
        &format!("127.0.0.1:{port}"),
        "--sni",
        "localhost",
        "--tls",
        "1.2",
    ]);
    assert_check(&run, "key", "fail", Some("key_mismatch"), &[]);
    let c = check(&run, "handshake");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["data"]["client_cert_sent"], true, "{c}");
}

#[test]
fn listener_without_client_auth_is_a_warning() {
    let s = Setup::new("connect-no-mtls");
    let port = start_server(&s.root, None);
    let run = doctor_json(&connect_args(&s, port, &[]));
    assert_eq!(run.code, 0, "a warning, not a failure: {run:#?}");
    let c = assert_check(&run, "handshake", "warn", Some("client_cert_not_requested"), &["did not ask for a client certificate"]);
    assert_eq!(c["data"]["client_cert_requested"], false);
}

#[test]
fn nothing_listening_is_connection_refused() {
    let s = Setup::new("connect-refused");
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let run = doctor_json(&connect_args(&s, port, &["--timeout", "2"]));
    assert_eq!(run.code, 1);
    assert_check(&run, "handshake", "fail", Some("connection_refused"), &["connection refused", &format!("127.0.0.1:{port}")]);
}

#[test]
fn a_plain_http_port_is_not_tls() {
    let s = Setup::new("connect-plain");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf);
            let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let run = doctor_json(&connect_args(&s, port, &[]));
    assert_check(&run, "handshake", "fail", Some("not_tls"), &["does not speak TLS"]);
}
