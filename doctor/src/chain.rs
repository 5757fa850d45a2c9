//! Check 4: does a chain build from the certificate to a CA in `--ca`?
//!
//! Servers say only `unknown_ca` or "unable to get local issuer certificate",
//! which covers four different repairs: a missing intermediate, a root the
//! server does not trust, a CA re-keyed under the same name (the signature no
//! longer verifies), and a "CA" certificate that is not allowed to be one.
//! The chain is built the way a verifier does it, issuer name first, then the
//! signature, and the first break is named with the DN a person can search
//! their PKI for.

use mtls_authz_policy::timefmt::format_rfc3339;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::x509::{X509Name, X509Version};

use super::files::Cert;
use super::validity::{window, Window};
use super::{dn, Check, Status};

/// Longest chain we follow; real ones have two or three links.
const MAX_DEPTH: usize = 10;

/// Where a certificate of the path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client certificate itself.
    Leaf,
    /// After the leaf in `--cert`: the client sends it.
    CertFile,
    /// From `--chain`: known to us, but the client sends it only if its cert file has it too.
    ChainFile,
    /// A trust anchor from `--ca`.
    Ca,
}

/// One link of the path, leaf first.
#[derive(Debug, Clone)]
pub struct Link {
    pub cert: Cert,
    pub source: Source,
}

/// The check and the path it found (complete or not), for the CRL, usage and handshake checks.
pub struct Outcome {
    pub check: Check,
    pub path: Vec<Link>,
}

struct Node<'a> {
    cert: X509Certificate<'a>,
    file: &'a Cert,
    source: Source,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ref {
    Leaf,
    Pool(usize),
    Anchor(usize),
}

enum Signature {
    Verified,
    /// ring cannot check this algorithm; the link is accepted on its name.
    Unsupported,
    Bad,
}

fn verify(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Signature {
    match child.verify_signature(Some(issuer.public_key())) {
        Ok(()) => Signature::Verified,
        Err(X509Error::SignatureUnsupportedAlgorithm) => Signature::Unsupported,
        Err(_) => Signature::Bad,
    }
}

/// Same distinguished name: byte-identical, or equal once rendered (the
/// same name in another string type, as some CAs re-encode it).
pub fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || a.to_string() == b.to_string()
}

/// A problem found along the way: (cause, summary, fix).
struct Problem {
    cause: &'static str,
    summary: String,
    fix: String,
}

fn parse_all<'a>(certs: &'a [Cert], source: Source) -> Vec<Node<'a>> {
    certs.iter().filter_map(|c| c.parse().map(|cert| Node { cert, file: c, source })).collect()
}

/// Build and judge the path.
pub fn check(leaf: &Cert, extras: &[Cert], chain: &[Cert], cas: &[Cert], now: i64) -> Outcome {
    let skip = |why: &str| Outcome { check: Check::new("chain", Status::Skip, why), path: Vec::new() };
    let Some(leaf_cert) = leaf.parse() else {
        return skip("the certificate could not be read (see files)");
    };
    if cas.is_empty() {
        return skip("no usable CA certificate in --ca (see files)");
    }
    let leaf_node = Node { cert: leaf_cert, file: leaf, source: Source::Leaf };
    let mut pool = parse_all(extras, Source::CertFile);
    pool.extend(parse_all(chain, Source::ChainFile));
    let anchors = parse_all(cas, Source::Ca);
    let node = |r: Ref| -> &Node<'_> {
        match r {
            Ref::Leaf => &leaf_node,
            Ref::Pool(i) => pool.get(i).unwrap_or(&leaf_node),
            Ref::Anchor(i) => anchors.get(i).unwrap_or(&leaf_node),
        }
    };

    let mut path = vec![Ref::Leaf];
    let mut notes: Vec<String> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    let mut trusted = false;
    let mut current = Ref::Leaf;
    for _ in 0..MAX_DEPTH {
        let cur = node(current);
        // The certificate itself is a trust anchor (a pinned leaf, or an intermediate also in --ca).
        if let Some(i) = anchors.iter().position(|a| a.file.der == cur.file.der) {
            if current == Ref::Leaf {
                notes.push("the certificate itself is in --ca (trusted directly)".into());
            } else if let Some(last) = path.last_mut() {
                *last = Ref::Anchor(i);
            }
            trusted = true;
            break;
        }
        let issuer_name = cur.cert.issuer();
        let mut wrong_key: Vec<String> = Vec::new();
        let mut next: Option<Ref> = None;
        for (i, a) in anchors.iter().enumerate() {
            if !same_name(a.cert.subject(), issuer_name) {
                continue;
            }
            match verify(&cur.cert, &a.cert) {
                Signature::Verified => next = Some(Ref::Anchor(i)),
                Signature::Unsupported => {
                    notes.push(format!("the signature on '{}' uses an algorithm this check cannot verify", dn(cur.cert.subject())));
                    next = Some(Ref::Anchor(i));
                }
                Signature::Bad => wrong_key.push(a.file.origin.clone()),
            }
            if next.is_some() {
                break;
            }
        }
        if next.is_none() {
            for (i, p) in pool.iter().enumerate() {
                if path.contains(&Ref::Pool(i)) || p.file.der == cur.file.der || !same_name(p.cert.subject(), issuer_name) {
                    continue;
                }
                match verify(&cur.cert, &p.cert) {
                    Signature::Verified | Signature::Unsupported => next = Some(Ref::Pool(i)),
                    Signature::Bad => wrong_key.push(p.file.origin.clone()),
                }
                if next.is_some() {
                    break;
                }
            }
        }
        match next {
            Some(r @ Ref::Anchor(_)) => {
                path.push(r);
                trusted = true;
                break;
            }
            Some(r) => {
                path.push(r);
                current = r;
            }
            None => {
                problems.push(broken_link(cur, &wrong_key, &anchors));
                break;
            }
        }
    }
    if !trusted && problems.is_empty() {
        problems.push(Problem {
            cause: "chain_too_long",
            summary: format!("no trusted CA within {MAX_DEPTH} links"),
            fix: "Check --chain for a loop of cross-signed certificates.".into(),
        });
    }

    // Every certificate above the leaf acts as a CA: it must be allowed to.
    for (pos, r) in path.iter().enumerate().skip(1) {
        let n = node(*r);
        check_ca(n, pos - 1, now, &mut problems, &mut notes);
    }

    let links: Vec<Link> = path.iter().map(|r| node(*r)).map(|n| Link { cert: n.file.clone(), source: n.source }).collect();
    let mut detail: Vec<String> = path
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = node(*r);
            let role = match n.source {
                Source::Leaf => "client certificate",
                Source::CertFile => "intermediate, sent by the client",
                Source::ChainFile => "intermediate from --chain",
                Source::Ca => "trusted CA",
            };
            format!("{}. '{}' ({role}; {})", i + 1, dn(n.cert.subject()), n.file.origin)
        })
        .collect();
    for r in &path {
        let n = node(*r);
        if n.source == Source::ChainFile {
            detail.push(format!(
                "note: '{}' comes from --chain, not from the certificate file: the client must send it too \
                 (append it to the certificate file after the leaf) unless the server has it",
                dn(n.cert.subject())
            ));
        }
    }
    detail.extend(notes);
    let trusted_list: Vec<String> = anchors.iter().map(|a| format!("'{}' ({})", dn(a.cert.subject()), a.file.origin)).collect();
    detail.push(format!("--ca trusts: {}", trusted_list.join(", ")));

    let check = if let Some(first) = problems.first() {
        let mut all = detail;
        all.extend(problems.iter().skip(1).map(|p| format!("also: {}", p.summary)));
        Check::new("chain", Status::Fail, first.summary.clone()).cause(first.cause).detail(all).fix(first.fix.clone())
    } else {
        let top = path.last().map(|r| dn(node(*r).cert.subject())).unwrap_or_default();
        let via = path.len().saturating_sub(2);
        let how = if path.len() == 1 {
            "the certificate is itself in --ca".to_owned()
        } else if via == 0 {
            "every signature verified; issued directly by it".to_owned()
        } else {
            format!("every signature verified, via {via} intermediate{}", if via == 1 { "" } else { "s" })
        };
        Check::new("chain", Status::Pass, format!("chain builds to the trusted CA '{top}' ({how})")).detail(detail)
    };
    Outcome { check, path: links }
}

/// Why the path stops at `cur`.
fn broken_link(cur: &Node<'_>, wrong_key: &[String], anchors: &[Node<'_>]) -> Problem {
    let issuer = dn(cur.cert.issuer());
    let subject = dn(cur.cert.subject());
    let trusted: Vec<String> = anchors.iter().map(|a| format!("'{}'", dn(a.cert.subject()))).collect();
    let trusted = trusted.join(", ");
    if !wrong_key.is_empty() {
        return Problem {
            cause: "bad_signature",
            summary: format!(
                "signature does not verify: '{subject}' names '{issuer}' as its issuer, but the '{issuer}' in {} did not sign it (same name, different key)",
                wrong_key.join(", ")
            ),
            fix: format!(
                "The CA '{issuer}' was probably re-created with a new key under the same name (a PKI script run again). \
                 Reissue the certificate from the current CA, or trust the CA certificate that really signed it."
            ),
        };
    }
    if same_name(cur.cert.subject(), cur.cert.issuer()) && matches!(cur.cert.verify_signature(None), Ok(())) {
        let what = if cur.source == Source::Leaf { "the certificate is self-signed" } else { "the chain ends at the self-signed" };
        let name = if cur.source == Source::Leaf { String::new() } else { format!(" '{subject}' ({})", cur.file.origin) };
        return Problem {
            cause: "untrusted_root",
            summary: format!("untrusted root: {what}{name}, which is not in --ca (trusted: {trusted})"),
            fix: format!(
                "Get a certificate issued under a CA the server trusts ({trusted}); or, if '{subject}' is a root you run, \
                 add it to the server's trusted CA file (Envoy: validation_context.trusted_ca) and to --ca."
            ),
        };
    }
    Problem {
        cause: "missing_issuer",
        summary: format!(
            "missing intermediate or untrusted CA: no certificate for the issuer '{issuer}' (issuer of '{subject}') in --cert, --chain or --ca"
        ),
        fix: format!(
            "If '{issuer}' is an intermediate CA, pass its certificate with --chain and append it to the client's \
             certificate file after the leaf, so the client sends it. If it is a root, the certificate was issued by \
             a CA that --ca does not trust ({trusted}): get one from a trusted CA, or trust '{issuer}' on the server."
        ),
    }
}

/// A certificate used as an issuer: basicConstraints CA:TRUE, keyCertSign,
/// path length, and its own validity window.
fn check_ca(n: &Node<'_>, intermediates_below: usize, now: i64, problems: &mut Vec<Problem>, notes: &mut Vec<String>) {
    let name = dn(n.cert.subject());
    let at = &n.file.origin;
    let reissue = format!(
        "Reissue '{name}' as a CA: basicConstraints=critical,CA:TRUE and keyUsage=critical,keyCertSign,cRLSign. \
         TLS stacks refuse to chain through it as it is."
    );
    match n.cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {
            if let Some(limit) = bc.value.path_len_constraint {
                if usize::try_from(limit).is_ok_and(|l| intermediates_below > l) {
                    problems.push(Problem {
                        cause: "path_length_exceeded",
                        summary: format!(
                            "'{name}' ({at}) allows {limit} intermediate CA(s) below it (pathlen:{limit}), the chain has {intermediates_below}"
                        ),
                        fix: format!("Issue the certificate from a CA closer to '{name}', or reissue '{name}' with a larger pathlen."),
                    });
                }
            }
        }
        Ok(None) if n.cert.version() == X509Version::V1 && n.source == Source::Ca => {
            notes.push(format!("'{name}' is a version 1 certificate (no extensions): accepted as a trust anchor"));
        }
        Ok(_) => problems.push(Problem {
            cause: "not_a_ca",
            summary: format!("'{name}' ({at}) issued a certificate but is not a CA: basicConstraints CA:TRUE is missing"),
            fix: reissue.clone(),
        }),
        Err(e) => problems.push(Problem {
            cause: "not_a_ca",
            summary: format!("'{name}' ({at}): unreadable basicConstraints: {e}"),
            fix: reissue.clone(),
        }),
    }
    if let Ok(Some(ku)) = n.cert.key_usage() {
        if !ku.value.key_cert_sign() {
            problems.push(Problem {
                cause: "ca_key_usage",
                summary: format!("'{name}' ({at}) has a keyUsage without keyCertSign, so it may not sign certificates"),
                fix: reissue,
            });
        }
    }
    let v = n.cert.validity();
    let role = if n.source == Source::Ca { "trusted CA" } else { "intermediate" };
    match window(&n.cert, now) {
        Window::Expired => problems.push(Problem {
            cause: "ca_expired",
            summary: format!("the {role} '{name}' ({at}) expired {}", format_rfc3339(v.not_after.timestamp())),
            fix: format!("Renew '{name}' and redistribute it (servers' trusted CA files, client chains)."),
        }),
        Window::NotYetValid => problems.push(Problem {
            cause: "ca_not_yet_valid",
            summary: format!("the {role} '{name}' ({at}) is not valid before {}", format_rfc3339(v.not_before.timestamp())),
            fix: "Check the clocks (`date -u`), or reissue the CA with a notBefore in the past.".into(),
        }),
        Window::Valid => {}
    }
}
