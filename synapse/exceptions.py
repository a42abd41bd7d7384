"""The one application error type.

Services raise it (or a subclass) for anything the caller did wrong or that
the current state forbids; the API handler turns it into one error shape, page
views into a message, activities into a non-retryable Temporal failure.
"""


class ApplicationError(Exception):
    """A domain error with a message meant for the person who caused it."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra or {}


class PermissionDeniedError(ApplicationError):
    status_code = 403
    code = "permission_denied"


class NotFoundError(ApplicationError):
    status_code = 404
    code = "not_found"


class ConflictError(ApplicationError):
    """The request is valid but the object's state does not allow it now."""

    status_code = 409
    code = "conflict"


class ServiceUnavailableError(ApplicationError):
    status_code = 503
    code = "service_unavailable"
