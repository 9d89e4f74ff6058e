"""What counts as product code: the packages and top-level modules ``pyproject.toml`` ships."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setuptools() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tool: dict[str, object] = config["tool"]["setuptools"]
    return tool


def product_packages() -> list[str]:
    """The top-level packages (``ml``, ``facebank``, ...), from ``[tool.setuptools.packages.find]``."""
    found = _setuptools()["packages"]["find"]["include"]  # type: ignore[index]
    return sorted(pattern.rstrip("*") for pattern in found)


def product_modules() -> list[str]:
    """The top-level modules (``settings``, ``errors``, ``celeryconfig``)."""
    return sorted(_setuptools()["py-modules"])  # type: ignore[arg-type]
