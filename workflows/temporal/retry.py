"""Retry policies, one per kind of work (seed 001), for workflows to use.

Temporal's backoff is initial_interval * coefficient ** (attempt - 1).

Database work is retried until it succeeds (1 s, 2 s, 4 s, … then every 10 s): its
failures that retrying can fix are the database or the worker being away (a killed
worker's task times out and counts as an attempt), and three attempts let a
report's workflow fail on the third worker kill or a 4-second PostgreSQL outage
(issue 10). Domain errors are non-retryable, so a real refusal still ends at once.
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
    maximum_attempts=0,  # unlimited: see the module docstring
    non_retryable_error_types=NON_RETRYABLE,
)

EMAIL = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=1.0,
    maximum_attempts=3,
    non_retryable_error_types=NON_RETRYABLE,
)

POLICIES = {"llm": LLM, "database": DATABASE, "email": EMAIL}
