"""The configuration table in the README is the one the settings module generates."""

import pytest
from pydantic import ValidationError

import settings
from scripts.sync_readme import sync
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
