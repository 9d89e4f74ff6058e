"""``/v1/rosters``: named groups of people (a class, a shift) that attendance can be restricted to.

An attendance job names a roster with ``roster_id``; an attendance session takes a copy of its
members when it is created. Managing rosters needs an admin key; reading them, a jobs key.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for
from pydantic import BaseModel, ConfigDict, Field, field_validator

from facebank.records import Roster
from facebank.store import MAX_ROSTER_NAME, MAX_ROSTER_SIZE
from webapi.schemas import PersonId
from webapi.services import facebank
from webapi.validation import VISIBLE_TEXT, documented, parse_body, storable_text

bp = Blueprint("rosters", __name__, url_prefix="/v1/rosters")
Members = list[PersonId]


class RosterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(
        ...,
        min_length=1,
        max_length=MAX_ROSTER_NAME,
        description="Unique, e.g. `7B maths`.",
        json_schema_extra=VISIBLE_TEXT,
    )
    person_ids: Members = Field(
        default_factory=list,
        max_length=MAX_ROSTER_SIZE,
        description="Members; each must be an existing person.",
    )

    _text = field_validator("name")(storable_text)


class RosterUpdate(BaseModel):
    """Rename, replace the members, and/or add and remove some (applied in that order)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # Left out: unchanged; null is refused (the types say so, and so does the OpenAPI document).
    name: str = Field(None, min_length=1, max_length=MAX_ROSTER_NAME, json_schema_extra=VISIBLE_TEXT)
    person_ids: Members = Field(None, max_length=MAX_ROSTER_SIZE, description="The new members, all of them.")
    add: Members = Field(default_factory=list, max_length=MAX_ROSTER_SIZE)
    remove: Members = Field(default_factory=list, max_length=MAX_ROSTER_SIZE)

    _text = field_validator("name")(storable_text)


class RosterOut(BaseModel):
    id: int
    name: str
    person_ids: list[int]
    member_count: int
    created_at: str


class RosterList(BaseModel):
    items: list[RosterOut]


def roster_json(roster: Roster) -> dict[str, Any]:
    return roster.to_json()


@bp.post("")
@documented(
    "Create a roster of existing people.",
    body=RosterCreate,
    responses={201: RosterOut},
    tag="rosters",
    role="admin",
    errors=(409,),
)
def create_roster() -> Any:
    body = parse_body(RosterCreate)
    roster = facebank().create_roster(body.name, body.person_ids)
    return jsonify(roster_json(roster)), 201, {"Location": url_for("rosters.get_roster", roster_id=roster.id)}


@bp.get("")
@documented("Every roster with its members.", responses={200: RosterList}, tag="rosters")
def list_rosters() -> Any:
    return jsonify({"items": [roster_json(r) for r in facebank().list_rosters()]})


@bp.get("/<int:roster_id>")
@documented("One roster.", responses={200: RosterOut}, tag="rosters")
def get_roster(roster_id: int) -> Any:
    return jsonify(roster_json(facebank().get_roster(roster_id)))


@bp.patch("/<int:roster_id>")
@documented(
    "Rename a roster or change its members.",
    body=RosterUpdate,
    responses={200: RosterOut},
    tag="rosters",
    role="admin",
    errors=(409,),
)
def update_roster(roster_id: int) -> Any:
    body = parse_body(RosterUpdate)
    changes = body.model_dump(exclude_unset=True)
    return jsonify(roster_json(facebank().update_roster(roster_id, **changes)))


@bp.delete("/<int:roster_id>")
@documented("Delete a roster (its people stay).", responses={204: None}, tag="rosters", role="admin")
def delete_roster(roster_id: int) -> Any:
    facebank().delete_roster(roster_id)
    return Response(status=204)
