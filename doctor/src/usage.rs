//! Check 5: may this certificate be used to authenticate a TLS client?
//!
//! A certificate issued from a "web server" template carries only the
//! serverAuth extended key usage; the server then answers with
//! `unsupported_certificate`, `bad_certificate` or `certificate_unknown`,
//! none of which mention key usage. OpenSSL and BoringSSL also apply an
//! intermediate's EKU to everything below it, so intermediates are checked
//! too.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ExtendedKeyUsage;

use super::chain::{Link, Source};
use super::{dn, Check, Status};

fn eku_names(eku: &ExtendedKeyUsage<'_>) -> String {
    let mut names: Vec<String> = Vec::new();
    for (on, name) in [
        (eku.any, "anyExtendedKeyUsage"),
        (eku.server_auth, "serverAuth"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ] {
        if on {
            names.push(name.to_owned());
        }
    }
    names.extend(eku.other.iter().map(|o| o.to_id_string()));
    if names.is_empty() {
        "(empty)".into()
    } else {
        names.join(", ")
    }
}

/// Run the check on the leaf and the intermediates of the path.
pub fn check(leaf: &X509Certificate<'_>, path: &[Link]) -> Check {
    let mut detail: Vec<String> = Vec::new();
    let mut failures: Vec<(&'static str, String, String)> = Vec::new();
    match leaf.extended_key_usage() {
        Ok(Some(eku)) => {
            detail.push(format!("extendedKeyUsage: {}", eku_names(eku.value)));
            if !(eku.value.client_auth || eku.value.any) {
                failures.push((
                    "no_client_auth_eku",
                    format!(
                        "the certificate's extendedKeyUsage ({}) does not include clientAuth: it may not authenticate a TLS client",
                        eku_names(eku.value)
                    ),
                    "Reissue it with extendedKeyUsage=clientAuth (or clientAuth,serverAuth); a server-only certificate cannot be a client identity.".into(),
                ));
            }
        }
        Ok(None) => detail.push("extendedKeyUsage: absent (any use allowed)".into()),
        Err(e) => failures.push(("unreadable_usage", format!("extendedKeyUsage cannot be read: {e}"), "Reissue the certificate.".into())),
    }
    match leaf.key_usage() {
        Ok(Some(ku)) => {
            detail.push(format!("keyUsage: {}", ku.value));
            if !ku.value.digital_signature() {
                failures.push((
                    "no_digital_signature",
                    format!("the certificate's keyUsage ({}) lacks digitalSignature, which TLS client authentication needs", ku.value),
                    "Reissue it with keyUsage=critical,digitalSignature (plus keyEncipherment for RSA if you like).".into(),
                ));
            }
        }
        Ok(None) => detail.push("keyUsage: absent (any use allowed)".into()),
        Err(e) => failures.push(("unreadable_usage", format!("keyUsage cannot be read: {e}"), "Reissue the certificate.".into())),
    }
    for link in path.iter().filter(|l| matches!(l.source, Source::CertFile | Source::ChainFile)) {
        let Some(cert) = link.cert.parse() else { continue };
        if let Ok(Some(eku)) = cert.extended_key_usage() {
            if !(eku.value.client_auth || eku.value.any) {
                let name = dn(cert.subject());
                failures.push((
                    "no_client_auth_eku",
                    format!(
                        "the intermediate '{name}' restricts extendedKeyUsage to {} without clientAuth; verifiers apply that to every certificate below it",
                        eku_names(eku.value)
                    ),
                    format!("Issue client certificates from an intermediate whose EKU includes clientAuth, or reissue '{name}' without that restriction."),
                ));
            }
        }
    }
    if let Some((cause, summary, fix)) = failures.first() {
        detail.extend(failures.iter().skip(1).map(|(_, s, _)| format!("also: {s}")));
        Check::new("usage", Status::Fail, summary.clone()).cause(cause).detail(detail).fix(fix.clone())
    } else {
        Check::new("usage", Status::Pass, "key usage and extended key usage permit TLS client authentication").detail(detail)
    }
}
