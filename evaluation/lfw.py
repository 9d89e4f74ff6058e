"""LFW's pairs format and image layout (Huang et al. 2007), read and written.

A pairs file starts with a header, then one pair per line, tab- or space-separated:
``name idx1 idx2`` (two photos of one person) or ``name1 idx1 name2 idx2`` (two people). Photo
``idx`` of ``name`` lives at ``DIR/name/name_{idx:04d}.jpg``. Headers:

- ``folds N`` (``pairs.txt``, View 2): ``folds`` consecutive blocks of 2N lines, each one fold
  (N same-person then N different-person pairs in LFW's own file; the order inside a block is not relied on);
- ``N`` (``pairsDevTrain.txt``/``pairsDevTest.txt``, View 1): one fold of 2N lines; and, so that a list
  with unequal numbers of same- and different-person pairs can be written, ``N`` equal to the number of
  lines is read as one fold of N pairs (``python -m evaluation build-pairs`` writes that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import errors


@dataclass(frozen=True, order=True)
class ImageRef:
    """One photo of LFW's layout: the ``index``-th (from 1) photo of ``name``."""

    name: str
    index: int

    def path(self, images_dir: Path) -> Path:
        return images_dir / self.name / f"{self.name}_{self.index:04d}.jpg"


@dataclass(frozen=True)
class Pair:
    """Two photos, whether they show the same person, and the fold (from 0) the pair belongs to."""

    left: ImageRef
    right: ImageRef
    same: bool
    fold: int = 0


@dataclass(frozen=True)
class PairsFile:
    """A parsed pairs file: its pairs in file order and how many folds they form."""

    pairs: tuple[Pair, ...]
    folds: int

    def images(self) -> list[ImageRef]:
        """Every photo the pairs use, once each, sorted."""
        return sorted({ref for pair in self.pairs for ref in (pair.left, pair.right)})


def parse_pairs(text: str, source: str = "pairs file") -> PairsFile:
    """Parse LFW's pairs format; ``errors.InvalidInput`` names the line of any malformed entry."""
    lines = [(number, line.split()) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, fields) for number, fields in lines if fields]
    if not lines:
        raise errors.InvalidInput(f"{source} is empty: expected a header line 'N' or 'folds N'")
    header_line, header = lines[0]
    body = lines[1:]
    folds, per_fold = _fold_layout(header, len(body), f"{source} line {header_line}")
    pairs = []
    for position, (number, fields) in enumerate(body):
        left, right, same = _parse_pair(fields, f"{source} line {number}")
        pairs.append(Pair(left, right, same, fold=position // per_fold))
    return PairsFile(tuple(pairs), folds)


def read_pairs(path: Path) -> PairsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.InvalidInput(f"cannot read pairs file {path}: {exc.strerror or exc}") from exc
    return parse_pairs(text, source=str(path))


def format_pairs(pairs: Sequence[Pair]) -> str:
    """One fold of pairs in LFW's format, with an ``N`` header equal to the number of lines."""
    lines = [str(len(pairs))]
    for pair in pairs:
        if pair.same:
            if pair.left.name != pair.right.name:
                raise ValueError(f"a same-person pair must name one person: {pair}")
            lines.append(f"{pair.left.name}\t{pair.left.index}\t{pair.right.index}")
        else:
            lines.append(f"{pair.left.name}\t{pair.left.index}\t{pair.right.name}\t{pair.right.index}")
    return "\n".join(lines) + "\n"


def _fold_layout(header: list[str], n_lines: int, where: str) -> tuple[int, int]:
    """(folds, pair lines per fold) from the header and the number of pair lines that follow it."""
    numbers = [_positive_int(field, where) for field in header]
    if len(numbers) == 2:
        folds, per_class = numbers
        if n_lines != folds * 2 * per_class:
            raise errors.InvalidInput(
                f"{where}: header '{folds} {per_class}' announces {folds} folds of 2x{per_class} pairs "
                f"({folds * 2 * per_class} lines), but {n_lines} pair lines follow"
            )
        return folds, 2 * per_class
    if len(numbers) == 1:
        (count,) = numbers
        if n_lines not in (count, 2 * count):
            raise errors.InvalidInput(
                f"{where}: header '{count}' announces {2 * count} pairs (LFW View 1) or {count} pairs "
                f"(a plain list), but {n_lines} pair lines follow"
            )
        return 1, n_lines
    raise errors.InvalidInput(f"{where}: expected a header 'N' or 'folds N', got {' '.join(header)!r}")


def _parse_pair(fields: list[str], where: str) -> tuple[ImageRef, ImageRef, bool]:
    if len(fields) == 3:
        name, first, second = fields
        return ImageRef(name, _positive_int(first, where)), ImageRef(name, _positive_int(second, where)), True
    if len(fields) == 4:
        name1, first, name2, second = fields
        if name1 == name2:
            raise errors.InvalidInput(f"{where}: a different-person pair names {name1!r} twice")
        return (
            ImageRef(name1, _positive_int(first, where)),
            ImageRef(name2, _positive_int(second, where)),
            False,
        )
    raise errors.InvalidInput(
        f"{where}: expected 'name idx1 idx2' or 'name1 idx1 name2 idx2', got {' '.join(fields)!r}"
    )


def _positive_int(field: str, where: str) -> int:
    if not field.isdigit() or int(field) < 1:
        raise errors.InvalidInput(f"{where}: expected a positive whole number, got {field!r}")
    return int(field)
