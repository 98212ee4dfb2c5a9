"""API tokens: created by the operator (`d2l-service token create`), shown once, stored hashed.

A token is 32 random bytes, so a plain sha256 is the right hash: a slow password hash would only
add latency to every request, and there is nothing to guess. The first characters are kept in
clear (`prefix`) so an operator can tell tokens apart in `token list`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInputError, NotFoundError
from core.tables import ApiToken, utcnow

TOKEN_PREFIX = "d2l_"
OWNER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_owner(owner: str) -> str:
    """Owner names appear in logs and queries: a short, plain identifier."""
    if not OWNER_PATTERN.fullmatch(owner):
        raise InvalidInputError(
            f"owner {owner!r}: use 1-100 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return owner


def create_token(session: Session, *, owner: str, name: str = "default") -> tuple[ApiToken, str]:
    """A new token row and its secret (the only time the secret exists outside the client)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        owner=check_owner(owner),
        name=name[:100],
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(secret),
    )
    session.add(row)
    session.flush()
    return row, secret


def owner_of(session: Session, *, secret: str) -> str | None:
    """The owner a live token belongs to, or None for an unknown or revoked one."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if row is None or row.revoked_at is not None:
        return None
    return row.owner


def list_tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.owner, ApiToken.created_at)).all()


def revoke_token(session: Session, *, token_id: str) -> ApiToken:
    """Revoke by id or by the printed prefix; API processes notice within their cache's TTL."""
    row = session.get(ApiToken, token_id) or session.scalar(
        select(ApiToken).where(ApiToken.prefix == token_id)
    )
    if row is None:
        raise NotFoundError(f"no token {token_id!r}; `d2l-service token list` shows them")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
