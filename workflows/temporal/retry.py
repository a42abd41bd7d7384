"""Retry policies, one per kind of work (seed 001), for workflows to use.

Temporal's backoff is initial_interval * coefficient ** (attempt - 1). With three
attempts, a coefficient of 2 from 1 s waits 1 s then 2 s: the same two waits a
linear backoff gives, which is what the database policy asks for.
"""
from datetime import timedelta

from temporalio.common import RetryPolicy

# Errors that retrying can't fix; activities raise them as non-retryable too.
NON_RETRYABLE = ["ApplicationError", "PermissionDeniedError", "NotFoundError", "ConflictError",
                 "InvalidFileError", "PhaseLockedError", "LLMBadResponseError", "ImmutableVersionError"]

LLM = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=3.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=3,
    non_retryable_error_types=NON_RETRYABLE,
)

DATABASE = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
    non_retryable_error_types=NON_RETRYABLE,
)

EMAIL = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=1.0,
    maximum_attempts=3,
    non_retryable_error_types=NON_RETRYABLE,
)

POLICIES = {"llm": LLM, "database": DATABASE, "email": EMAIL}
