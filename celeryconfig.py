"""Celery configuration for rollcall, read from ``settings`` (ROLLCALL_* environment variables).

Loaded by ``tasks.app.config_from_object("celeryconfig")`` in every process that talks
to the broker: the API (as a client), the workers and Flower.
"""

from settings import get_settings

_settings = get_settings()

broker_url = _settings.broker_url
result_backend = _settings.result_backend

# JSON only, everywhere: a pickle on the broker is remote code execution for whoever can write to Redis.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

# A job on a worker that dies (OOM, SIGKILL, lost GPU) goes back to the queue and runs elsewhere.
task_acks_late = True
task_reject_on_worker_lost = True
# One job at a time per worker process: model jobs are long, prefetching would starve other workers.
worker_prefetch_multiplier = 1
# A prefork child loads the models and the gallery before it reports "up". Celery kills a replacement child
# (after a time limit, a crash or --max-tasks-per-child) that takes over 4 s, and then the next, forever.
worker_proc_alive_timeout = 120.0
# Redis redelivers unacknowledged jobs after this; it must exceed the longest job (hard limit) by a margin.
_visibility_timeout = _settings.broker_visibility_timeout_s or int(_settings.job_time_limit_s * 4) + 60
broker_transport_options = {
    "visibility_timeout": _visibility_timeout,
    # Running workers look for the jobs of dead workers a few times per visibility timeout; kombu's
    # default sweep (every 10 × 10 s) would add up to 100 s to every redelivery.
    "unacked_restore_interval": max(1, _visibility_timeout // 4),
    "unacked_restore_throttle": 1,
    # RabbitMQ (amqp://): publisher confirms, so a job is on the broker's disk before the API answers 202;
    # without them a broker crash lost jobs accepted a moment before (tests/reliability). Redis ignores it.
    "confirm_publish": True,
}
broker_connection_retry_on_startup = True
broker_connection_timeout = _settings.broker_timeout_s
redis_socket_connect_timeout = _settings.broker_timeout_s
redis_socket_timeout = max(_settings.broker_timeout_s, 5.0)

result_expires = _settings.result_expires_s
result_extended = True  # store task name and arguments' metadata so GET /v1/jobs/<id> knows the job type
task_track_started = True  # "running" state visible to pollers
task_soft_time_limit = _settings.job_soft_time_limit_s
task_time_limit = _settings.job_time_limit_s

# Every job type that needs the models goes to one queue; GPU workers consume it with -Q. Network-only
# work (callback deliveries) has its own queue, so a slow receiver never holds a model job: every worker
# command consumes both (`-Q rollcall.models,rollcall.io`), or a small worker takes rollcall.io alone.
task_default_queue = _settings.model_queue
# RabbitMQ: how long a submission waits for the broker's publisher confirm (confirm_publish above) before
# it fails, and the API answers 503, instead of hanging on a broker that accepts TCP but does not answer.
_publish = {"confirm_timeout": _settings.broker_timeout_s}
task_routes = {
    "rollcall.models.*": {"queue": _settings.model_queue, **_publish},
    "rollcall.io.*": {"queue": _settings.io_queue, **_publish},
}

# Events feed Flower's task list and its Prometheus metrics.
worker_send_task_events = True
task_send_sent_event = True
