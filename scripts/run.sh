#!/usr/bin/env bash
# `make run`: Redis (the configured one if it answers, else a local one), the facebank migrated, the
# workers, a stream reader, the API and Flower on localhost, in the foreground. Ctrl-C (or SIGTERM) stops
# everything this script started and ends it with status 0; it ends with 1 when one of its processes exits
# by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
BROKER=${ROLLCALL_BROKER_URL:-redis://127.0.0.1:6379/0}
API_PORT=${ROLLCALL_API_PORT:-8000}
FLOWER_PORT=${ROLLCALL_FLOWER_PORT:-5555}
# The model worker's /metrics; the callback worker serves none (it records no rollcall_* series), so the
# two never race for one port.
METRICS_PORT=${ROLLCALL_WORKER_METRICS_PORT:-9808}
# The stream reader's /metrics (a worker too: one port per worker process).
READER_METRICS_PORT=${ROLLCALL_READER_METRICS_PORT:-9809}
export ROLLCALL_WORKER_METRICS_ADDR=${ROLLCALL_WORKER_METRICS_ADDR:-127.0.0.1}
# Every listener this script opens: no camera or callback URL may reach them (sources.ownservices), so a
# jobs key cannot drive Flower's control API or read the metrics through a job.
own="127.0.0.1:$API_PORT,127.0.0.1:$FLOWER_PORT"
[ "$METRICS_PORT" = 0 ] || own="$own,$ROLLCALL_WORKER_METRICS_ADDR:$METRICS_PORT"
[ "$READER_METRICS_PORT" = 0 ] || own="$own,$ROLLCALL_WORKER_METRICS_ADDR:$READER_METRICS_PORT"
export ROLLCALL_SERVICE_ENDPOINTS="${ROLLCALL_SERVICE_ENDPOINTS:+$ROLLCALL_SERVICE_ENDPOINTS,}$own"
mkdir -p var/redis var/log
pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping rollcall (pids ${pids[*]:-none})"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
# A stop asked for is a clean end (status 0); any other exit still stops what was started.
trap 'stop; echo "rollcall stopped"; exit 0' INT TERM
trap stop EXIT

# Redis holds the results, and the jobs too unless the broker is RabbitMQ (amqp://, which must already run).
case "$BROKER" in
  amqp://*|amqps://*) REDIS_URL=${ROLLCALL_RESULT_BACKEND:-redis://127.0.0.1:6379/1}
                      echo "using the RabbitMQ broker of ROLLCALL_BROKER_URL (results in Redis)" ;;
  *)                  REDIS_URL=$BROKER ;;
esac
if $PY - "$REDIS_URL" <<'PYEOF'
import sys, redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()
except redis.RedisError:
    sys.exit(1)
PYEOF
then
  echo "using the Redis at $REDIS_URL"
else
  port=$($PY -c "import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).port or 6379)" "$REDIS_URL")
  echo "no Redis answers at $REDIS_URL: starting one on 127.0.0.1:$port (append-only file in var/redis)"
  redis-server --port "$port" --bind 127.0.0.1 --appendonly yes --dir "$PWD/var/redis" \
    --logfile "$PWD/var/log/redis.log" &
  pids+=($!)
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

export ROLLCALL_BROKER_URL=$BROKER
if [ -z "${ROLLCALL_API_KEYS:-}" ] && [ "${ROLLCALL_AUTH_DISABLED:-false}" != "true" ]; then
  # A local admin key, made once and kept in var/ (git-ignored) so curl examples keep working.
  [ -s var/dev-api-key ] || $PY -c "import secrets; print(secrets.token_urlsafe(24))" > var/dev-api-key
  chmod 600 var/dev-api-key
  export ROLLCALL_API_KEYS="$(cat var/dev-api-key):admin"
  KEY_NOTE="API key    admin key in var/dev-api-key: curl -H \"X-API-Key: \$(cat var/dev-api-key)\" ..."
else
  KEY_NOTE="API keys  from ROLLCALL_API_KEYS"
fi
if [ -z "${ROLLCALL_SECRET_KEY:-}" ]; then
  # The camera registry's key for this machine, made once and kept in var/ (git-ignored, readable by this
  # user only): camera passwords are stored encrypted with it. Back it up apart from the facebank
  # (docs/operations.md, "The secret key").
  [ -s var/secret-key ] || (umask 077; $PY -c "from facebank.passwords import new_key; print(new_key())" > var/secret-key)
  export ROLLCALL_SECRET_KEY="$(cat var/secret-key)"
  SECRET_NOTE="Secret key camera passwords encrypted with var/secret-key (back it up; docs/operations.md)"
else
  SECRET_NOTE="Secret key from ROLLCALL_SECRET_KEY"
fi
# The facebank's schema first: the API never migrates (a database that is down ends the script here, in
# one line naming it).
$PY -m webapi.cli migrate
# The model worker takes interactive jobs and bulk work (contract.routing); callback deliveries run on a
# threads worker of their own, so a receiver that never answers never holds a model job's slot.
ROLLCALL_WORKER_METRICS_PORT=$METRICS_PORT .venv/bin/celery -A tasks worker -Q rollcall.models,rollcall.bulk,rollcall.frames \
  --loglevel INFO --hostname "rollcall-worker@%h" &
pids+=($!)
ROLLCALL_WORKER_METRICS_PORT=0 .venv/bin/celery -A tasks worker --pool threads --concurrency 16 -Q rollcall.io \
  --loglevel INFO --hostname "rollcall-io@%h" &
pids+=($!)
# One stream reader (tasks.live): it reads the cameras someone watches (the page's live view) and shares their
# newest frame through Redis; more readers, anywhere, share the cameras (docs/operations.md, "Stream readers").
# It runs the live processor (tracking, names once per track: docs/live.md), whose events the page's live view
# follows; ROLLCALL_LIVE_PROCESSOR= (set, empty) makes it a reader that only shares frames.
ROLLCALL_LIVE_PROCESSOR=${ROLLCALL_LIVE_PROCESSOR-live.processor:for_reader} \
ROLLCALL_WORKER_METRICS_PORT=$READER_METRICS_PORT .venv/bin/celery -A tasks worker --pool solo -Q rollcall.live \
  --loglevel INFO --hostname "rollcall-reader@%h" &
pids+=($!)
# gunicorn, as in docker/compose.yaml; Flask's development server only when asked for (it reloads, debugs).
if [ "${ROLLCALL_API_DEV_SERVER:-false}" = "true" ]; then
  .venv/bin/flask --app webapi run --host 127.0.0.1 --port "$API_PORT" --with-threads &
  API_SERVER="Flask's development server"
else
  .venv/bin/gunicorn --bind "127.0.0.1:$API_PORT" --workers 2 --threads 8 --timeout 60 --access-logfile - \
    'webapi:create_app()' &
  API_SERVER=gunicorn
fi
pids+=($!)
# Flower's control API can shut workers down: it always asks for a password (a generated one, kept in var/
# like the API key, unless FLOWER_BASIC_AUTH=user:password is given), and with one set Flower also refuses
# cross-site requests (Sec-Fetch-Site, Origin), so no web page a user visits can drive it.
unset FLOWER_UNAUTHENTICATED_API
if [ -z "${FLOWER_BASIC_AUTH:-}" ]; then
  [ -s var/flower-password ] || $PY -c "import secrets; print(secrets.token_urlsafe(18))" > var/flower-password
  chmod 600 var/flower-password
  export FLOWER_BASIC_AUTH="rollcall:$(cat var/flower-password)"
  FLOWER_NOTE="user rollcall, password in var/flower-password:
             curl -u \"rollcall:\$(cat var/flower-password)\" http://127.0.0.1:$FLOWER_PORT/api/workers"
else
  FLOWER_NOTE="user and password from FLOWER_BASIC_AUTH"
fi
.venv/bin/celery -A tasks flower --address=127.0.0.1 --port="$FLOWER_PORT" &
pids+=($!)
cat <<MSG

rollcall is starting:
  API        http://127.0.0.1:$API_PORT   ($API_SERVER; OpenAPI: /openapi.json, ready: /readyz)
  Flower     http://127.0.0.1:$FLOWER_PORT   ($FLOWER_NOTE)
  Metrics    http://$ROLLCALL_WORKER_METRICS_ADDR:$METRICS_PORT/metrics   (model worker; see docs/operations.md)
             http://$ROLLCALL_WORKER_METRICS_ADDR:$READER_METRICS_PORT/metrics   (stream reader)
  $KEY_NOTE
  $SECRET_NOTE
Press Ctrl-C to stop.

MSG
wait -n || true
echo "a rollcall process exited; stopping the others" >&2
exit 1
