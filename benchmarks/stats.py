"""Summaries of timing samples: median and tail percentiles, as reported in every part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Distribution of one measured quantity (milliseconds unless the key says otherwise)."""

    n: int
    median: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float

    def to_json(self) -> dict[str, float | int]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def summarize(samples: Sequence[float]) -> Summary:
    """Median and percentiles (linear interpolation) of ``samples``; raises on an empty list."""
    if len(samples) == 0:
        raise ValueError("no samples to summarize")
    values = np.asarray(samples, dtype=np.float64)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return Summary(
        n=len(values),
        median=float(p50),
        p95=float(p95),
        p99=float(p99),
        mean=float(values.mean()),
        min=float(values.min()),
        max=float(values.max()),
    )


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` rounded for reports; a zero denominator is a measurement bug."""
    if denominator <= 0:
        raise ValueError(f"cannot divide by a non-positive time {denominator}")
    return round(numerator / denominator, 3)
