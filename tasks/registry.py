"""How every model job runs on a worker, and the one registration that makes a job type a Celery task.

``register(model, work)`` generates a job's task from its arguments model (``contract.jobs``): the
task's name and queue are the model's, its keyword-only parameters are the model's fields (so
``Task.typing`` checks every call against the contract), and its body is ``ModelTask.run_job``, which
validates the message into the model, skips a revoked job, runs ``work`` timed, logs one line, records
metrics and returns the answer with the worker's envelope as plain JSON. Expected failures raise an
``errors.RollcallError``; Celery stores it (JSON) and the API shows its code.
"""

from __future__ import annotations

import inspect
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from celery import Task, states
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from contract.jobs import JobAnswer, JobArgs, JobEnvelope, parse_args, result_json
from errors import JobTimeout, RollcallError, error_of
from ml.timing import StageTimer
from tasks import app, callbacks, metrics, runtime
from tasks.joblog import job_line
from tasks.runtime import Runtime

log = logging.getLogger("rollcall.jobs")
ArgsT = TypeVar("ArgsT", bound=JobArgs)
Work = Callable[[ArgsT, Runtime, StageTimer], JobAnswer]


class ModelTask(Task):
    """Base of model jobs: revocation check, JSON result envelope, stable errors, one log line and metrics."""

    # Expected failures are no worker error: no ERROR line with a traceback (the job's own line records them).
    throws = (RollcallError,)

    def run_job(
        self,
        model: type[ArgsT],
        kwargs: Mapping[str, Any],
        work: Work[ArgsT],
        when_revoked: Callable[[ArgsT], JobAnswer] | None = None,
    ) -> dict[str, Any]:
        """Validate ``kwargs`` into ``model`` and run ``work`` on them, timed; the result's JSON.

        A job revoked before it started is skipped: its record says so. It then answers
        ``when_revoked(args)`` at once (a session frame, whose tick waits for every frame's answer), or is
        dropped without a result (``Ignore``).
        """
        job = self.name.rsplit(".", 1)[-1]
        source = kwargs.get("source")
        res = runtime.current()
        records = res.records
        record = records.get(self.request.id) if records is not None else None
        if records is not None and record is not None and record.revoked:
            log.info("%s", job_line(self.request.id, job, "revoked", source, None, {}))
            metrics.record_job(job, "revoked", {})
            records.ended(self.request.id, record)
            if when_revoked is not None:
                return when_revoked(parse_args(model, **kwargs)).model_dump(mode="json")
            self.backend.mark_as_revoked(self.request.id, reason="revoked before it started")
            raise Ignore()
        timer = StageTimer()
        outcome = RollcallError.code  # internal_error: anything not caught below is a bug
        answer: JobAnswer | None = None
        batched_with: dict[str, int] = {}
        try:
            with res.models.running_job() as running:
                answer = work(parse_args(model, **kwargs), res, timer)
            batched_with = running.batch_sizes
            outcome = "succeeded"
        except SoftTimeLimitExceeded as exc:
            outcome = JobTimeout.code
            limit = res.settings.job_soft_time_limit_s
            raise JobTimeout(f"job exceeded its time limit of {limit} s") from exc
        except RollcallError as exc:
            outcome = exc.code
            raise
        finally:
            timings = timer.report()
            log.info("%s", job_line(self.request.id, job, outcome, source, answer, timings))
            metrics.record_job(job, outcome, timings)
        envelope = JobEnvelope(
            worker=self.request.hostname or socket.gethostname(),  # the Celery node name
            models=res.pipe.describe(),
            timings_ms=timings,
            batch=batched_with or None,
        )
        return result_json(answer, envelope)

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Once Celery has stored the outcome, hand the job's final JSON to its callback, if it has one.

        Only ended jobs call back: a revoked one does not (whoever revoked it knows). Either way the job
        no longer counts against its API key's jobs in flight.
        """
        records = runtime.current().records
        if records is None:
            return
        if status != states.RETRY and isinstance(kwargs, dict) and (kwargs.get("source") or {}).get("upload"):
            records.uploads.delete(kwargs["source"]["upload"])  # the outcome is stored: no one reads it again
        record = records.get(task_id)
        records.ended(task_id, record)
        if status == states.SUCCESS:
            callbacks.job_ended(self, task_id, record, "succeeded", retval, None)
        elif status == states.FAILURE:
            callbacks.job_ended(self, task_id, record, "failed", None, error_of(retval))


def register(
    model: type[ArgsT], work: Work[ArgsT], when_revoked: Callable[[ArgsT], JobAnswer] | None = None
) -> ModelTask:
    """The Celery task of one job type: ``work`` run on the model's arguments (see the module docstring).

    ``when_revoked`` answers for a job revoked before it started, instead of dropping it.
    """

    def run(self: ModelTask, **kwargs: Any) -> dict[str, Any]:
        return self.run_job(model, kwargs, work, when_revoked)

    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    fields = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if field.is_required() else field.get_default(),
        )
        for name, field in model.model_fields.items()
    ]
    run.__signature__ = inspect.Signature([self_parameter, *fields])  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = model.job_type
    run.__module__, run.__doc__ = work.__module__, work.__doc__
    task: ModelTask = app.task(name=model.task_name(), base=ModelTask, bind=True)(run)
    return task
