"""A track's name, decided by a vote over its last embeddings, and when it is worth another embedding.

Each embedding of a track is matched against the facebank once and becomes a vote: for the person it
matched (at or above the threshold), weighted by its cosine similarity, or for "nobody known",
weighted by the threshold itself (a stranger's similarity is low whoever they resemble most, so
weighting their vote by it would let one lucky match outvote several clear misses). The name is the
heaviest key of the last ``window`` votes; a named track takes another name only once that name holds
``switch_votes`` votes and outweighs the current one, so no single frame ever flips it.

A name is *settled* when its latest vote agrees with it and that vote's similarity is clear of the
threshold by ``margin``; a borderline name, and "nobody known" always, is settled once ``switch_votes``
votes in a row agree (one clear miss may be one bad frame of someone enrolled: a face turning, half out
of the picture). The processor re-embeds an unsettled track often and a settled one rarely.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# The key of the votes for "nobody in the facebank".
NOBODY = None


@dataclass(frozen=True, slots=True)
class Vote:
    """One embedding's match: the person it named (None: nobody) and its best cosine similarity."""

    person_id: int | None
    score: float


@dataclass(frozen=True, slots=True)
class VoteRules:
    window: int  # the last this many votes count
    switch_votes: int  # votes another name needs before a decided track changes to it
    margin: float  # a similarity this close to the threshold leaves a single vote unsettled


class IdentityVote:
    """The votes of one track and the name they decided (``decided``: False until the first vote)."""

    def __init__(self, rules: VoteRules) -> None:
        if not 1 <= rules.switch_votes <= rules.window:
            raise ValueError(f"a vote needs 1 <= switch votes <= window, got {rules}")
        self.rules = rules
        self.votes: deque[Vote] = deque(maxlen=rules.window)
        self.decided = False
        self.person_id: int | None = NOBODY

    def add(self, vote: Vote, threshold: float) -> None:
        """Count one more embedding's match; the name changes only as the rules above allow."""
        self.votes.append(vote)
        weights = self._weights(threshold)
        winner = max(weights, key=lambda key: weights[key])
        if not self.decided:
            self.decided, self.person_id = True, winner
            return
        if winner == self.person_id:
            return
        backing = sum(1 for v in self.votes if v.person_id == winner)
        if backing >= self.rules.switch_votes and weights[winner] > weights.get(self.person_id, 0.0):
            self.person_id = winner

    def settled(self, threshold: float) -> bool:
        """Whether the decision stands without more embeddings soon (see the module's docstring)."""
        if not self.decided or not self.votes:
            return False
        latest = self.votes[-1]
        if latest.person_id != self.person_id:
            return False
        if latest.person_id is not NOBODY and abs(latest.score - threshold) >= self.rules.margin:
            return True
        recent = list(self.votes)[-self.rules.switch_votes :]
        return len(recent) >= self.rules.switch_votes and all(v.person_id == self.person_id for v in recent)

    def confidence(self) -> float | None:
        """The mean similarity of the votes for the decided person (None while the track names nobody)."""
        if self.person_id is NOBODY:
            return None
        scores = [v.score for v in self.votes if v.person_id == self.person_id]
        return sum(scores) / len(scores) if scores else None

    def _weights(self, threshold: float) -> dict[int | None, float]:
        weights: dict[int | None, float] = {}
        for vote in self.votes:
            weight = max(vote.score, 0.0) if vote.person_id is not NOBODY else threshold
            weights[vote.person_id] = weights.get(vote.person_id, 0.0) + weight
        return weights
