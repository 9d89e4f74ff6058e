"""Settings: read once from the environment, typed, refused at start when wrong; the README's table."""

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import get_args

import pytest
from pydantic import ValidationError

import settings
from scripts.sync_readme import sync
from sources.netguard import CameraAllowlist
from tests.shared_data import REPO_ROOT


@pytest.mark.parametrize("marker", ["settings-table", "errors-table"])
def test_readme_generated_tables_are_current(marker: str) -> None:
    """The README's configuration and error tables are what settings.py and errors.py generate."""
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"<!-- {marker}:start -->" in readme, f"README lacks the {marker} markers"
    assert sync(readme) == readme, "run: python scripts/sync_readme.py"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLCALL_EMBEDDER", "facenet_vggface2")
    monkeypatch.setenv("ROLLCALL_CAMERA_MAX_BYTES", "1234")
    loaded = settings.Settings()
    assert loaded.embedder == "facenet_vggface2"
    assert loaded.camera_max_bytes == 1234


def test_invalid_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLCALL_CAMERA_MAX_BYTES", "-5")
    with pytest.raises(ValidationError):
        settings.Settings()


def test_default_camera_allowlist_has_no_loopback_or_link_local() -> None:
    default = settings.Settings.model_fields["camera_allow"].default
    assert "127." not in default and "169.254" not in default


def test_legacy_settings_read_their_old_seed_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deployments configured before the rename keep working; the new name wins when both are set."""
    monkeypatch.delenv("ROLLCALL_LEGACY_WAIT_S", raising=False)
    monkeypatch.delenv("ROLLCALL_LEGACY_ROUTES_OPEN", raising=False)
    monkeypatch.setenv("ROLLCALL_SEED_WAIT_S", "7.5")
    monkeypatch.setenv("ROLLCALL_SEED_ROUTES_OPEN", "true")
    old = settings.Settings()
    assert (old.legacy_wait_s, old.legacy_routes_open) == (7.5, True)
    monkeypatch.setenv("ROLLCALL_LEGACY_WAIT_S", "3")
    assert settings.Settings().legacy_wait_s == 3.0
    assert settings.Settings(legacy_wait_s=2).legacy_wait_s == 2.0


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """get_settings reads the environment afresh, and the next test reads it again."""
    settings.get_settings.cache_clear()
    yield
    settings.get_settings.cache_clear()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ROLLCALL_CAMERA_ALLOW", "10.0.0.0/8,x/99", "camera allowlist entry 'x/99' is neither a CIDR"),
        ("ROLLCALL_API_KEYS", "short-key:admin", "every key must be at least 16 characters"),
        ("ROLLCALL_API_KEYS", "a-long-enough-key-123:root", "entries must be key:role"),
        ("ROLLCALL_UI_CAMERAS", "room12=ftp://cam/x", "the URL of camera 'room12' must be http"),
        ("ROLLCALL_UI_CAMERAS", "room12=http://a/,room12=http://b/", "camera 'room12' is named twice"),
        ("ROLLCALL_SMALL_FACES_CAMERAS", "cam7.lan", "entry 'cam7.lan' is not host=mode"),
        (
            "ROLLCALL_SMALL_FACES_CAMERAS",
            "Cam7.lan=always",
            "cam7.lan: Input should be 'off', 'auto' or 'on'",
        ),
        ("ROLLCALL_SMALL_FACES", "sometimes", "Input should be 'off', 'auto' or 'on' (got 'sometimes')"),
        ("ROLLCALL_EMBEDDER", "arcface", "Input should be 'dlib_resnet_v1' or 'facenet_vggface2'"),
        ("ROLLCALL_DEVICE", "gpu", "Input should be 'auto', 'cpu' or 'cuda' (got 'gpu')"),
        ("ROLLCALL_ENGINE", "tensorrt", "Input should be 'auto', 'torch', 'openvino' or 'onnxruntime'"),
        ("ROLLCALL_CAMERA_MAX_BYTES", "-5", "Input should be greater than 0 (got '-5')"),
    ],
)
def test_a_bad_value_is_refused_at_start_naming_its_variable(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(settings.InvalidSettings) as refused:
        settings.get_settings()
    assert str(refused.value).startswith(f"{variable}: ")
    assert message in str(refused.value)


def test_a_refused_api_key_is_never_shown(fresh_settings: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLCALL_API_KEYS", "a-secret-key-0123456789:root")
    with pytest.raises(settings.InvalidSettings) as refused:
        settings.get_settings()
    with pytest.raises(ValidationError) as direct:
        settings.Settings()
    assert "a-secret-key" not in str(refused.value) and "a-secret-key" not in str(direct.value)
    keys = settings.Settings(api_keys="a-secret-key-0123456789:admin")
    assert "a-secret-key" not in repr(keys) and "a-secret-key" not in keys.model_dump_json()


def test_list_settings_are_parsed_once_into_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLCALL_CAMERA_ALLOW", " 10.0.0.0/8, Cam7.School.LAN., *.cams.example ")
    monkeypatch.setenv("ROLLCALL_API_KEYS", "admin-key-0123456789:admin, jobs-key-0123456789:jobs")
    monkeypatch.setenv("ROLLCALL_UI_CAMERAS", "room12=http://192.168.1.20/shot.jpg")
    monkeypatch.setenv("ROLLCALL_SMALL_FACES_CAMERAS", " Cam7.School.LAN = on , cam8=auto")
    loaded = settings.Settings()
    assert isinstance(loaded.camera_allow, CameraAllowlist)
    assert str(loaded.camera_allow) == "10.0.0.0/8,cam7.school.lan,*.cams.example"
    assert [(key.secret, key.role) for key in loaded.api_keys] == [
        (b"admin-key-0123456789", "admin"),
        (b"jobs-key-0123456789", "jobs"),
    ]
    assert loaded.ui_cameras == {"room12": settings.UiCamera("room12", "http://192.168.1.20/shot.jpg")}
    assert loaded.small_faces_cameras == {"cam7.school.lan": "on", "cam8": "auto"}
    assert settings.Settings(camera_allow=loaded.camera_allow).camera_allow == loaded.camera_allow


def test_enumerated_settings_offer_what_the_models_accept() -> None:
    from ml.engines import ENGINE_CHOICES
    from ml.pipeline import embedder_names
    from ml.quantize import PRECISIONS
    from ml.tiling import TilingMode

    assert sorted(get_args(settings.EmbedderName)) == embedder_names()
    assert get_args(settings.EngineChoice) == ENGINE_CHOICES
    assert get_args(settings.PrecisionChoice) == PRECISIONS
    assert get_args(settings.SmallFaceMode) == get_args(TilingMode)


def test_the_api_refuses_to_start_with_a_bad_setting(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webapi import create_app

    monkeypatch.setenv("ROLLCALL_CAMERA_ALLOW", "x/99")
    with pytest.raises(
        settings.InvalidSettings, match="^ROLLCALL_CAMERA_ALLOW: camera allowlist entry 'x/99'"
    ):
        create_app()


def test_a_worker_with_a_bad_setting_exits_at_start_naming_it() -> None:
    """``celery -A tasks worker`` stops before it consumes anything, instead of failing jobs later."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ROLLCALL_SMALL_FACES_CAMERAS": "cam7.lan=sometimes"}
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel=WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert worker.returncode != 0
    last_line = worker.stderr.strip().splitlines()[-1]
    assert last_line == (
        "settings.InvalidSettings: ROLLCALL_SMALL_FACES_CAMERAS: cam7.lan: "
        "Input should be 'off', 'auto' or 'on' (got 'sometimes')"
    )
