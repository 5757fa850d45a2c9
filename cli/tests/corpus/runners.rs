//! The `Runner` trait and its three implementations: the engine, the filter
//! over a mock host, and the `mtls-authz explain` process. Each takes one
//! request from one identity and reports what it decided, in the same terms,
//! so one table of expectations checks all three.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use mtls_authz_filter::cache::IdentityCache;
use mtls_authz_filter::http::{on_request_body, on_request_headers, Flow, PRINCIPAL_HEADER, RULE_HEADER};
use mtls_authz_filter::mock::MockHost;
use mtls_authz_filter::network::{self, ConnFlow, ConnState};
use mtls_authz_policy::{CompiledPolicy, Identity, RequestParts};

/// One request, as the filter receives it on the raw listener.
pub struct Request<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Option<&'a [u8]>,
}

/// What a runner decided, in the filter's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    pub rule: Option<String>,
    /// The engine's phrase, as in the 403 body (`None` where a runner does not see it: an allow through the filter).
    pub reason: Option<String>,
    /// The local response's status (the filter only).
    pub status: Option<u32>,
    /// The x-mtls-authz-principal forwarded on allow (`None` where a runner does not say).
    pub principal: Option<String>,
}

/// Something that decides requests under the table's policy.
pub trait Runner {
    fn name(&self) -> &'static str;
    /// `identity`: the certificate's PEM, or `None` for no certificate; `key` names it (for files and caches).
    fn run(&self, key: &str, identity: Option<&str>, request: &Request<'_>) -> Outcome;
}

// --------------------------------------------------------------------------- engine

/// `CompiledPolicy::decide_request`, the call `explain` and `test` make.
pub struct Engine {
    pub policy: CompiledPolicy,
    identities: RefCell<BTreeMap<String, Identity>>,
}

impl Engine {
    pub fn new(policy: &str) -> Engine {
        Engine { policy: CompiledPolicy::from_json(policy).unwrap(), identities: RefCell::default() }
    }
}

impl Runner for Engine {
    fn name(&self) -> &'static str {
        "engine"
    }

    fn run(&self, key: &str, identity: Option<&str>, request: &Request<'_>) -> Outcome {
        let identity = identity.map(|pem| {
            self.identities.borrow_mut().entry(key.to_owned()).or_insert_with(|| Identity::from_pem(pem.as_bytes()).unwrap()).clone()
        });
        let headers: Vec<(&[u8], &[u8])> = request.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        let parts = RequestParts { method: request.method, target: request.target, headers: &headers, body: request.body };
        let d = self.policy.decide_request(identity.as_ref(), &parts);
        Outcome {
            allowed: d.is_allowed(),
            rule: d.rule.map(str::to_owned),
            reason: Some(d.reason.to_string()),
            status: None,
            principal: None,
        }
    }
}

// --------------------------------------------------------------------------- filter

/// The filter's request flow (`on_request_headers`, then `on_request_body`
/// for a held body) over [`MockHost`], with one identity cache for the run,
/// as one Envoy worker has.
pub struct Filter {
    policy: CompiledPolicy,
    cache: RefCell<IdentityCache>,
}

impl Filter {
    pub fn new(policy: &str) -> Filter {
        Filter { policy: CompiledPolicy::from_json(policy).unwrap(), cache: RefCell::default() }
    }

    /// A connection to an L4 listener (`network::on_downstream_data`, the
    /// first bytes after the handshake): kept or closed, and the rule and
    /// reason as the filter's log line gives them.
    pub fn connect(&self, identity: Option<&str>) -> Outcome {
        let mut host = MockHost::default();
        if let Some(pem) = identity {
            let digest = Identity::from_pem(pem.as_bytes()).unwrap().sha256;
            host = host.with_certificate(pem, &digest);
        }
        let mut state = ConnState::default();
        let flow = network::on_downstream_data(&host, Some(&self.policy), &self.cache, &mut state, 16, false);
        let line = host.logs_containing("mtls-authz: connection ").pop().unwrap_or_default();
        let field = |key: &str| line.split(key).nth(1).map(|rest| rest.trim_start_matches('"'));
        let rule = field(" rule=").and_then(|r| r.split(' ').next()).filter(|r| !["default", "-"].contains(r)).map(str::to_owned);
        let reason = field(" reason=").and_then(|r| r.split('"').next()).map(str::to_owned);
        let allowed = flow == ConnFlow::Continue && !*host.closed.borrow();
        Outcome { allowed, rule, reason, status: None, principal: None }
    }
}

impl Runner for Filter {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn run(&self, _key: &str, identity: Option<&str>, request: &Request<'_>) -> Outcome {
        let host = mock_host(identity, request);
        let mut flow = on_request_headers(&host, Some(&self.policy), &self.cache, request.body.is_none());
        if let Flow::ReadBody(held) = &flow {
            let len = host.body.len();
            flow = on_request_body(&host, Some(&self.policy), held, len, true);
        }
        match flow {
            Flow::Continue => Outcome {
                allowed: host.response.borrow().is_none(),
                rule: forwarded(&host, RULE_HEADER),
                reason: None,
                status: None,
                principal: forwarded(&host, PRINCIPAL_HEADER),
            },
            Flow::Stop => {
                let response = host.response.borrow();
                let (status, body) = response
                    .as_ref()
                    .map_or((0, serde_json::Value::Null), |(s, _, b)| (*s, serde_json::from_slice(b).unwrap_or(serde_json::Value::Null)));
                Outcome {
                    allowed: false,
                    rule: body["rule"].as_str().map(str::to_owned),
                    reason: body["reason"].as_str().map(str::to_owned),
                    status: Some(status),
                    principal: None,
                }
            }
            other => panic!("the filter left the request at {other:?}"),
        }
    }
}

/// The proxy as the filter sees it on the raw listener: the verified
/// certificate on the connection, the request headers as Envoy's codec hands
/// them over (names lower-cased, values trimmed), the whole body buffered.
fn mock_host(pem: Option<&str>, request: &Request<'_>) -> MockHost {
    let mut host = MockHost::request(request.method, request.target);
    if let Some(pem) = pem {
        let digest = Identity::from_pem(pem.as_bytes()).unwrap().sha256;
        host = host.with_certificate(pem, &digest);
    }
    for (name, value) in request.headers {
        host.add_header(&name.to_ascii_lowercase(), value.trim().as_bytes());
    }
    host.body = request.body.unwrap_or_default().to_vec();
    host
}

/// The one value of a request header after the filter, or `None`; two copies is a failure.
fn forwarded(host: &MockHost, name: &str) -> Option<String> {
    let values = host.header_values(name);
    assert!(values.len() <= 1, "{name} forwarded {} times: {values:?}", values.len());
    values.into_iter().next()
}

// --------------------------------------------------------------------------- CLI

/// `mtls-authz explain --format json`, one process per request, with the
/// certificate, policy and body as files.
pub struct Cli {
    dir: PathBuf,
    policy: PathBuf,
}

impl Cli {
    pub fn new(policy: &str) -> Cli {
        let dir = std::env::temp_dir().join(format!("mtls-authz-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let policy_file = dir.join("policy.json");
        std::fs::write(&policy_file, policy).unwrap();
        Cli { dir, policy: policy_file }
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Runner for Cli {
    fn name(&self) -> &'static str {
        "cli"
    }

    fn run(&self, key: &str, identity: Option<&str>, request: &Request<'_>) -> Outcome {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtls-authz"));
        cmd.arg("explain").arg("--policy").arg(&self.policy).arg("--format").arg("json");
        match identity {
            Some(pem) => {
                let file = self.dir.join(format!("{key}.pem"));
                if !file.exists() {
                    std::fs::write(&file, pem).unwrap();
                }
                cmd.arg("--cert").arg(file);
            }
            None => {
                cmd.arg("--no-cert");
            }
        }
        cmd.arg("--method").arg(request.method).arg(format!("--path={}", request.target));
        for (name, value) in request.headers {
            cmd.arg("--header").arg(format!("{name}: {value}"));
        }
        if let Some(body) = request.body {
            let file = self.dir.join("body");
            std::fs::write(&file, body).unwrap();
            cmd.arg("--body-file").arg(file);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "explain exited {:?}: {stdout} {}", out.status, String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        Outcome {
            allowed: report["enforced"] == "allow",
            rule: report["rule"].as_str().map(str::to_owned),
            reason: report["reason"].as_str().map(str::to_owned),
            status: None,
            principal: report["upstream_principal"].as_str().map(str::to_owned),
        }
    }
}
