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


class Conflict(RollcallError):
    code, status = "conflict", 409


class DuplicateFace(Conflict):
    code = "duplicate_face"


class DuplicatePerson(Conflict):
    code = "duplicate_person"


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
