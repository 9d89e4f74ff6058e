"""Applied match thresholds: the cosine threshold workers use per model version, and what it rests on.

Applying or clearing one bumps the facebank revision, so workers' facebank snapshots
(``recognition.snapshot``) see it on their next job.
"""

from __future__ import annotations

import math

from sqlalchemy import Engine, delete, select

import errors
from facebank import models, transactions
from facebank.limits import MAX_MODEL_NAME
from facebank.records import AppliedThreshold


class Thresholds:
    """Set, read and forget the threshold of a model version."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def apply(
        self,
        model_name: str,
        model_version: str,
        threshold: float,
        *,
        target_far: float | None = None,
        genuine_pairs: int | None = None,
        impostor_pairs: int | None = None,
        false_reject_rate: float | None = None,
        calibration_job_id: str | None = None,
    ) -> AppliedThreshold:
        """Set (or replace) the threshold workers use for one model version; bumps the revision they watch."""
        if not _storable_model_key(model_name, model_version):
            raise errors.InvalidInput(
                f"model_name and model_version must be 1 to {MAX_MODEL_NAME} characters"
            )
        if not math.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
            raise errors.InvalidInput(f"a cosine threshold lies within -1..1, got {threshold}")
        row = models.MatchThreshold(
            model_name=model_name,
            model_version=model_version,
            threshold=float(threshold),
            target_far=target_far,
            genuine_pairs=genuine_pairs,
            impostor_pairs=impostor_pairs,
            false_reject_rate=false_reject_rate,
            calibration_job_id=calibration_job_id,
            applied_at=models.utcnow(),
        )
        with transactions.write(self.engine, bump_revision=True) as session:
            stored = session.merge(row)
            session.flush()
            return _applied_threshold(stored)

    def get(self, model_name: str, model_version: str) -> AppliedThreshold | None:
        """The threshold applied for this model version (None: none is)."""
        if not _storable_model_key(model_name, model_version):
            return None
        with transactions.read(self.engine) as session:
            row = session.get(models.MatchThreshold, (model_name, model_version))
            return _applied_threshold(row) if row is not None else None

    def all(self) -> list[AppliedThreshold]:
        """Every applied threshold, by model name and version."""
        with transactions.read(self.engine) as session:
            rows = session.scalars(
                select(models.MatchThreshold).order_by(
                    models.MatchThreshold.model_name, models.MatchThreshold.model_version
                )
            )
            return [_applied_threshold(row) for row in rows]

    def clear(self, model_name: str, model_version: str) -> None:
        """Forget an applied threshold: workers go back to the configured or the embedder's default."""
        missing = errors.NotFound(f"no threshold applied for {model_name!r} {model_version!r}")
        if not _storable_model_key(model_name, model_version):
            raise missing
        with transactions.write(self.engine, bump_revision=True) as session:
            deleted = session.execute(
                delete(models.MatchThreshold).where(
                    models.MatchThreshold.model_name == model_name,
                    models.MatchThreshold.model_version == model_version,
                )
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise missing


def _storable_model_key(model_name: str, model_version: str) -> bool:
    """Whether the columns can hold this name and version (not empty, not too long, no NUL for PostgreSQL)."""
    return all(
        value and len(value) <= MAX_MODEL_NAME and "\x00" not in value
        for value in (model_name, model_version)
    )


def _applied_threshold(row: models.MatchThreshold) -> AppliedThreshold:
    return AppliedThreshold(
        model_name=row.model_name,
        model_version=row.model_version,
        threshold=row.threshold,
        target_far=row.target_far,
        genuine_pairs=row.genuine_pairs,
        impostor_pairs=row.impostor_pairs,
        false_reject_rate=row.false_reject_rate,
        calibration_job_id=row.calibration_job_id,
        applied_at=models.as_utc(row.applied_at),
    )
