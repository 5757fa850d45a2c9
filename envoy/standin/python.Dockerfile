# Local stand-in for python:3.12-slim, built by scripts/compose-images.sh only
# when the official image cannot be pulled: `python` and `pip` on PATH (a venv
# over Debian bookworm's python3, 3.11), apt-get reaching Debian, pip reaching PyPI.
ARG BASE
FROM ${BASE}
# The host's CA bundle, outside /etc/ssl/certs: Debian's ca-certificates
# package (pulled in by `apt-get install curl`) would regenerate that file.
COPY ca-certificates.crt /usr/local/share/host-ca-bundle.crt
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null \
 && python3 -m venv /usr/local/python \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/usr/local/share/host-ca-bundle.crt
CMD ["python3"]
