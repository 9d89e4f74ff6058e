"""Regenerate the README's configuration table from settings.py (tests/unit/test_settings.py checks it)."""

import re
from pathlib import Path

import settings

README = Path(__file__).resolve().parent.parent / "README.md"
text = README.read_text()
block = "<!-- settings-table:start -->\n" + settings.markdown_table() + "\n<!-- settings-table:end -->"
README.write_text(re.sub(r"<!-- settings-table:start -->.*<!-- settings-table:end -->", block, text, flags=re.S))
