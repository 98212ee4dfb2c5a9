"""Errors the query and service functions raise; the API turns each kind into one HTTP status."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors a client can act on; `str(error)` says what to fix."""

    status_code = 400


class NotFoundError(ServiceError):
    status_code = 404


class ConflictError(ServiceError):
    status_code = 409


class InvalidInputError(ServiceError):
    status_code = 422


class UnavailableError(ServiceError):
    status_code = 503
