"""Matching (attendance's ``assign_faces``) before and after a change, back to back in one process.

    OMP_WAIT_POLICY=PASSIVE python -m scripts.matching_before_after --base 56b152a --threads 2

The base revision's matching module (from git: ``--base-file``, ``facebank/gallery.py`` until it moved to
``recognition/gallery.py``) and today's assign the same random faces to the
same synthetic galleries (``benchmarks.galleries``: one random unit vector per identity) of 10, 1,000
and 100,000 identities, 1 to 32 faces a frame, at threshold 0.5: nobody matches, so what is timed is
the search, as in ``python -m benchmarks``. The two alternate call by call, after checking that they
score alike. Prints one JSON object: median milliseconds per call each way and the median ratio
base / today over the pairs, per case.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from benchmarks.galleries import synthetic_gallery, synthetic_rows
from recognition.gallery import assign_faces, person_scores
from scripts.git_revision import import_at

DIM = 128  # dlib ResNet's embedding size


def _ms(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="56b152a")
    parser.add_argument("--base-file", default="facebank/gallery.py", help="the matching module at --base")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--identities", type=int, nargs="+", default=[10, 1000, 100000])
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 3, 8, 32])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = import_at(args.base, args.base_file)
    rng = np.random.default_rng(0)
    cases: dict[str, Any] = {}
    for identities in args.identities:
        gallery = synthetic_gallery(synthetic_rows(identities, DIM, seed=identities), "dlib_resnet_v1", "cpu")
        for faces in args.faces:
            queries = rng.standard_normal((faces, DIM), dtype=np.float32)
            # The same scores both ways (float32 sums in another order: equal to rounding).
            difference = (base.person_scores(queries, gallery) - person_scores(queries, gallery)).abs().max()
            assert float(difference) <= 1e-6, (
                f"{identities} ids, {faces} faces: scores differ by {difference}"
            )
            then, now = (
                partial(base.assign_faces, queries, gallery, 0.5),
                partial(assign_faces, queries, gallery, 0.5),
            )
            pairs = [(_ms(then), _ms(now)) for _ in range(args.repeats)]
            cases[f"{identities}_ids_{faces}_faces"] = {
                "base_ms": round(statistics.median(b for b, _ in pairs), 3),
                "now_ms": round(statistics.median(n for _, n in pairs), 3),
                "base_over_now": round(statistics.median(b / n for b, n in pairs), 2),
            }
    print(json.dumps({"base": args.base, "threads": args.threads, "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
