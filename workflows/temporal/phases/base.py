"""What every phase's steps share: the workflow's state, activities, and claims on a phase."""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, is_cancelled_exception

from workflows.temporal import retry
from workflows.temporal.contracts import TEST_EXECUTION, ActivityName, ReportWorkflowInput

OPEN, SUBMITTED, RETURNED, ACCEPTED = "open", "submitted", "returned", "accepted"
# An update that finds its phase owned by another waits for it instead of being refused as busy.
PATCH_CLAIM_WAITS = "claim-waits-for-release"
# Short database writes run as local activities (issue 11): see LOCAL_ACTIVITIES.
PATCH_LOCAL_ACTIVITIES = "local-database-activities"
# A workflow cancelled (its report removed from the cycle, the cycle cancelled) while an activity of a phase ran
# sees that activity cancelled: since this patch that is the cancellation reaching the workflow, which ends it;
# before, the phase took it for the activity failing (compensated, then waited for an admin's retry for ever).
PATCH_CANCEL_NOT_FAILURE = "activity-cancel-is-not-a-failure"
# Since this patch, entering a phase and opening the requests run locally too: see LOCAL_SINCE_ENTRY.
PATCH_LOCAL_ENTRY = "local-phase-entry"
# Since this patch, an update's answer is not held by the local activities that follow it: see _answer_waits.
PATCH_ANSWER_FIRST = "answer-before-local-activities"
# Since this patch, freezing a version (but Test Execution's), checking the data owners, proposing a sample
# extension and drafting the observations run as local activities too: see LOCAL_SINCE_VERSIONS.
PATCH_LOCAL_VERSIONS = "local-versions"

# Timeouts sized to the work (issue 10), so a task given to a worker that died is retried within
# seconds, not after the 300 s every activity had: database writes take milliseconds; email gets
# an SMTP server's patience; long work (LLM calls, profiling, freezing a version, sampling)
# heartbeats every few seconds (activities.heartbeating) and is retried when the beat stops.
DATABASE_TIMEOUT = timedelta(seconds=10)
EMAIL_TIMEOUT = timedelta(seconds=15)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
LONG_WORK = {
    ActivityName.DRAFT_ATTRIBUTES,
    ActivityName.PROFILE_POPULATION,
    ActivityName.RECOMMEND_SCOPE,
    ActivityName.CREATE_VERSION,
    ActivityName.PREPARE_SAMPLING,
    ActivityName.PREPARE_TEST_MATRIX,
}


# Short, database-only, idempotent steps (a phase completed, a status set, a decision or signature recorded):
# since PATCH_LOCAL_ACTIVITIES they run as local activities, in the worker that runs the workflow task and
# within it, recorded in the history by a marker: no task queue round trip and no workflow task of their own
# each (a third of a report's activities). Same retry policy and timeout; tracked like any activity (the worker's
# interceptor sees local activities too). Long or outside work (LLM, profiling, Test Execution's version, email,
# sampling, the test matrix, the report and its package) stays ordinary: a local activity holds the workflow task.
# Only the first attempt is local: after a failure the others go through the server (see _activity).
LOCAL_ACTIVITIES = {
    ActivityName.COMPLETE_PHASE,
    ActivityName.SET_REPORT_STATUS,
    ActivityName.FINISH_REPORT,
    ActivityName.RECORD_DECISION,
    ActivityName.RECORD_SIGN_OFF,
    ActivityName.OPEN_OBSERVATIONS,
    ActivityName.REOPEN_PHASE,
}
# Local since PATCH_LOCAL_ENTRY: entering a phase (nine a report; an admin's reset finds the point to go back to
# by its marker as by an ordinary activity's scheduled event, see workflows.operations) and opening the requests
# (a few rows, idempotent).
LOCAL_SINCE_ENTRY = {
    ActivityName.ENTER_PHASE,
    ActivityName.CREATE_REQUESTS,
}


# Local since PATCH_LOCAL_VERSIONS: the steps an update's handler runs before it answers (the update waits for
# them anyway: run locally, its answer waits for no task queue round trip and no workflow task of their own) and
# that stay short at any size: a phase's version (six a report, in the tester's submissions), the data owners'
# check (a count, in the data executive's completion), the sample extension's proposal (in Test Execution's
# submission); and the observations' draft. While one runs, the report's other updates wait for the workflow
# task (its RECORD_DECISION has done so since PATCH_LOCAL_ACTIVITIES). A version's items are the phase's rows,
# bounded by the report's attributes or samples (hundreds): measured at 300 attributes, see docs/developers.md.
# Test Execution's are every cell of the matrix (attributes × samples, tens of thousands): its version stays
# ordinary, with its heartbeat.
LOCAL_SINCE_VERSIONS = {
    ActivityName.CREATE_VERSION,
    ActivityName.CHECK_DATA_OWNERS,
    ActivityName.PROPOSE_SAMPLE_EXTENSION,
    ActivityName.DRAFT_OBSERVATIONS,
}


def _runs_locally(name: str, arg) -> bool:
    """Whether this run takes `name` (with `arg`) as a local activity (each patch asked only where it applies,
    so a history recorded before it replays as it ran)."""
    if name in LOCAL_ACTIVITIES:
        return workflow.patched(PATCH_LOCAL_ACTIVITIES)
    if name in LOCAL_SINCE_ENTRY:
        return workflow.patched(PATCH_LOCAL_ENTRY)
    if name in LOCAL_SINCE_VERSIONS and not (name == ActivityName.CREATE_VERSION and arg.phase == TEST_EXECUTION):
        return workflow.patched(PATCH_LOCAL_VERSIONS)
    return False


def activity_timeouts(name: str, policy: RetryPolicy, long_timeout_seconds: int) -> dict:
    """start_to_close (and heartbeat) timeouts for an activity, by the kind of work it does."""
    if name in LONG_WORK:
        return {"start_to_close_timeout": timedelta(seconds=long_timeout_seconds),
                "heartbeat_timeout": HEARTBEAT_TIMEOUT}
    if policy is retry.EMAIL:
        return {"start_to_close_timeout": EMAIL_TIMEOUT}
    return {"start_to_close_timeout": DATABASE_TIMEOUT}


def cancelled(err: ActivityError) -> bool:
    """Whether an activity's error is the workflow's own cancellation (to re-raise), not the activity failing."""
    return is_cancelled_exception(err) and workflow.patched(PATCH_CANCEL_NOT_FAILURE)


def cause(err: BaseException) -> str:
    """The message a person should see from an activity failure."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return getattr(err, "message", None) or str(err)


def answers(handler):
    """An update handler of the report's workflow: notes the workflow task in which it answered (_answer_waits)."""

    @functools.wraps(handler)
    async def answered(self, *args):
        try:
            return await handler(self, *args)
        finally:
            self._answered_in = workflow.info().get_current_history_length()

    answered.notes_its_answer = True  # workflows/tests/test_report_workflow.py checks every handler has it
    return answered


class PhaseSteps:
    """The state a report's workflow keeps, as every phase mixin sees it.

    ReportTestWorkflow.__init__ sets these; the annotations are here so each
    phase module reads on its own.
    """

    _input: ReportWorkflowInput
    _phase: str
    _states: dict[str, str]
    _versions: dict[str, int]
    _errors: dict[str, str]
    _approved: set[str]
    _claimed: set[str]
    _completed: list[str]
    _skipped: list[str]
    # Phases whose entering activity runs: the database shows them open, the workflow is not there yet.
    # Steps whose phase is being entered are taken and wait for it (register_population, the data
    # owners' completion) instead of being refused as early.
    _entering: set[str]
    # The history length of the workflow task in which an update handler last answered (see `answers`).
    _answered_in: int = -1

    def _answer_waits(self) -> bool:
        """Whether an update answered in this workflow task would wait for a local activity started now.

        An update's acceptance and its answer reach the server when the workflow task completes, and a
        workflow task with local activities running completes only once they (and those that follow them)
        have run. An approval's answer waited so for the phase's completion and the next one's entry: under
        load, past the person's TEMPORAL_DECISION_TIMEOUT, so that their step was answered "saved" and left to
        the outbox (a third of the approvals over twenty reports). Since PATCH_ANSWER_FIRST, the first activity
        after an answer runs as an ordinary one: scheduling it ends the task, and the answer goes out with it.
        """
        return (self._answered_in == workflow.info().get_current_history_length()
                and workflow.patched(PATCH_ANSWER_FIRST))

    async def _activity(self, name: str, arg, result_type, policy: RetryPolicy = retry.DATABASE):
        timeouts = activity_timeouts(name, policy, self._input.activity_timeout_seconds)
        if _runs_locally(name, arg) and not self._answer_waits():
            # A local activity has no heartbeat: a worker lost while it runs is noticed by its workflow task's
            # timeout (the SDK keeps the task open meanwhile), and the task is run again elsewhere.
            local = {key: value for key, value in timeouts.items() if key != "heartbeat_timeout"}
            # One local attempt. If it fails, the policy's other attempts run as an ordinary activity: a
            # database outage is retried with the server's backoff and never holds the workflow task, and a
            # refusal (non-retryable) fails there again as the ActivityError callers handle (a failed local
            # activity surfaces as its bare cause); the activity is idempotent, so trying it again is safe.
            try:
                return await workflow.execute_local_activity(
                    name, arg, result_type=result_type, retry_policy=dataclasses.replace(policy, maximum_attempts=1),
                    **local)
            except FailureError as err:
                if is_cancelled_exception(err):
                    raise
            if policy.maximum_attempts:
                policy = dataclasses.replace(policy, maximum_attempts=max(1, policy.maximum_attempts - 1))
        return await workflow.execute_activity(name, arg, result_type=result_type, retry_policy=policy, **timeouts)

    def _days(self, days: float) -> timedelta:
        return timedelta(days=days)

    async def _claim(self, phase: str, ready: str, moved_on: Callable[[], bool] | None = None) -> bool:
        """Wait until `phase` is in state `ready`, then own it until released (one submission at a time).

        An update can arrive in the same workflow task as the activity that makes the
        phase ready (the validator then sees it still starting); it waits here instead
        of being refused. While another update owns the phase, this one waits for it to
        finish (since PATCH_CLAIM_WAITS; before, it was refused as busy, although the other
        one was often this very step delivered again). The wait ends when `moved_on()` says
        the phase went past `ready` without this update (another one did the step, or the
        phase ended): then nothing is claimed and False is returned, and the caller
        answers "already applied" if the effect is there, or refuses. Without it the
        update could wait forever and its decision stay pending (issue 10).
        """
        gone = moved_on or (lambda: False)
        while True:
            await workflow.wait_condition(
                lambda: self._states.get(phase) == ready or phase in self._claimed or gone()
            )
            if phase not in self._claimed:
                break
            if not workflow.patched(PATCH_CLAIM_WAITS):
                raise ApplicationError(f"Another request for {phase} is being handled; try again.", type="Busy")
            await workflow.wait_condition(lambda: phase not in self._claimed)
        if self._states.get(phase) != ready:
            return False
        self._claimed.add(phase)
        return True
