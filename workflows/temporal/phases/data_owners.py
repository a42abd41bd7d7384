"""Data Owner Identification: the LOB's data executive assigns a data owner to each in-scope attribute."""
from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.temporal import retry
from workflows.temporal.contracts import (
    DATA_OWNER_IDENTIFICATION,
    UPDATE_COMPLETE_DATA_OWNERS,
    Ack,
    ActivityName,
    CompleteDataOwnersInput,
    DataOwnersCheck,
    PhaseInput,
    State,
    UpdateResult,
)
from workflows.temporal.phases.base import PhaseSteps, answers


class DataOwnerSteps(PhaseSteps):
    """Update: complete_data_owner_identification. Timer: the data owner SLA (escalation)."""

    _owners_complete: bool

    async def _data_owner_identification(self) -> None:
        phase_input = PhaseInput(cycle_report_id=self._input.cycle_report_id, phase=DATA_OWNER_IDENTIFICATION)
        await self._activity(ActivityName.NOTIFY_DATA_EXECUTIVE, phase_input, Ack, retry.EMAIL)
        self._states[DATA_OWNER_IDENTIFICATION] = State.AWAITING_ASSIGNMENT
        # The cycle's per-phase SLA wins over the general data owner SLA.
        configured = self._input.phase_settings.get(DATA_OWNER_IDENTIFICATION)
        sla_days = configured.sla_days if configured and configured.sla_days else self._input.schedule.data_owner_sla_days
        try:
            await workflow.wait_condition(lambda: self._owners_complete, timeout=self._days(sla_days))
        except asyncio.TimeoutError:
            await self._activity(ActivityName.ESCALATE_DATA_OWNERS, phase_input, Ack, retry.EMAIL)
            await workflow.wait_condition(lambda: self._owners_complete)

    @workflow.update(name=UPDATE_COMPLETE_DATA_OWNERS)

    @answers
    async def complete_data_owner_identification(self, inp: CompleteDataOwnersInput) -> UpdateResult:
        if self._owners_complete:
            return UpdateResult(accepted=True, duplicate=True,
                                message="Already applied: every in-scope attribute has a data owner.")
        if not await self._claim(DATA_OWNER_IDENTIFICATION, State.AWAITING_ASSIGNMENT, self._owners_moved_on):
            # The phase moved on while this update waited (another one completed it, or it ended).
            if self._owners_complete:
                return UpdateResult(accepted=True, duplicate=True,
                                    message="Already applied: every in-scope attribute has a data owner.")
            raise ApplicationError("Data owner identification is not waiting for assignments now.",
                                   type="NotWaiting")
        try:
            return await self._complete_data_owners()
        finally:
            self._claimed.discard(DATA_OWNER_IDENTIFICATION)

    def _owners_moved_on(self) -> bool:
        return self._owners_complete or (
            DATA_OWNER_IDENTIFICATION not in self._entering
            and self._states.get(DATA_OWNER_IDENTIFICATION) not in (State.STARTING, State.AWAITING_ASSIGNMENT))

    async def _complete_data_owners(self) -> UpdateResult:
        check = await self._activity(
            ActivityName.CHECK_DATA_OWNERS,
            PhaseInput(cycle_report_id=self._input.cycle_report_id, phase=DATA_OWNER_IDENTIFICATION),
            DataOwnersCheck,
        )
        if not check.complete:
            raise ApplicationError(
                f"Assign a data owner to every in-scope attribute first: {', '.join(check.missing)}.",
                type="DataOwnersMissing",
            )
        self._owners_complete = True
        self._states[DATA_OWNER_IDENTIFICATION] = State.COMPLETED
        return UpdateResult(accepted=True, message="Every in-scope attribute has a data owner.")

    @complete_data_owner_identification.validator
    def _validate_owners(self, inp: CompleteDataOwnersInput) -> None:
        if self._owners_complete:
            return  # already applied: the handler says so
        if DATA_OWNER_IDENTIFICATION in self._entering:
            return  # the database shows the phase open: the handler waits for the workflow to get there
        if self._states.get(DATA_OWNER_IDENTIFICATION) not in (State.STARTING, State.AWAITING_ASSIGNMENT):
            raise ValueError("Data owner identification is not waiting for assignments.")
