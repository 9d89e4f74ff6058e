"""Field limits of the facebank, in one place: the store checks them, the API's request models state them."""

from __future__ import annotations

MAX_DISPLAY_NAME = 200  # a person's display name
MAX_EXTERNAL_ID = 128  # a person's own identifier (e.g. a student number)
MAX_METADATA_BYTES = 16_384  # a person's metadata as JSON (checked by the API)
MAX_MODEL_NAME = 100  # the model_name and model_version columns
MAX_ROSTER_NAME = 200
MAX_ROSTER_SIZE = 10_000  # people on one roster
MAX_SESSION_NAME = 200  # an attendance session's name
MAX_PAGE_SIZE = 1000  # people per page of a listing
MAX_CAMERA_LABEL = 200  # a camera's label, as the page shows it
MAX_CAMERA_USERNAME = 200
MAX_CAMERA_PASSWORD = 200
MAX_CAMERA_URL = 2048
MAX_CA_PEM_BYTES = 65_536  # a camera's private CA bundle (a few certificates)
# A camera's name (registry and ROLLCALL_UI_CAMERAS): what jobs, sessions and the page call it.
CAMERA_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_CAMERA_NAME = 64
