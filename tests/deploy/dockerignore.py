"""``.dockerignore`` matching as Docker does it, for checking what reaches the build context."""

from __future__ import annotations

import re
from pathlib import Path


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker matches it: ``*`` stays within a folder, ``**`` crosses folders."""
    pattern, out, i = pattern.strip("/"), "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] in "*?":
            out, i = out + ("[^/]*" if pattern[i] == "*" else "[^/]"), i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(path: str, ignore_file: Path) -> bool:
    """Whether the build context leaves ``path`` out: the last matching pattern wins, folders count."""
    rules = []
    for line in ignore_file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), pattern_regex(line.lstrip("!"))))
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negated
    return result
