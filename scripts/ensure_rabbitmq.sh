#!/usr/bin/env bash
# Make sure Debian's rabbitmq-server is installed: the reliability suite starts RabbitMQ nodes of its own
# from it (tests/reliability/rabbitmq.py) to try the broker's faults. Installing the package also starts
# the system's service on 127.0.0.1:5672 (guest/guest), which the tests leave alone.
set -euo pipefail
if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null 2>&1; then exit 0; fi
command -v apt-get >/dev/null 2>&1 || {
  echo "rabbitmq-server is missing and apt-get is not available: install RabbitMQ and re-run" >&2; exit 1; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "rabbitmq-server not found: installing Debian's rabbitmq-server package" >&2
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rabbitmq-server >/dev/null
