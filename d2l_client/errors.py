"""What the client raises: the server's own words, with the status code to branch on."""

from __future__ import annotations

from typing import Any

import httpx


class D2LError(Exception):
    """Base of everything the client raises."""


class APIError(D2LError):
    """The server answered 4xx or 5xx; `str(error)` is its `detail` message."""

    def __init__(self, status_code: int, message: str, *, url: str = "") -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.url = url


class JobFailedError(D2LError):
    """`wait(raise_on_failure=True)` on a job that ended failed or cancelled."""

    def __init__(self, job: dict[str, Any]) -> None:
        reason = job.get("error") or "no reason given"
        super().__init__(f"job {job['id']} {job['status']}: {reason}")
        self.job = job


def detail_of(response: httpx.Response) -> str:
    """The server's message: FastAPI's `detail` (a string, or a list of validation errors)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # 422 from request validation: name each field
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(part) for part in item.get("loc", []) if part != "body")
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def raise_for_status(response: httpx.Response) -> None:
    if response.is_error:
        raise APIError(response.status_code, detail_of(response), url=str(response.request.url))


def unreachable(base_url: object, error: Exception) -> D2LError:
    """The server could not be reached at all (not a refusal: nothing answered)."""
    return D2LError(f"cannot reach the service at {base_url}: {error}")
