"""Grouping the tracks nobody enrolled was named on into unknown people, by their embeddings.

Each track stands as the mean of its last embeddings (L2-normalised again). The tracks are grouped by
agglomerative clustering (scikit-learn) on cosine distance with **average** linkage, cut at the facebank's
own decision rule: two groups merge while their mean similarity is at least the match threshold, the
similarity at which a face would be named as an enrolled person. So "the same unknown person" means
what "the same person" means everywhere else, and a group's faces are as alike as a person's.

Why not the density-based alternatives: DBSCAN and HDBSCAN call a track seen once *noise* unless
``min_samples`` is 1, and with 1 they chain (single linkage): a stranger seen once must still be
"unknown person N, seen 1 time", and two strangers must not merge through a blurred track between them.
Average linkage needs no minimum group size and resists chaining; at a session's size (at most
``ROLLCALL_SESSION_MAX_UNKNOWN_TRACKS`` tracks) its quadratic cost is nothing.
"""

from __future__ import annotations

import numpy as np


def track_vectors(embeddings: list[np.ndarray]) -> np.ndarray:
    """One unit vector per track: the mean of its embeddings, normalised."""
    means = np.stack([np.asarray(e, dtype=np.float32).mean(axis=0) for e in embeddings])
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return means / np.maximum(norms, 1e-12)


def group_tracks(embeddings: list[np.ndarray], threshold: float) -> list[int]:
    """A group number per track (from 1, numbered in the order of the tracks given: pass them in order
    of first appearance); tracks of one group are alike at ``threshold`` (cosine similarity) on average."""
    if not embeddings:
        return []
    if len(embeddings) == 1:
        return [1]
    # Imported here: scikit-learn (with SciPy) adds ~90 MiB resident to a process, and only a session's
    # close groups tracks; every model worker imports this module.
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=1.0 - threshold,
    ).fit_predict(track_vectors(embeddings))
    numbers: dict[int, int] = {}
    return [numbers.setdefault(int(label), len(numbers) + 1) for label in labels]
