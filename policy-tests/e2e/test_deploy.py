"""deploy/: the fleet configurations, checked as far as this machine can.

No Kubernetes cluster, istiod or Envoy Gateway runs here, so the manifests are
checked offline:

* against the CRD schemas of Istio 1.30.3 and Envoy Gateway v1.9.0, pinned in
  deploy/schemas/ (the published openAPIV3Schema, verbatim; their hashes are
  checked against deploy/schemas/README.md), with unknown fields refused as
  `kubectl apply` (strict field validation) refuses them, and every CEL rule
  (x-kubernetes-validations) on a field the manifests use evaluated by a
  hand translation below: a rule without one fails the test;
* the policies they carry are the tested examples, and the real filter in a
  real Envoy accepts them in the form Istio and Envoy Gateway hand them over
  (compact JSON in a google.protobuf.StringValue);
* the xDS bootstrap is the committed rendering and Envoy accepts it.
"""

import copy
import hashlib
import json
import re
import urllib.parse
from pathlib import Path

import jsonschema
import pytest
import yaml

from e2e_lib import REPO, render, validate_config

DEPLOY = REPO / "deploy"
SCHEMAS = DEPLOY / "schemas"
EXAMPLES = REPO / "examples"

MANIFESTS = {
    "istio/wasmplugin.yaml": ["WasmPlugin", "PeerAuthentication"],
    "envoy-gateway/envoyextensionpolicy.yaml": ["ClientTrafficPolicy", "EnvoyExtensionPolicy"],
}
SCHEMA_FOR = {
    ("extensions.istio.io/v1alpha1", "WasmPlugin"): "istio-1.30.3.wasmplugin.v1alpha1.json",
    ("security.istio.io/v1", "PeerAuthentication"): "istio-1.30.3.peerauthentication.v1.json",
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"): "envoy-gateway-v1.9.0.envoyextensionpolicy.v1alpha1.json",
    ("gateway.envoyproxy.io/v1alpha1", "ClientTrafficPolicy"): "envoy-gateway-v1.9.0.clienttrafficpolicy.v1alpha1.json",
}
XDS_BOOTSTRAP = DEPLOY / "xds" / "envoy-ecds-grpc.yaml"
XDS_CONTROL_PLANE = ("control-plane", 18000)


# --------------------------------------------------------------------------- the schema check

def _strict(schema):
    """Refuse unknown fields like the API server's strict field validation (kubectl's default):
    every object schema with `properties` and no preserve-unknown-fields gets additionalProperties: false."""
    if isinstance(schema, dict):
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for key in ("properties", "patternProperties"):
            for sub in schema.get(key, {}).values():
                _strict(sub)
        for key in ("items", "additionalProperties", "not"):
            if isinstance(schema.get(key), dict):
                _strict(schema[key])
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(key, []):
                _strict(sub)
    return schema


def load_schema(api_version, kind):
    name = SCHEMA_FOR.get((api_version, kind))
    assert name, "no pinned schema for %s %s: add it to deploy/schemas/ and SCHEMA_FOR" % (api_version, kind)
    return json.loads((SCHEMAS / name).read_text())


def _has(obj, key):
    return isinstance(obj, dict) and key in obj


def _url_ok(url):
    schemes = ("", "http", "https", "oci", "file")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme and parsed.netloc or parsed.scheme == "file":
        return parsed.scheme in schemes
    return urllib.parse.urlsplit("http://" + url).netloc != ""


_GW_KINDS = ["Gateway", "ListenerSet"]
_EEP_KINDS = ["Gateway", "ListenerSet", "HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"]
_ROUTE_KINDS = ["HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"]
_TLS_MIN = {"Auto": 0, "1.0": 1, "1.1": 2, "1.2": 3, "1.3": 4}
_TLS_MAX = {"1.0": 1, "1.1": 2, "1.2": 3, "1.3": 4, "Auto": 5}


def _target_xor(s):
    return ((_has(s, "targetRef") and not _has(s, "targetRefs")) or (not _has(s, "targetRef") and _has(s, "targetRefs"))
            or (_has(s, "targetSelectors") and len(s["targetSelectors"]) > 0))


def _ref_group(s):
    return s["targetRef"].get("group") == "gateway.networking.k8s.io" if _has(s, "targetRef") else True


def _refs_group(s):
    return all(r.get("group") == "gateway.networking.k8s.io" for r in s["targetRefs"]) if _has(s, "targetRefs") else True


# Hand translations of the CEL rules (keyed by the rule text, stripped) on the
# fields these manifests use. The API server evaluates CEL; jsonschema cannot.
CEL = {
    # Istio WasmPlugin / PeerAuthentication
    '(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1':
        lambda s: sum(_has(s, k) for k in ("selector", "targetRef", "targetRefs")) <= 1,
    'self.all(key, !key.contains("*"))': lambda s: all("*" not in k for k in s),
    'self.all(key, key.size() != 0)': lambda s: all(len(k) != 0 for k in s),
    '!self.contains("*")': lambda s: "*" not in s,
    'isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) &&\n'
    'url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])': _url_ok,
    'has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? self.selector.matchLabels : {})'
    '.size() > 0) : true':
        lambda s: not _has(s, "portLevelMtls") or len((s.get("selector") or {}).get("matchLabels") or {}) > 0,
    # Envoy Gateway policies' targets
    "(has(self.targetRef) && !has(self.targetRefs)) || (!has(self.targetRef) && has(self.targetRefs)) || "
    "(has(self.targetSelectors) && self.targetSelectors.size() > 0)": _target_xor,
    "has(self.targetRef) ? self.targetRef.group == 'gateway.networking.k8s.io' : true": _ref_group,
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.group == 'gateway.networking.k8s.io') : true": _refs_group,
    "has(self.targetRef) ? self.targetRef.kind in ['Gateway', 'ListenerSet'] : true":
        lambda s: s["targetRef"].get("kind") in _GW_KINDS if _has(s, "targetRef") else True,
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.kind in ['Gateway', 'ListenerSet']) : true":
        lambda s: all(r.get("kind") in _GW_KINDS for r in s["targetRefs"]) if _has(s, "targetRefs") else True,
    "has(self.targetRef) ? self.targetRef.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', 'UDPRoute', "
    "'TCPRoute', 'TLSRoute'] : true":
        lambda s: s["targetRef"].get("kind") in _EEP_KINDS if _has(s, "targetRef") else True,
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', "
    "'UDPRoute', 'TCPRoute', 'TLSRoute']) : true":
        lambda s: all(r.get("kind") in _EEP_KINDS for r in s["targetRefs"]) if _has(s, "targetRefs") else True,
    "!has(self.mergeType) || ((!has(self.targetRef) || self.targetRef.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', "
    "'TCPRoute', 'TLSRoute']) && (!has(self.targetRefs) || self.targetRefs.all(ref, ref.kind in ['HTTPRoute', "
    "'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'])) && (!has(self.targetSelectors) || self.targetSelectors.all(sel, "
    "sel.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'])))":
        lambda s: not _has(s, "mergeType") or (
            (not _has(s, "targetRef") or s["targetRef"].get("kind") in _ROUTE_KINDS)
            and all(r.get("kind") in _ROUTE_KINDS for r in s.get("targetRefs", []))
            and all(r.get("kind") in _ROUTE_KINDS for r in s.get("targetSelectors", []))),
    # ClientTrafficPolicy details
    "has(self.minVersion) && self.minVersion == '1.3' ? !has(self.ciphers) : true":
        lambda s: not (s.get("minVersion") == "1.3") or not _has(s, "ciphers"),
    'has(self.minVersion) && has(self.maxVersion) ? {"Auto":0,"1.0":1,"1.1":2,"1.2":3,"1.3":4}[self.minVersion] <= '
    '{"1.0":1,"1.1":2,"1.2":3,"1.3":4,"Auto":5}[self.maxVersion] : !has(self.minVersion) && has(self.maxVersion) ? '
    '3 <= {"1.0":1,"1.1":2,"1.2":3,"1.3":4,"Auto":5}[self.maxVersion] : true':
        lambda s: (_TLS_MIN[s["minVersion"]] <= _TLS_MAX[s["maxVersion"]] if _has(s, "minVersion") and _has(s, "maxVersion")
                   else 3 <= _TLS_MAX[s["maxVersion"]] if _has(s, "maxVersion") else True),
    "!has(self.allowExpiredCertificate) || !self.allowExpiredCertificate || !has(self.mode) || "
    "self.mode in ['VerifyIfGiven', 'RequireAndVerify']":
        lambda s: not s.get("allowExpiredCertificate") or not _has(s, "mode")
        or s["mode"] in ("VerifyIfGiven", "RequireAndVerify"),
    "!(has(self.preserveXRequestID) && has(self.requestID))":
        lambda s: not (_has(s, "preserveXRequestID") and _has(s, "requestID")),
    "(has(self.certDetailsToAdd) && self.certDetailsToAdd.size() > 0) ? (self.mode == 'AppendForward' || "
    "self.mode == 'SanitizeSet') : true":
        lambda s: not s.get("certDetailsToAdd") or s.get("mode") in ("AppendForward", "SanitizeSet"),
    # EnvoyExtensionPolicy wasm code source
    "self.type == 'HTTP' ? has(self.http) : !has(self.http)": lambda s: (s.get("type") == "HTTP") == _has(s, "http"),
    "self.type == 'Image' ? has(self.image) : !has(self.image)": lambda s: (s.get("type") == "Image") == _has(s, "image"),
}


def _cel_problems(schema, inst, path, touched):
    problems = []
    for v in schema.get("x-kubernetes-validations", []):
        rule = v["rule"].strip()
        touched.add(rule)
        check = CEL.get(rule)
        if check is None:
            problems.append("%s: CEL rule without a translation in test_deploy.CEL: %r" % (path or "/", rule))
        elif not check(inst):
            problems.append("%s: %s (CEL: %s)" % (path or "/", v.get("message", "rule failed"), rule))
    if isinstance(inst, dict):
        for k, v in inst.items():
            sub = schema.get("properties", {}).get(k)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                problems += _cel_problems(sub, v, "%s.%s" % (path, k), touched)
    elif isinstance(inst, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(inst):
            problems += _cel_problems(schema["items"], v, "%s[%d]" % (path, i), touched)
    return problems


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _metadata_problems(meta):
    """The CRD schemas leave metadata to the API server; these are its rules for what we set."""
    problems = []
    if not isinstance(meta, dict):
        return ["metadata: must be an object"]
    extra = set(meta) - {"name", "namespace", "labels", "annotations"}
    if extra:
        problems.append("metadata: unexpected fields %s" % sorted(extra))
    name = meta.get("name", "")
    if not (isinstance(name, str) and len(name) <= 253 and _DNS_SUBDOMAIN.match(name)):
        problems.append("metadata.name: %r is not a DNS-1123 subdomain" % name)
    ns = meta.get("namespace")
    if ns is not None and not (isinstance(ns, str) and len(ns) <= 63 and _DNS_LABEL.match(ns)):
        problems.append("metadata.namespace: %r is not a DNS-1123 label" % ns)
    return problems


def problems(doc, touched=None):
    """Everything the API server would refuse in `doc`, as far as the pinned schema and the checks above tell."""
    touched = set() if touched is None else touched
    schema = load_schema(doc.get("apiVersion"), doc.get("kind"))
    root = copy.deepcopy(schema)
    # apiVersion, kind and metadata are always allowed at the top (some CRDs leave them out of the schema).
    for key, typ in (("apiVersion", "string"), ("kind", "string"), ("metadata", "object")):
        root.setdefault("properties", {}).setdefault(key, {"type": typ})
    validator = jsonschema.Draft4Validator(_strict(root))
    found = ["%s: %s" % ("/".join(map(str, e.absolute_path)) or "/", e.message)
             for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
    found += _metadata_problems(doc.get("metadata"))
    found += _cel_problems(schema, doc, "", touched)
    return found


def manifest_docs(rel):
    return [d for d in yaml.safe_load_all((DEPLOY / rel).read_text()) if d is not None]


# --------------------------------------------------------------------------- tests

def test_pinned_schemas_are_the_published_ones():
    """deploy/schemas/README.md records the SHA-256 of each pinned file; a hand edit shows up here."""
    readme = (SCHEMAS / "README.md").read_text()
    for name in set(SCHEMA_FOR.values()):
        digest = hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest()
        assert "`%s`" % name in readme and digest in readme, \
            "deploy/schemas/%s (sha256 %s) is not the file deploy/schemas/README.md records" % (name, digest)


@pytest.mark.parametrize("rel", sorted(MANIFESTS))
def test_manifests_match_their_crd_schemas(rel):
    docs = manifest_docs(rel)
    assert [d.get("kind") for d in docs] == MANIFESTS[rel]
    touched = set()
    for doc in docs:
        found = problems(doc, touched)
        assert not found, "%s %s/%s:\n  %s" % (rel, doc["kind"], doc["metadata"].get("name"), "\n  ".join(found))
    assert touched, "no CEL rule was evaluated: the schema walk is broken"


@pytest.mark.parametrize("rel,kind,mutate,expect", [
    ("istio/wasmplugin.yaml", "WasmPlugin", lambda d: d["spec"].update(pluginConfg=d["spec"].pop("pluginConfig")),
     "Additional properties are not allowed ('pluginConfg' was unexpected)"),
    ("istio/wasmplugin.yaml", "WasmPlugin", lambda d: d["spec"].update(failStrategy="FAIL_CLOSED"), "is not one of"),
    ("istio/wasmplugin.yaml", "WasmPlugin",
     lambda d: d["spec"].update(targetRefs=[{"kind": "Gateway", "name": "gw"}]), "(CEL: (has(self.selector)"),
    ("istio/wasmplugin.yaml", "WasmPlugin", lambda d: d["spec"].update(phase="AUTHORIZATION"), "is not one of"),
    ("istio/wasmplugin.yaml", "PeerAuthentication", lambda d: d["spec"]["mtls"].update(mode="STRICTER"), "is not one of"),
    ("envoy-gateway/envoyextensionpolicy.yaml", "EnvoyExtensionPolicy",
     lambda d: d["spec"]["wasm"][0]["code"].update(type="HTTP"), "If type is HTTP, http field needs to be set."),
    ("envoy-gateway/envoyextensionpolicy.yaml", "EnvoyExtensionPolicy",
     lambda d: d["spec"]["wasm"][0].pop("code"), "'code' is a required property"),
    ("envoy-gateway/envoyextensionpolicy.yaml", "EnvoyExtensionPolicy",
     lambda d: d["spec"]["wasm"][0].update(failopen=False), "'failopen' was unexpected"),
    ("envoy-gateway/envoyextensionpolicy.yaml", "ClientTrafficPolicy",
     lambda d: d["spec"]["tls"]["clientValidation"].update(mode="Required"), "is not one of"),
    ("envoy-gateway/envoyextensionpolicy.yaml", "ClientTrafficPolicy",
     lambda d: d["spec"]["targetRefs"][0].update(kind="HTTPRoute"), "can only have a targetRefs[*].kind of Gateway"),
    ("envoy-gateway/envoyextensionpolicy.yaml", "ClientTrafficPolicy",
     lambda d: d["metadata"].update(name="Partner_Certs"), "not a DNS-1123 subdomain"),
])
def test_the_schema_check_has_teeth(rel, kind, mutate, expect):
    (doc,) = [copy.deepcopy(d) for d in manifest_docs(rel) if d["kind"] == kind]
    mutate(doc)
    found = problems(doc)
    assert any(expect in p for p in found), "expected a problem containing %r, got %s" % (expect, found)


def _as_control_plane_passes_it(policy):
    """The StringValue the filter gets: istiod marshals pluginConfig (a protobuf Struct) to compact
    JSON; Envoy Gateway passes the raw JSON the API server stores. Both: no whitespace, sorted keys
    (Go's encoders sort map keys), integral numbers without a fraction."""
    def norm(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v
    return json.dumps(norm(policy), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _fleet_policies():
    (wasm_plugin,) = [d for d in manifest_docs("istio/wasmplugin.yaml") if d["kind"] == "WasmPlugin"]
    (eep,) = [d for d in manifest_docs("envoy-gateway/envoyextensionpolicy.yaml") if d["kind"] == "EnvoyExtensionPolicy"]
    return {"istio": wasm_plugin["spec"]["pluginConfig"], "envoy-gateway": eep["spec"]["wasm"][0]["config"]}


def test_manifests_carry_the_tested_example_policies():
    """The policies in deploy/ are examples/spiffe-mesh and examples/b2b-gateway, whose cases run in cargo test."""
    fleet = _fleet_policies()
    assert fleet["istio"] == json.loads((EXAMPLES / "spiffe-mesh" / "policy.json").read_text())
    assert fleet["envoy-gateway"] == json.loads((EXAMPLES / "b2b-gateway" / "policy.json").read_text())
    (wp,) = [d for d in manifest_docs("istio/wasmplugin.yaml") if d["kind"] == "WasmPlugin"]
    assert (wp["spec"]["failStrategy"], wp["spec"]["type"], wp["spec"]["match"]) == ("FAIL_CLOSE", "HTTP", [{"mode": "SERVER"}])
    (eep,) = [d for d in manifest_docs("envoy-gateway/envoyextensionpolicy.yaml") if d["kind"] == "EnvoyExtensionPolicy"]
    assert eep["spec"]["wasm"][0]["failOpen"] is False
    (ctp,) = [d for d in manifest_docs("envoy-gateway/envoyextensionpolicy.yaml") if d["kind"] == "ClientTrafficPolicy"]
    assert ctp["spec"]["tls"]["clientValidation"]["mode"] == "RequireAndVerify"
    assert ctp["spec"]["targetRefs"] == eep["spec"]["targetRefs"], "both policies must attach to the same Gateway"


@pytest.mark.filter
@pytest.mark.parametrize("plane", ["istio", "envoy-gateway"])
def test_the_filter_accepts_the_policy_as_the_control_plane_passes_it(plane, envoy_factory, workdir):
    text = _as_control_plane_passes_it(_fleet_policies()[plane])
    assert "\n" not in text
    path = workdir / ("fleet-%s.yaml" % plane)
    path.write_text(envoy_factory.config(text, policy_origin="%s StringValue" % plane))
    rc, out = validate_config(envoy_factory.envoy_bin, path)
    assert rc == 0, "Envoy refused the %s-style configuration:\n%s" % (plane, out[-3000:])
    assert "mtls-authz: policy loaded:" in out, out[-3000:]

    # The same form with a mistake: refused, pointing at line 1 and the JSON path.
    broken = _fleet_policies()[plane]
    broken["rules"][0]["paths"][0] = broken["rules"][0]["paths"][0].lstrip("/")
    text = _as_control_plane_passes_it(broken)
    path.write_text(envoy_factory.config(text, policy_origin="%s StringValue" % plane))
    rc, out = validate_config(envoy_factory.envoy_bin, path)
    assert rc != 0
    assert re.search(r"mtls-authz: policy rejected: plugin configuration:1:\d+: rules\[0\]\.paths\[0\]: ", out), out[-3000:]


def test_xds_bootstrap_is_the_committed_rendering():
    expected = render.render("", ecds_grpc=XDS_CONTROL_PLANE,
                             regenerate="python3 envoy/render.py --ecds-grpc %s:%d --out deploy/xds/envoy-ecds-grpc.yaml"
                             % XDS_CONTROL_PLANE)
    assert XDS_BOOTSTRAP.read_text() == expected, \
        "deploy/xds/envoy-ecds-grpc.yaml is out of date; run: python3 envoy/render.py --ecds-grpc " \
        "control-plane:18000 --out deploy/xds/envoy-ecds-grpc.yaml"
    doc = yaml.safe_load(expected)
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    (authz,) = [f for f in hcm["http_filters"] if f["name"] == "mtls_authz"]
    src = authz["config_discovery"]["config_source"]["api_config_source"]
    assert src["api_type"] == "GRPC" and src["grpc_services"] == [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]
    assert authz["config_discovery"]["type_urls"] == ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
    (xds,) = [c for c in doc["static_resources"]["clusters"] if c["name"] == "xds_cluster"]
    opts = xds["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in opts["explicit_http_config"], "gRPC needs HTTP/2 to the control plane"
    assert doc["node"]["id"] and doc["node"]["cluster"]


def test_xds_bootstrap_is_accepted_by_envoy(envoy_factory, workdir):
    path = workdir / "xds-bootstrap.yaml"
    path.write_text(envoy_factory.config("", ecds_grpc=("127.0.0.1", 18000)))
    rc, out = validate_config(envoy_factory.envoy_bin, path)
    assert rc == 0, out[-3000:]
