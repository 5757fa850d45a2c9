//! The policy language v1: the document's types, as validated.
//!
//! A [`Policy`] is only ever made by [`Policy::from_json`] (in
//! [`crate::validate`]), so every value here has passed validation.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use crate::pattern::{PathPattern, ValuePattern};
use crate::reading::PathReading;

pub use crate::hex::canonical_serial;

/// What a rule or the default does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Deny,
}

impl Action {
    /// `"allow"` or `"deny"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

/// Whether denials are enforced or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    /// Report what would be denied, but allow it.
    DryRun,
}

/// How much a 403 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenyResponse {
    /// Include the rule and reason in the body (turn off on internet-facing listeners).
    pub details: bool,
}

impl Default for DenyResponse {
    fn default() -> Self {
        DenyResponse { details: true }
    }
}

/// How `x-mtls-authz-principal` names the caller ([`crate::principal`] has the grammar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalFormat {
    /// `uri=…`, `cn=…`, `dns=…`, `subject=…` or `sha256=…`, percent-encoded:
    /// says which certificate field named the caller, and cannot be split.
    #[default]
    Typed,
    /// The bare first URI SAN, else the single CN, else the subject DN, for
    /// backends that parse that form. A CN can pose as a URI SAN in it, and
    /// certificates without either are named by the same (possibly empty) subject.
    Legacy,
}

impl PrincipalFormat {
    /// `"typed"` or `"legacy"`, as the policy spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalFormat::Typed => "typed",
            PrincipalFormat::Legacy => "legacy",
        }
    }
}

/// Which identity headers the filter sets on a request it lets through.
///
/// All on by default: the upstream learns who called and why it was let in.
/// Each costs the proxy a header write per request, and the first makes
/// Envoy re-match the route (bench/README.md has the figures), so a backend
/// that does not read them can turn them off. Whatever the setting, copies
/// *sent by the client* are always removed: turning a header off never lets
/// a forged one through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamHeaders {
    /// `x-mtls-authz-principal`: who the caller is.
    pub principal: bool,
    /// How that header is written.
    pub principal_format: PrincipalFormat,
    /// `x-mtls-authz-rule`: the rule that decided.
    pub rule: bool,
    /// `x-mtls-authz-policy-revision`: the policy's `revision`, when it has one.
    pub revision: bool,
}

impl UpstreamHeaders {
    /// The field names, in the order of the struct.
    pub const FIELDS: [&'static str; 4] = ["principal", "principal_format", "rule", "revision"];
}

impl Default for UpstreamHeaders {
    fn default() -> Self {
        UpstreamHeaders { principal: true, principal_format: PrincipalFormat::Typed, rule: true, revision: true }
    }
}

/// Whether the backends behind this policy honour method overrides
/// (`_method=DELETE`, `X-HTTP-Method-Override`: see [`crate::overrides`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodOverrides {
    /// Unknown, or yes: a request carrying a method override is refused,
    /// since the policy judged the method it was sent with. POST bodies a
    /// framework parses (forms, multipart, JSON) are read to find one.
    #[default]
    Refuse,
    /// The backends never honour them: overrides are not looked for, and no
    /// body is read. Path overrides (`X-Original-URL`) are still refused.
    Ignore,
}

/// Default for `body_inspection_limit`: Envoy's default per-connection
/// buffer limit, past which Envoy itself answers a buffering filter's request with 413.
pub const DEFAULT_BODY_INSPECTION_LIMIT: u32 = 1 << 20;
/// The largest `body_inspection_limit` a policy may set: the body is held in
/// every worker's VM memory while it is read.
pub const MAX_BODY_INSPECTION_LIMIT: u32 = 64 << 20;

/// A validated policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub version: u32,
    pub default_action: Action,
    pub mode: Mode,
    /// Free-form revision string, reported with decisions so operators can tell which policy decided.
    pub revision: Option<String>,
    pub description: Option<String>,
    pub deny_response: DenyResponse,
    pub upstream_headers: UpstreamHeaders,
    pub method_overrides: MethodOverrides,
    /// The most bytes of a POST body read to look for a method override;
    /// a larger body that needs reading is refused (413).
    pub body_inspection_limit: u32,
    /// How the backends read paths ([`crate::reading`]); strict by default.
    pub path_reading: PathReading,
    pub rules: Vec<Rule>,
    /// The rules for plain TCP listeners ([`crate::connection`]); empty when the policy has none.
    pub connection_rules: Vec<crate::connection::ConnectionRule>,
    /// What a partner gateway needs besides the decision: metrics, rate
    /// limits, the audit log and the filter state ([`crate::gateway`]).
    pub gateway: crate::gateway::Gateway,
}

/// One rule: who, which paths, which methods, and what to do.
///
/// Boxed slices and strings, not vectors: every VM holds each of a large
/// policy's rules, and a box is exactly as long as its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: Box<str>,
    pub description: Option<Box<str>>,
    pub action: Action,
    /// OR of principals; each principal is an AND of its fields.
    pub principals: Box<[Principal]>,
    /// OR of path patterns.
    pub paths: Box<[PathPattern]>,
    /// Allowed methods; `None` means any method. The usual methods borrow a
    /// static name ([`crate::canonical::method_name`]), and rules with the
    /// same list share it: a large policy names the same few thousands of
    /// times, and each copy is an allocation.
    pub methods: Option<Arc<[Cow<'static, str>]>>,
    /// Whether a deny rule whose `methods` list `GET` also denies `HEAD`
    /// (default true): most frameworks answer HEAD with the GET handler, so
    /// denying GET alone would leave the same handler reachable. Has no effect
    /// on allow rules (allowing GET never allows HEAD) or without `GET`; the
    /// validator refuses the field there.
    pub head_with_get: bool,
}

/// Conditions on the caller's certificate; all present fields must match.
///
/// Stored as the fields it names only: a policy of 10,000 rules holds about
/// as many principals, each in every Envoy VM, and most name one or two of
/// the ten fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// `any: true` — any verified certificate. Never combined with other fields.
    pub any: bool,
    /// Each named field once, in [`Condition`]'s order.
    conditions: Box<[Condition]>,
}

/// One field of a [`Principal`] and what it must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Cn(ValuePattern),
    O(ValuePattern),
    Ou(ValuePattern),
    UriSan(ValuePattern),
    DnsSan(ValuePattern),
    EmailSan(ValuePattern),
    IssuerCn(ValuePattern),
    /// Boxed: rare, and twice the size of the other conditions.
    IpSan(Box<IpNet>),
    /// Canonical lower-case hex, no separators, no leading zeros.
    Serial(Box<str>),
    /// Lower-case hex, 64 characters.
    Sha256(Box<str>),
}

impl Condition {
    /// The position of the field in [`Condition`]'s order.
    fn rank(&self) -> u8 {
        match self {
            Condition::Cn(_) => 0,
            Condition::O(_) => 1,
            Condition::Ou(_) => 2,
            Condition::UriSan(_) => 3,
            Condition::DnsSan(_) => 4,
            Condition::EmailSan(_) => 5,
            Condition::IssuerCn(_) => 6,
            Condition::IpSan(_) => 7,
            Condition::Serial(_) => 8,
            Condition::Sha256(_) => 9,
        }
    }
}

/// `Principal::cn()` and friends: the pattern of one field, if named.
macro_rules! condition_accessors {
    ($($(#[$doc:meta])* $name:ident: $variant:ident -> $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> Option<&$ty> {
                self.conditions.iter().find_map(|c| match c {
                    Condition::$variant(v) => Some(std::borrow::Borrow::borrow(v)),
                    _ => None,
                })
            }
        )*
    };
}

impl Principal {
    /// `{"any": true}`.
    pub fn any() -> Principal {
        Principal { any: true, conditions: Box::default() }
    }

    /// A principal of these fields (each at most once: the validator refuses
    /// a duplicate key), kept in [`Condition`]'s order.
    pub fn of(mut conditions: Vec<Condition>) -> Principal {
        conditions.sort_by_key(Condition::rank);
        Principal { any: false, conditions: conditions.into_boxed_slice() }
    }

    /// The fields it names, in [`Condition`]'s order.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    condition_accessors! {
        cn: Cn -> ValuePattern;
        o: O -> ValuePattern;
        ou: Ou -> ValuePattern;
        uri_san: UriSan -> ValuePattern;
        dns_san: DnsSan -> ValuePattern;
        email_san: EmailSan -> ValuePattern;
        issuer_cn: IssuerCn -> ValuePattern;
        ip_san: IpSan -> IpNet;
        serial: Serial -> str;
        sha256: Sha256 -> str;
    }
}

/// An IP address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Parse `10.0.0.1`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| format!("'{text}' is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => return Err(format!("'{text}' has an invalid prefix length; expected 0 to {max}")),
            },
        };
        if !host_bits_zero(addr, prefix) {
            return Err(format!("'{text}' has host bits set; write the network address"));
        }
        Ok(IpNet { addr, prefix })
    }

    /// Is `ip` inside this block?
    ///
    /// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is the IPv4 address it
    /// maps, so it is inside `10.0.0.0/8`; symmetrically an IPv4 address is
    /// inside an IPv6 block that lies wholly within `::ffff:0:0/96` (an IPv4
    /// block written the IPv6 way). Nothing else crosses families: `::/0`
    /// means every IPv6 address, not every IPv4 one, and only the mapped form
    /// counts (not the deprecated IPv4-compatible `::10.0.0.1`).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(u32::from(net) as u128, u32::from(*ip) as u128, self.prefix, 32),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(u128::from(net), u128::from(*ip), self.prefix, 128),
            (IpAddr::V4(net), IpAddr::V6(ip)) => {
                ip.to_ipv4_mapped().is_some_and(|ip| prefix_eq(u32::from(net) as u128, u32::from(ip) as u128, self.prefix, 32))
            }
            // A prefix of at least 96 bits fixes the ::ffff: part, so the block holds only mapped addresses.
            (IpAddr::V6(net), IpAddr::V4(ip)) => {
                self.prefix >= 96 && prefix_eq(u128::from(net), u128::from(ip.to_ipv6_mapped()), self.prefix, 128)
            }
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    let shift = width - u32::from(prefix);
    if shift >= 128 {
        return true;
    }
    (a >> shift) == (b >> shift)
}

fn host_bits_zero(addr: IpAddr, prefix: u8) -> bool {
    let (value, width) = match addr {
        IpAddr::V4(a) => (u32::from(a) as u128, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let host_bits = width - u32::from(prefix);
    host_bits == 0 || host_bits >= 128 || value & ((1u128 << host_bits) - 1) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ip_blocks_contain_their_own_family() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(&ip("10.1.2.3")));
        assert!(!net.contains(&ip("10.2.0.1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(&ip("8.8.8.8")));
        assert!(IpNet::parse("fd00::/8").unwrap().contains(&ip("fd12::1")));
        assert!(IpNet::parse("::/0").unwrap().contains(&ip("::1")));
    }

    #[test]
    fn an_ipv4_mapped_ipv6_address_is_in_the_ipv4_block_it_maps_to() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(&ip("::ffff:10.0.0.1")));
        assert!(net.contains(&ip("::ffff:a01:203")), "the same address in hex");
        assert!(!net.contains(&ip("::ffff:11.0.0.1")));
        assert!(IpNet::parse("10.0.0.1").unwrap().contains(&ip("::ffff:10.0.0.1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(&ip("::ffff:8.8.8.8")));
        // Only the mapped form is IPv4: not IPv4-compatible (::a.b.c.d), not other IPv6 addresses.
        assert!(!net.contains(&ip("::10.0.0.1")));
        assert!(!IpNet::parse("0.0.0.0/0").unwrap().contains(&ip("::1")));
        assert!(!IpNet::parse("0.0.0.0/0").unwrap().contains(&ip("fd00::1")));
        assert!(!net.contains(&ip("64:ff9b::a00:1")), "NAT64 addresses are IPv6 hosts");
    }

    #[test]
    fn an_ipv4_address_is_in_an_ipv6_block_only_when_the_block_is_ipv4_mapped() {
        assert!(IpNet::parse("::ffff:0:0/96").unwrap().contains(&ip("10.0.0.1")));
        assert!(IpNet::parse("::ffff:10.0.0.0/104").unwrap().contains(&ip("10.0.0.1")));
        assert!(!IpNet::parse("::ffff:10.0.0.0/104").unwrap().contains(&ip("11.0.0.1")));
        assert!(IpNet::parse("::ffff:10.0.0.1").unwrap().contains(&ip("10.0.0.1")));
        // Wider blocks are IPv6 blocks: ::/0 is every IPv6 address, not every address.
        assert!(!IpNet::parse("::/0").unwrap().contains(&ip("10.0.0.1")));
        assert!(!IpNet::parse("::/95").unwrap().contains(&ip("10.0.0.1")));
        assert!(!IpNet::parse("::/96").unwrap().contains(&ip("10.0.0.1")), "IPv4-compatible is not IPv4-mapped");
        // The mapped IPv6 form stays inside its IPv6 blocks as before.
        assert!(IpNet::parse("::/0").unwrap().contains(&ip("::ffff:10.0.0.1")));
    }
}
