"""rollcall's configuration: the one place that reads the environment.

Every setting is an environment variable prefixed ``ROLLCALL_`` (for example
``ROLLCALL_BROKER_URL``). ``get_settings()`` reads them once per process into a
frozen, typed object; everything else receives values from it. The README's
configuration table is generated from the field descriptions below
(``python -m settings --markdown``) and a test keeps the two in step.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import platformdirs
from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from facebank.limits import CAMERA_NAME
from facebank.passwords import parse_keys
from live.mqtturl import MqttTarget
from sources.netguard import CameraAllowlist
from sources.ownservices import Listener, OwnServices, listener_of
from sources.urls import is_camera_url

# The choices of the enumerated settings. ml keeps the same lists (ml.pipeline's embedders,
# ml.engines.ENGINE_CHOICES, ml.quantize.PRECISIONS, ml.tiling.TilingMode); tests/test_settings.py
# keeps them equal.
EmbedderName = Literal["dlib_resnet_v1", "facenet_vggface2"]
DeviceName = Literal["auto", "cpu", "cuda"]
EngineChoice = Literal["auto", "torch", "openvino", "onnxruntime"]
PrecisionChoice = Literal["auto", "float32", "int8"]
SmallFaceMode = Literal["off", "auto", "on"]
Role = Literal["jobs", "admin"]
ROLES: tuple[Role, ...] = ("jobs", "admin")
_CAMERA_NAME = re.compile(CAMERA_NAME)
ParsedT = TypeVar("ParsedT")


class InvalidSettings(ValueError):
    """The environment holds a value rollcall cannot run with; the message names each variable."""


@dataclass(frozen=True)
class ApiKey:
    """One entry of ``ROLLCALL_API_KEYS``: the key (never shown) and the role it grants."""

    secret: bytes = dataclasses.field(repr=False)
    role: Role


@dataclass(frozen=True)
class UiCamera:
    """One camera of ``ROLLCALL_UI_CAMERAS``: the name the page shows and the snapshot URL it stands for."""

    name: str
    url: str


def _entries(spec: str) -> list[str]:
    """The non-empty, stripped entries of a comma-separated setting."""
    return [entry for entry in (part.strip() for part in spec.split(",")) if entry]


def _parse_api_keys(spec: str) -> tuple[ApiKey, ...]:
    """``key:role`` pairs separated by commas (the message never quotes a key)."""
    keys = []
    for entry in _entries(spec):
        secret, _, role = entry.rpartition(":")
        if not secret or role not in ROLES:
            raise ValueError(f"entries must be key:role with role in {ROLES}")
        if len(secret) < 16:
            raise ValueError("every key must be at least 16 characters")
        keys.append(ApiKey(secret.encode(), role))  # type: ignore[arg-type]  # checked against ROLES
    return tuple(keys)


def _parse_ui_cameras(spec: str) -> dict[str, UiCamera]:
    """``name=url`` pairs separated by commas."""
    cameras: dict[str, UiCamera] = {}
    for entry in _entries(spec):
        name, sep, url = (part.strip() for part in entry.partition("="))
        if not sep or not _CAMERA_NAME.match(name):
            raise ValueError("entries must be name=url with a name of letters, digits, '.', '_' or '-'")
        if not is_camera_url(url):
            raise ValueError(f"the URL of camera {name!r} must be http://, https://, rtsp:// or rtsps://")
        if name in cameras:
            raise ValueError(f"camera {name!r} is named twice")
        cameras[name] = UiCamera(name, url)
    return cameras


def _parse_small_faces_cameras(spec: str) -> dict[str, str]:
    """``host=mode`` pairs separated by commas, as {lower-case host: mode} (the modes are checked after)."""
    modes = {}
    for entry in _entries(spec):
        host, sep, mode = (part.strip() for part in entry.partition("="))
        if not sep or not host:
            raise ValueError(f"entry {entry!r} is not host=mode")
        modes[host.lower()] = mode
    return modes


def _from_text(parse: Callable[[str], ParsedT]) -> BeforeValidator:
    """Parse a setting given as text (the environment, ``Settings(field="…")``, a ``SecretStr``); a parsed
    value passes as it is."""

    def validate(value: Any) -> Any:
        if isinstance(value, SecretStr):  # Settings(api_keys=SecretStr(…)), as a secret is often held
            value = value.get_secret_value()
        return parse(value) if isinstance(value, str) else value

    return BeforeValidator(validate)


# NoDecode: the environment's text goes to the parser as it is (pydantic-settings would read it as JSON).
CameraAllowSetting = Annotated[
    CameraAllowlist, NoDecode, _from_text(CameraAllowlist.parse), PlainSerializer(str, return_type=str)
]
OwnServicesSetting = Annotated[
    OwnServices, NoDecode, _from_text(OwnServices.parse), PlainSerializer(str, return_type=str)
]
ApiKeysSetting = Annotated[
    tuple[ApiKey, ...],
    NoDecode,
    _from_text(_parse_api_keys),
    PlainSerializer(lambda keys: [f"**********:{key.role}" for key in keys], return_type=list[str]),
]
UiCamerasSetting = Annotated[dict[str, UiCamera], NoDecode, _from_text(_parse_ui_cameras)]
# Each key a SecretStr: the settings' repr and JSON show asterisks, never a key.
SecretKeysSetting = Annotated[
    tuple[SecretStr, ...], NoDecode, _from_text(lambda spec: tuple(map(SecretStr, parse_keys(spec))))
]
SmallFacesCamerasSetting = Annotated[
    dict[str, SmallFaceMode], NoDecode, _from_text(_parse_small_faces_cameras)
]

# RFC 1918 private networks: where a school's or an office's cameras live. Loopback,
# link-local (cloud metadata at 169.254.169.254) and public addresses are left out.
DEFAULT_CAMERA_ALLOW = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
# The ports of the services a URL names when it names none (RabbitMQ's management API beside AMQP).
_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671, "postgresql": 5432}
_RABBITMQ_MANAGEMENT_PORT = 15672
# The longest a watch keeps a camera live unrenewed: a watcher that vanished keeps a camera (and a reader's
# connection to it) busy this long at most.
MAX_WATCH_TTL_S = 60.0


def _default_model_dir() -> Path:
    return Path(platformdirs.user_cache_dir("rollcall")) / "models"


def _default_database_url() -> str:
    data_dir = Path(platformdirs.user_data_dir("rollcall"))
    return f"sqlite:///{data_dir / 'facebank.db'}"


class Settings(BaseSettings):
    """All of rollcall's settings, with defaults that run on one machine."""

    # populate_by_name: Settings(legacy_wait_s=…) by field name, beside the environment names aliases list.
    # validate_default: the parsed settings' defaults are text, parsed like the environment's.
    # hide_input_in_errors: a refused value may be a secret (get_settings names the others' values).
    model_config = SettingsConfigDict(
        env_prefix="ROLLCALL_",
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        hide_input_in_errors=True,
    )

    # --- job system ---
    broker_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Celery broker URL: Redis (`redis://`) or RabbitMQ (`amqp://`; results stay in Redis).",
    )
    result_backend: str = Field(
        "redis://127.0.0.1:6379/1", description="Celery result backend (Redis) URL, where job results live."
    )
    result_expires_s: int = Field(
        3600, ge=60, description="Seconds a job result (which may hold names of people) is kept in Redis."
    )
    model_queue: str = Field(
        "rollcall.models",
        description="Queue of interactive model jobs (detect, identify, attendance, legacy v0 routes); GPU "
        "workers consume it with -Q.",
    )
    bulk_queue: str = Field(
        "rollcall.bulk",
        description="Queue of bulk model work (enrolment, rebuild, calibration), apart from the interactive "
        "jobs of the model queue; workers consume both (-Q).",
    )
    frame_queue: str = Field(
        "rollcall.frames",
        description="Queue of attendance sessions' frames, apart from the bulk queue: an enrolment never "
        "waits behind them, only behind the frames a worker is running; model workers consume it too (-Q). "
        "A session's ticks go to the model queue (milliseconds each), so they never wait behind frames.",
    )
    job_soft_time_limit_s: float = Field(
        30.0, gt=0, description="Soft time limit of one job; the job fails with `job_timeout`."
    )
    job_time_limit_s: float = Field(
        45.0, gt=0, description="Hard time limit of one job; the worker child is replaced after it."
    )
    broker_timeout_s: float = Field(
        3.0, gt=0, description="Seconds the API waits for the broker before answering 503."
    )
    broker_visibility_timeout_s: int | None = Field(
        None,
        ge=1,
        description="Seconds after which Redis hands a job whose worker died (SIGKILL, OOM, power) to "
        "another"
        " worker; it must exceed the longest job. Empty = 4 × the hard job time limit + 60 s.",
    )
    legacy_wait_s: float = Field(
        30.0,
        gt=0,
        validation_alias=AliasChoices("ROLLCALL_LEGACY_WAIT_S", "ROLLCALL_SEED_WAIT_S"),
        description="Seconds the legacy v0 routes (/modelfr, /modelin, /modelat) and a photo enrolment wait "
        "for their job. `ROLLCALL_SEED_WAIT_S`, its old name, is still read (deprecated).",
    )
    idempotency_window_s: int = Field(
        86_400,
        ge=1,
        description="Seconds an `Idempotency-Key` of a job submission is remembered; the same key and body "
        "within it answer the first job.",
    )
    # --- callbacks (docs/callbacks.md) ---
    io_queue: str = Field(
        "rollcall.io", description="Queue of network jobs (callback deliveries); workers consume it too (-Q)."
    )
    callback_secret: SecretStr = Field(
        SecretStr(""),
        description="Key of the HMAC-SHA256 signature on job callbacks; empty = `callback_url` is refused.",
    )
    callback_timeout_s: float = Field(
        5.0, gt=0, description="Connect and read timeout of one callback delivery attempt."
    )
    callback_max_retries: int = Field(
        8, ge=0, description="Retries of a callback that failed (network error or non-2xx answer)."
    )
    callback_retry_backoff_s: int = Field(
        2,
        ge=1,
        description="Longest pause before the first callback retry, in seconds; doubles per retry "
        "(full jitter: the pause is random up to that).",
    )
    callback_retry_backoff_max_s: int = Field(
        600, ge=1, description="Longest pause between two callback attempts, in seconds."
    )
    # --- bounds per caller and per job (README: Reliability and security) ---
    session_max_frames: int = Field(
        2_000,
        ge=1,
        description="Most frames one attendance session may fetch (ticks × cameras); larger plans are "
        "refused with `invalid_input`.",
    )
    session_min_interval_s: float = Field(
        1.0, ge=1, description="Shortest interval between the ticks of an attendance session (bursts aside)."
    )
    rate_limit_per_minute: int = Field(
        600,
        ge=0,
        description="Job submissions (jobs, legacy v0 routes, sessions) one non-admin API key may make per "
        "minute (the page's live view makes none: it follows the camera's live events); more answer "
        "`429 rate_limited` with `Retry-After`. 0 = no limit.",
    )
    max_jobs_in_flight: int = Field(
        20,
        ge=0,
        description="Jobs one non-admin API key may have queued or running at once; more answer "
        "`429 too_many_jobs_in_flight`. 0 = no limit.",
    )
    max_live_sessions: int = Field(
        4,
        ge=0,
        description="Attendance sessions one non-admin API key may have scheduled or running at once; more "
        "answer `429 too_many_sessions` with `Retry-After` (when its first one ends). 0 = no limit.",
    )
    session_max_queued_frames: int = Field(
        8,
        ge=0,
        description="Frames of attendance sessions one non-admin API key may have queued or running at once "
        "(they also count against `ROLLCALL_MAX_JOBS_IN_FLIGHT`); a tick that would pass it is recorded with "
        "the error `too_many_jobs_in_flight` instead of queued, which bounds how long another key's frame "
        "waits. A tick with more cameras runs when none are in flight. 0 = no limit.",
    )
    small_faces_max_tile_cost: float = Field(
        16.0,
        ge=1,
        description="Largest small-face tiling a job may ask for: pixels its enlarged tiles hold per "
        "frame pixel, scaled to the default face size, scale² × (1 + 2 × overlap)² × "
        "(20 / min_face_size)² (the defaults cost 6.8); more is refused with `invalid_input` at submission.",
    )
    small_faces_max_tile_pixels: int = Field(
        24_000_000,
        ge=1_000_000,
        description="Most pixels a frame's enlarged tiles may hold (frame pixels × tile cost); a larger "
        "frame is tiled at a smaller scale, or not at all (the result says so).",
    )
    worker_max_memory_mib: int = Field(
        2048,
        ge=0,
        description="A prefork worker child whose resident memory passed this after a job is replaced by a "
        "fresh one (Celery's `worker_max_memory_per_child`); 0 = never.",
    )
    # --- models ---
    model_dir: Path = Field(
        default_factory=_default_model_dir,
        description="Cache of verified model weights (default: user cache dir).",
    )
    embedder: EmbedderName = Field(
        "dlib_resnet_v1",
        description="Face embedding model: `dlib_resnet_v1` (128-D) or `facenet_vggface2` (512-D).",
    )
    device: DeviceName = Field(
        "auto", description="Torch device for the models: `auto` (CUDA when present), `cpu`, `cuda`."
    )
    engine: EngineChoice = Field(
        "auto",
        description="Inference engine of the networks: `auto` (torch on a GPU, OpenVINO on the CPU: the "
        "fastest measured), `torch`, `openvino`, `onnxruntime` (converted once into the model dir).",
    )
    embedder_precision: PrecisionChoice = Field(
        "auto",
        description="Precision of the embedding network: `auto` (INT8 where `python -m ml.quantize` "
        "prepared it and recorded that it held its accuracy gates and ran faster on this CPU, else "
        "float32), `float32`, `int8` (OpenVINO only; refused unless prepared and within the gates).",
    )
    torch_threads: int = Field(
        0, ge=0, description="Torch CPU threads per worker process; 0 = cores / worker processes."
    )
    worker_batch_size: int = Field(
        1,
        ge=1,
        le=256,
        description="Model jobs a worker runs at once, their frames detected and faces embedded as one "
        "batch; > 1 makes Celery's `threads` pool with that concurrency the worker's default. 1 = off "
        "(measured on CPU: README, batching across jobs).",
    )
    worker_batch_wait_ms: float = Field(
        20.0,
        ge=0,
        description="Longest a batch waits for the worker's other running jobs to join it, in ms.",
    )
    min_face_size: int = Field(20, ge=8, description="Smallest face MTCNN looks for, in pixels.")
    min_face_prob: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Face probability a detection needs to be in detect, identify and attendance answers "
        "(MTCNN's last stage passes boxes from 0.7, often on clothing and posters).",
    )
    max_detect_side: int = Field(
        2048,
        ge=64,
        description="A frame whose long side exceeds this many pixels is detected on a copy downscaled to it "
        "(answers in the frame's coordinates; small-face tiles still use the full resolution).",
    )
    small_faces: SmallFaceMode = Field(
        "off",
        description="Default small-face mode for detect and attendance jobs: `off`, `auto` or `on` "
        "(whole frame plus enlarged tiles; see README).",
    )
    small_faces_cameras: SmallFacesCamerasSetting = Field(
        "",  # type: ignore[arg-type]  # text, parsed (validate_default)
        description="Per-camera small-face modes, `host=mode` pairs separated by commas "
        "(e.g. `cam-room12.lan=on`); a job's own setting wins.",
    )
    match_threshold: float | None = Field(
        None,
        description="Cosine similarity a face needs to be named; empty = the threshold applied with "
        "`POST /v1/facebank/threshold`, else the embedder's default (from the LFW evaluation).",
    )
    enrol_flip: bool = Field(
        True,
        description="Enrolment and rebuild embeddings average the face chip and its mirror image "
        "(fewer false rejects; see docs/callbacks.md).",
    )
    match_flip: bool = Field(
        False,
        description="Queries (identify, attendance) also average chip and mirror (twice the embedding work).",
    )
    # --- enrolment quality gate (docs/callbacks.md) ---
    enrol_min_face_px: int = Field(
        64, ge=0, description="Shortest side of an enrolled face's box, in pixels (`face_too_small` below)."
    )
    enrol_min_sharpness: float = Field(
        50.0,
        ge=0,
        description="Variance of the Laplacian of the aligned grey face chip an enrolment photo needs "
        "(`too_blurry` below).",
    )
    enrol_max_yaw: float = Field(
        0.4,
        gt=0,
        description="Largest nose offset from the eyes' midpoint along the eye line, in eye distances "
        "(0 = frontal; `pose_too_far` above).",
    )
    enrol_max_roll_deg: float = Field(
        30.0, gt=0, le=180, description="Largest tilt of the eye line, in degrees (`pose_too_far` above)."
    )
    enrol_duplicate_similarity: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Cosine similarity to any enrolled face at which a photo is refused as a near-copy "
        "(`duplicate_face`, e.g. 0.99); empty = only byte-identical photos are refused.",
    )
    enrol_outlier_floor: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="Cosine similarity a new photo needs to at least one of the person's enrolled faces "
        "(`outlier_face` below); empty = the match threshold in use.",
    )
    # --- live cameras: tracking and naming (docs/live.md) ---
    live_min_face_px: int = Field(
        40,
        ge=8,
        description="Smallest face the live detector looks for on a streaming camera's frames, in pixels "
        "(the detection's cost falls with it: docs/live.md).",
    )
    live_min_face_prob: float = Field(
        0.9, ge=0, le=1, description="Face probability a detection on a live camera needs to be tracked."
    )
    live_detect_every: int = Field(
        1,
        ge=1,
        le=10,
        description="Detect faces on every Nth frame of a live camera; the tracker predicts where they are "
        "in between (2 halves the detection cost).",
    )
    live_track_keep_s: float = Field(
        1.5,
        gt=0,
        description="Seconds a face no longer detected keeps its track (hidden for a moment, it comes "
        "back under the same track and name).",
    )
    live_identify_min_face_px: int = Field(
        40, ge=0, description="Shortest side a tracked face's box needs before it is embedded and named."
    )
    live_identify_min_sharpness: float = Field(
        20.0,
        ge=0,
        description="Variance of the Laplacian of the aligned grey chip a tracked face needs before it is "
        "embedded (blurred by motion: wait for a sharper frame).",
    )
    live_identify_max_yaw: float = Field(
        0.5,
        gt=0,
        description="Largest head turn (nose offset in eye distances) at which a tracked face is embedded.",
    )
    live_identify_max_roll_deg: float = Field(
        35.0, gt=0, le=180, description="Largest head tilt, in degrees, at which a tracked face is embedded."
    )
    live_vote_embeddings: int = Field(
        8,
        ge=1,
        le=64,
        description="A track's name is the similarity-weighted vote of its last this many embeddings.",
    )
    live_switch_votes: int = Field(
        2,
        ge=1,
        description="Embeddings that must vote for another name before a named track changes name "
        "(a track never flips on one frame).",
    )
    live_uncertain_margin: float = Field(
        0.03,
        ge=0,
        le=1,
        description="A track's identity is uncertain while its last similarity lies within this margin of "
        "the match threshold, or its votes disagree: it is re-embedded every "
        "`ROLLCALL_LIVE_UNCERTAIN_EMBED_S`.",
    )
    live_uncertain_embed_s: float = Field(
        0.5, gt=0, description="Seconds between two embeddings of a track whose identity is uncertain."
    )
    live_reembed_s: float = Field(
        4.0,
        gt=0,
        description="Seconds between two embeddings of a track whose identity is settled (named or unknown).",
    )
    live_arrive_s: float = Field(
        2.0,
        ge=0,
        description="Seconds a known person must stay named on a camera before their `arrived` presence "
        "event.",
    )
    live_leave_s: float = Field(
        5.0,
        gt=0,
        description="Seconds a present person must stay unseen on a camera before their `left` presence "
        "event.",
    )
    # --- live cameras: presence changes out (docs/live.md, "Presence out") ---
    mqtt_url: SecretStr = Field(
        SecretStr(""),
        description="MQTT broker the stream readers publish presence changes to, "
        "`mqtt://[user:password@]host[:port]` (1883) or `mqtts://` (TLS, 8883; user and password "
        "percent-encoded); empty = no MQTT. Never shown in logs.",
    )
    mqtt_topic_prefix: str = Field(
        "rollcall",
        description="First topic levels of the MQTT messages: `<prefix>/cameras/<name>/presence` and "
        "`<prefix>/readers/<reader>/status`.",
    )
    mqtt_ca_file: str = Field(
        "",
        description="CA bundle (PEM) an `mqtts://` broker's certificate is checked against; empty = the "
        "system's trust store.",
    )
    mqtt_queue_max: int = Field(
        1000,
        ge=1,
        description="Presence changes a reader keeps for an MQTT broker that does not answer; past it new "
        "ones are dropped (logged, counted) until the broker is back.",
    )
    live_webhook_url: str = Field(
        "",
        description="URL each presence change is POSTed to, signed and retried like a job callback "
        "(`ROLLCALL_CALLBACK_SECRET`; inside `ROLLCALL_CAMERA_ALLOW`, never an own service); empty = none.",
    )
    # --- cameras and frames ---
    camera_allow: CameraAllowSetting = Field(  # type: ignore[assignment]  # text, parsed (validate_default)
        DEFAULT_CAMERA_ALLOW,
        description="Comma-separated CIDRs and host names the workers may fetch frames from (no SSRF).",
    )
    camera_connect_timeout_s: float = Field(3.0, gt=0, description="Connect timeout for a camera.")
    camera_read_timeout_s: float = Field(10.0, gt=0, description="Read timeout and total download budget.")
    camera_max_bytes: int = Field(20_000_000, gt=0, description="Largest frame download, in bytes.")
    frame_max_pixels: int = Field(
        40_000_000, gt=0, description="Largest decoded frame, in pixels (width × height)."
    )
    camera_retries: int = Field(
        2,
        ge=0,
        description="Retries after a camera's connect timeout (a refused or reset connection is answered "
        "at once).",
    )
    max_upload_bytes: int = Field(
        20_000_000,
        gt=0,
        description="Largest request body the API accepts (an image sent as base64 inside it: about three "
        "quarters of this).",
    )
    service_endpoints: OwnServicesSetting = Field(  # type: ignore[assignment]  # text, parsed (validate_default)
        "127.0.0.1:8000,127.0.0.1:5555",
        description="The deployment's own listeners that camera and callback URLs may never reach, whatever "
        "`ROLLCALL_CAMERA_ALLOW` says: `host:port` pairs separated by commas (the API, Flower, stream "
        "readers), "
        "beside those the other settings name (broker, result backend, database, worker metrics). A loopback "
        "host stands for every address of the machine; names are resolved at each check. Default: the API's "
        "and Flower's ports under `make run`, which sets it to the ports it uses.",
    )
    ui_cameras: UiCamerasSetting = Field(
        "",  # type: ignore[arg-type]  # text, parsed (validate_default)
        description="Cameras read beside the camera registry (`/v1/cameras`, read only), `name=url` pairs "
        "separated by commas (e.g. `room12=http://192.168.1.20/shot.jpg`); the page offers them, and jobs "
        "name them like registered cameras (set it on the workers too). Fetched inside "
        "`ROLLCALL_CAMERA_ALLOW`; the browser never sees their URLs.",
    )
    secret_key: SecretKeysSetting = Field(
        "",  # type: ignore[arg-type]  # text, parsed (validate_default)
        description="Fernet key that encrypts camera passwords in the camera registry; several, "
        "comma-separated, for a rotation: the first encrypts, each decrypts (docs/operations.md). Empty = "
        "the registry refuses passwords (`secret_key_missing`). `make run` makes one in `var/secret-key`.",
    )
    # --- live cameras: stream readers (docs/operations.md, "Stream readers") ---
    live_queue: str = Field(
        "rollcall.live",
        description="Queue that makes a worker a stream reader (`celery -A tasks worker -Q rollcall.live`): "
        "it reads its share of the live cameras continuously instead of running jobs.",
    )
    live_fps: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Frames per second a stream reader hands on per live camera (shared through Redis, "
        "processed); a camera sending more is still read in full (an RTSP stream is decoded frame by frame), "
        "the others are skipped. A snapshot camera is asked this often.",
    )
    live_lease_ttl_s: float = Field(
        5.0,
        ge=1,
        le=60,
        description="Seconds a reader's lease on a camera and its heartbeat last unless renewed (every third "
        "of it, at most every second); a reader that dies hands its cameras over within this and a second.",
    )
    live_max_cameras: int = Field(
        16,
        ge=0,
        description="Most cameras one stream reader reads at once (it takes no more than its fair share "
        "while other readers run); 0 = no limit but the share.",
    )
    live_frame_ttl_s: float = Field(
        5.0,
        gt=0,
        description="Seconds a live camera's newest shared frame stays in Redis after it was written.",
    )
    live_frame_fresh_s: float = Field(
        2.0,
        ge=0,
        description="Age up to which a job by camera name and `GET /v1/cameras/<name>/frame` take the "
        "camera's shared frame instead of fetching one (seconds since its reader wrote it, by Redis' clock).",
    )
    live_frame_max_bytes: int = Field(
        2_000_000,
        gt=0,
        description="Largest shared frame (JPEG) a stream reader writes to Redis; a larger one is not "
        "shared.",
    )
    live_watch_ttl_s: float = Field(
        5.0,
        ge=1,
        le=MAX_WATCH_TTL_S,
        description="Seconds one `GET /v1/cameras/<name>/frame` keeps the camera live (it counts as a "
        "watcher), and a `POST /v1/cameras/<name>/watch` without `ttl_s`.",
    )
    live_reconnect_max_s: float = Field(
        30.0,
        ge=1,
        description="Longest pause before a stream reader connects again to a camera whose stream failed "
        "(from 1 s, doubling).",
    )
    live_evidence_keep_s: float = Field(
        4_000.0,
        ge=3_660,  # a tick reads the interval before it: the longest (3600 s) and a minute for a late tick
        description="Seconds a live camera's track evidence (who its identified tracks were, and when) stays "
        "in Redis for attendance sessions to read; longer than the longest session interval (3600 s), since "
        'a tick reads the interval before it (docs/live.md, "Attendance over live cameras").',
    )
    live_evidence_max_tracks: int = Field(
        10_000,
        ge=100,
        description="Most identified tracks' evidence kept per live camera (the newest); ~150 bytes each.",
    )
    live_unknown_max_tracks: int = Field(
        200,
        ge=10,
        description="Most unidentified tracks (embeddings and best face, at most 64 KB) kept per live camera "
        "for attendance sessions' unknown people (the newest), for `ROLLCALL_LIVE_EVIDENCE_KEEP_S`.",
    )
    session_max_unknown_tracks: int = Field(
        200,
        ge=0,
        description="Most unidentified tracks one attendance session keeps (with their best faces) to group "
        "into unknown people; later ones are counted, not kept. Deleted with the session.",
    )
    live_processor: str = Field(
        "",
        pattern=r"^$|^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="What a stream reader does with each frame it hands on: `module:function` making a "
        "`live.processing.FrameProcessor` per camera (`live.factory`); empty = share frames only (no model "
        "loaded). `make run`, compose and `docker/k8s/reader.yaml` give their readers "
        "`live.processor:for_reader` (tracking and names, the page's live events: docs/live.md).",
    )
    live_events_max_fps: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Events per second `GET /v1/cameras/<name>/events` sends at most, and by default: its "
        "`fps` query may ask for fewer (above this: `invalid_input`); a stream over its rate drops the older "
        "events and sends the newest.",
    )
    live_events_max_streams: int = Field(
        4,
        ge=0,
        description="Event streams (`GET /v1/cameras/<name>/events`) one API process serves at once: each "
        "holds one of its threads (gunicorn `--threads`) while the client stays, so keep it below the "
        "threads; one more answers `503 too_many_event_streams` with `Retry-After`. 0 = no limit.",
    )
    # --- access ---
    api_keys: ApiKeysSetting = Field(
        "",  # type: ignore[arg-type]  # text, parsed (validate_default)
        description="Comma-separated `key:role` pairs; role `jobs` submits and reads jobs, `admin` also "
        "manages the facebank. Required on /v1 and the legacy v0 routes unless auth is disabled.",
    )
    auth_disabled: bool = Field(
        False, description="Trusted LAN only: accept every request without an API key."
    )
    legacy_routes_open: bool = Field(
        False,
        validation_alias=AliasChoices("ROLLCALL_LEGACY_ROUTES_OPEN", "ROLLCALL_SEED_ROUTES_OPEN"),
        description="Let /modelfr, /modelin, /modelat answer without a key (old frontends on a trusted LAN). "
        "`ROLLCALL_SEED_ROUTES_OPEN`, its old name, is still read (deprecated).",
    )
    # --- facebank ---
    database_url: str = Field(
        default_factory=_default_database_url,
        description="Facebank database (SQLAlchemy URL): SQLite by default, PostgreSQL for several machines.",
    )
    # --- operations ---
    worker_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port a worker serves Prometheus `/metrics` on; 0 = off. Workers sharing a machine need "
        "one port each (see docs/operations.md).",
    )
    worker_metrics_addr: str = Field(
        "0.0.0.0", description="Address a worker's `/metrics` listens on (`127.0.0.1`: this machine only)."
    )

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_is_a_broker(cls, url: SecretStr) -> SecretStr:
        if url.get_secret_value():
            MqttTarget.parse(url.get_secret_value())  # its message never quotes the URL
        return url

    @field_validator("mqtt_topic_prefix")
    @classmethod
    def _prefix_is_topic_levels(cls, prefix: str) -> str:
        if not prefix or prefix.startswith("/") or prefix.endswith("/") or set(prefix) & {"+", "#", "\0"}:
            raise ValueError(
                "must be topic levels such as `rollcall` or `school/rollcall`, no `+`, `#` or "
                "leading or trailing `/`"
            )
        return prefix

    @field_validator("mqtt_ca_file")
    @classmethod
    def _ca_file_exists(cls, path: str) -> str:
        if path and not Path(path).is_file():
            raise ValueError(f"{path} is not a file")
        return path

    @field_validator("live_webhook_url")
    @classmethod
    def _webhook_is_http(cls, url: str) -> str:
        if url and not url[:8].lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url

    @field_validator("live_switch_votes")
    @classmethod
    def _switch_votes_fit_the_vote(cls, votes: int, info: ValidationInfo) -> int:
        window = info.data.get("live_vote_embeddings")
        if window is not None and votes > window:
            raise ValueError(
                f"must be at most ROLLCALL_LIVE_VOTE_EMBEDDINGS ({window}): a named track could never "
                "change name"
            )
        return votes

    def visibility_timeout_s(self) -> int:
        """``ROLLCALL_BROKER_VISIBILITY_TIMEOUT_S``, or its default: 4 × the hard job time limit + 60 s."""
        return self.broker_visibility_timeout_s or int(self.job_time_limit_s * 4) + 60

    @model_validator(mode="after")
    def _own_services_are_never_targets(self) -> Settings:
        # Every camera and callback check goes through camera_allow (sources.netguard), the RTSP readers
        # included: carrying the listeners there refuses them on every path, present and future.
        allowlist = self.camera_allow.excluding(self.own_services())
        object.__setattr__(self, "camera_allow", allowlist)  # frozen: set once, while validating
        return self

    def own_services(self) -> OwnServices:
        """Every listener of the deployment: ``ROLLCALL_SERVICE_ENDPOINTS`` and those other settings name."""
        named: list[Listener | None] = []
        for url in (self.broker_url, self.result_backend, self.database_url):
            scheme = url.partition(":")[0].partition("+")[0].lower()
            listener = listener_of(url, _DEFAULT_PORTS.get(scheme))
            named.append(listener)
            if listener is not None and scheme in ("amqp", "amqps"):
                named.append(Listener(listener.host, _RABBITMQ_MANAGEMENT_PORT))
        if self.mqtt_url.get_secret_value():  # validated above
            broker = MqttTarget.parse(self.mqtt_url.get_secret_value())
            named.append(Listener(broker.host.lower(), broker.port))
        if self.worker_metrics_port:
            named.append(Listener(self.worker_metrics_addr.strip("[]").lower(), self.worker_metrics_port))
        return self.service_endpoints.union(listener for listener in named if listener is not None)


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use.

    A value rollcall cannot run with raises ``InvalidSettings`` naming each variable, so a process
    with a misconfiguration stops at start instead of failing its requests or jobs later.
    """
    try:
        return Settings()
    except ValidationError as exc:
        # The pydantic error names fields and hides values; this names variables and shows them.
        raise InvalidSettings(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    """One line per refused setting: ``ROLLCALL_X: what is wrong``, with the value unless it may be secret."""
    lines = []
    for error in exc.errors():
        name, *inner = (str(part) for part in error["loc"])
        variable = name if name.startswith("ROLLCALL_") else f"ROLLCALL_{name.upper()}"
        where = "".join(f"{part}: " for part in inner)
        message = error["msg"].removeprefix("Value error, ")
        # A parser's own message quotes what it refuses (never a key); pydantic's checks quote nothing.
        got = "" if error["type"] == "value_error" else f" (got {error['input']!r})"
        lines.append(f"{variable}: {where}{message}{got}")
    return "; ".join(lines)


def markdown_table() -> str:
    """The README's configuration table, generated from the fields above."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "(see meaning)" if field.default_factory is not None else field.default
        default = "" if default is None else default
        default = default.get_secret_value() if isinstance(default, SecretStr) else default
        rows.append(f"| `ROLLCALL_{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m settings", description=__doc__)
    parser.add_argument("--markdown", action="store_true", help="print the README configuration table")
    args = parser.parse_args()
    if args.markdown:
        print(markdown_table())
    else:
        print(get_settings().model_dump_json(indent=2))


if __name__ == "__main__":
    main()
