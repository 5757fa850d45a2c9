//! Which certificate field names a caller for a rate limit key, a metric
//! label, an audit record or the filter state.
//!
//! One list, so that `"key": ["o"]` in a limit and `"field": "o"` in the
//! metrics read the same value the same way.

use crate::identity::Identity;
use crate::model::PrincipalFormat;

/// A field of the verified certificate that can name a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityField {
    /// The typed principal (`cn=order-service`, `uri=spiffe://...`), as the
    /// upstream gets it in `x-mtls-authz-principal`.
    Principal,
    Cn,
    O,
    Ou,
    UriSan,
    DnsSan,
    EmailSan,
    /// The issuer's CN (the CA that vouches for the other fields).
    IssuerCn,
    /// The SHA-256 fingerprint of the certificate (one per certificate).
    Sha256,
}

impl IdentityField {
    /// Every field, with its name in the policy.
    pub const ALL: [(&'static str, IdentityField); 9] = [
        ("principal", IdentityField::Principal),
        ("cn", IdentityField::Cn),
        ("o", IdentityField::O),
        ("ou", IdentityField::Ou),
        ("uri_san", IdentityField::UriSan),
        ("dns_san", IdentityField::DnsSan),
        ("email_san", IdentityField::EmailSan),
        ("issuer_cn", IdentityField::IssuerCn),
        ("sha256", IdentityField::Sha256),
    ];

    /// The field a policy names, if it is one.
    pub fn parse(name: &str) -> Option<IdentityField> {
        IdentityField::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The name the policy uses.
    pub fn as_str(self) -> &'static str {
        IdentityField::ALL.iter().find(|(_, f)| *f == self).map_or("", |(n, _)| n)
    }

    /// The names, for "expected one of" messages.
    pub fn names() -> String {
        IdentityField::ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    }

    /// The caller's value of this field, or `None` when the certificate has
    /// none. A field with several values (two O, three DNS SANs) is all of
    /// them in certificate order, joined by `,`: the caller is named by what
    /// its certificate says, not by whichever value happens to come first.
    pub fn value(self, identity: &Identity) -> Option<String> {
        let many = |values: &[String]| (!values.is_empty()).then(|| values.join(","));
        match self {
            IdentityField::Principal => Some(identity.upstream_principal(PrincipalFormat::Typed).into_owned()),
            IdentityField::Cn => many(&identity.common_names),
            IdentityField::O => many(&identity.organizations),
            IdentityField::Ou => many(&identity.organizational_units),
            IdentityField::UriSan => many(&identity.uri_sans),
            IdentityField::DnsSan => many(&identity.dns_sans),
            IdentityField::EmailSan => many(&identity.email_sans),
            IdentityField::IssuerCn => many(&identity.issuer_common_names),
            IdentityField::Sha256 => (!identity.sha256.is_empty()).then(|| identity.sha256.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_values_come_from_the_certificate() {
        for (name, field) in IdentityField::ALL {
            assert_eq!(IdentityField::parse(name), Some(field));
            assert_eq!(field.as_str(), name);
        }
        assert_eq!(IdentityField::parse("serial"), None);
        let id = Identity {
            common_names: vec!["globex-billing".into()],
            organizations: vec!["Globex Corporation".into(), "Globex EU".into()],
            sha256: "ab".repeat(32),
            ..Identity::default()
        };
        assert_eq!(IdentityField::O.value(&id).as_deref(), Some("Globex Corporation,Globex EU"));
        assert_eq!(IdentityField::Principal.value(&id).as_deref(), Some("cn=globex-billing"));
        assert_eq!(IdentityField::Ou.value(&id), None);
        assert_eq!(IdentityField::Sha256.value(&id), Some("ab".repeat(32)));
    }
}
