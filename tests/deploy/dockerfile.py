"""A small Dockerfile reader for static checks: instructions grouped into stages (``FROM ... AS name``).

No Docker engine runs on the development machines, so the tests read the Dockerfile the way the builder
would: continuation lines joined, comments dropped, ``--flag=value`` options split off, and stages linked
by ``FROM <stage>`` and ``COPY --from=<stage>``. Heredocs are not supported (rollcall's file has none).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_FLAG = re.compile(r"--(?P<name>[a-z-]+)(?:=(?P<value>\S*))?\s*")
_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}|\$(?P<bare>\w+)")


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``keyword`` upper-case, leading ``--flags`` split off, ``args`` the rest."""

    keyword: str
    flags: dict[str, str]
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON-array form of CMD/ENTRYPOINT/RUN arguments, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"line {self.line}"
        return value


@dataclass
class Stage:
    """A build stage: what it starts ``FROM`` (an image or an earlier stage) and its instructions."""

    name: str | None
    base: str
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    """Global ``ARG`` defaults (before the first FROM) and the stages in order."""

    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages if s.name]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage named {name!r} (stages: {self.stage_names})")

    def chain(self, name: str) -> list[Stage]:
        """The stage and the stages it is built ``FROM``, outermost first: what it inherits."""
        stage = self.stage(name)
        parents = self.chain(stage.base) if stage.base in self.stage_names else []
        return [*parents, stage]

    def inherited(self, name: str, keyword: str) -> list[Instruction]:
        """Every ``keyword`` instruction that shapes the stage, in build order (the last one wins)."""
        return [i for stage in self.chain(name) for i in stage.all(keyword)]

    def feeders(self, name: str) -> set[str]:
        """Every stage whose files can end up in ``name``: its FROM chain and COPY --from, recursively."""
        found: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current in found:
                continue
            found.add(current)
            stage = self.stage(current)
            if stage.base in self.stage_names:
                pending.append(stage.base)
            pending += [i.flags["from"] for i in stage.all("COPY") if i.flags.get("from") in self.stage_names]
        return found

    def env(self, name: str) -> dict[str, str]:
        """The environment a container of the stage starts with (ENV only; Docker adds PATH etc.)."""
        values: dict[str, str] = {}
        for instruction in self.inherited(name, "ENV"):
            values.update(parse_env(instruction.args, values))
        return values

    def expand(self, text: str, name: str | None = None) -> str:
        """``text`` with ``${VAR}`` replaced by ARG defaults and the stage's ENV; unknown ones kept."""
        values = dict(self.global_args)
        if name is not None:
            for instruction in self.stage(name).all("ARG"):
                key, sep, default = instruction.args.partition("=")
                if sep:
                    values[key] = shlex.split(default)[0] if default.strip() else ""
            values.update(self.env(name))
        return expand(text, values)


def expand(text: str, values: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match.group("name") or match.group("bare")
        if key in values:
            return values[key]
        default = match.group("default")
        return default if default is not None else match.group(0)

    return _VARIABLE.sub(substitute, text)


def parse_env(args: str, known: dict[str, str]) -> dict[str, str]:
    """``ENV a=1 b="x y"`` (or the legacy ``ENV a 1``) as a dict, expanding earlier values."""
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: expand(" ".join(tokens[1:]), known)}
    result: dict[str, str] = {}
    for token in tokens:
        key, _, value = token.partition("=")
        result[key] = expand(value, {**known, **result})
    return result


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Instructions with their continuation lines joined and comment lines removed."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # a comment or blank line never ends an instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        lines.append((start, " ".join(pending)))
        pending = []
    assert not pending, f"line {start}: the file ends inside a continued instruction"
    return lines


def parse(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags: dict[str, str] = {}
        rest = rest.strip()
        while match := _FLAG.match(rest):
            flags[match.group("name")] = match.group("value") or ""
            rest = rest[match.end() :]
        instruction = Instruction(keyword, flags, rest, number)
        if keyword == "FROM":
            parts = rest.split()
            assert len(parts) in (1, 3) and (len(parts) == 1 or parts[1].upper() == "AS"), f"line {number}"
            # Docker expands a FROM's ${ARG} from the global ARGs: the base is their default.
            stages.append(Stage(parts[2] if len(parts) == 3 else None, expand(parts[0], global_args), number))
        elif not stages:
            assert keyword == "ARG", f"line {number}: only ARG may come before the first FROM"
            name, _, default = rest.partition("=")
            global_args[name] = shlex.split(default)[0] if default.strip() else ""
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(global_args, stages)


def read(path: Path) -> Dockerfile:
    return parse(path.read_text(encoding="utf-8"))
