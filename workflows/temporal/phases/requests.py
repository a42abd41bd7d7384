"""Requests for Information: one request per data owner, reminded and escalated on timers until accepted."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.temporal import retry
from workflows.temporal.contracts import (
    PHASE_ORDER,
    REQUEST_FOR_INFORMATION,
    UPDATE_REQUEST_ADDED,
    UPDATE_REQUEST_REVIEWED,
    UPDATE_REQUEST_SUBMITTED,
    Ack,
    ActivityName,
    CreateRequestsInput,
    NotifyRequestInput,
    RequestAddedInput,
    RequestEventInput,
    RequestsCreated,
    RequestStatusInput,
    State,
    UpdateResult,
)
from workflows.temporal.phases.base import (
    ACCEPTED,
    OPEN,
    RETURNED,
    SUBMITTED,
    PhaseSteps,
    answers,
)


# How long a step for a request the workflow has as accepted waits for the workflow to reopen it.
REOPEN_WAIT = timedelta(minutes=5)
# A request the workflow learnt was accepted from the database (the requests were created, the data owner
# answered and the tester accepted before the workflow had the creating activity's result: a worker killed
# or stopped meanwhile) is already past every message stored before it: those are already applied, not
# waited on for 5 minutes and refused (issue 10, seen by bench/faults_live.py).
PATCH_REQUEST_READ_ACCEPTED = "request-read-accepted-is-applied"
# workflow.patched id: the phase also waits for requests added by a data owner reassignment (issue 7).
PATCH_REQUEST_ADDED = "rfi-request-added-v1"
# A request the workflow has not read while Request for Information is not reached yet in its run (a worker
# lost the workflow task whose local activities entered the phase and created the requests, committed: the
# person acts on them, the new worker's replay is behind the database until it runs them again) is waited
# for, as one arriving while the requests are being created; before, it was refused, after the person had
# been told their step was saved (seen once by the random-kill test).
PATCH_REQUEST_BEFORE_ENTRY = "request-before-entry-waits"


class RequestSteps(PhaseSteps):
    """Updates: request_submitted, request_reviewed, request_added. Timers per request: the reminders
    before and on the due date and the escalation after it, each cancelled by the answer.

    A request moved whole to another data owner is the same request: its emails read the data owner
    when they are sent, so the workflow needs no message. A request split by a reassignment (part of
    its attributes to another owner) adds a request: request_added starts chasing it, and the phase
    waits for it too.
    """

    _requests: dict[int, str]
    # Requests whose status was read from the database (the creating activity's result), not told by a
    # message; a class default so old workflows need no new field.
    _requests_read: frozenset[int] = frozenset()
    _added_chases: list
    _rfi_due: object

    async def _chase(self, request_id: int, due, round_suffix: str = "") -> None:
        """Remind and escalate on timers until the request is answered; repeat if it comes back.

        round_suffix keys the emails of a later round (a request reopened for more samples) apart
        from the first round's, which were already sent.
        """
        schedule = self._input.schedule
        timers = [(due - self._days(d), "reminder", f"-d{d}{round_suffix}")
                  for d in sorted(schedule.reminder_days_before, reverse=True) if d > 0]
        timers += [(due, "due", round_suffix),
                   (due + self._days(schedule.escalation_days_after), "escalation", round_suffix)]
        await self._activity(ActivityName.NOTIFY_REQUEST, NotifyRequestInput(request_id, "request", round_suffix),
                             Ack, retry.EMAIL)
        while self._requests[request_id] != ACCEPTED:
            answered = lambda: self._requests[request_id] in (SUBMITTED, ACCEPTED)  # noqa: E731
            for when, kind, suffix in timers:
                delay = when - workflow.now()
                if delay > timedelta(0):
                    try:
                        await workflow.wait_condition(answered, timeout=delay)
                    except asyncio.TimeoutError:
                        pass
                if answered():
                    break
                # Keyed by request, kind and day: a reminder already sent is not sent again.
                await self._activity(
                    ActivityName.NOTIFY_REQUEST, NotifyRequestInput(request_id, kind, suffix), Ack, retry.EMAIL
                )
            await workflow.wait_condition(answered)
            # Submitted: wait for the tester's review (accepted, or returned to the data owner).
            await workflow.wait_condition(lambda: self._requests[request_id] in (ACCEPTED, RETURNED))

    async def _request_for_information(self) -> None:
        schedule = self._input.schedule
        due = workflow.now() + self._days(schedule.due_days)
        created = await self._activity(
            ActivityName.CREATE_REQUESTS,
            CreateRequestsInput(cycle_report_id=self._input.cycle_report_id, due_date=due.date().isoformat()),
            RequestsCreated,
        )
        for ref in created.requests:
            self._requests.setdefault(ref.request_id, ref.status)
        self._requests_read = frozenset(ref.request_id for ref in created.requests)
        self._rfi_due = due
        self._states[REQUEST_FOR_INFORMATION] = State.AWAITING_EVIDENCE
        await asyncio.gather(*(self._chase(request_id, due) for request_id in list(self._requests)))
        if workflow.patched(PATCH_REQUEST_ADDED):
            # A request added while the others were chased is waited for too (its chase is a task of
            # the update's handler); the one it was split from was open then, so this runs first.
            await workflow.wait_condition(lambda: all(task.done() for task in self._added_chases))
            await asyncio.gather(*self._added_chases)

    @workflow.update(name=UPDATE_REQUEST_ADDED)

    @answers
    async def request_added(self, inp: RequestAddedInput) -> UpdateResult:
        # Created with the requests' creation still running: wait for it (validated below).
        await workflow.wait_condition(lambda: self._states.get(REQUEST_FOR_INFORMATION) != State.STARTING)
        if inp.request_id in self._requests:
            return UpdateResult(accepted=True, duplicate=True,
                                message="Already applied: the workflow chases the moved request.")
        if self._states.get(REQUEST_FOR_INFORMATION) != State.AWAITING_EVIDENCE:
            raise ApplicationError("Requests for Information is not running: no request can be added.",
                                   type="NotWaiting")
        self._requests[inp.request_id] = inp.status or OPEN
        self._added_chases.append(asyncio.ensure_future(self._chase(inp.request_id, self._rfi_due)))
        return UpdateResult(accepted=True, message="The moved request is chased like the others.")

    @request_added.validator
    def _validate_request_added(self, inp: RequestAddedInput) -> None:
        if inp.request_id in self._requests:
            return  # already applied: the handler says so
        if self._states.get(REQUEST_FOR_INFORMATION) not in (State.STARTING, State.AWAITING_EVIDENCE):
            raise ValueError("Requests for Information is not running: no request can be added.")

    async def _refresh_request(self, inp: RequestEventInput, expected: tuple[str, ...]) -> UpdateResult:
        """Messages stored before issue 10 carry no status: ask the database, as they did then."""
        status = await self._activity(
            ActivityName.REQUEST_STATUS, RequestStatusInput(request_id=inp.request_id), Ack
        )
        if status.detail not in expected:
            raise ApplicationError(f"The request is {status.detail}.", type="RequestNotReady")
        self._requests[inp.request_id] = status.detail
        return UpdateResult(accepted=True, message=f"The request is {status.detail}.")

    async def _request_event(self, inp: RequestEventInput, expected: tuple[str, ...]) -> UpdateResult:
        if not inp.status:
            return await self._refresh_request(inp, expected)
        # The requests may still be being created when the first answer arrives, or not yet in this run's view
        # (validated below). The wait ends when they are created even if this one is not among them (it would
        # never come).
        if workflow.patched(PATCH_REQUEST_BEFORE_ENTRY):
            await workflow.wait_condition(lambda: inp.request_id in self._requests or not self._requests_unread())
        else:
            await workflow.wait_condition(lambda: inp.request_id in self._requests
                                          or self._states.get(REQUEST_FOR_INFORMATION) != State.STARTING)
        if inp.request_id not in self._requests:
            raise ApplicationError("That request is not one this report's workflow is waiting for.",
                                   type="UnknownRequest")
        if (self._requests[inp.request_id] == ACCEPTED and inp.status != ACCEPTED
                and inp.request_id in self._requests_read and workflow.patched(PATCH_REQUEST_READ_ACCEPTED)):
            return UpdateResult(accepted=True, duplicate=True,
                                message="Already applied: the request was accepted when the workflow read it.")
        if self._requests[inp.request_id] == ACCEPTED and inp.status != ACCEPTED:
            # A request reopened by Test Execution's extension: the database has it open again before
            # the workflow has the reopening activity's result. Wait for it, a while.
            try:
                await workflow.wait_condition(lambda: self._requests[inp.request_id] != ACCEPTED,
                                              timeout=REOPEN_WAIT)
            except asyncio.TimeoutError:
                raise ApplicationError("The request is already accepted.", type="RequestAccepted") from None
        if self._requests[inp.request_id] == inp.status:
            return UpdateResult(accepted=True, duplicate=True,
                                message=f"Already applied: the request is {inp.status}.")
        # The message says what the database committed with it, in this workflow's order: take it.
        self._requests[inp.request_id] = inp.status
        self._requests_read = self._requests_read - {inp.request_id}
        return UpdateResult(accepted=True, message=f"The request is {inp.status}.")

    def _requests_unread(self) -> bool:
        """Whether this run may not have read requests the database has: they are being created, or Request for
        Information is not reached yet (neither entered, completed nor skipped, and within the run's phases)
        while a lost workflow task's local activities may have entered it and created them (see
        PATCH_REQUEST_BEFORE_ENTRY). A run that stops before the phase never reads any: nothing waits for it."""
        state = self._states.get(REQUEST_FOR_INFORMATION)
        if state == State.STARTING:
            return True
        return (state is None and REQUEST_FOR_INFORMATION not in self._completed
                and REQUEST_FOR_INFORMATION not in self._skipped
                and PHASE_ORDER.index(REQUEST_FOR_INFORMATION) <= PHASE_ORDER.index(self._input.last_phase))

    def _validate_request_event(self, inp: RequestEventInput, allowed: tuple[str, ...]) -> None:
        if inp.status not in allowed:
            raise ValueError(f"A request can't become {inp.status or 'nothing'} this way.")
        if inp.request_id not in self._requests:
            if self._requests_unread():
                return  # the requests are being created, or this run has not caught up: the handler waits
            raise ValueError("That request is not one this report's workflow is waiting for.")

    @workflow.update(name=UPDATE_REQUEST_SUBMITTED)

    @answers
    async def request_submitted(self, inp: RequestEventInput) -> UpdateResult:
        return await self._request_event(inp, (SUBMITTED,))

    @request_submitted.validator
    def _validate_request_submitted(self, inp: RequestEventInput) -> None:
        if inp.status:
            return self._validate_request_event(inp, (SUBMITTED,))
        if inp.request_id not in self._requests:
            raise ValueError("That request is not one this report's workflow is waiting for.")
        if self._requests[inp.request_id] not in (OPEN, RETURNED):
            raise ValueError(f"The request is already {self._requests[inp.request_id]}.")

    @workflow.update(name=UPDATE_REQUEST_REVIEWED)

    @answers
    async def request_reviewed(self, inp: RequestEventInput) -> UpdateResult:
        return await self._request_event(inp, (ACCEPTED, RETURNED))

    @request_reviewed.validator
    def _validate_request_reviewed(self, inp: RequestEventInput) -> None:
        if inp.status:
            return self._validate_request_event(inp, (ACCEPTED, RETURNED))
        if inp.request_id not in self._requests:
            raise ValueError("That request is not one this report's workflow is waiting for.")
        if self._requests[inp.request_id] != SUBMITTED:
            raise ValueError(f"The request is {self._requests[inp.request_id]}, not waiting for review.")
