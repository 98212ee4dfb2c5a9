"""Who is calling: the owner of the request's API token, when `D2L_AUTH=on`.

Tokens are checked against the database once and then trusted for `TOKEN_TTL_S` in this
process, so the predict hot path costs one sha256 and one dict lookup; a revoked token stops
working within that time.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from core.auth import tokens
from core.db import Database
from core.errors import UnauthorizedError

TOKEN_TTL_S = 30.0
MAX_CACHED_TOKENS = 10_000
TOKEN_COOKIE = "d2l_token"  # set by the web page (api/static/index.html)
SAFE_METHODS = frozenset({"GET", "HEAD"})
NEEDS_TOKEN = (
    "this service needs an API token: send `Authorization: Bearer <token>` "
    "(an operator creates one with `d2l-service token create --owner NAME`)"
)


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer`, or, for reads only, of the web page's cookie: a
    cookie is sent by the browser on its own, so it must never be able to change anything."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return secret.strip()
    if request.method in SAFE_METHODS:
        return request.cookies.get(TOKEN_COOKIE, "").strip()
    return ""


class TokenCheck:
    """Owners of recently seen tokens, by the token's hash (never the secret itself)."""

    def __init__(self, db: Database, *, enabled: bool) -> None:
        self.db = db
        self.enabled = enabled
        self._owners: dict[str, tuple[str, float]] = {}

    async def owner(self, request: Request) -> str | None:
        """The caller's owner; None when auth is off. UnauthorizedError without a live token.

        A token seen within `TOKEN_TTL_S` costs no thread hop (the predict hot path); another
        is looked up in the threadpool, never on the event loop."""
        if not self.enabled:
            return None
        secret = bearer_token(request)
        if not secret:
            raise UnauthorizedError(NEEDS_TOKEN)
        key = tokens.hash_token(secret)
        cached = self._owners.get(key)
        if cached is not None and time.monotonic() - cached[1] < TOKEN_TTL_S:
            return cached[0]
        owner = await run_in_threadpool(self._look_up, secret)
        if owner is None:
            raise UnauthorizedError("unknown or revoked API token")
        if len(self._owners) >= MAX_CACHED_TOKENS:
            self._owners.clear()
        self._owners[key] = (owner, time.monotonic())
        return owner

    def _look_up(self, secret: str) -> str | None:
        with self.db.sessions() as session:
            return tokens.owner_of(session, secret=secret)


# Documents the scheme in OpenAPI, so Swagger UI offers "Authorize"; the check itself is ours.
BEARER = HTTPBearer(auto_error=False, description="An API token from `d2l-service token create`")


async def caller(
    request: Request, _documented: Annotated[object, Security(BEARER)] = None
) -> str | None:
    """Dependency: the caller's owner (async: no thread hop on a cache hit)."""
    check: TokenCheck = request.app.state.token_check
    owner = await check.owner(request)
    request.state.owner = owner
    return owner


OwnerDep = Annotated[str | None, Depends(caller)]
