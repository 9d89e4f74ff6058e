"""rollcall's one exception hierarchy.

Every error a user can meet has a stable ``code`` (what clients branch on), an
HTTP ``status`` (what the API answers) and a human message. Each class takes a
single message argument, so Celery's JSON result backend can carry it from a
worker to the API and rebuild the same class there.
"""

from __future__ import annotations


class RollcallError(Exception):
    """Base of every expected failure; never raised itself."""

    code = "internal_error"
    status = 500
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# --- input (4xx) ---
class InvalidInput(RollcallError):
    code, status = "invalid_input", 400


class AuthenticationRequired(RollcallError):
    code, status = "unauthorized", 401


class Forbidden(RollcallError):
    code, status = "forbidden", 403


class NotFound(RollcallError):
    code, status = "not_found", 404


class JobNotFound(NotFound):
    code = "job_not_found"


class PersonNotFound(NotFound):
    code = "person_not_found"


class FaceNotFound(NotFound):
    code = "face_not_found"


class RosterNotFound(NotFound):
    code = "roster_not_found"


class SessionNotFound(NotFound):
    code = "session_not_found"


class CameraNotFound(NotFound):
    """No camera of that name in ``ROLLCALL_UI_CAMERAS``."""

    code = "camera_not_found"


class Conflict(RollcallError):
    code, status = "conflict", 409


class DuplicateFace(Conflict):
    code = "duplicate_face"


class DuplicatePerson(Conflict):
    code = "duplicate_person"


class IdempotencyConflict(Conflict):
    """An ``Idempotency-Key`` used again with a different request body."""

    code = "idempotency_conflict"


class DuplicateRoster(Conflict):
    code = "duplicate_roster"


class PayloadTooLarge(RollcallError):
    code, status = "payload_too_large", 413


# --- frames and cameras ---
class CameraNotAllowed(RollcallError):
    """The URL (or an address it resolves or redirects to) is outside the camera allowlist."""

    code, status = "camera_not_allowed", 403


class CameraUnreachable(RollcallError):
    code, status, retryable = "camera_unreachable", 502, True


class CameraTimeout(RollcallError):
    code, status, retryable = "camera_timeout", 504, True


class CameraBadResponse(RollcallError):
    """The camera answered, but not with an image (HTTP error, HTML, empty body)."""

    code, status = "camera_bad_response", 502


class FrameTooLarge(RollcallError):
    code, status = "frame_too_large", 413


class NotAnImage(RollcallError):
    code, status = "not_an_image", 422


# --- faces ---
class NoFaceFound(RollcallError):
    code, status = "no_face", 422


class MultipleFacesFound(RollcallError):
    code, status = "multiple_faces", 422


class FaceTooSmall(RollcallError):
    code, status = "face_too_small", 422


# --- the enrolment quality gate ---
class TooBlurry(RollcallError):
    code, status = "too_blurry", 422


class PoseTooFar(RollcallError):
    """The face is turned (yaw) or tilted (roll) further than an enrolment photo may be."""

    code, status = "pose_too_far", 422


class OutlierFace(RollcallError):
    """The face is unlike every enrolled face of the person: probably someone else."""

    code, status = "outlier_face", 422


# --- callbacks ---
class CallbacksNotConfigured(RollcallError):
    """``callback_url`` given, but no ``ROLLCALL_CALLBACK_SECRET`` to sign deliveries with."""

    code, status = "callbacks_not_configured", 400


class CallbackNotAllowed(RollcallError):
    """The callback URL is outside the allowlist cameras share (``ROLLCALL_CAMERA_ALLOW``)."""

    code, status = "callback_not_allowed", 403


class CallbackFailed(RollcallError):
    """One delivery attempt failed (network error or non-2xx answer); it is retried."""

    code, status, retryable = "callback_failed", 502, True


# --- service ---
class WeightsMissing(RollcallError):
    code, status = "weights_missing", 503


class WeightsCorrupt(RollcallError):
    code, status = "weights_corrupt", 503


class BrokerUnavailable(RollcallError):
    code, status, retryable = "broker_unavailable", 503, True


class DatabaseUnavailable(RollcallError):
    code, status, retryable = "database_unavailable", 503, True


class JobTimeout(RollcallError):
    code, status = "job_timeout", 504


class JobRevoked(RollcallError):
    code, status = "job_revoked", 410


def error_of(exc: BaseException | None) -> RollcallError:
    """The rollcall error a failed job carries; anything else is reported as ``internal_error``."""
    if isinstance(exc, RollcallError):
        return exc
    return RollcallError(f"job failed: {type(exc).__name__}")
