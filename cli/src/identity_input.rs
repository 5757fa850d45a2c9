//! Where a caller's identity comes from: a certificate file, or its fields
//! written as JSON (the format is [`IdentityFields`], in the engine, so the
//! browser playground reads typed fields the same way).

use std::path::Path;

use mtls_authz_policy::{Identity, IdentityView};

pub use mtls_authz_policy::identity_json::IdentityFields;

use crate::input::{self, InputError};

/// An identity plus what is known about its validity window, which the
/// engine ignores but `explain` shows. Hand-written fields may leave it out;
/// a certificate always has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub identity: Identity,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
}

impl Caller {
    /// The identity as `explain` shows it, with the validity window as far as it is known.
    pub fn view(&self) -> IdentityView {
        IdentityView::new(&self.identity, self.not_before, self.not_after)
    }
}

/// The identity the engine sees, from its JSON fields.
pub fn caller_from_fields(fields: IdentityFields) -> Caller {
    let (identity, not_before, not_after) = fields.into_identity();
    Caller { identity, not_before, not_after }
}

/// Read an identity-fields file (`explain --identity`).
pub fn load_fields_file(path: &Path) -> Result<Caller, InputError> {
    let src = input::read_text(path, "identity file")?;
    serde_json::from_str::<IdentityFields>(&src).map(caller_from_fields).map_err(|e| {
        let at = input::position(path, &src, input::json_error_offset(&src, &e));
        InputError(format!("{at}: {}", input::json_error_message(&e)))
    })
}

/// Read a certificate file, PEM or DER (`explain --cert`, a case's `cert`).
/// The message names the file and says what is wrong with it.
pub fn load_cert_file(path: &Path) -> Result<Caller, InputError> {
    let bytes = input::read_bytes(path, "certificate")?;
    if bytes.is_empty() {
        return Err(InputError(format!("{}: the certificate file is empty", path.display())));
    }
    match Identity::from_pem_or_der(&bytes) {
        Ok(identity) => Ok(Caller { not_before: Some(identity.not_before), not_after: Some(identity.not_after), identity }),
        Err(e) => Err(InputError(format!("{}: cannot read certificate: {e}", path.display()))),
    }
}
