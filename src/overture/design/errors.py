"""What the design service refuses, and why. The HTTP layer turns each into an RFC 9457
problem; the CLI prints it."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(ServiceError):
    status = 404
    title = "Not found"


class Conflict(ServiceError):
    """The request is valid but the state does not allow it (exists, stale, wrong status)."""

    status = 409
    title = "Conflict"


class Stale(Conflict):
    """An update based on an old version: `current_version` tells the version to re-read."""

    title = "Stale version"


class Invalid(ServiceError):
    """The change would make the catalog invalid: `errors` lists every problem, each with
    where it is and a hint, as `overture validate` reports them."""

    status = 422
    title = "Invalid catalog"


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class PreconditionRequired(ServiceError):
    status = 428
    title = "Precondition required"


class Unprocessable(ServiceError):
    """A well-formed request that cannot run as asked (an unknown placement, no profiles)."""

    status = 422
    title = "Cannot run"
