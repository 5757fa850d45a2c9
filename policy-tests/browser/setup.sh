#!/usr/bin/env bash
# What the browser tests need, installed idempotently (scripts/test.sh calls
# this): Debian's Chromium (browser downloads are impossible here, so
# playwright-core drives /usr/bin/chromium), chromium-driver for WebDriver
# users, Node and npm, and playwright-core at the version package-lock.json
# pins (npm ci, again only when the lockfile changed).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE"
log() { echo "browser setup: $*" >&2; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

STAMP=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    log "npm ci (playwright-core)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" >"$STAMP"
fi
log "ok ($(chromium --version 2>/dev/null | head -1), node $(node --version))"
