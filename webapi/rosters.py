"""``/v1/rosters``: named groups of people (a class, a shift) that attendance can be restricted to.

An attendance job names a roster with ``roster_id``; an attendance session takes a copy of its
members when it is created. Managing rosters needs an admin key; reading them, a jobs key.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.fields import PersonId
from facebank.limits import MAX_ROSTER_NAME, MAX_ROSTER_SIZE
from webapi.names import normalised_name
from webapi.schemas import RosterOut
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

    _name = field_validator("name", mode="before")(normalised_name)
    _text = field_validator("name")(storable_text)


class RosterUpdate(BaseModel):
    """Rename, replace the members, and/or add and remove some (applied in that order)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # Left out: unchanged; null is refused (the types say so, and so does the OpenAPI document).
    name: str = Field(None, min_length=1, max_length=MAX_ROSTER_NAME, json_schema_extra=VISIBLE_TEXT)
    person_ids: Members = Field(None, max_length=MAX_ROSTER_SIZE, description="The new members, all of them.")
    add: Members = Field(default_factory=list, max_length=MAX_ROSTER_SIZE)
    remove: Members = Field(default_factory=list, max_length=MAX_ROSTER_SIZE)

    _name = field_validator("name", mode="before")(normalised_name)
    _text = field_validator("name")(storable_text)


class RosterList(BaseModel):
    items: list[RosterOut]


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
    roster = facebank().rosters.create(body.name, body.person_ids)
    return (
        jsonify(RosterOut.json_of(roster)),
        201,
        {"Location": url_for("rosters.get_roster", roster_id=roster.id)},
    )


@bp.get("")
@documented("Every roster with its members.", responses={200: RosterList}, tag="rosters")
def list_rosters() -> Any:
    return jsonify({"items": [RosterOut.json_of(r) for r in facebank().rosters.all()]})


@bp.get("/<int:roster_id>")
@documented("One roster.", responses={200: RosterOut}, tag="rosters")
def get_roster(roster_id: int) -> Any:
    return jsonify(RosterOut.json_of(facebank().rosters.get(roster_id)))


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
    return jsonify(RosterOut.json_of(facebank().rosters.update(roster_id, **changes)))


@bp.delete("/<int:roster_id>")
@documented("Delete a roster (its people stay).", responses={204: None}, tag="rosters", role="admin")
def delete_roster(roster_id: int) -> Any:
    facebank().rosters.delete(roster_id)
    return Response(status=204)
