#!/usr/bin/env bash
# Run a command with a Docker engine and compose available:
#   bash scripts/with-docker.sh CMD [ARGS...]
# If `docker info` already answers, CMD just runs. Otherwise, as root, this
# starts `dockerd --storage-driver=vfs` (installing Debian's docker.io,
# docker-compose and debootstrap first when CI=true and they are missing),
# runs CMD, and stops that dockerd by its PID afterwards, whatever CMD's result.
# Without an engine and unable to start one, CMD still runs: the compose tests
# then fail with the reason (or skip, if MTLS_AUTHZ_E2E_DOCKER=0).
set -euo pipefail

if docker info >/dev/null 2>&1; then
    exec "$@"
fi

if [ "$(id -u)" != 0 ]; then
    echo "with-docker.sh: no Docker engine answers and not root, so none is started" >&2
    exec "$@"
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ] && [ "${CI:-}" = true ]; then
    echo "with-docker.sh: installing ${need[*]} (apt)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || \
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; } || true
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "with-docker.sh: no dockerd on this machine (apt-get install -y docker.io)" >&2
    exec "$@"
fi

log=$(mktemp /tmp/mtls-authz-dockerd.XXXXXX.log)
dockerd --storage-driver=vfs >"$log" 2>&1 &
dockerd_pid=$!
stop_engine() {
    # Containers left by CMD would keep the engine busy; the compose tests run `down -v` themselves.
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
    echo "with-docker.sh: stopped dockerd (pid $dockerd_pid); its log: $log" >&2
}
trap stop_engine EXIT
for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.5
done
if docker info >/dev/null 2>&1; then
    echo "with-docker.sh: started dockerd --storage-driver=vfs (pid $dockerd_pid)" >&2
else
    echo "with-docker.sh: dockerd did not come up; last lines of $log:" >&2
    tail -5 "$log" >&2 || true
fi
rc=0
"$@" || rc=$?
exit "$rc"
