"""A track's name by vote: stable against single frames, settled by clear or repeated votes."""

from __future__ import annotations

import pytest

import settings
from live.identity import IdentityVote, Vote, VoteRules

THRESHOLD = 0.9
RULES = VoteRules(window=8, switch_votes=2, margin=0.03)
OBAMA, BIDEN = 4, 2


def voted(*votes: tuple[int | None, float], rules: VoteRules = RULES) -> IdentityVote:
    identity = IdentityVote(rules)
    for person_id, score in votes:
        identity.add(Vote(person_id, score), THRESHOLD)
    return identity


def test_the_first_vote_names_the_track() -> None:
    identity = voted((OBAMA, 0.96))
    assert identity.decided and identity.person_id == OBAMA
    assert identity.confidence() == pytest.approx(0.96)


def test_a_track_never_flips_on_one_contrary_vote() -> None:
    identity = voted((OBAMA, 0.95), (BIDEN, 0.99))
    assert identity.person_id == OBAMA
    identity = voted((OBAMA, 0.95), (None, 0.5))
    assert identity.person_id == OBAMA


def test_a_track_changes_name_once_the_other_name_has_enough_votes_and_weight() -> None:
    identity = voted((OBAMA, 0.93), (BIDEN, 0.97), (BIDEN, 0.96))
    assert identity.person_id == BIDEN
    # Two votes, but lighter than the name held: kept.
    identity = voted((OBAMA, 0.99), (OBAMA, 0.99), (OBAMA, 0.99), (BIDEN, 0.91), (BIDEN, 0.91))
    assert identity.person_id == OBAMA


def test_clear_misses_outvote_one_lucky_match() -> None:
    identity = voted((None, 0.85), (None, 0.86), (None, 0.84), (OBAMA, 0.91), (OBAMA, 0.905))
    assert identity.person_id is None
    assert identity.confidence() is None


def test_only_the_last_window_of_votes_counts() -> None:
    rules = VoteRules(window=3, switch_votes=2, margin=0.03)
    identity = voted((OBAMA, 0.99), (OBAMA, 0.99), (OBAMA, 0.99), (BIDEN, 0.95), (BIDEN, 0.95), rules=rules)
    assert list(v.person_id for v in identity.votes) == [OBAMA, BIDEN, BIDEN]
    assert identity.person_id == BIDEN


def test_a_clear_match_settles_the_name_and_a_borderline_one_needs_agreement() -> None:
    assert voted((OBAMA, 0.97)).settled(THRESHOLD)
    assert not voted((OBAMA, 0.91)).settled(THRESHOLD)
    assert voted((OBAMA, 0.91), (OBAMA, 0.915)).settled(THRESHOLD)


def test_nobody_known_is_settled_only_by_agreeing_votes() -> None:
    assert not voted((None, 0.70)).settled(THRESHOLD)
    assert voted((None, 0.70), (None, 0.80)).settled(THRESHOLD)


def test_a_contrary_latest_vote_unsettles_the_name() -> None:
    identity = voted((OBAMA, 0.97), (OBAMA, 0.97), (BIDEN, 0.97))
    assert identity.person_id == OBAMA
    assert not identity.settled(THRESHOLD)
    assert not IdentityVote(RULES).settled(THRESHOLD)


def test_the_rules_need_a_window_and_switch_votes() -> None:
    with pytest.raises(ValueError):
        IdentityVote(VoteRules(window=0, switch_votes=2, margin=0.0))


def test_more_switch_votes_than_the_vote_holds_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLCALL_LIVE_VOTE_EMBEDDINGS", "3")
    monkeypatch.setenv("ROLLCALL_LIVE_SWITCH_VOTES", "4")
    settings.get_settings.cache_clear()
    try:
        with pytest.raises(settings.InvalidSettings, match=r"^ROLLCALL_LIVE_SWITCH_VOTES: must be at most "):
            settings.get_settings()
    finally:
        settings.get_settings.cache_clear()
    with pytest.raises(ValueError, match="switch votes"):
        IdentityVote(VoteRules(window=3, switch_votes=4, margin=0.0))
