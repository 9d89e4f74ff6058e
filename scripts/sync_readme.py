"""Regenerate the README's generated tables (configuration, error codes); tests/test_settings.py checks."""

import re
from pathlib import Path

import errors
import settings

README = Path(__file__).resolve().parent.parent / "README.md"
TABLES = {"settings-table": settings.markdown_table, "errors-table": errors.markdown_table}


def sync(text: str) -> str:
    for marker, table in TABLES.items():
        block = f"<!-- {marker}:start -->\n{table()}\n<!-- {marker}:end -->"
        pattern = rf"<!-- {marker}:start -->.*<!-- {marker}:end -->"
        text = re.sub(pattern, block.replace("\\", "\\\\"), text, flags=re.S)
    return text


if __name__ == "__main__":
    README.write_text(sync(README.read_text()))
