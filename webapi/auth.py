"""API keys and roles: who may call what.

Keys come only from the environment (``ROLLCALL_API_KEYS="key1:admin,key2:jobs"``, parsed by
``settings``: a malformed entry stops the API at start), are compared in constant time and never
logged. Role ``jobs`` submits and reads jobs (and reads the people list); ``admin`` may do
everything, including managing the facebank.
Each route declares the role it needs through ``webapi.validation.documented`` (``role=None``:
public). Deny by default: a route that declares nothing refuses every request, so a view added
without ``documented`` is never open by accident. Flask's own static files (the page's CSS and
script) are the one exception.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, g, request

from contract.callers import Caller
from errors import AuthenticationRequired, Forbidden
from settings import ApiKey, Settings
from webapi.validation import operation_of

LEGACY_ENDPOINTS = {"legacy.modelfr", "legacy.modelin", "legacy.modelat"}
PUBLIC_UNDECLARED = {"static"}  # Flask's static files: the public page's CSS, script and images


def _presented_key() -> bytes | None:
    header = request.headers.get("X-API-Key")
    if header is None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        header = token if scheme.lower() == "bearer" and token else None
    return header.encode() if header is not None else None


def anonymous_identity() -> str:
    """Who a caller without a valid key is: one identity per client address.

    Open legacy routes (``ROLLCALL_LEGACY_ROUTES_OPEN``) answer such callers; their rate and in-flight
    limits are shared by everything sent from that address, so a new random key per request is not a
    new budget (only a key the server knows is an identity of its own).
    """
    return f"anonymous@{request.remote_addr or 'unknown'}"


def current_caller() -> Caller:
    """Who sent this request, as the key check found them (``contract.callers``): views read it here
    and pass it on; nothing below the views reads the request."""
    caller: Caller | None = g.get("rollcall_caller")
    return caller if caller is not None else Caller(anonymous_identity(), admin=False)


def role_of(presented: bytes, keys: tuple[ApiKey, ...]) -> str | None:
    """The role of the matching key; every key is compared so timing does not reveal which matched."""
    role = None
    for key in keys:
        if hmac.compare_digest(presented, key.secret):
            role = key.role
    return role


def install_auth(app: Flask, settings: Settings) -> None:
    """Check every request against the role its route declares."""

    @app.before_request
    def _check_api_key() -> None:
        if request.endpoint is None or request.endpoint in PUBLIC_UNDECLARED:
            return  # no route matched (404/405 follows), or a static file
        operation = operation_of(app.view_functions[request.endpoint])
        if operation is None:
            raise Forbidden("this route declares no role, so it answers no one")
        if settings.auth_disabled:
            g.rollcall_caller = Caller("anonymous", admin=True)  # a trusted LAN: one caller who sees all
            return
        presented = _presented_key()
        role = role_of(presented, settings.api_keys) if presented is not None else None
        # Who owns jobs and carries limits: a valid key's hash (never the key), else the anonymous identity.
        fingerprint = hashlib.sha256(presented).hexdigest() if presented and role else anonymous_identity()
        g.rollcall_caller = Caller(fingerprint, admin=role == "admin")
        if settings.legacy_routes_open and request.endpoint in LEGACY_ENDPOINTS:
            return
        needed = operation.role
        if needed is None:
            return
        if presented is None:
            raise AuthenticationRequired("send an API key in the X-API-Key header (or Authorization: Bearer)")
        if role is None:
            raise AuthenticationRequired("the API key is not valid")
        if needed == "admin" and role != "admin":
            raise Forbidden("this needs an admin API key")
