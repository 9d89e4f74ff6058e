"""Celery configuration for rollcall, read from ``settings`` (ROLLCALL_* environment variables).

Loaded by ``tasks.app.config_from_object("celeryconfig")`` in every process that talks
to the broker: the API (as a client), the workers and Flower.
"""

from kombu import Exchange, Queue

from contract.routing import task_routes as task_routes_for
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
# Batching across jobs (recognition.batching) needs the jobs in one process at once: threads, N of them.
# A worker's --pool / --concurrency flags still win over these defaults.
if _settings.worker_batch_size > 1:
    worker_pool = "threads"
    worker_concurrency = _settings.worker_batch_size
# A prefork child loads the models and the gallery before it reports "up". Celery kills a replacement child
# (after a time limit, a crash or --max-tasks-per-child) that takes over 4 s, and then the next, forever.
worker_proc_alive_timeout = 120.0
# A prefork child that grew past this (a large tiled frame, fragmentation) is replaced after its job,
# instead of holding gigabytes until the next restart (KiB; None: no ceiling).
worker_max_memory_per_child = _settings.worker_max_memory_mib * 1024 or None
# Redis redelivers unacknowledged jobs after this; it must exceed the longest job (hard limit) by a margin.
_visibility_timeout = _settings.visibility_timeout_s()
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
# A job that ends while Redis is away keeps its outcome and stores it once Redis answers again, instead of
# failing on the storage error: Celery's own store reads the old state first, with no retry of its own.
# The API turns this off for its client (webapi.jobqueue.celery_client): a poll must answer 503 at once,
# not wait.
result_backend_always_retry = True
result_backend_max_retries = float("inf")  # a worker cannot store any result while Redis is away
result_backend_base_sleep_between_retries_ms = 50
result_backend_max_sleep_between_retries_ms = 1000  # the result is stored within a second of Redis' return
# No result_extended: it would copy every job's arguments (camera URLs with passwords, base64 uploads)
# into the result store. The API knows a job's type from its own record (contract.records).
task_track_started = True  # "running" state visible to pollers
task_soft_time_limit = _settings.job_soft_time_limit_s
task_time_limit = _settings.job_time_limit_s

# Interactive model jobs, bulk model work, session frames and network work have a queue each
# (contract.routing); every model worker of the documented deployments consumes the first three
# (`-Q rollcall.models,rollcall.bulk,rollcall.frames`) and a separate small threads worker takes
# rollcall.io, so a slow callback receiver never holds a model slot.
task_default_queue = _settings.model_queue
task_routes = task_routes_for(_settings)
# A worker started without -Q consumes all four.
task_queues = tuple(
    Queue(name, Exchange(name), routing_key=name)
    for name in (_settings.model_queue, _settings.bulk_queue, _settings.frame_queue, _settings.io_queue)
)

# Events feed Flower's task list and its Prometheus metrics.
worker_send_task_events = True
task_send_sent_event = True
