"""Envoy refuses connections without a valid client certificate.

The filter trusts `connection.peer_certificate` only because Envoy verified
it, so these are the foundation of every other test: no certificate, an
expired one, one from an untrusted CA, or one not issued for client auth must
never reach HTTP. These hold with or without the filter loaded.
"""

import re

import pytest

TLS_VERSIONS = ["1.2", "1.3"]

REFUSED = [
    # identity (cert name in the certs dir), TLS 1.2 alert the client must see
    pytest.param(None, r"HANDSHAKE_FAILURE|CERTIFICATE_REQUIRED", id="no-client-cert"),
    pytest.param("expired", r"CERTIFICATE_EXPIRED", id="expired"),
    pytest.param("untrusted", r"UNKNOWN_CA", id="untrusted-ca"),
    # The server certificate has only the serverAuth EKU: not a client identity.
    pytest.param("server", r"UNSUPPORTED_CERTIFICATE|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN", id="server-eku-only"),
]


@pytest.mark.parametrize("tls_version", TLS_VERSIONS)
@pytest.mark.parametrize("identity,alert", REFUSED)
def test_connection_refused_without_valid_client_cert(gateway, identity, alert, tls_version):
    r = gateway.tls_attempt(identity, tls_version)
    assert not r.got_http_response, "Envoy answered HTTP to %s over TLS %s: %r" % (identity, tls_version, r.response[:200])
    assert r.error or not r.response, r
    if tls_version == "1.2":
        # TLS 1.2: the server checks the certificate inside the handshake.
        assert not r.handshake_ok, "TLS 1.2 handshake succeeded for %s" % identity
        assert re.search(alert, r.error or ""), "unexpected failure for %s: %s" % (identity, r.error)
    # TLS 1.3: the client's handshake completes before the server has checked
    # the certificate; the refusal then arrives on the first read (alert or EOF).


@pytest.mark.parametrize("tls_version", TLS_VERSIONS)
@pytest.mark.parametrize("identity", ["order-service", "report-service", "unknown-service"])
def test_valid_client_cert_reaches_http(gateway, identity, tls_version):
    r = gateway.tls_attempt(identity, tls_version)
    assert r.handshake_ok and r.version == "TLSv%s" % tls_version, r
    assert r.got_http_response, "no HTTP response for a valid certificate: %s" % r


def test_header_names_with_underscores_rejected(gateway):
    # Some upstream stacks fold "_" into "-": x_mtls_authz_principal would then
    # read as the identity header. Envoy rejects such names outright.
    from e2e_lib import http_request_bytes
    req = http_request_bytes("GET", "/api/payment/query", [("x_mtls_authz_principal", "spiffe://shop.test/ns/prod/sa/order")])
    r = gateway.raw("report-service", req)
    assert r.status == 400, r
