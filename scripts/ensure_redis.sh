#!/usr/bin/env bash
# Make sure a redis-server binary exists (tests start their own servers from it).
# On Debian/Ubuntu without one, install Debian's package (needs root or sudo).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
echo "redis-server not found: installing Debian's redis-server package" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  # The package starts a service bound to loopback; rollcall starts its own servers where it needs them.
else
  echo "no apt-get here: install Redis (https://redis.io/docs/install/) and re-run" >&2; exit 1
fi
