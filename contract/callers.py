"""Who sends work: the identity that owns jobs and sessions and carries limits, and what it may see.

The API makes a ``Caller`` per request from the API key (``webapi.auth``) and hands it to whatever acts
for the request (the job client, admission); nothing below the HTTP layer reads the request. A command
run by an operator (``python -m webapi.cli``) acts as ``OPERATOR``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """An identity (a key's hash, or an anonymous client address) and whether it holds an admin key."""

    fingerprint: str
    admin: bool

    @property
    def owner(self) -> str | None:
        """The owner to record on a job or session created now: a non-admin caller's identity.

        What an admin key (or an operator) creates has no owner and is shared with every key: an operator
        schedules the sessions whose reports a frontend's ``jobs`` key reads.
        """
        return None if self.admin else self.fingerprint

    def may_see(self, owner: str | None) -> bool:
        """Whether this caller sees work owned by ``owner``: a ``jobs`` key its own and shared work
        (no owner), an admin everything."""
        return owner is None or self.admin or owner == self.fingerprint

    @property
    def limited(self) -> bool:
        """Whether rate and in-flight limits apply: to every caller but admins and operators."""
        return not self.admin


# An operator's command on the server (import, export, migrate): admin rights, no limits, owns nothing.
OPERATOR = Caller("operator", admin=True)
