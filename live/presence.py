"""Who is on a camera: debounced ``arrived`` and ``left`` events, one per person, whatever their tracks do.

A known person *arrives* once some track has named them for ``arrive_s`` seconds without a gap of
``leave_s``; they *leave* once no track has named them for ``leave_s`` seconds. A person whose track
is lost and found again under a new id, or who is seen by two tracks at once, is still one presence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from live.processing import PresenceChange


@dataclass(slots=True)
class _Person:
    name: str
    since: float  # start of the stretch in which they have been named with no gap of leave_s
    last_seen: float
    present: bool = False


class PresenceBoard:
    """The presence of the known people on one camera, updated once per frame."""

    def __init__(self, camera: str, arrive_s: float, leave_s: float) -> None:
        if leave_s <= 0 or arrive_s < 0:
            raise ValueError(f"presence needs arrive_s >= 0 and leave_s > 0, got {arrive_s}, {leave_s}")
        self.camera = camera
        self.arrive_s = arrive_s
        self.leave_s = leave_s
        self._people: dict[int, _Person] = {}

    def update(self, ts: float, named: Mapping[int, str]) -> list[PresenceChange]:
        """``named``: the people some track names on the frame at ``ts`` (id → display name)."""
        changes = []
        for person_id, name in named.items():
            person = self._people.get(person_id)
            if person is None or ts - person.last_seen >= self.leave_s:
                person = self._people[person_id] = _Person(
                    name, ts, ts, present=person.present if person else False
                )
            person.name, person.last_seen = name, ts
            if not person.present and ts - person.since >= self.arrive_s:
                person.present = True
                changes.append(PresenceChange(self.camera, person_id, name, "arrived", ts))
        for person_id, person in list(self._people.items()):
            if person_id in named or ts - person.last_seen < self.leave_s:
                continue
            if person.present:
                changes.append(PresenceChange(self.camera, person_id, person.name, "left", ts))
            del self._people[person_id]
        return changes

    def present(self) -> dict[int, str]:
        """The people who arrived and have not left (id → display name)."""
        return {pid: p.name for pid, p in self._people.items() if p.present}
