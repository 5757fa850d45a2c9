//! Check 6: is the certificate (or an intermediate) revoked, and is the CRL
//! itself usable?
//!
//! A server configured with a CRL refuses more than revoked certificates: a
//! CRL past its nextUpdate ("CRL has expired"), one not signed by the issuer,
//! or no CRL at all for one of the chain's CAs (Envoy's default
//! `only_verify_leaf_cert_crl: false` demands one per CA) fail every
//! handshake, and the client only sees `certificate_revoked` or
//! `certificate_unknown`. Each of those is named here.

use mtls_authz_policy::hex;
use mtls_authz_policy::timefmt::format_rfc3339;
use x509_parser::certificate::X509Certificate;
use x509_parser::revocation_list::CertificateRevocationList;

use super::chain::{same_name, Link, Source};
use super::files::{Cert, Crl};
use super::{dn, Check, Status};

fn trim_serial(raw: &[u8]) -> &[u8] {
    let skip = raw.iter().take_while(|&&b| b == 0).count();
    raw.get(skip..).unwrap_or_default()
}

/// `0x` + lower-case hex, as `openssl x509 -serial` and CRL listings show it (minus case).
fn serial_text(raw: &[u8]) -> String {
    let trimmed = trim_serial(raw);
    if trimmed.is_empty() {
        "0x0".into()
    } else {
        format!("0x{}", hex::lower(trimmed))
    }
}

struct Problem {
    cause: &'static str,
    summary: String,
    fix: String,
}

/// Run the check for the leaf and every intermediate of the path.
pub fn check(leaf: &Cert, path: &[Link], crls: &[Crl], known: &[&Cert], now: i64) -> Check {
    if crls.is_empty() {
        return Check::new("revocation", Status::Skip, "no --crl given: revocation not checked");
    }
    let Some(_) = leaf.parse() else {
        return Check::new("revocation", Status::Skip, "the certificate could not be read (see files)");
    };
    let parsed: Vec<(CertificateRevocationList<'_>, &Crl)> = crls.iter().filter_map(|c| c.parse().map(|p| (p, c))).collect();
    let known_parsed: Vec<(X509Certificate<'_>, &Cert)> = known.iter().filter_map(|c| c.parse().map(|p| (p, *c))).collect();

    // The certificates a CRL must cover: leaf and intermediates (not the trust anchor).
    let mut subjects: Vec<(&Cert, Option<&Cert>)> = Vec::new();
    if path.is_empty() {
        subjects.push((leaf, None));
    } else {
        for (i, link) in path.iter().enumerate() {
            if link.source == Source::Ca {
                break;
            }
            subjects.push((&link.cert, path.get(i + 1).map(|l| &l.cert)));
        }
    }

    let mut problems: Vec<Problem> = Vec::new();
    let mut detail: Vec<String> = Vec::new();
    for (cert_file, issuer_file) in subjects {
        let Some(cert) = cert_file.parse() else { continue };
        let is_leaf = std::ptr::eq(cert_file, leaf) || cert_file.der == leaf.der;
        let what = if is_leaf { "the certificate".to_owned() } else { format!("the intermediate '{}'", dn(cert.subject())) };
        let issuer_name = dn(cert.issuer());
        let issuer_cert: Option<X509Certificate<'_>> = issuer_file
            .and_then(Cert::parse)
            .or_else(|| known_parsed.iter().find(|(k, _)| same_name(k.subject(), cert.issuer())).and_then(|(_, f)| f.parse()));
        let matching: Vec<&(CertificateRevocationList<'_>, &Crl)> =
            parsed.iter().filter(|(c, _)| same_name(c.issuer(), cert.issuer())).collect();
        if matching.is_empty() {
            let from: Vec<String> = parsed.iter().map(|(c, f)| format!("'{}' ({})", dn(c.issuer()), f.origin)).collect();
            problems.push(Problem {
                cause: "crl_missing",
                summary: format!("no CRL from '{issuer_name}', the issuer of {what}; the given CRLs are from {}", from.join(", ")),
                fix: format!(
                    "Add the current CRL of '{issuer_name}' to the CRL file. A server that checks CRLs rejects a certificate \
                     whose issuer has none (Envoy: unless only_verify_leaf_cert_crl is true, every CA of the chain needs one)."
                ),
            });
            continue;
        }
        for (crl, file) in matching {
            let this_update = crl.last_update().timestamp();
            let next_update = crl.next_update().map(|t| t.timestamp());
            detail.push(format!(
                "CRL {}: issuer '{}', thisUpdate {}, nextUpdate {}, {} revoked serial(s)",
                file.origin,
                dn(crl.issuer()),
                format_rfc3339(this_update),
                next_update.map(format_rfc3339).unwrap_or_else(|| "none".into()),
                crl.iter_revoked_certificates().count()
            ));
            match &issuer_cert {
                Some(issuer) => {
                    if crl.verify_signature(issuer.public_key()).is_err() {
                        problems.push(Problem {
                            cause: "crl_bad_signature",
                            summary: format!(
                                "the CRL {} names '{issuer_name}' as issuer but its signature does not verify with that CA's key",
                                file.origin
                            ),
                            fix: format!("Fetch the CRL actually published by '{issuer_name}' (the CA may have been re-keyed since)."),
                        });
                    }
                }
                None => detail.push(format!("note: no certificate of '{issuer_name}' was given, so the CRL's signature was not checked")),
            }
            if this_update > now {
                problems.push(Problem {
                    cause: "crl_not_yet_valid",
                    summary: format!("the CRL {} is not valid before {} (thisUpdate)", file.origin, format_rfc3339(this_update)),
                    fix: "Check the clocks here and on the server (`date -u`).".into(),
                });
            }
            if let Some(next) = next_update.filter(|&n| n < now) {
                problems.push(Problem {
                    cause: "crl_expired",
                    summary: format!(
                        "the CRL {} from '{issuer_name}' is out of date: its nextUpdate was {}; servers refuse every certificate of that CA (\"CRL has expired\")",
                        file.origin,
                        format_rfc3339(next)
                    ),
                    fix: format!("Publish a fresh CRL from '{issuer_name}' and reload it on the server; automate CRL renewal before nextUpdate."),
                });
            }
            let serial = trim_serial(cert.raw_serial());
            if let Some(entry) = crl.iter_revoked_certificates().find(|r| trim_serial(r.raw_serial()) == serial) {
                let reason = entry.reason_code().map(|(_, r)| format!(", reason {r}")).unwrap_or_default();
                problems.push(Problem {
                    cause: "revoked",
                    summary: format!(
                        "revoked: {what} (serial {}) is listed in the CRL {} since {}{reason}",
                        serial_text(cert.raw_serial()),
                        file.origin,
                        format_rfc3339(entry.revocation_date.timestamp())
                    ),
                    fix: "Issue a new certificate (new key if the reason is keyCompromise) and deploy it; a revoked certificate cannot be reinstated.".into(),
                });
            } else {
                detail.push(format!("{what} (serial {}) is not listed", serial_text(cert.raw_serial())));
            }
        }
    }
    if let Some(first) = problems.first() {
        detail.extend(problems.iter().skip(1).map(|p| format!("also: {}", p.summary)));
        Check::new("revocation", Status::Fail, first.summary.clone()).cause(first.cause).detail(detail).fix(first.fix.clone())
    } else {
        Check::new(
            "revocation",
            Status::Pass,
            "not revoked: the CRLs are current, signed by their issuers, and do not list the chain's certificates",
        )
        .detail(detail)
    }
}
