//! Check 3: is the certificate inside its validity window, and for how long?
//!
//! "certificate_expired" is the most common mTLS outage, and "not yet valid"
//! is almost always a clock problem (a VM that slept, a container without NTP)
//! or a certificate issued with a notBefore in another time zone's "now".
//! Both are stated with the dates and the distance from now, so the reader
//! can tell a clock skew of minutes from a renewal missed by months.

use mtls_authz_policy::timefmt::format_rfc3339;
use x509_parser::certificate::X509Certificate;

use super::{Check, Status};

const DAY: i64 = 86_400;

/// "3 days", "5 hours", "40 seconds": the largest unit that still reads well.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.unsigned_abs();
    let (n, unit) = if secs >= 2 * 365 * 86_400 {
        (secs / (365 * 86_400), "year")
    } else if secs >= 2 * 86_400 {
        (secs / 86_400, "day")
    } else if secs >= 2 * 3600 {
        (secs / 3600, "hour")
    } else if secs >= 2 * 60 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Where `now` falls in [not_before, not_after].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    NotYetValid,
    Expired,
    Valid,
}

pub fn window(cert: &X509Certificate<'_>, now: i64) -> Window {
    let v = cert.validity();
    if now < v.not_before.timestamp() {
        Window::NotYetValid
    } else if now > v.not_after.timestamp() {
        Window::Expired
    } else {
        Window::Valid
    }
}

/// Run the check for the leaf.
pub fn check(cert: &X509Certificate<'_>, now: i64, warn_days: u32) -> Check {
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    let detail = vec![
        format!("not before: {}", format_rfc3339(nb)),
        format!("not after:  {}", format_rfc3339(na)),
        format!("now:        {}", format_rfc3339(now)),
    ];
    match window(cert, now) {
        Window::NotYetValid => Check::new(
            "validity",
            Status::Fail,
            format!(
                "not yet valid: the certificate is valid from {} (in {})",
                format_rfc3339(nb),
                human_duration(nb - now)
            ),
        )
        .cause("not_yet_valid")
        .detail(detail)
        .fix(
            "If that is only minutes or hours away, a clock is wrong: compare `date -u` here and on the server \
             (NTP). Otherwise reissue the certificate with a notBefore in the past.",
        ),
        Window::Expired => Check::new(
            "validity",
            Status::Fail,
            format!("expired: the certificate expired {} ({} ago)", format_rfc3339(na), human_duration(now - na)),
        )
        .cause("expired")
        .detail(detail)
        .fix("Issue a new certificate and deploy it together with its key; servers answer an expired certificate with the alert certificate_expired."),
        Window::Valid => {
            let left = na - now;
            if left < i64::from(warn_days) * DAY {
                Check::new(
                    "validity",
                    Status::Warn,
                    format!(
                        "expires soon: {} (in {}, under the --warn-days threshold of {warn_days} days)",
                        format_rfc3339(na),
                        human_duration(left)
                    ),
                )
                .cause("expiring_soon")
                .detail(detail)
                .fix("Renew the certificate now and deploy it before it expires.")
            } else {
                Check::new(
                    "validity",
                    Status::Pass,
                    format!("valid until {} ({} left)", format_rfc3339(na), human_duration(left)),
                )
                .detail(detail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(-90), "90 seconds");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(5 * DAY + 7), "5 days");
        assert_eq!(human_duration(800 * DAY), "2 years");
    }
}
