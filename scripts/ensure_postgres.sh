#!/usr/bin/env bash
# Make sure a PostgreSQL server answers for the facebank tests (they create and drop their own database).
# Uses ROLLCALL_TEST_POSTGRES_URL's host/port (default 127.0.0.1:5432); installs and starts Debian's
# postgresql where none answers and apt-get is available.
set -euo pipefail
HOST=${ROLLCALL_TEST_PG_HOST:-127.0.0.1}; PORT=${ROLLCALL_TEST_PG_PORT:-5432}
answers() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$HOST" -p "$PORT"; }
if answers; then exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { echo "PostgreSQL is not reachable on $HOST:$PORT and apt-get is missing" >&2; exit 1; }
  echo "PostgreSQL not reachable: installing Debian's postgresql package" >&2
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
$SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 30); do answers && exit 0; sleep 0.5; done
echo "PostgreSQL did not come up on $HOST:$PORT" >&2; exit 1
