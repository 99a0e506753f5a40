#!/usr/bin/env bash
# The browser of tests/test_web.py: Debian's chromium and chromium-driver, installed once
# (apt-get, as root: CI and the project's machines run as root). Quiet when they are there
# or the install works; otherwise says why on stderr and exits 1 (run-tests.sh then fails in
# CI and lets the browser test skip elsewhere).
set -uo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
log=$(mktemp /tmp/facedb-browser-install.XXXXXX)
if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
    >"$log" 2>&1 && command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    rm -f "$log"
    exit 0
fi
echo "warning: could not install chromium and chromium-driver with apt-get (log: $log):" >&2
tail -n 5 "$log" >&2
exit 1
