"""Errors the query and service functions raise; the API turns each kind into one HTTP status."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors a client can act on; `str(error)` says what to fix."""

    status_code = 400

    def headers(self) -> dict[str, str]:
        """Response headers the answer needs (e.g. when to retry)."""
        return {}


class UnauthorizedError(ServiceError):
    status_code = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class NotFoundError(ServiceError):
    status_code = 404


class ConflictError(ServiceError):
    status_code = 409


class InvalidInputError(ServiceError):
    status_code = 422


class UnavailableError(ServiceError):
    status_code = 503


class TooManyRequestsError(ServiceError):
    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class TooLargeError(InvalidInputError):
    """More than one request may carry or expand to (413): the client must send less."""

    status_code = 413


class StorageQuotaError(ServiceError):
    """An owner's stored uploads and weights would pass their quota: free space first. A 413
    like every other size limit (not 507): it is the client's to fix, never a server fault."""

    status_code = 413
