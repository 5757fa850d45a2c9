//! Rate limits: a token bucket per limit and key, as pure functions over a
//! small state, so that the filter only stores and fetches it.
//!
//! A limit applies to the requests its rules allow. Its key names the
//! bucket: an identity field (`["o"]`: one bucket per partner), the rule
//! (`["rule"]`), or both. The bucket holds at most `burst` tokens and gains
//! `rate.requests` tokens per `rate.per`; a request takes one or, when there
//! is none, is refused with 429 and `Retry-After` (the seconds until a token
//! is back). A dry-run limit (or a dry-run policy) counts and logs instead.
//!
//! **Where the state lives.** The filter keeps each bucket in proxy-wasm
//! shared data, which every worker thread of one Envoy sees, and updates it
//! with compare-and-swap, so the limit holds across workers. It is per Envoy
//! instance, not global: N Envoys allow N times the rate. For a fleet-wide
//! limit, publish the identity as filter state and use Envoy's `ratelimit`
//! filter with a rate limit service (examples/b2b-gateway/README.md).
//!
//! **Bounded keys.** A limit has `max_keys` slots, and a key may sit only in
//! one of [`PROBES`] of them (double hashing). A key finds its own slot, an
//! empty one, or one whose bucket is full again: a full bucket is exactly a
//! fresh one, so taking it over loses nothing. Only when all its slots hold
//! other keys' partly used buckets is the table full for it: the request is
//! refused with 429 (fail closed) and counted, and shared data never grows
//! past `max_keys` entries a limit, however many certificates an attacker holds.

use crate::identity::Identity;
use crate::identity_field::IdentityField;

/// What a limit's key is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart {
    Field(IdentityField),
    Rule,
}

/// The unit of `rate.per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
    Hour,
}

impl Per {
    pub const ALL: [(&'static str, Per); 3] = [("second", Per::Second), ("minute", Per::Minute), ("hour", Per::Hour)];

    pub fn nanos(self) -> u64 {
        match self {
            Per::Second => 1_000_000_000,
            Per::Minute => 60_000_000_000,
            Per::Hour => 3_600_000_000_000,
        }
    }
}

/// The largest `rate.requests` and `burst`.
pub const MAX_REQUESTS: u64 = 1_000_000;
/// Default and largest `max_keys`.
pub const DEFAULT_MAX_KEYS: u32 = 1024;
pub const MAX_MAX_KEYS: u32 = 65_536;
/// How many slots a key may use.
pub const PROBES: u32 = 8;

/// One limit, as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub name: String,
    pub description: Option<String>,
    /// The rules (by name) whose allowed requests it counts.
    pub rules: Vec<String>,
    pub key: Vec<KeyPart>,
    pub requests: u64,
    pub per: Per,
    pub burst: u64,
    pub dry_run: bool,
    pub max_keys: u32,
}

impl Limit {
    /// Does this limit count requests `rule` allowed?
    pub fn applies_to(&self, rule: Option<&str>) -> bool {
        rule.is_some_and(|r| self.rules.iter().any(|n| n == r))
    }

    /// The bucket's key for this caller and rule. A field the certificate
    /// lacks is `-`: such callers share one bucket (stricter, never looser).
    pub fn key_of(&self, identity: Option<&Identity>, rule: &str) -> String {
        let parts: Vec<String> = self.key_parts(identity, rule).into_iter().map(|(_, value)| value).collect();
        parts.join("\u{1f}")
    }

    /// The key's parts, named as the policy names them (`("o", "Globex")`), for people.
    pub fn key_parts(&self, identity: Option<&Identity>, rule: &str) -> Vec<(&'static str, String)> {
        self.key
            .iter()
            .map(|part| match part {
                KeyPart::Rule => ("rule", rule.to_owned()),
                KeyPart::Field(field) => (field.as_str(), identity.and_then(|id| field.value(id)).unwrap_or_else(|| "-".to_owned())),
            })
            .collect()
    }

    /// `60/minute, burst 5`.
    pub fn rate_text(&self) -> String {
        let per = Per::ALL.iter().find(|(_, p)| *p == self.per).map_or("", |(name, _)| name);
        format!("{}/{per}, burst {}", self.requests, self.burst)
    }

    /// The shared-data key of slot `slot`.
    pub fn slot_key(&self, slot: u32) -> String {
        format!("mtls_authz.limit.{}.{slot}", self.name)
    }

    /// The slots `key` may use, in the order they are tried.
    pub fn slots(&self, key: &str) -> impl Iterator<Item = u32> {
        let h = fnv1a(key.as_bytes());
        let n = u64::from(self.max_keys.max(1));
        let step = (h >> 32) | 1;
        (0..u64::from(PROBES.min(self.max_keys.max(1)))).map(move |i| (h.wrapping_add(i.wrapping_mul(step)) % n) as u32)
    }

    fn capacity(&self) -> u128 {
        u128::from(self.burst) * u128::from(self.per.nanos())
    }
}

/// FNV-1a, 64 bits: stable across VMs and builds (the slot of a key must be
/// the same on every worker).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One bucket as stored: whose it is, its level and when it was last filled.
/// The level is in units of `1 / rate.per` tokens-nanoseconds, so a token
/// is `per` units and a nanosecond adds `requests` units: integer maths, no rounding drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub key: String,
    pub level: u128,
    pub at_ns: u64,
}

impl Bucket {
    /// The stored form: `level,at_ns,key`.
    pub fn encode(&self) -> Vec<u8> {
        format!("{},{},{}", self.level, self.at_ns, self.key).into_bytes()
    }

    /// The stored form read back; `None` for anything else (treated as empty).
    pub fn decode(bytes: &[u8]) -> Option<Bucket> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, ',');
        let level = parts.next()?.parse().ok()?;
        let at_ns = parts.next()?.parse().ok()?;
        Some(Bucket { key: parts.next()?.to_owned(), level, at_ns })
    }
}

/// What a slot holds, for the key being looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotUse {
    /// The key's own bucket, or one it may take (empty, unreadable, or another key's full bucket).
    Usable(Option<Bucket>),
    /// Another key's bucket, still in use.
    Taken,
}

impl Limit {
    /// Whether `key` may use a slot holding `stored` at `now_ns`.
    pub fn slot_use(&self, stored: Option<&[u8]>, key: &str, now_ns: u64) -> SlotUse {
        let Some(bucket) = stored.and_then(Bucket::decode) else { return SlotUse::Usable(None) };
        if bucket.key == key {
            return SlotUse::Usable(Some(bucket));
        }
        if self.refilled(&bucket, now_ns) >= self.capacity() {
            SlotUse::Usable(None)
        } else {
            SlotUse::Taken
        }
    }

    fn refilled(&self, bucket: &Bucket, now_ns: u64) -> u128 {
        let elapsed = u128::from(now_ns.saturating_sub(bucket.at_ns));
        bucket.level.saturating_add(elapsed.saturating_mul(u128::from(self.requests))).min(self.capacity())
    }

    /// Take one token for `key` at `now_ns` from `bucket` (`None`: a fresh,
    /// full one). Returns the verdict and the state to store.
    pub fn take(&self, bucket: Option<&Bucket>, key: &str, now_ns: u64) -> (Take, Bucket) {
        let level = bucket.map_or(self.capacity(), |b| self.refilled(b, now_ns));
        let token = u128::from(self.per.nanos());
        if level >= token {
            return (Take::Allowed, Bucket { key: key.to_owned(), level: level - token, at_ns: now_ns });
        }
        // Nanoseconds until one token is back, rounded up to whole seconds (at least 1).
        let wait_ns = (token - level).div_ceil(u128::from(self.requests.max(1)));
        let seconds = wait_ns.div_ceil(1_000_000_000).max(1);
        let retry_after = u32::try_from(seconds).unwrap_or(u32::MAX);
        (Take::Limited { retry_after }, Bucket { key: key.to_owned(), level, at_ns: now_ns })
    }
}

/// The answer of one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Allowed,
    /// No token: `Retry-After` in seconds.
    Limited {
        retry_after: u32,
    },
}

/// Why a request is over a limit, for the 429 and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReason {
    Exceeded,
    /// Every slot this key may use holds another key's bucket ([`Limit`] docs).
    TableFull,
}

impl LimitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReason::Exceeded => "rate limit exceeded",
            LimitReason::TableFull => "rate limit table full",
        }
    }
}

/// A request found over a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit<'p> {
    pub limit: &'p Limit,
    pub reason: LimitReason,
    pub retry_after: u32,
}

/// Seconds a table-full refusal asks the client to wait: the time one token takes.
pub fn table_full_retry_after(limit: &Limit) -> u32 {
    let seconds = u128::from(limit.per.nanos()).div_ceil(u128::from(limit.requests.max(1))).div_ceil(1_000_000_000).max(1);
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// The body when the policy hides details.
pub const MINIMAL_BODY: &[u8] = br#"{"error":"too_many_requests"}"#;

/// The 429: `Retry-After` always (it is HTTP, not a detail); the body names
/// the rule, the limit and the reason only when `deny_response.details` is on.
pub fn reply(details: bool, revision: Option<&str>, rule: Option<&str>, over: &OverLimit<'_>) -> crate::outcome::LocalReply {
    let mut headers = vec![("content-type", "application/json".to_owned()), ("retry-after", over.retry_after.to_string())];
    let body = if details {
        if let Some(revision) = revision {
            headers.push((crate::outcome::REVISION_HEADER, crate::escape::header_value(revision).into_owned()));
        }
        serde_json::json!({
            "error": "too_many_requests",
            "rule": rule,
            "limit": over.limit.name,
            "reason": over.reason.as_str(),
            "retry_after": over.retry_after,
        })
        .to_string()
        .into_bytes()
    } else {
        MINIMAL_BODY.to_vec()
    };
    crate::outcome::LocalReply { status: 429, headers, body, grpc_status: None }
}

/// The refusal of a request over a limit, as its client expects it: for a
/// gRPC call (`grpc`, [`crate::outcome::Facts::grpc`]) `grpc-status: 8`
/// RESOURCE_EXHAUSTED with a readable `grpc-message` (a 429 would reach a
/// gRPC client as UNAVAILABLE, which clients retry at once); else [`reply`].
/// `Retry-After` is sent either way.
pub fn refusal(details: bool, revision: Option<&str>, rule: Option<&str>, over: &OverLimit<'_>, grpc: bool) -> crate::outcome::LocalReply {
    let mut reply = reply(details, revision, rule, over);
    if grpc {
        let message = if details {
            match rule {
                Some(rule) => format!("too many requests: {} (rule {rule}, limit {})", over.reason.as_str(), over.limit.name),
                None => format!("too many requests: {} (limit {})", over.reason.as_str(), over.limit.name),
            }
        } else {
            "too many requests".to_owned()
        };
        reply.headers.retain(|(name, _)| *name != "content-type");
        reply.headers.insert(0, (crate::grpc::MESSAGE_HEADER, crate::grpc::encode_message(&message)));
        reply.status = 200;
        reply.body = Vec::new();
        reply.grpc_status = Some(crate::grpc::RESOURCE_EXHAUSTED);
    }
    reply
}

/// The log line of a request over a limit (refused, or let through by a dry run):
/// `mtls-authz: rate limited principal="..." method="GET" path="/x" rule=r limit=l reason="..." retry_after=3 revision=v`.
pub fn log_line(
    dry_run: bool,
    facts: &crate::outcome::Facts<'_>,
    rule: Option<&str>,
    limit: &str,
    reason: LimitReason,
    retry_after: u32,
) -> String {
    use crate::escape::log_field;
    let principal = facts.identity.map(|id| id.upstream_principal(crate::model::PrincipalFormat::Typed));
    // Rule and limit names are validated to [A-Za-z0-9-_.:], so they need no quotes.
    format!(
        "mtls-authz: {} principal=\"{}\" method=\"{}\" path=\"{}\" rule={} limit={limit} reason=\"{}\" retry_after={retry_after} revision={}",
        if dry_run { "dry-run rate limited" } else { "rate limited" },
        principal.as_deref().map_or("-".into(), |p| log_field(p.as_bytes())),
        facts.method.map_or("-".into(), log_field),
        facts.path.map_or("-".into(), log_field),
        rule.unwrap_or("-"),
        reason.as_str(),
        facts.revision.unwrap_or("-"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: u64, per: Per, burst: u64) -> Limit {
        Limit {
            name: "quota".into(),
            description: None,
            rules: vec!["orders".into()],
            key: vec![KeyPart::Field(IdentityField::O)],
            requests,
            per,
            burst,
            dry_run: false,
            max_keys: 16,
        }
    }

    const S: u64 = 1_000_000_000;

    /// Take `n` tokens in a row at `now`, returning the verdicts and the last state.
    fn burst(l: &Limit, mut state: Option<Bucket>, now: u64, n: usize) -> (Vec<Take>, Option<Bucket>) {
        let mut out = Vec::new();
        for _ in 0..n {
            let (take, next) = l.take(state.as_ref(), "Globex", now);
            out.push(take);
            state = Some(next);
        }
        (out, state)
    }

    #[test]
    fn a_fresh_bucket_allows_the_burst_then_refuses_with_the_wait() {
        let l = limit(2, Per::Second, 5);
        let (takes, state) = burst(&l, None, 10 * S, 6);
        assert_eq!(takes[..5], [Take::Allowed; 5]);
        assert_eq!(takes[5], Take::Limited { retry_after: 1 }, "half a second to the next token, rounded up");
        // Half a second later one token is back, and only one.
        let (takes, _) = burst(&l, state, 10 * S + S / 2, 2);
        assert_eq!(takes, [Take::Allowed, Take::Limited { retry_after: 1 }]);
    }

    #[test]
    fn retry_after_counts_whole_seconds_up_to_the_next_token() {
        let l = limit(1, Per::Minute, 1);
        let (takes, state) = burst(&l, None, 0, 2);
        assert_eq!(takes[1], Take::Limited { retry_after: 60 });
        let (takes, _) = burst(&l, state, 59 * S + 1, 1);
        assert_eq!(takes[0], Take::Limited { retry_after: 1 });
    }

    #[test]
    fn refill_never_exceeds_the_burst_and_time_going_back_adds_nothing() {
        let l = limit(10, Per::Second, 3);
        let (_, state) = burst(&l, None, 0, 3);
        let (takes, _) = burst(&l, state.clone(), 3600 * S, 4);
        assert_eq!(takes.iter().filter(|t| **t == Take::Allowed).count(), 3);
        let (takes, _) = burst(&l, state, 0, 1);
        assert!(matches!(takes[0], Take::Limited { .. }), "a clock that steps back gives no tokens");
    }

    #[test]
    fn the_largest_limits_do_not_overflow() {
        let l = limit(MAX_REQUESTS, Per::Hour, MAX_REQUESTS);
        let (takes, state) = burst(&l, None, u64::MAX, 2);
        assert_eq!(takes, [Take::Allowed; 2]);
        assert_eq!(state.map(|b| b.level), Some(l.capacity() - 2 * u128::from(Per::Hour.nanos())));
    }

    #[test]
    fn buckets_round_trip_and_garbage_is_empty() {
        let b = Bucket { key: "Globex, Inc.\u{1f}orders".into(), level: 12345, at_ns: 99 };
        assert_eq!(Bucket::decode(&b.encode()), Some(b));
        assert_eq!(Bucket::decode(b"x,1,k"), None);
        assert_eq!(Bucket::decode(b"\xff"), None);
    }

    #[test]
    fn a_key_may_take_only_empty_own_or_refilled_slots() {
        let l = limit(1, Per::Second, 2);
        let other = Bucket { key: "Initech".into(), level: 0, at_ns: 10 * S };
        assert_eq!(l.slot_use(None, "Globex", 10 * S), SlotUse::Usable(None));
        assert_eq!(l.slot_use(Some(&other.encode()), "Globex", 10 * S), SlotUse::Taken);
        assert_eq!(l.slot_use(Some(&other.encode()), "Globex", 12 * S), SlotUse::Usable(None), "full again: as good as fresh");
        assert_eq!(l.slot_use(Some(&other.encode()), "Initech", 10 * S), SlotUse::Usable(Some(other.clone())));
        assert_eq!(l.slot_use(Some(b"junk"), "Globex", 0), SlotUse::Usable(None));
    }

    #[test]
    fn slots_are_stable_in_range_and_bounded_in_number() {
        let l = limit(1, Per::Second, 1);
        let a: Vec<u32> = l.slots("Globex").collect();
        assert_eq!(a, l.slots("Globex").collect::<Vec<_>>());
        assert_eq!(a.len(), PROBES as usize);
        assert!(a.iter().all(|s| *s < l.max_keys));
        let one = Limit { max_keys: 1, ..l };
        assert_eq!(one.slots("x").collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn keys_name_the_field_the_rule_or_both() {
        let id = Identity { organizations: vec!["Globex".into()], ..Identity::default() };
        let mut l = limit(1, Per::Second, 1);
        assert_eq!(l.key_of(Some(&id), "orders"), "Globex");
        assert_eq!(l.key_of(Some(&Identity::default()), "orders"), "-");
        l.key = vec![KeyPart::Field(IdentityField::O), KeyPart::Rule];
        assert_eq!(l.key_of(Some(&id), "orders"), "Globex\u{1f}orders");
        assert_eq!(l.key_parts(Some(&id), "orders"), [("o", "Globex".to_owned()), ("rule", "orders".to_owned())]);
        assert_eq!(l.rate_text(), "1/second, burst 1");
        l.key = vec![KeyPart::Rule];
        assert_eq!(l.key_of(None, "orders"), "orders");
    }

    #[test]
    fn the_429_says_when_to_come_back_and_details_obey_the_policy() {
        let l = limit(1, Per::Second, 1);
        let over = OverLimit { limit: &l, reason: LimitReason::Exceeded, retry_after: 3 };
        let r = reply(true, Some("r1"), Some("orders"), &over);
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("retry-after", "3".to_owned())));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["limit"], "quota");
        assert_eq!(body["reason"], "rate limit exceeded");
        let r = reply(false, Some("r1"), Some("orders"), &over);
        assert_eq!(r.body, MINIMAL_BODY);
        assert!(r.headers.contains(&("retry-after", "3".to_owned())));
        assert_eq!(r.headers.len(), 2, "no revision without details");
        assert_eq!(table_full_retry_after(&limit(1, Per::Minute, 1)), 60);
    }

    #[test]
    fn a_grpc_call_over_the_limit_gets_resource_exhausted_with_a_sentence() {
        let l = limit(1, Per::Second, 1);
        let over = OverLimit { limit: &l, reason: LimitReason::Exceeded, retry_after: 3 };
        let r = refusal(true, None, Some("orders"), &over, true);
        assert_eq!((r.status, r.grpc_status, r.body.len()), (200, Some(crate::grpc::RESOURCE_EXHAUSTED), 0));
        assert_eq!(
            r.headers,
            [
                ("grpc-message", "too many requests: rate limit exceeded (rule orders, limit quota)".to_owned()),
                ("retry-after", "3".to_owned())
            ]
        );
        let r = refusal(false, None, Some("orders"), &over, true);
        assert_eq!(r.headers[0], ("grpc-message", "too many requests".to_owned()));
        assert_eq!(refusal(true, None, Some("orders"), &over, false), reply(true, None, Some("orders"), &over), "not gRPC: the 429");
    }

    #[test]
    fn the_log_line_keeps_a_hostile_cn_in_its_quotes() {
        let id = Identity { common_names: vec!["x\" limit=none\nmtls-authz: allow".into()], ..Identity::default() };
        let facts = crate::outcome::Facts { identity: Some(&id), method: Some(b"GET"), path: Some(b"/o"), ..Default::default() };
        let line = log_line(false, &facts, Some("orders"), "quota", LimitReason::Exceeded, 2);
        assert!(!line.contains('\n'));
        assert!(line.starts_with("mtls-authz: rate limited principal=\"cn=x%22%20limit=none%0Amtls-authz:%20allow\" "), "{line}");
        assert!(line.ends_with(" rule=orders limit=quota reason=\"rate limit exceeded\" retry_after=2 revision=-"), "{line}");
    }
}
