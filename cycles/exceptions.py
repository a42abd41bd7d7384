"""Errors of the cycles domain (all are synapse.exceptions.ApplicationError)."""
from synapse.exceptions import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError

__all__ = [
    "ApplicationError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "InvalidFileError",
    "PhaseLockedError",
]


class InvalidFileError(ApplicationError):
    """An uploaded file that can't be used; nothing was stored."""

    code = "invalid_file"


class PhaseLockedError(ConflictError):
    """The phase's working data can't change now (not the current phase, or under review)."""

    code = "phase_locked"
