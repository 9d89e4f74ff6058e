"""Tasks registered from their models: one registration per job type generates its Celery task.

No worker and no broker: the task objects of the workers' app, as a worker registers them at start.
"""

from __future__ import annotations

import inspect

import pytest
from celery import Celery

from contract.jobs import JOBS, DetectArgs, JobArgs


@pytest.fixture(scope="module")
def worker_app() -> Celery:
    from tasks import app

    app.loader.import_default_modules()
    return app


@pytest.mark.parametrize("model", JOBS, ids=lambda model: model.job_type)
def test_each_task_takes_exactly_its_arguments_models_fields(
    worker_app: Celery, model: type[JobArgs]
) -> None:
    task = worker_app.tasks[model.task_name()]
    assert task.typing, "Celery checks the call against the signature"
    parameters = list(inspect.signature(task.run).parameters)
    assert parameters == list(model.model_fields)


def test_a_call_that_is_not_the_contract_is_refused_before_it_is_sent(worker_app: Celery) -> None:
    """``Task.typing`` checks the generated signature: a misspelt or positional argument never reaches
    the broker (whoever sends through the workers' app: session ticks, tests, scripts)."""
    detect = worker_app.tasks[DetectArgs.task_name()]
    with pytest.raises(TypeError, match="sorce"):
        detect.s(sorce={"url": "http://cam/x"}).apply_async()
    with pytest.raises(TypeError):
        detect.s({"url": "http://cam/x"}).apply_async()
    with pytest.raises(TypeError, match="source"):
        detect.s(small_faces={"mode": "on"}).apply_async()


def test_every_job_type_is_registered_once_with_its_documentation(worker_app: Celery) -> None:
    registered = sorted(name for name in worker_app.tasks if name.startswith("rollcall.models."))
    assert registered == sorted(model.task_name() for model in JOBS)
    assert all(worker_app.tasks[model.task_name()].__doc__ for model in JOBS)
