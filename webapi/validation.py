"""Request validation with pydantic, and the OpenAPI document built from the same models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from contract.fields import MAX_ID
from errors import FaceNotFound, InvalidInput, NotFound, PersonNotFound, RosterNotFound, SessionNotFound
from webapi.names import BIDI_CONTROLS, text_pattern

ModelT = TypeVar("ModelT", bound=BaseModel)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


# The OpenAPI document states what the API enforces: nothing invisible (NUL, controls, zero-width
# characters: webapi.names), and names with a visible character.
NO_NUL = {"pattern": text_pattern(at_least_one_visible=False)}
VISIBLE_TEXT = {"pattern": text_pattern(at_least_one_visible=True)}


def storable_text(value: str | None) -> str | None:
    """A pydantic validator for text that goes into the database (names, external ids)."""
    # PostgreSQL cannot store NUL in text or JSON; refusing it everywhere keeps both backends alike.
    if value is not None and "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    if value is not None and not BIDI_CONTROLS.isdisjoint(value):
        raise ValueError(
            "text may not contain bidirectional control characters (U+202A–U+202E, U+2066–U+2069 …)"
        )
    return value


def parse_body(model: type[ModelT]) -> ModelT:
    """The JSON body validated against ``model``; a clear 400 otherwise."""
    try:
        payload = request.get_json(silent=True)
    except RecursionError as exc:  # json raises it (not ValueError) for deeply nested input
        raise InvalidInput("the JSON body is nested too deeply") from exc
    if payload is None:
        raise InvalidInput("expected a JSON object body (Content-Type: application/json)")
    return parse_obj(model, payload)


def parse_obj(model: type[ModelT], payload: Any) -> ModelT:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInput(_describe(exc)) from exc


def parse_query(model: type[ModelT]) -> ModelT:
    return parse_obj(model, request.args.to_dict())


_NOT_FOUND: dict[str, type[NotFound]] = {
    "person_id": PersonNotFound,
    "face_id": FaceNotFound,
    "roster_id": RosterNotFound,
    "session_id": SessionNotFound,
}


def refuse_ids_out_of_range() -> None:
    """A path id beyond the database's integers names nothing: 404 with the resource's code, not a 500."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and value > MAX_ID:
            raise _NOT_FOUND.get(name, NotFound)(f"no {name.removesuffix('_id')} with id {value}")


def refuse_oversized_stream() -> None:
    """413 for a chunked body (no Content-Length) over the limit, as for one that announces its size.

    Werkzeug stops reading such a stream at ``MAX_CONTENT_LENGTH`` without an error, so the view
    would see a truncated body (a misleading 400, or a silently cut upload).
    """
    limit = request.max_content_length
    streamed = request.content_length is None and request.environ.get("wsgi.input_terminated")
    if not streamed or limit is None:
        return
    if len(request.get_data(cache=True)) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


@dataclass
class Operation:
    """What the OpenAPI document says about one route."""

    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    tag: str = "jobs"
    role: str | None = "jobs"  # the API-key role a caller needs (see webapi.auth); None: public
    errors: tuple[int, ...] = ()  # error statuses beyond the common ones (see ``openapi_document``)
    path: dict[str, dict[str, Any]] = field(default_factory=dict)  # JSON Schema of string path parameters
    idempotent: bool = False  # a job submission: takes an Idempotency-Key header, may answer 409 and 429


# What a route that waits for its job can answer besides the common errors: the job's own failure
# (duplicate face, revoked, not an image or no face, camera errors and timeouts).
JOB_ERRORS = (409, 410, 422, 429, 502, 504)
IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send the same key again (within ROLLCALL_IDEMPOTENCY_WINDOW_S) to get the same job back "
    "(answered with `Idempotent-Replayed: true`) instead of a second one; a key reused with a different body "
    "answers 409 `idempotency_conflict`. Keys are per API key.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}
_OPERATIONS: dict[Callable[..., Any], Operation] = {}


def documented(summary: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach OpenAPI metadata to a view function (read when ``/openapi.json`` is built)."""

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        _OPERATIONS[view] = Operation(summary=summary, **kwargs)
        return view

    return wrap


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def openapi_document(app: Flask) -> dict[str, Any]:
    """OpenAPI 3.1 for every documented route of ``app``."""
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, Any] = {}
    error = {"content": {"application/json": {"schema": ref(ErrorResponse)}}}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        op = _OPERATIONS.get(view)
        if op is None:
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        params = [
            {
                "name": arg,
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}
                if f"<int:{arg}>" in rule.rule
                else op.path.get(arg, {"type": "string"}),
            }
            for arg in rule.arguments
        ]
        if op.idempotent:
            params.append(IDEMPOTENCY_PARAMETER)
        if op.query is not None:
            qschema = op.query.model_json_schema()
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            entry: dict[str, Any] = {
                "summary": op.summary,
                "tags": [op.tag],
                "parameters": params,
                "responses": {},
            }
            if op.body is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ref(op.body)}},
                }
            for status, model in op.responses.items():
                content = {"content": {"application/json": {"schema": ref(model)}}} if model else {}
                entry["responses"][str(status)] = {"description": str(status), **content}
            common = (400, 401, 403, 404, 413, 503) if op.role else (400, 503)
            for status in common + op.errors + ((409, 429) if op.idempotent else ()):
                entry["responses"].setdefault(str(status), {"description": "error", **error})
            if op.role:
                entry["security"] = [{"apiKey": []}, {"bearer": []}]  # either one
            paths.setdefault(path, {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rollcall",
            "version": "1.0.0",
            "description": "Face detection, identification and attendance jobs over IP camera frames.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The same API key as a bearer token.",
                },
            },
        },
    }


def operation_of(view: Callable[..., Any]) -> Operation | None:
    """The documented metadata of a view (None for undocumented routes such as static files)."""
    return _OPERATIONS.get(view)
