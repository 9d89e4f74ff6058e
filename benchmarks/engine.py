"""Which inference engine produced a figure: the one place the benchmarks read it from.

A job result's ``models`` and ``FacePipeline.describe()`` name the engine (``ml.engines``) that ran
the networks; a result without one (an older worker) ran in torch.
"""

from __future__ import annotations

from collections.abc import Mapping


def engine_of(models: Mapping[str, object]) -> str:
    """The engine named in a pipeline's description or a job result's ``models``; ``torch`` if none."""
    return str(models.get("engine", "torch"))
