"""``/v1/facebank/calibrate`` and ``/v1/facebank/threshold``: propose a match threshold, then apply it.

Calibrating is a job (``rollcall.models.calibrate``: it needs the loaded model's name and version);
applying is an operator's decision, stored in the facebank so every worker uses it
(``recognition.snapshot``: ``ROLLCALL_MATCH_THRESHOLD`` > applied > embedder default).
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from contract.jobs import CalibrateArgs, CalibrateOptions
from errors import InvalidInput
from facebank.limits import MAX_MODEL_NAME
from facebank.records import AppliedThreshold
from webapi.auth import current_caller
from webapi.schemas import STRICT, CallbackUrl, JobAccepted, job_args
from webapi.services import facebank, job_client
from webapi.submission import submit_job
from webapi.validation import documented, parse_body

bp = Blueprint("calibration", __name__, url_prefix="/v1/facebank")


class CalibrateRequest(CalibrateOptions):
    model_config = STRICT

    callback_url: CallbackUrl | None = None


_BY_HAND = ("threshold", "model_name", "model_version")


class ApplyThreshold(BaseModel):
    """Either a finished calibration job's proposal, or a threshold chosen by hand for one model version."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "oneOf": [
                {"required": ["calibration_job_id"], "not": {"anyOf": [{"required": [f]} for f in _BY_HAND]}},
                {"required": list(_BY_HAND), "not": {"required": ["calibration_job_id"]}},
            ]
        },
    )

    # Each field may be left out but is never null: the document says so (WithJsonSchema) as the check does.
    calibration_job_id: Annotated[str | None, WithJsonSchema({"type": "string", "maxLength": 64})] = Field(
        None, max_length=64, description="Apply this calibration's threshold, for the model it calibrated."
    )
    threshold: Annotated[float | None, WithJsonSchema({"type": "number", "minimum": -1, "maximum": 1})] = (
        Field(None, ge=-1, le=1, description="A cosine threshold chosen by hand.")
    )
    model_name: Annotated[
        str | None, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_MODEL_NAME})
    ] = Field(None, min_length=1, max_length=MAX_MODEL_NAME)
    model_version: Annotated[
        str | None, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_MODEL_NAME})
    ] = Field(None, min_length=1, max_length=MAX_MODEL_NAME)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(value is None for value in data.values()):
            raise ValueError("leave a field out rather than sending null")
        return data

    @model_validator(mode="after")
    def _one_form(self) -> ApplyThreshold:
        by_hand = (self.threshold, self.model_name, self.model_version)
        if self.calibration_job_id is not None and all(value is None for value in by_hand):
            return self
        if self.calibration_job_id is None and all(value is not None for value in by_hand):
            return self
        raise ValueError("give either calibration_job_id, or threshold with model_name and model_version")


class AppliedThresholds(BaseModel):
    items: list[AppliedThreshold]


@bp.post("/calibrate")
@documented(
    "Propose a match threshold for a target false-accept rate from the enrolled faces (async job).",
    body=CalibrateRequest,
    responses={202: JobAccepted},
    tag="people",
    role="admin",
    idempotent=True,
)
def calibrate() -> Any:
    body = parse_body(CalibrateRequest)
    return submit_job(job_args(CalibrateArgs, body), body)


@bp.post("/threshold")
@documented(
    "Apply a threshold: a calibration job's proposal, or a value by hand (workers use it at once).",
    body=ApplyThreshold,
    responses={200: AppliedThreshold},
    tag="people",
    role="admin",
)
def apply_threshold() -> Any:
    body = parse_body(ApplyThreshold)
    if body.calibration_job_id is None:
        assert body.threshold is not None and body.model_name and body.model_version
        applied = facebank().thresholds.apply(body.model_name, body.model_version, body.threshold)
        return jsonify(applied.model_dump(mode="json"))
    client = job_client()
    job = client.status(body.calibration_job_id, current_caller())
    if job.type != "calibrate" or job.state != "succeeded" or job.result is None:
        raise InvalidInput(
            f"job {body.calibration_job_id} is a {job.type} job in state {job.state}; "
            "apply a calibrate job that succeeded"
        )
    proposal = job.result
    applied = facebank().thresholds.apply(
        proposal["model_name"],
        proposal["model_version"],
        proposal["threshold"],
        target_far=proposal["target_far"],
        genuine_pairs=proposal["genuine_pairs"],
        impostor_pairs=proposal["impostor_pairs"],
        false_reject_rate=proposal["false_reject_rate"],
        calibration_job_id=job.job_id,
    )
    return jsonify(applied.model_dump(mode="json"))


@bp.get("/threshold")
@documented("The thresholds applied per model version.", responses={200: AppliedThresholds}, tag="people")
def list_thresholds() -> Any:
    return jsonify({"items": [applied.model_dump(mode="json") for applied in facebank().thresholds.all()]})


@bp.delete("/threshold/<model_name>/<model_version>")
@documented(
    "Forget an applied threshold (back to ROLLCALL_MATCH_THRESHOLD or the embedder's default).",
    responses={204: None},
    tag="people",
    role="admin",
)
def clear_threshold(model_name: str, model_version: str) -> Any:
    facebank().thresholds.clear(model_name, model_version)
    return Response(status=204)
