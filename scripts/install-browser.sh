#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (test/browser/) when /usr/bin/chromium is missing.
# playwright-core drives it as it is; no browser build is downloaded.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-browser: /usr/bin/chromium is missing and apt-get is not available; install Chromium, or set TLAB_SKIP_BROWSER_TESTS=1" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium
test -x /usr/bin/chromium
