"""A small stand-in for LFW, built from the labelled photos of the shared data folder.

No copy of LFW ships with the project, so ``python -m evaluation build-pairs`` lays out the single-person
photos of ``datasets/facebank/``, ``datasets/facebank_probe/`` and ``oracles/mtcnn_facenet_pytorch/images/``
in LFW's layout (symbolic links, nothing copied) and writes every same-person and every different-person
pair. It is a few dozen photos of a dozen people: a smoke test of accuracy, not a benchmark.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import errors
from evaluation.lfw import ImageRef, Pair, format_pairs

FACEBANK = "datasets/facebank"

# Single-person photos outside facebank/<person>/ and who is in them (datasets/MANIFEST.md and
# oracles/mtcnn_facenet_pytorch/MANIFEST.md). Group photos are left out: nothing labels their faces.
# obama3.jpg is the left half of two_people.jpg, which is not used. The probe folder's
# lin-manuel-miranda.png is the same file as the oracle folder's.
LABELLED_PHOTOS = {
    "datasets/facebank_probe/alex_lacamoire1.jpg": "alex_lacamoire",
    "datasets/facebank_probe/johnsnow_test1.jpg": "kit_harington",
    "datasets/facebank_probe/obama1.jpg": "obama",
    "datasets/facebank_probe/obama3.jpg": "obama",
    "oracles/mtcnn_facenet_pytorch/images/angelina_jolie.jpg": "angelina_jolie",
    "oracles/mtcnn_facenet_pytorch/images/kate_siegel.jpg": "kate_siegel",
    "oracles/mtcnn_facenet_pytorch/images/lin-manuel-miranda.png": "lin_manuel_miranda",
    "oracles/mtcnn_facenet_pytorch/images/obama-720p.jpg": "obama",
    "oracles/mtcnn_facenet_pytorch/images/obama_partial_face.jpg": "obama",
    "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg": "obama",
    "oracles/mtcnn_facenet_pytorch/images/paul_rudd.jpg": "paul_rudd",
    "oracles/mtcnn_facenet_pytorch/images/shea_whigham.jpg": "shea_whigham",
}

NOTE = (
    "A small substitute for LFW built from rollcall's shared test photos (not LFW itself): "
    "{photos} photos of {people} people, {same} same-person and {different} different-person pairs.\n"
    "Photos are symbolic links into the shared folder (see sources.tsv); a link keeps its source's bytes, "
    "so a few '.jpg' names hold PNG or JPEG data of another extension (decoders read the content).\n"
)


@dataclass(frozen=True)
class LabelledPhoto:
    """A photo of the shared folder (``source`` relative to it) showing one known person."""

    source: str
    person: str


@dataclass(frozen=True)
class Substitute:
    """What ``build_substitute`` wrote: the LFW-layout image folder, the pairs file, and its counts."""

    images_dir: Path
    pairs_path: Path
    photos: int
    people: int
    same_pairs: int
    different_pairs: int
    duplicates_skipped: tuple[str, ...]

    def describe(self) -> str:
        return NOTE.format(
            photos=self.photos, people=self.people, same=self.same_pairs, different=self.different_pairs
        )


def labelled_photos(shared: Path) -> list[LabelledPhoto]:
    """facebank/<person>/* (sorted by person, then file) followed by ``LABELLED_PHOTOS``."""
    facebank = shared / FACEBANK
    if not facebank.is_dir():
        raise errors.InvalidInput(f"{facebank} not found: --shared must be rollcall's shared data folder")
    photos = [
        LabelledPhoto(path.relative_to(shared).as_posix(), person_dir.name)
        for person_dir in sorted(p for p in facebank.iterdir() if p.is_dir())
        for path in sorted(p for p in person_dir.iterdir() if p.is_file())
    ]
    photos += [LabelledPhoto(source, person) for source, person in LABELLED_PHOTOS.items()]
    missing = [photo.source for photo in photos if not (shared / photo.source).is_file()]
    if missing:
        raise errors.InvalidInput(f"photos missing from the shared folder {shared}: {', '.join(missing)}")
    return photos


def all_pairs(refs_by_person: dict[str, list[ImageRef]]) -> list[Pair]:
    """Every same-person pair, then every different-person pair (people in sorted order)."""
    people = sorted(refs_by_person)
    same = [
        Pair(a, b, same=True)
        for person in people
        for a, b in itertools.combinations(refs_by_person[person], 2)
    ]
    different = [
        Pair(a, b, same=False)
        for first, second in itertools.combinations(people, 2)
        for a, b in itertools.product(refs_by_person[first], refs_by_person[second])
    ]
    return same + different


def build_substitute(shared: Path, out: Path) -> Substitute:
    """Write ``out/images/<name>/<name>_NNNN.jpg`` links, pairs.txt, sources.tsv and README.txt."""
    _check_output_folder(out)
    photos = labelled_photos(shared)
    images_dir = out / "images"
    refs_by_person: dict[str, list[ImageRef]] = defaultdict(list)
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    sources = ["lfw_path\tshared_source"]
    for photo in photos:
        source = (shared / photo.source).resolve()
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        if digest in seen:  # the same file twice would be a free same-person pair scoring 1.0
            duplicates.append(f"{photo.source} (same file as {seen[digest]})")
            continue
        seen[digest] = photo.source
        ref = ImageRef(photo.person, len(refs_by_person[photo.person]) + 1)
        refs_by_person[photo.person].append(ref)
        link = ref.path(images_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source, link)
        sources.append(f"{link.relative_to(out).as_posix()}\t{photo.source}")
    pairs = all_pairs(refs_by_person)
    pairs_path = out / "pairs.txt"
    pairs_path.write_text(format_pairs(pairs), encoding="utf-8")
    (out / "sources.tsv").write_text("\n".join(sources) + "\n", encoding="utf-8")
    n_same = sum(pair.same for pair in pairs)
    substitute = Substitute(
        images_dir=images_dir,
        pairs_path=pairs_path,
        photos=sum(len(refs) for refs in refs_by_person.values()),
        people=len(refs_by_person),
        same_pairs=n_same,
        different_pairs=len(pairs) - n_same,
        duplicates_skipped=tuple(duplicates),
    )
    (out / "README.txt").write_text(substitute.describe(), encoding="utf-8")
    return substitute


def _check_output_folder(out: Path) -> None:
    """The folder must be new or empty, and outside this repository (the photos must never be committed)."""
    repo_root = Path(__file__).resolve().parents[1]
    if (repo_root / "pyproject.toml").is_file() and out.resolve().is_relative_to(repo_root):
        raise errors.InvalidInput(f"{out} is inside the repository {repo_root}: choose a folder outside it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise errors.InvalidInput(f"{out} already exists and is not an empty folder")
