#!/usr/bin/env bash
# Idempotent installer for the differential suite's backends (run as root on
# a Debian machine of the project's kind; scripts/build.sh calls it): Go
# (golang-go, Debian's 1.19), a JDK (javac), Tomcat 10 embed and the
# jakarta.annotation API it loads, Jetty 9.4 (libjetty9-java), Node.js + npm, and Express 4 and 5 from
# package-lock.json (`npm ci`, redone when the lock file changes). The Java
# and Go backends themselves are compiled by the suite (servers.py) into
# .work/differential/build. Quiet unless it installs something.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "differential setup: $*" >&2; }

apt_missing=()
command -v go >/dev/null 2>&1 || apt_missing+=(golang-go)
command -v javac >/dev/null 2>&1 || apt_missing+=(openjdk-17-jdk-headless)
[ -f /usr/share/java/tomcat10-embed-core.jar ] || apt_missing+=(libtomcat10-embed-java)
[ -f /usr/share/java/jakarta-annotation-api.jar ] || apt_missing+=(libjakarta-annotation-api-java)
[ -f /usr/share/java/jetty9-servlet.jar ] || apt_missing+=(libjetty9-java)
command -v node >/dev/null 2>&1 || apt_missing+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_missing+=(npm)
if [ ${#apt_missing[@]} -gt 0 ]; then
    log "installing ${apt_missing[*]}"
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

# Express 4 and 5, exactly as locked; a stamp holds the lock file's hash.
STAMP="$HERE/node_modules/.differential-lock.sha256"
want=$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    log "npm ci (Express 4 and 5)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$STAMP"
fi
