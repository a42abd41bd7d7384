"""Data Profiling: the tester uploads the population file and the workflow profiles it."""
from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.temporal.contracts import (
    DATA_PROFILING,
    UPDATE_REGISTER_POPULATION,
    ActivityName,
    ProfilePopulationInput,
    ProfileSummary,
    RegisterPopulationInput,
    State,
    UpdateResult,
)
from workflows.temporal.phases.base import PhaseSteps, cause


class DataProfilingSteps(PhaseSteps):
    """Update: register_population."""

    _profiled: bool

    async def _data_profiling(self) -> None:
        self._states[DATA_PROFILING] = State.AWAITING_UPLOAD
        await workflow.wait_condition(lambda: self._profiled)

    @workflow.update(name=UPDATE_REGISTER_POPULATION)
    async def register_population(self, inp: RegisterPopulationInput) -> UpdateResult:
        self._states[DATA_PROFILING] = State.PROFILING
        try:
            summary = await self._activity(
                ActivityName.PROFILE_POPULATION,
                ProfilePopulationInput(population_file_id=inp.population_file_id),
                ProfileSummary,
            )
        except ActivityError as err:
            self._states[DATA_PROFILING] = State.AWAITING_UPLOAD
            self._errors[DATA_PROFILING] = cause(err)
            raise ApplicationError(self._errors[DATA_PROFILING], type="ProfilingFailed") from err
        self._profiled = True
        self._errors.pop(DATA_PROFILING, None)
        self._states[DATA_PROFILING] = State.COMPLETED
        return UpdateResult(
            accepted=True,
            message=f"Profiled {summary.row_count:,} rows × {summary.column_count} columns "
            f"in {summary.seconds:.1f} s.",
        )

    @register_population.validator
    def _validate_population(self, inp: RegisterPopulationInput) -> None:
        if DATA_PROFILING not in self._states:
            raise ValueError(f"The report is in {self._phase or 'no phase yet'}, not data profiling.")
        if self._states[DATA_PROFILING] != State.AWAITING_UPLOAD:
            raise ValueError("A population file is already being profiled or the phase is done.")
