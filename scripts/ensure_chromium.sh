#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser tests (tests/browser drive it with
# Playwright's executable_path; Playwright's own browser download is never used).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
command -v apt-get >/dev/null 2>&1 || { echo "/usr/bin/chromium is missing and apt-get is not available" >&2; exit 1; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Chromium not found: installing Debian's chromium package" >&2
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "chromium installed but /usr/bin/chromium is missing" >&2; exit 1; }
