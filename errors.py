"""rollcall's one exception hierarchy.

Every error a user can meet has a stable ``code`` (what clients branch on), an
HTTP ``status`` (what the API answers) and a human message. Each class takes a
single message argument, so Celery's JSON result backend can carry it from a
worker to the API and rebuild the same class there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# A message names at most this many ids: a roster of 10,000 unknown ids answered an 80 KB message.
MAX_IDS_NAMED = 20
_PYTHON_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


class RollcallError(Exception):
    """Base of every expected failure; never raised itself."""

    code = "internal_error"
    status = 500
    retryable = False

    def __init__(self, message: str) -> None:
        # A library's exception text can carry a Python repr ("<_io.BytesIO object at 0x7f…>"): it
        # tells a caller nothing and leaks addresses, so it never reaches a message.
        message = _PYTHON_REPR.sub("the data", message)
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# --- input (4xx) ---
class InvalidInput(RollcallError):
    """The request is malformed: the message names the field and the rule."""

    code, status = "invalid_input", 400


class AuthenticationRequired(RollcallError):
    """No API key, or not a valid one (`X-API-Key` or `Authorization: Bearer`)."""

    code, status = "unauthorized", 401


class Forbidden(RollcallError):
    """The API key's role may not do this (facebank changes need `admin`)."""

    code, status = "forbidden", 403


class NotFound(RollcallError):
    """No such resource."""

    code, status = "not_found", 404


class JobNotFound(NotFound):
    """No such job, or its result expired (`ROLLCALL_RESULT_EXPIRES_S`)."""

    code = "job_not_found"


class PersonNotFound(NotFound):
    """No such person (the message lists missing ids, the first 20 of a long list)."""

    code = "person_not_found"

    @classmethod
    def naming(cls, missing: Sequence[int]) -> PersonNotFound:
        """The error for ids that are nobody: the first ``MAX_IDS_NAMED`` of them, then how many more."""
        ids = sorted(missing)
        named = ", ".join(map(str, ids[:MAX_IDS_NAMED]))
        more = f" and {len(ids) - MAX_IDS_NAMED} more" if len(ids) > MAX_IDS_NAMED else ""
        return cls(f"no person with id {named}{more}")


class FaceNotFound(NotFound):
    """No such enrolled face for that person."""

    code = "face_not_found"


class RosterNotFound(NotFound):
    """No such roster."""

    code = "roster_not_found"


class SessionNotFound(NotFound):
    """No such attendance session."""

    code = "session_not_found"


class UnknownPersonNotFound(NotFound):
    """No unknown person of that number in the attendance session (or no face kept for them)."""

    code = "unknown_person_not_found"


class CameraNotFound(NotFound):
    """No camera of that name in the camera registry or ``ROLLCALL_UI_CAMERAS``."""

    code = "camera_not_found"


class Conflict(RollcallError):
    """The request conflicts with stored data."""

    code, status = "conflict", 409


class DuplicateFace(Conflict):
    """This exact image is already enrolled (the message names the face and person)."""

    code = "duplicate_face"


class DuplicatePerson(Conflict):
    """The external id already belongs to another person."""

    code = "duplicate_person"


class AmbiguousPerson(Conflict):
    """Several people answer to one name, so an imported folder cannot tell which one it is."""

    code = "ambiguous_person"


class IdempotencyConflict(Conflict):
    """An ``Idempotency-Key`` used again with a different request body."""

    code = "idempotency_conflict"


class DuplicateRoster(Conflict):
    """A roster of that name exists."""

    code = "duplicate_roster"


class DuplicateCamera(Conflict):
    """A camera of that name is registered already, or configured in ``ROLLCALL_UI_CAMERAS``."""

    code = "duplicate_camera"


class PayloadTooLarge(RollcallError):
    """The request body or upload is over `ROLLCALL_MAX_UPLOAD_BYTES`."""

    code, status = "payload_too_large", 413


class RateLimited(RollcallError):
    """This API key sent more submissions in a minute than `ROLLCALL_RATE_LIMIT_PER_MINUTE` allows."""

    code, status, retryable = "rate_limited", 429, True
    retry_after_s = 1


class TooManyJobsInFlight(RollcallError):
    """This API key has `ROLLCALL_MAX_JOBS_IN_FLIGHT` jobs queued or running; wait for one to end."""

    code, status, retryable = "too_many_jobs_in_flight", 429, True
    retry_after_s = 1


class TooManySessions(RollcallError):
    """This API key has `ROLLCALL_MAX_LIVE_SESSIONS` sessions scheduled or running; stop one or wait."""

    code, status, retryable = "too_many_sessions", 429, True
    retry_after_s = 1


# --- frames and cameras ---
class CameraNotAllowed(RollcallError):
    """The URL (or an address it resolves or redirects to) is outside the camera allowlist."""

    code, status = "camera_not_allowed", 403


class CameraNotTracked(RollcallError):
    """No stream reader tracked a session's streaming camera during a window (`ROLLCALL_LIVE_PROCESSOR`).

    No reader runs a frame processor, or none could take the camera (docs/live.md)."""

    code, status, retryable = "camera_not_tracked", 503, True


class CameraUnreachable(RollcallError):
    """No connection to the camera: its name does not resolve, the port is closed, or it broke off.

    Check the address, the port and that the camera is on (docs/cameras.md)."""

    code, status, retryable = "camera_unreachable", 502, True


class CameraTimeout(RollcallError):
    """The camera did not answer, or sent no frame, within the camera budget (connect + read timeout).

    A silent port or host, a stalled stream, a stream that never reaches a keyframe."""

    code, status, retryable = "camera_timeout", 504, True


class CameraAuthFailed(RollcallError):
    """The camera refused the credentials, asked for some when none are set, or for an unknown scheme.

    HTTP 401/403 or RTSP 401 after rollcall answered the camera's challenge (Digest or Basic); the
    message names the scheme, never the user or the password."""

    code, status = "camera_auth_failed", 502


class CameraTLSFailed(RollcallError):
    """The camera's TLS certificate is not trusted (store, CA or pinned fingerprint) or the handshake failed.

    A fingerprint mismatch shows the presented and the pinned SHA-256."""

    code, status = "camera_tls_failed", 502


class CameraProtocolError(RollcallError):
    """The camera answered, but not with a frame: an HTTP error, HTML, not HTTP/RTSP, an undecodable stream.

    Also an RTSP ``DESCRIBE`` refused (404: no stream at that path) or too many redirects."""

    code, status = "camera_protocol_error", 502


class FrameTooLarge(RollcallError):
    """The frame is over `ROLLCALL_CAMERA_MAX_BYTES` or `ROLLCALL_FRAME_MAX_PIXELS` (checked first)."""

    code, status = "frame_too_large", 413


class NotAnImage(RollcallError):
    """Not a JPEG/PNG/WebP/BMP image, or a truncated or corrupt one."""

    code, status = "not_an_image", 422


# --- faces ---
class NoFaceFound(RollcallError):
    """No face where one was needed (enrolment photo, identify box)."""

    code, status = "no_face", 422


class MultipleFacesFound(RollcallError):
    """An enrolment photo holds more than one face."""

    code, status = "multiple_faces", 422


class FaceTooSmall(RollcallError):
    """The enrolment face is smaller than the quality gate allows."""

    code, status = "face_too_small", 422


# --- the enrolment quality gate ---
class TooBlurry(RollcallError):
    """The enrolment face is too blurred (variance of Laplacian on the aligned chip)."""

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
    """Model weights are not in the cache: run `python -m ml.weights fetch`."""

    code, status = "weights_missing", 503


class WeightsCorrupt(RollcallError):
    """A weight file does not match its sha256 or cannot be loaded: fetch it again."""

    code, status = "weights_corrupt", 503


class BrokerUnavailable(RollcallError):
    """Redis (broker or result store) does not answer within `ROLLCALL_BROKER_TIMEOUT_S`."""

    code, status, retryable = "broker_unavailable", 503, True


class TooManyEventStreams(RollcallError):
    """This API process serves `ROLLCALL_LIVE_EVENTS_MAX_STREAMS` event streams already; try again soon."""

    code, status, retryable = "too_many_event_streams", 503, True
    retry_after_s = 5


class DatabaseUnavailable(RollcallError):
    """The facebank database does not answer."""

    code, status, retryable = "database_unavailable", 503, True


class SecretKeyMissing(RollcallError):
    """No ``ROLLCALL_SECRET_KEY`` here, so a camera password can be neither stored nor read.

    The request is fine; the server is not configured for it (docs/operations.md, the secret key)."""

    code, status = "secret_key_missing", 503


class SecretKeyMismatch(RollcallError):
    """A camera's stored password was encrypted with a key ``ROLLCALL_SECRET_KEY`` no longer holds.

    Restore the old key (or add it after the new one), or set the camera's password again."""

    code, status = "secret_key_mismatch", 503


class JobTimeout(RollcallError):
    """The job (or the seed route's wait) ran past its time limit."""

    code, status = "job_timeout", 504


class UploadExpired(RollcallError):
    """The job's uploaded image is no longer stored (kept `ROLLCALL_RESULT_EXPIRES_S`): send it again."""

    code, status = "upload_expired", 410


class JobRevoked(RollcallError):
    """The job was cancelled with `DELETE /v1/jobs/<id>` (a queued session frame: its session stopped)."""

    code, status = "job_revoked", 410


def error_of(exc: BaseException | None) -> RollcallError:
    """The rollcall error a failed job carries; anything else is reported as ``internal_error``."""
    if isinstance(exc, RollcallError):
        return exc
    return RollcallError(f"job failed: {type(exc).__name__}")


def all_errors() -> list[type[RollcallError]]:
    """Every error class, base first, in definition order (for the README's table)."""
    found: list[type[RollcallError]] = []
    pending: list[type[RollcallError]] = [RollcallError]
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: (cls.status, cls.code))


def markdown_table() -> str:
    """The README's error table: code, HTTP status, whether retrying may help, what it means."""
    rows = ["| Code | HTTP | Retry? | Meaning |", "|---|---|---|---|"]
    seen = set()
    for cls in all_errors():
        if cls.code in seen:
            continue
        seen.add(cls.code)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ and cls is not RollcallError else ""
        rows.append(f"| `{cls.code}` | {cls.status} | {'yes' if cls.retryable else ''} | {doc} |")
    return "\n".join(rows)
