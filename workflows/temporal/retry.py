"""Retry policies, one per kind of work (seed 001), for workflows to use.

Temporal's backoff is initial_interval * coefficient ** (attempt - 1).

Database work is tried six times (1 s, 2 s, 4 s, 8 s, then 10 s apart: about 25 s):
its failures that retrying can fix are the database or the worker being away (a killed
worker's task times out and counts as an attempt), and the seed's three attempts let a
report's workflow fail on the third worker kill or a 4-second PostgreSQL outage (issue 10).
Past that the phase has failed beyond its retries and is compensated (issue 9). Domain
errors are non-retryable, so a real refusal still ends at once.
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
    maximum_attempts=6,  # about 25 s of outage: see the module docstring
    non_retryable_error_types=NON_RETRYABLE,
)

EMAIL = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=1.0,
    maximum_attempts=3,
    non_retryable_error_types=NON_RETRYABLE,
)

POLICIES = {"llm": LLM, "database": DATABASE, "email": EMAIL}

# Which policy each activity runs under, by activity name: the admin and the API show it beside the retry log.
KIND_OF_ACTIVITY = {
    "planning_draft_attributes": "llm",
    "data_owner_identification_notify": "email",
    "data_owner_sla_escalate": "email",
    "request_notify": "email",
}


def next_delay(policy: RetryPolicy | None, attempt: int, error: BaseException) -> float | None:
    """Seconds Temporal waits before retrying after `attempt` failed with `error`; None when it won't retry.

    The same arithmetic as the server's: initial * coefficient ** (attempt - 1), capped by
    maximum_interval (default 100 x initial), no retry past maximum_attempts or for a
    non-retryable error.
    """
    if getattr(error, "non_retryable", False):
        return None
    error_type = getattr(error, "type", None) or type(error).__name__
    if policy is None:
        policy = RetryPolicy()
    if error_type in (policy.non_retryable_error_types or ()):
        return None
    if policy.maximum_attempts and attempt >= policy.maximum_attempts:
        return None
    initial = policy.initial_interval.total_seconds()
    delay = initial * policy.backoff_coefficient ** (attempt - 1)
    cap = policy.maximum_interval.total_seconds() if policy.maximum_interval else initial * 100
    return min(delay, cap)


def policy_of(activity_type: str, given: RetryPolicy | None = None) -> RetryPolicy:
    """The policy an activity runs under: the one the server handed over, else its kind's.

    Some servers (the time-skipping test server) hand over no policy or one without a limit.
    """
    if given is not None and given.maximum_attempts:
        return given
    return POLICIES[KIND_OF_ACTIVITY.get(activity_type, "database")]
