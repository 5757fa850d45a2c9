//! `mtls-authz doctor` offline: every failure cause, minted with rcgen at
//! test time, is reported as the named cause in the right check — and a
//! healthy certificate passes every check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod doctor_support;

use std::process::Command;

use common::PAYMENT_POLICY;
use doctor_support::{assert_check, check, days, doctor_json, doctor_text, p, Ca, Leaf, Setup};
use rcgen::{ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, PKCS_ED25519};

fn args(base: Vec<String>, more: &[&str]) -> Vec<String> {
    let mut all = base;
    all.extend(more.iter().map(|s| s.to_string()));
    all
}

#[test]
fn healthy_certificate_passes_every_check() {
    let s = Setup::new("doctor-healthy");
    let other_serial: &[u8] = &[0x99, 0x01];
    let crl = s.write("ca.crl", s.root.crl(&[other_serial], days(-1), days(7)));
    let policy = s.write("policy.json", PAYMENT_POLICY);
    let run = doctor_json(&args(s.base(), &["--crl", &crl, "--policy", &policy, "--method", "POST", "--path", "/api/payment/create"]));
    assert_eq!(run.code, 0, "{run:#?}");
    let report = run.json();
    assert_eq!(report["ok"], true);
    let ids: Vec<&str> = report["checks"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["files", "key", "validity", "chain", "usage", "revocation", "identity", "policy", "handshake"]);
    for id in ["files", "key", "validity", "chain", "usage", "revocation", "identity", "policy"] {
        let c = check(&run, id);
        assert_eq!(c["status"], "pass", "{id}: {c}");
        assert!(c["cause"].is_null() && c["fix"].is_null(), "{id}: {c}");
    }
    assert_eq!(check(&run, "handshake")["status"], "skip");
    assert_check(&run, "chain", "pass", None, &["CN=Doctor Test Root CA"]);
    assert_check(&run, "key", "pass", None, &["EC P-256", "belongs to the certificate"]);
}

#[test]
fn text_output_has_one_line_per_check_and_a_verdict() {
    let s = Setup::new("doctor-text");
    let run = doctor_text(&s.base());
    assert_eq!(run.code, 0, "{run:#?}");
    for id in ["files", "key", "validity", "chain", "usage", "revocation", "identity", "policy", "handshake"] {
        assert!(
            run.stdout.lines().any(|l| (l.starts_with("PASS  ") || l.starts_with("SKIP  ")) && l[6..].starts_with(id)),
            "no line for {id}:\n{}",
            run.stdout
        );
    }
    assert!(run.last_line().starts_with("doctor: OK"), "{}", run.stdout);

    let expired = s.root.leaf(&Leaf { not_before: days(-400), not_after: days(-3), ..Leaf::client() });
    let cert = s.write("expired.pem", &expired.pem);
    let run = doctor_text(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 1, "{run:#?}");
    let line = run.stdout.lines().find(|l| l.starts_with("FAIL  validity")).unwrap();
    assert!(line.contains("expired"), "{line}");
    assert!(run.stdout.lines().any(|l| l.trim_start().starts_with("fix: Issue a new certificate")), "{}", run.stdout);
    assert!(run.last_line().starts_with("doctor: PROBLEMS FOUND"), "{}", run.stdout);
}

// ---- validity ----------------------------------------------------------------

#[test]
fn expired_certificate_is_named_with_date_and_age() {
    let s = Setup::new("doctor-expired");
    let leaf = s.root.leaf(&Leaf { not_before: days(-400), not_after: days(-10), ..Leaf::client() });
    let cert = s.write("expired.pem", &leaf.pem);
    let key = s.write("expired.key", &leaf.key_pem);
    let run = doctor_json(&["--cert", &cert, "--key", &key, "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["ok"], false);
    let c = assert_check(&run, "validity", "fail", Some("expired"), &["expired", "days ago"]);
    assert!(c["summary"].as_str().unwrap().contains("10 days ago") || c["summary"].as_str().unwrap().contains("9 days ago"), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("new certificate"));
    // The chain is still sound: only the dates are wrong.
    assert_check(&run, "chain", "pass", None, &[]);
}

#[test]
fn not_yet_valid_certificate_says_when_it_starts() {
    let s = Setup::new("doctor-not-yet");
    let leaf = s.root.leaf(&Leaf { not_before: days(3), not_after: days(300), ..Leaf::client() });
    let cert = s.write("future.pem", &leaf.pem);
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 1);
    let c = assert_check(&run, "validity", "fail", Some("not_yet_valid"), &["not yet valid", "(in "]);
    assert!(c["fix"].as_str().unwrap().contains("clock"), "{c}");
}

#[test]
fn expiring_soon_is_a_warning_and_still_exit_0() {
    let s = Setup::new("doctor-soon");
    let leaf = s.root.leaf(&Leaf { not_after: days(5), ..Leaf::client() });
    let cert = s.write("soon.pem", &leaf.pem);
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 0, "warnings do not fail: {run:#?}");
    assert_eq!(run.json()["ok"], true);
    assert_check(&run, "validity", "warn", Some("expiring_soon"), &["expires soon", "30 days"]);
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca), "--warn-days", "3"]);
    assert_check(&run, "validity", "pass", None, &["valid until"]);
}

// ---- key -----------------------------------------------------------------------

#[test]
fn wrong_key_is_named() {
    let s = Setup::new("doctor-wrong-key");
    let other = s.root.leaf(&Leaf::client());
    let key = s.write("other.key", &other.key_pem);
    let run = doctor_json(&["--cert", &p(&s.cert), "--key", &key, "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 1);
    let c = assert_check(&run, "key", "fail", Some("key_mismatch"), &["does not belong to this certificate", "public keys differ"]);
    assert!(c["fix"].as_str().unwrap().contains("openssl pkey -pubout"), "{c}");

    // A key of another algorithm altogether.
    let ed = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let key = s.write("ed.key", ed.serialize_pem());
    let run = doctor_json(&["--cert", &p(&s.cert), "--key", &key, "--ca", &p(&s.ca)]);
    assert_check(&run, "key", "fail", Some("key_mismatch"), &["the key is Ed25519", "certificate's key is EC P-256"]);
}

#[test]
fn ed25519_sec1_and_der_keys_are_read() {
    let s = Setup::new("doctor-key-formats");
    // Ed25519 certificate and PKCS#8 key.
    let ed = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let leaf = s.root.leaf(&Leaf { key_pem: Some(ed.serialize_pem()), ..Leaf::client() });
    let (cert, key) = (s.write("ed.pem", &leaf.pem), s.write("ed.key", &leaf.key_pem));
    let run = doctor_json(&["--cert", &cert, "--key", &key, "--ca", &p(&s.ca)]);
    assert_check(&run, "key", "pass", None, &["Ed25519"]);

    // The same EC key as SEC1 ("EC PRIVATE KEY"), cut out of the PKCS#8 wrapper.
    let sec1 = sec1_from_pkcs8(&s.client.key_der);
    let key = s.write("client.sec1.pem", pem("EC PRIVATE KEY", &sec1));
    let run = doctor_json(&["--cert", &p(&s.cert), "--key", &key, "--ca", &p(&s.ca)]);
    assert_check(&run, "key", "pass", None, &["SEC1"]);

    // DER certificate and DER key.
    let cert = s.write("client.der", &s.client.der);
    let key = s.write("client.key.der", &s.client.key_der);
    let run = doctor_json(&["--cert", &cert, "--key", &key, "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_check(&run, "key", "pass", None, &["PKCS#8"]);
}

#[test]
fn rsa_keys_in_pkcs8_and_pkcs1_are_read() {
    // rcgen on ring cannot generate RSA keys; openssl (which the e2e PKI needs anyway) can.
    let s = Setup::new("doctor-rsa");
    let pkcs8 = s.dir.join("rsa.key");
    let Ok(out) =
        Command::new("openssl").args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"]).arg(&pkcs8).output()
    else {
        eprintln!("openssl not found: RSA key formats not tested");
        return;
    };
    assert!(out.status.success(), "{out:?}");
    let pem_text = std::fs::read_to_string(&pkcs8).unwrap();
    let leaf = s.root.leaf(&Leaf { key_pem: Some(pem_text), ..Leaf::client() });
    let cert = s.write("rsa.pem", &leaf.pem);
    let run = doctor_json(&["--cert", &cert, "--key", &p(&pkcs8), "--ca", &p(&s.ca)]);
    assert_check(&run, "key", "pass", None, &["RSA 2048-bit", "PKCS#8"]);

    let pkcs1 = s.dir.join("rsa1.key");
    let out = Command::new("openssl").args(["rsa", "-traditional", "-in"]).arg(&pkcs8).arg("-out").arg(&pkcs1).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::read_to_string(&pkcs1).unwrap().contains("BEGIN RSA PRIVATE KEY"));
    let run = doctor_json(&["--cert", &cert, "--key", &p(&pkcs1), "--ca", &p(&s.ca)]);
    assert_check(&run, "key", "pass", None, &["RSA 2048-bit", "PKCS#1"]);

    // The RSA key against the EC client certificate.
    let run = doctor_json(&["--cert", &p(&s.cert), "--key", &p(&pkcs1), "--ca", &p(&s.ca)]);
    assert_check(&run, "key", "fail", Some("key_mismatch"), &["the key is RSA 2048-bit"]);
}

#[test]
fn encrypted_key_is_reported_as_unreadable_block() {
    let s = Setup::new("doctor-encrypted");
    let key = s.write(
        "enc.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let run = doctor_json(&["--cert", &p(&s.cert), "--key", &key, "--ca", &p(&s.ca)]);
    assert_check(&run, "files", "fail", Some("unparsable_file"), &["enc.key block 1", "encrypted"]);
    assert_eq!(check(&run, "key")["status"], "skip");
}

// ---- chain ---------------------------------------------------------------------

#[test]
fn missing_intermediate_is_named_by_its_dn_and_found_with_chain() {
    let s = Setup::new("doctor-missing-int");
    let inter = s.root.intermediate("Doctor Issuing CA 7");
    let leaf = inter.leaf(&Leaf::client());
    let cert = s.write("leaf.pem", &leaf.pem);
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 1);
    let c = assert_check(&run, "chain", "fail", Some("missing_issuer"), &["missing intermediate", "CN=Doctor Issuing CA 7"]);
    assert!(c["fix"].as_str().unwrap().contains("--chain"), "{c}");

    // Given with --chain, the chain builds; the note says the client must send it.
    let chain = s.write("inter.pem", inter.pem());
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca), "--chain", &chain]);
    assert_eq!(run.code, 0, "{run:#?}");
    let c = assert_check(&run, "chain", "pass", None, &["Doctor Test Root CA", "1 intermediate"]);
    let detail = c["detail"].to_string();
    assert!(detail.contains("the client must send it too"), "{detail}");

    // In the certificate file after the leaf (what the client sends), also fine, and no note.
    let bundle = s.write("bundle.pem", format!("{}{}", leaf.pem, inter.pem()));
    let run = doctor_json(&["--cert", &bundle, "--ca", &p(&s.ca)]);
    let c = assert_check(&run, "chain", "pass", None, &[]);
    assert!(!c["detail"].to_string().contains("must send"), "{c}");
}

#[test]
fn untrusted_root_is_named() {
    let s = Setup::new("doctor-untrusted");
    let rogue = Ca::root("Rogue Root CA");
    let leaf = rogue.leaf(&Leaf::client());
    // The rogue root travels with the certificate, as bundles often do.
    let bundle = s.write("rogue-bundle.pem", format!("{}{}", leaf.pem, rogue.pem()));
    let run = doctor_json(&["--cert", &bundle, "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 1);
    let c = assert_check(&run, "chain", "fail", Some("untrusted_root"), &["untrusted root", "CN=Rogue Root CA", "not in --ca"]);
    assert!(c["summary"].as_str().unwrap().contains("Doctor Test Root CA"), "names what is trusted: {c}");

    // Without the root at hand the issuer is still named.
    let cert = s.write("rogue.pem", &leaf.pem);
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_check(&run, "chain", "fail", Some("missing_issuer"), &["untrusted CA", "CN=Rogue Root CA"]);

    // A self-signed client certificate.
    let self_signed = rcgen::generate_simple_self_signed(vec!["me.test".to_owned()]).unwrap();
    let cert = s.write("self.pem", self_signed.cert.pem());
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_check(&run, "chain", "fail", Some("untrusted_root"), &["self-signed"]);
}

#[test]
fn ca_without_ca_true_is_named() {
    let s = Setup::new("doctor-not-ca");
    let fake = s.root.intermediate_not_ca("Not Really A CA");
    let leaf = fake.leaf(&Leaf::client());
    let cert = s.write("leaf.pem", &leaf.pem);
    let chain = s.write("fake.pem", fake.pem());
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca), "--chain", &chain]);
    assert_eq!(run.code, 1);
    let c = assert_check(&run, "chain", "fail", Some("not_a_ca"), &["CN=Not Really A CA", "not a CA", "CA:TRUE"]);
    assert!(c["fix"].as_str().unwrap().contains("CA:TRUE"), "{c}");
}

#[test]
fn same_name_different_key_is_a_bad_signature() {
    let s = Setup::new("doctor-rekeyed");
    let again = Ca::root("Doctor Test Root CA"); // same name, new key: a PKI script run twice
    let leaf = again.leaf(&Leaf::client());
    let cert = s.write("leaf.pem", &leaf.pem);
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_check(&run, "chain", "fail", Some("bad_signature"), &["signature does not verify", "same name, different key"]);
}

// ---- usage -----------------------------------------------------------------------

#[test]
fn certificate_without_client_auth_eku_is_named() {
    let s = Setup::new("doctor-eku");
    let leaf = s.root.leaf(&Leaf { ekus: vec![ExtendedKeyUsagePurpose::ServerAuth], ..Leaf::client() });
    let cert = s.write("server-only.pem", &leaf.pem);
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 1);
    assert_check(&run, "usage", "fail", Some("no_client_auth_eku"), &["serverAuth", "does not include clientAuth"]);

    // No EKU at all, or anyExtendedKeyUsage: allowed.
    for ekus in [vec![], vec![ExtendedKeyUsagePurpose::Any]] {
        let leaf = s.root.leaf(&Leaf { ekus, ..Leaf::client() });
        let cert = s.write("any.pem", &leaf.pem);
        let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
        assert_check(&run, "usage", "pass", None, &[]);
    }

    // keyUsage without digitalSignature.
    let leaf = s.root.leaf(&Leaf { key_usages: vec![KeyUsagePurpose::KeyEncipherment], ..Leaf::client() });
    let cert = s.write("ku.pem", &leaf.pem);
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_check(&run, "usage", "fail", Some("no_digital_signature"), &["digitalSignature"]);
}

// ---- revocation ------------------------------------------------------------------

#[test]
fn revoked_serial_is_named() {
    let s = Setup::new("doctor-revoked");
    let crl = s.write("ca.crl", s.root.crl(&[&[0x1a, 0x2b, 0x3c]], days(-1), days(7)));
    let run = doctor_json(&args(s.base(), &["--crl", &crl]));
    assert_eq!(run.code, 1);
    assert_check(&run, "revocation", "fail", Some("revoked"), &["revoked", "0x1a2b3c", "ca.crl block 1", "KeyCompromise"]);
}

#[test]
fn unusable_crls_are_named() {
    let s = Setup::new("doctor-crl");
    // Past its nextUpdate.
    let stale = s.write("stale.crl", s.root.crl(&[], days(-30), days(-2)));
    let run = doctor_json(&args(s.base(), &["--crl", &stale]));
    assert_check(&run, "revocation", "fail", Some("crl_expired"), &["out of date", "nextUpdate"]);

    // From another CA: the leaf's issuer has no CRL.
    let other = Ca::root("Some Other CA");
    let foreign = s.write("other.crl", other.crl(&[], days(-1), days(7)));
    let run = doctor_json(&args(s.base(), &["--crl", &foreign]));
    assert_check(&run, "revocation", "fail", Some("crl_missing"), &["no CRL from", "CN=Doctor Test Root CA", "CN=Some Other CA"]);

    // Same issuer name, different key.
    let impostor = Ca::root("Doctor Test Root CA");
    let forged = s.write("forged.crl", impostor.crl(&[], days(-1), days(7)));
    let run = doctor_json(&args(s.base(), &["--crl", &forged]));
    assert_check(&run, "revocation", "fail", Some("crl_bad_signature"), &["signature does not verify"]);
}

// ---- files -------------------------------------------------------------------------

#[test]
fn garbage_block_is_named_by_file_block_and_line() {
    let s = Setup::new("doctor-garbage");
    let bundle = format!("{}# a comment line\n-----BEGIN CERTIFICATE-----\nMIIB!!notbase64\n-----END CERTIFICATE-----\n", s.root.pem());
    let ca = s.write("bundle.pem", &bundle);
    let run = doctor_json(&["--cert", &p(&s.cert), "--ca", &ca]);
    assert_eq!(run.code, 1);
    let line = bundle.lines().position(|l| l == "# a comment line").unwrap() + 2;
    let c = assert_check(
        &run,
        "files",
        "fail",
        Some("unparsable_file"),
        &["bundle.pem block 2", &format!("line {line}"), "CERTIFICATE", "invalid base64"],
    );
    assert!(c["fix"].as_str().unwrap().contains("openssl"), "{c}");
    // The good CA in the same file is still used.
    assert_check(&run, "chain", "pass", None, &[]);

    // Valid base64, not a certificate.
    let ca = s.write("junk.pem", "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n");
    let run = doctor_json(&["--cert", &p(&s.cert), "--ca", &ca]);
    assert_check(&run, "files", "fail", Some("unparsable_file"), &["junk.pem block 1 (line 1, CERTIFICATE)", "not an X.509 certificate"]);
    assert_check(&run, "chain", "skip", None, &[]);

    // A cut-off block, and a file that is neither PEM nor DER.
    let cert = s.write("cut.pem", s.client.pem.replace("-----END CERTIFICATE-----", ""));
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_check(&run, "files", "fail", Some("unparsable_file"), &["cut.pem block 1", "cut off"]);
    for id in ["validity", "chain", "usage", "identity"] {
        assert_eq!(check(&run, id)["status"], "skip", "{id}");
    }
    let cert = s.write("notes.txt", "this is not a certificate\n");
    let run = doctor_json(&["--cert", &cert, "--ca", &p(&s.ca)]);
    assert_check(&run, "files", "fail", Some("unparsable_file"), &["notes.txt", "neither PEM"]);
}

// ---- identity and policy -------------------------------------------------------------

#[test]
fn identity_fields_and_policy_decision_are_shown() {
    let s = Setup::new("doctor-policy");
    let policy = s.write("policy.json", PAYMENT_POLICY);
    let run = doctor_json(&args(s.base(), &["--policy", &policy, "--method", "POST", "--path", "/api/payment/create"]));
    let id = assert_check(&run, "identity", "pass", None, &["spiffe://shop.test/ns/prod/sa/order", "CN order-service"]);
    assert_eq!(id["data"]["spiffe_id"][0], "spiffe://shop.test/ns/prod/sa/order");
    assert_eq!(id["data"]["identity"]["cn"][0], "order-service");
    assert_eq!(id["data"]["identity"]["o"][0], "shop");
    assert_eq!(id["data"]["identity"]["dns_san"][0], "order.shop.test");
    assert_eq!(id["data"]["identity"]["sha256"].as_str().unwrap().len(), 64);
    let pol = assert_check(&run, "policy", "pass", None, &["allow", "orders-create-payment"]);
    assert_eq!(pol["data"]["rule"], "orders-create-payment");
    assert_eq!(pol["data"]["reason"], "matched an allow rule");

    // Denied: by rule, and by default.
    let run = doctor_json(&args(s.base(), &["--policy", &policy, "--method", "GET", "--path", "/api/payment/admin/x"]));
    assert_eq!(run.code, 1);
    let pol = assert_check(&run, "policy", "fail", Some("policy_deny"), &["deny", "nobody-on-admin", "matched a deny rule"]);
    assert!(pol["fix"].as_str().unwrap().contains("mtls-authz explain"), "{pol}");
    let run = doctor_json(&args(s.base(), &["--policy", &policy, "--path", "/elsewhere"]));
    assert_check(&run, "policy", "fail", Some("policy_deny"), &["deny: GET /elsewhere", "default_action is deny"]);

    // An invalid policy is a finding, with the engine's positioned errors.
    let bad = s.write("bad.json", r#"{"version": 1, "default_action": "maybe", "rules": []}"#);
    let run = doctor_json(&args(s.base(), &["--policy", &bad, "--path", "/"]));
    let pol = assert_check(&run, "policy", "fail", Some("invalid_policy"), &["invalid"]);
    assert!(pol["detail"][0].as_str().unwrap().starts_with(&format!("{bad}:1:")), "{pol}");
}

// ---- usage errors ------------------------------------------------------------------------

#[test]
fn unusable_command_lines_exit_2() {
    let s = Setup::new("doctor-usage");
    let run = doctor_json(&["--cert", "/nonexistent/c.pem", "--ca", &p(&s.ca)]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("cannot read certificate '/nonexistent/c.pem': no such file"), "{}", run.stderr);

    let run = doctor_json(&args(s.base(), &["--connect", "localhost"]));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("expected HOST:PORT"), "{}", run.stderr);

    for bad in [
        vec!["--path", "/x"],         // --path needs --policy
        vec!["--sni", "a.test"],      // --sni needs --connect
        vec!["--server-ca", "x.pem"], // --server-ca needs --connect
        vec!["--warn-days", "soon"],
        vec!["--format", "yaml"],
    ] {
        let run = doctor_json(&args(s.base(), &bad));
        assert_eq!(run.code, 2, "{bad:?}: {run:#?}");
    }
    let run = doctor_json(&["--cert", &p(&s.cert)]);
    assert_eq!(run.code, 2, "--ca is required");
}

// ---- helpers -----------------------------------------------------------------------------

fn pem(label: &str, der: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            b64.push(if k <= chunk.len() { A[((n >> (18 - 6 * k)) & 63) as usize] as char } else { '=' });
        }
    }
    let body: Vec<String> = b64.as_bytes().chunks(64).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", body.join("\n"))
}

/// The ECPrivateKey inside a PKCS#8 PrivateKeyInfo (the last element: an OCTET STRING).
fn sec1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    fn tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = input[0];
        let (len, hdr) = match input[1] {
            l if l < 0x80 => (l as usize, 2),
            0x81 => (input[2] as usize, 3),
            0x82 => ((input[2] as usize) << 8 | input[3] as usize, 4),
            _ => panic!("long length"),
        };
        (tag, &input[hdr..hdr + len], &input[hdr + len..])
    }
    let (_, body, _) = tlv(pkcs8);
    let (_, _, rest) = tlv(body); // version
    let (_, _, rest) = tlv(rest); // algorithm
    let (tag, key, _) = tlv(rest);
    assert_eq!(tag, 0x04);
    key.to_vec()
}
