#!/usr/bin/env bash
# Idempotent installer for the real services the end-to-end suite puts behind
# Envoy (policy-tests/e2e/test_etcd.py, test_mqtt.py): etcd 3.4 and etcdctl,
# mosquitto 2.0 and its clients, all from Debian's packages. The tests start
# their own instances on free loopback ports; nothing here starts a service.
# Quiet unless it installs something. scripts/test.sh calls it.
set -euo pipefail
log() { echo "services setup: $*" >&2; }

apt_missing=()
command -v etcd >/dev/null 2>&1 || apt_missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || apt_missing+=(etcd-client)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || apt_missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || apt_missing+=(mosquitto-clients)
if [ ${#apt_missing[@]} -gt 0 ]; then
    log "installing ${apt_missing[*]}"
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    # The tests never use the packages' own services (RUNLEVEL=1: do not start them).
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
