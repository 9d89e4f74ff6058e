"""The configuration table in the README is the one the settings module generates."""

import re

import pytest
from pydantic import ValidationError

import settings
from tests.shared_data import REPO_ROOT


def test_readme_configuration_table_matches_settings() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings-table:start -->\n(.*)\n<!-- settings-table:end -->", readme, re.S)
    assert block is not None, "README lacks the settings-table markers"
    assert block.group(1) == settings.markdown_table(), "run: python scripts/sync_readme_settings.py"


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
