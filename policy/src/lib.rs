//! # mtls-authz policy engine
//!
//! Certificate identity in, decision out. This crate has no proxy or I/O
//! dependency: the Envoy filter, the `mtls-authz` CLI and the browser
//! playground all run this same code, so a decision explained on a laptop is
//! the decision Envoy enforces.
//!
//! ```
//! use mtls_authz_policy::{CompiledPolicy, Identity};
//!
//! let policy = CompiledPolicy::from_json(r#"{
//!   "version": 1, "default_action": "deny",
//!   "rules": [{"name": "orders", "action": "allow",
//!              "principals": [{"cn": "order-service"}],
//!              "paths": ["/api/payment/create"], "methods": ["POST"]}]
//! }"#).unwrap();
//! let caller = Identity { common_names: vec!["order-service".into()], ..Identity::default() };
//! let decision = policy.decide(Some(&caller), "POST", "/api/payment/create?x=1");
//! assert!(decision.is_allowed());
//! assert_eq!(decision.rule, Some("orders"));
//! ```
//!
//! Modules, in the order data flows: [`identity`] (certificate → fields),
//! [`load`] (policy bytes → compiled policy, or its error lines),
//! [`model`] (the policy document's types) and [`validate`] (JSON → those
//! types, every error placed), [`pattern`], [`canonical`] and [`overrides`]
//! (what matches what, and what a backend would run instead), [`reading`]
//! (what a policy knows of how its backend reads paths), [`compile`]
//! (the index, stored in `trie`), [`decide`] (the answer and its reason), [`eval`] (the
//! precheck and matchers both evaluators share), [`naive`] (the reference
//! evaluator the index is tested against); [`principal`] is how the caller is
//! named to the upstream; [`grpc`] is how a refused gRPC call is answered;
//! [`connection`] holds the connection rules of a plain TCP (L4) listener;
//! [`hex`] is the one spelling of serials and
//! fingerprints, whether read from a certificate or from text.
//! [`view`] and [`timefmt`] are how an identity is shown to people and
//! scripts, shared by the CLI and the doctor so both print the same fields.
//! [`gateway`] is what a partner gateway needs besides the decision:
//! [`metrics`] per rule and identity, rate [`limits`], the [`audit`] log,
//! each naming callers by an [`identity_field`].

pub mod audit;
pub mod bestfit;
pub mod canonical;
pub mod compile;
pub mod connection;
pub mod decide;
pub mod error;
pub mod escape;
pub mod eval;
pub mod gateway;
pub mod grpc;
pub mod hex;
pub mod identity;
pub mod identity_field;
pub mod identity_json;
pub mod json;
pub mod limits;
pub mod load;
pub mod matrix;
pub mod metrics;
pub mod model;
pub mod naive;
pub mod outcome;
pub mod outcome_view;
pub mod overrides;
pub mod pattern;
pub mod principal;
pub mod reading;
pub mod timefmt;
mod trie;
pub mod validate;
pub mod view;

pub use canonical::{canonicalize, canonicalize_with, CanonicalPath, PathRejection};
pub use compile::{CompiledPolicy, RequestParts};
pub use decide::{Decision, Reason, Verdict};
pub use error::{PolicyError, PolicyErrors};
pub use identity::{CertError, Identity};
pub use load::{LoadError, LoadErrorKind};
pub use model::{Action, DenyResponse, MethodOverrides, Mode, Policy, Principal, PrincipalFormat, Rule, UpstreamHeaders};
pub use naive::decide_naive;
pub use overrides::{BodyFinding, BodyHeaders, BodyPlan, BodyReadings};
pub use reading::PathReading;
pub use view::IdentityView;
