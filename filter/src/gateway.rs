//! The host side of the policy's gateway sections ([`mtls_authz_policy::gateway`]):
//! rate limit buckets in shared data, per-rule and per-identity counters,
//! the filter state for Envoy's rate limit filters, the audit record.
//!
//! What a bucket does with a request, what a counter is called and what an
//! audit record says is the engine's; this module only fetches and stores.
//! Every count, publication and record is best effort (a failure is counted
//! in `errors`, never changes a decision); a limit that cannot be checked
//! fails closed, like everything else on the request path.

use mtls_authz_policy::audit::{self, Record};
use mtls_authz_policy::gateway::Published;
use mtls_authz_policy::limits::{self, Limit, LimitReason, OverLimit, SlotUse, Take};
use mtls_authz_policy::metrics::{self, Count, PerIdentity};
use mtls_authz_policy::outcome::Facts;
use mtls_authz_policy::{CompiledPolicy, Decision, Identity, Mode, Verdict};

use crate::host::{Host, HostError, Metric};

/// How often a bucket update is retried when another worker changed it first.
const CAS_ATTEMPTS: usize = 8;

/// The limits' answer for a request the policy allows.
#[derive(Debug)]
pub enum Limits<'p> {
    /// Under every enforced limit; `dry_run` is the first dry-run limit it is over.
    Pass { dry_run: Option<OverLimit<'p>> },
    /// Over an enforced limit: 429.
    Over(OverLimit<'p>),
}

/// Take a token from every limit on the rule that allowed the request.
pub fn check_limits<'p, H: Host>(
    host: &H,
    policy: &'p CompiledPolicy,
    decision: &Decision<'p>,
    identity: Option<&Identity>,
) -> Result<Limits<'p>, HostError> {
    let mut dry_run = None;
    let (Verdict::Allow, Some(rule)) = (decision.verdict, decision.rule) else { return Ok(Limits::Pass { dry_run }) };
    let mut now = None;
    for limit in policy.policy().gateway.limits_for(Some(rule)) {
        let now = match now {
            Some(now) => now,
            None => *now.insert(host.now_ns()?),
        };
        let key = limit.key_of(identity, rule);
        let over = match take(host, limit, &key, now)? {
            Some(Take::Allowed) => continue,
            Some(Take::Limited { retry_after }) => OverLimit { limit, reason: LimitReason::Exceeded, retry_after },
            None => {
                host.increment(Metric::RateLimitTableFull);
                OverLimit { limit, reason: LimitReason::TableFull, retry_after: limits::table_full_retry_after(limit) }
            }
        };
        if limit.dry_run || policy.mode() == Mode::DryRun {
            dry_run.get_or_insert(over);
        } else {
            return Ok(Limits::Over(over));
        }
    }
    Ok(Limits::Pass { dry_run })
}

/// One token for `key`: find its slot, take, store with compare-and-swap.
/// `Ok(None)` when every slot the key may use holds another key's bucket.
fn take<H: Host>(host: &H, limit: &Limit, key: &str, now: u64) -> Result<Option<Take>, HostError> {
    for _ in 0..CAS_ATTEMPTS {
        let mut found = None;
        for slot in limit.slots(key) {
            let slot_key = limit.slot_key(slot);
            let (stored, cas) = host.shared_get(&slot_key)?;
            if let SlotUse::Usable(bucket) = limit.slot_use(stored.as_deref(), key, now) {
                found = Some((slot_key, bucket, cas));
                break;
            }
        }
        let Some((slot_key, bucket, cas)) = found else { return Ok(None) };
        let (take, next) = limit.take(bucket.as_ref(), key, now);
        if host.shared_set(&slot_key, &next.encode(), cas)? {
            return Ok(Some(take));
        }
    }
    Err(HostError("set_shared_data (compare-and-swap kept failing)"))
}

/// Count one request in the per-rule and per-identity counters the policy asks for.
pub fn count<H: Host>(host: &H, policy: &CompiledPolicy, decision: &Decision<'_>, identity: Option<&Identity>, count: Count) {
    let config = &policy.policy().gateway.metrics;
    if config.per_rule {
        let name = || metrics::rule_stat(&metrics::rule_label(decision), count);
        if let Some(id) = host.rule_counter(metrics::rule_key(decision), count, &name) {
            host.increment_counter(id);
        }
    }
    if let Some(per) = config.per_identity {
        let label = metrics::identity_label(per, identity);
        if let Some(id) = identity_counter(host, per, &label, count) {
            host.increment_counter(id);
        }
    }
}

/// The shared-data key counting the identities admitted to their own
/// counters, per field (a reloaded policy that names another field starts afresh).
fn admitted_key(per: PerIdentity) -> String {
    format!("mtls_authz.identities.{}", per.field.as_str())
}

/// The counter for `label`: its own if it has been admitted (by this VM, or
/// any worker through shared data) or can be now, else `~other`.
fn identity_counter<H: Host>(host: &H, per: PerIdentity, label: &str, count: Count) -> Option<u32> {
    let name = metrics::identity_stat(label, count);
    if let Some(id) = host.counter(&name, false) {
        return Some(id);
    }
    match admit(host, per, label) {
        Ok(true) => host.counter(&name, true),
        Ok(false) => {
            host.increment(Metric::IdentityMetricsOverflow);
            host.counter(&metrics::identity_stat(metrics::IDENTITY_OTHER, count), true)
        }
        Err(_) => {
            host.increment(Metric::Errors);
            None
        }
    }
}

/// Admit `label` to its own counters if fewer than `max_identities` are. Two
/// workers admitting the same new label at once both count it: the cap may
/// then admit one fewer, never one more.
fn admit<H: Host>(host: &H, per: PerIdentity, label: &str) -> Result<bool, HostError> {
    let count_key = admitted_key(per);
    let marker = format!("{count_key}.{label}");
    if host.shared_get(&marker)?.0.is_some() {
        return Ok(true);
    }
    for _ in 0..CAS_ATTEMPTS {
        let (stored, cas) = host.shared_get(&count_key)?;
        let admitted: u32 = stored.and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok()).unwrap_or(0);
        if admitted >= per.max_identities {
            return Ok(false);
        }
        if host.shared_set(&count_key, (admitted + 1).to_string().as_bytes(), cas)? {
            host.shared_set(&marker, b"1", 0)?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Publish what the policy's `filter_state` lists, for a request that goes on.
pub fn publish<H: Host>(host: &H, policy: &CompiledPolicy, decision: &Decision<'_>, identity: Option<&Identity>) {
    for published in &policy.policy().gateway.filter_state {
        let value = match published {
            Published::Rule => decision.rule.map(str::to_owned),
            Published::Field(field) => identity.and_then(|id| field.value(id)),
        };
        if let Some(value) = value {
            if host.set_filter_state(&published.key(), value.as_bytes()).is_err() {
                host.increment(Metric::Errors);
            }
        }
    }
}

/// Publish the audit record, if the policy keeps one for this verdict.
/// `verdict` is one of the record's verdicts ([`Record::verdict`]).
pub fn audit<H: Host>(
    host: &H,
    policy: &CompiledPolicy,
    facts: &Facts<'_>,
    verdict: &str,
    rule: Option<&str>,
    reason: &str,
    limit: Option<&str>,
) {
    let gateway = &policy.policy().gateway;
    let Some(log) = gateway.audit_log else { return };
    if !log.records(verdict == "allow") {
        return;
    }
    let record = audit::record(&Record {
        verdict,
        rule,
        reason,
        limit,
        identity: facts.identity,
        fields: &gateway.audit_fields,
        method: facts.method,
        path: facts.path,
        revision: facts.revision,
    });
    if host.set_filter_state(audit::FILTER_STATE, record.as_bytes()).is_err() {
        host.increment(Metric::Errors);
    }
}
