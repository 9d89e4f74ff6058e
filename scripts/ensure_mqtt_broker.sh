#!/usr/bin/env bash
# Make sure Mosquitto (Debian's `mosquitto`, with `mosquitto_passwd`) is installed: the live tests start their
# own brokers on free loopback ports (tests/live/mosquitto.py). Debian starts the package's own service on
# port 1883 when it installs it; this script leaves a running one alone and never starts one (the tests do
# not use it).
set -euo pipefail
have_all() { [ -x /usr/sbin/mosquitto ] && command -v mosquitto_passwd >/dev/null 2>&1; }
if have_all; then exit 0; fi
command -v apt-get >/dev/null 2>&1 || {
  echo "mosquitto is missing and apt-get is not available: install mosquitto (the MQTT broker)" >&2; exit 1; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "mosquitto not found: installing it" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
have_all || { echo "installed mosquitto, but /usr/sbin/mosquitto or mosquitto_passwd is still missing" >&2; exit 1; }
