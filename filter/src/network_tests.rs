//! L4 mode against the mock host: one decision per connection, after the
//! handshake, from the verified certificate; a deny closes the connection
//! and lets nothing through in either direction.

use std::cell::RefCell;
use std::rc::Rc;

use mtls_authz_policy::CompiledPolicy;

use crate::cache::IdentityCache;
use crate::host::{Level, Metric};
use crate::mock::MockHost;
use crate::network::{accept_policy, on_downstream_data, on_new_connection, on_upstream_data, ConnFlow, ConnState};
use crate::tests::cert;

const POLICY: &str = r#"{"version": 1, "default_action": "deny", "revision": "m1", "connection_rules": [
  {"name": "fleet", "action": "allow", "principals": [{"cn": "dev-*"}]},
  {"name": "stolen", "action": "deny", "principals": [{"cn": "dev-13"}]}]}"#;

fn policy(src: &str) -> Rc<CompiledPolicy> {
    Rc::new(CompiledPolicy::from_json(src).unwrap())
}

#[test]
fn nothing_is_decided_or_read_when_the_connection_is_accepted() {
    assert_eq!(on_new_connection(), ConnFlow::Stop, "tcp_proxy must not start before the decision");
    assert_eq!(on_upstream_data(ConnState::Undecided), ConnFlow::Stop);
}

#[test]
fn an_allowed_connection_is_decided_once_and_logged() {
    let p = policy(POLICY);
    let cache = RefCell::new(IdentityCache::default());
    let host = MockHost::default().with_cert(&cert("dev-1", None, None));
    let mut state = ConnState::default();
    assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 14, false), ConnFlow::Continue);
    assert_eq!(state, ConnState::Allowed);
    let reads = host.calls().len();
    assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 14, false), ConnFlow::Continue);
    assert_eq!(host.calls().len(), reads, "later data costs no host call");
    assert_eq!(on_upstream_data(state), ConnFlow::Continue);
    assert_eq!((host.metric(Metric::ConnectionsAllowed), host.metric(Metric::ConnectionsDenied)), (1, 0));
    assert_eq!(host.logs_containing("mtls-authz: connection allow principal=\"cn=dev-1\"").len(), 1);
    assert!(!*host.closed.borrow());
}

#[test]
fn a_denied_connection_is_closed_and_passes_nothing() {
    let p = policy(POLICY);
    let cache = RefCell::new(IdentityCache::default());
    for (cn, rule) in [("dev-13", "rule=stolen"), ("laptop", "rule=default")] {
        let host = MockHost::default().with_cert(&cert(cn, None, None));
        let mut state = ConnState::default();
        assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 14, false), ConnFlow::Stop);
        assert!(*host.closed.borrow(), "{cn}");
        assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 14, false), ConnFlow::Stop, "later bytes are held too");
        assert_eq!(on_upstream_data(state), ConnFlow::Stop);
        assert_eq!(host.metric(Metric::ConnectionsDenied), 1);
        let line = host.logs_containing("mtls-authz: connection deny ");
        assert!(line.len() == 1 && line[0].contains(rule) && line[0].contains("revision=m1"), "{line:?}");
    }
}

#[test]
fn no_certificate_and_host_failures_close_the_connection() {
    let p = policy(POLICY);
    let cache = RefCell::new(IdentityCache::default());
    let host = MockHost::default();
    let mut state = ConnState::default();
    assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 14, false), ConnFlow::Stop);
    assert!(*host.closed.borrow());
    assert_eq!(host.logs_containing("reason=\"no verified client certificate on the connection\"").len(), 1);

    let mut host = MockHost::default().with_cert(&cert("dev-1", None, None));
    host.failing.insert("property");
    let mut state = ConnState::default();
    assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 14, false), ConnFlow::Stop);
    assert!(*host.closed.borrow() && host.metric(Metric::Errors) == 1);

    let host = MockHost::default().with_cert(&cert("dev-1", None, None));
    let mut state = ConnState::default();
    assert_eq!(on_downstream_data(&host, None, &cache, &mut state, 14, false), ConnFlow::Stop, "no policy: closed");
    assert_eq!(host.metric(Metric::ConnectionsDenied), 1);

    let mut host = MockHost::default().with_cert(&cert("dev-13", None, None));
    host.failing.insert("close");
    let mut state = ConnState::default();
    assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 14, false), ConnFlow::Stop, "a failed close still holds every byte");
    assert_eq!(host.metric(Metric::Errors), 1);
}

#[test]
fn a_client_that_leaves_without_a_byte_is_closed_undecided() {
    let p = policy(POLICY);
    let cache = RefCell::new(IdentityCache::default());
    let host = MockHost::default().with_cert(&cert("dev-1", None, None));
    let mut state = ConnState::default();
    assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 0, true), ConnFlow::Stop, "no upstream for nothing");
    assert!(*host.closed.borrow());
    assert_eq!(host.metric(Metric::ConnectionsAllowed) + host.metric(Metric::ConnectionsDenied), 0);
    assert_eq!(host.reads_of("connection.peer_certificate"), 0);
    let mut state = ConnState::default();
    assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 3, true), ConnFlow::Continue, "bytes, then FIN: decided");
}

#[test]
fn dry_run_lets_a_denied_connection_through_and_says_so() {
    let p = policy(&POLICY.replacen(r#""version": 1,"#, r#""version": 1, "mode": "dry_run","#, 1));
    let cache = RefCell::new(IdentityCache::default());
    let host = MockHost::default().with_cert(&cert("dev-13", None, None));
    let mut state = ConnState::default();
    assert_eq!(on_downstream_data(&host, Some(&p), &cache, &mut state, 14, false), ConnFlow::Continue);
    assert_eq!(host.metric(Metric::ConnectionsDryRunDenied), 1);
    assert_eq!(host.logs_containing("mtls-authz: connection dry-run deny ").len(), 1);
}

#[test]
fn the_certificate_is_parsed_once_per_vm_for_many_connections() {
    let p = policy(POLICY);
    let cache = RefCell::new(IdentityCache::default());
    let device = cert("dev-1", None, None);
    let mut parsed = 0;
    for _ in 0..5 {
        let host = MockHost::default().with_cert(&device);
        let mut state = ConnState::default();
        on_downstream_data(&host, Some(&p), &cache, &mut state, 14, false);
        parsed += host.metric(Metric::CertificatesParsed);
    }
    assert_eq!(parsed, 1);
}

#[test]
fn an_http_policy_is_refused_for_a_network_filter() {
    let host = MockHost::default();
    let http = policy(r#"{"version": 1, "default_action": "allow", "rules": []}"#);
    assert!(!accept_policy(&host, Some(&http)));
    assert_eq!(host.metric(Metric::PolicyRejected), 1);
    assert!(host.logs.borrow().iter().any(|(l, m)| *l == Level::Error && m.contains("no connection_rules")));
    assert!(accept_policy(&host, Some(&policy(POLICY))));
    assert!(!accept_policy(&host, None));
}
