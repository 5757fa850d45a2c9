#!/bin/sh
# The official envoyproxy/envoy entrypoint's behaviour: a first argument that
# starts with '-' is passed to envoy; as root, the command runs as the `envoy`
# user (uid 101, or ENVOY_UID/ENVOY_GID) unless ENVOY_UID is 0.
set -e
loglevel="${loglevel:-}"
if [ "${1#-}" != "$1" ]; then
    set -- envoy "$@" --log-level "${loglevel:-info}"
fi
if [ "${ENVOY_UID:-}" != "0" ] && [ "$(id -u)" = 0 ]; then
    if [ -n "${ENVOY_UID:-}" ]; then usermod -u "$ENVOY_UID" envoy; fi
    if [ -n "${ENVOY_GID:-}" ]; then groupmod -g "$ENVOY_GID" envoy; fi
    chown envoy:envoy /dev/stdout /dev/stderr 2>/dev/null || true
    exec setpriv --reuid=envoy --regid=envoy --init-groups "$@"
fi
exec "$@"
