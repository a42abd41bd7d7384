"""Data Profiling: the tester uploads the population file, the workflow profiles it, the owner approves.

Since the patch "profiling-review", profiling a file no longer completes the
phase: the tester maps columns, resolves key problems and edits rules, may
upload replacements (profiled in turn), and submits a Data Profiling version
the report owner approves. A replacement is also taken while Scoping waits
for its submission. Workflows started before the patch keep the old path:
the first profiled file completes the phase.
"""
from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.temporal.contracts import (
    DATA_PROFILING,
    PHASE_LABELS,
    SCOPING,
    UPDATE_REGISTER_POPULATION,
    ActivityName,
    ProfilePopulationInput,
    ProfileSummary,
    RegisterPopulationInput,
    State,
    UpdateResult,
)
from workflows.temporal.phases.base import answers, cause
from workflows.temporal.phases.reviews import ReviewSteps

PATCH_PROFILING_REVIEW = "profiling-review"


class DataProfilingSteps(ReviewSteps):
    """Update: register_population (and, since profiling-review, the Data Profiling version's review)."""

    _profiled: bool
    # Set when the workflow takes the reviewed path; a class default so old workflows need no new field.
    _profiling_reviewed: bool = False

    async def _data_profiling(self) -> None:
        self._states[DATA_PROFILING] = State.AWAITING_UPLOAD
        if workflow.patched(PATCH_PROFILING_REVIEW):
            self._profiling_reviewed = True
            await workflow.wait_condition(lambda: self._profiled)
            await self._review(DATA_PROFILING)
        else:
            await workflow.wait_condition(lambda: self._profiled)

    def _population_phase(self) -> str:
        """The phase a population file is registered in now (Scoping takes a replacement)."""
        return DATA_PROFILING if DATA_PROFILING in self._states else SCOPING

    # Population files profiled or being profiled: a redelivery is answered as already applied.
    _registered_files: set[int]

    @workflow.update(name=UPDATE_REGISTER_POPULATION)

    @answers
    async def register_population(self, inp: RegisterPopulationInput) -> UpdateResult:
        if DATA_PROFILING in self._entering:
            # Taken while Data Profiling was being entered: wait for it to open, then check again.
            await workflow.wait_condition(lambda: DATA_PROFILING not in self._entering)
            if inp.population_file_id not in self._registered_files:
                try:
                    self._validate_population(inp)
                except ValueError as err:
                    raise ApplicationError(str(err), type="NotWaiting") from err
        if inp.population_file_id in self._registered_files:
            return UpdateResult(accepted=True, duplicate=True,
                                message="Already applied: this population file is profiled or being profiled.")
        self._registered_files.add(inp.population_file_id)
        phase = self._population_phase()
        resume = self._states[phase]
        self._states[phase] = State.PROFILING
        try:
            summary = await self._activity(
                ActivityName.PROFILE_POPULATION,
                ProfilePopulationInput(population_file_id=inp.population_file_id),
                ProfileSummary,
            )
        except ActivityError as err:
            self._registered_files.discard(inp.population_file_id)
            self._states[phase] = resume
            self._errors[phase] = cause(err)
            raise ApplicationError(self._errors[phase], type="ProfilingFailed") from err
        self._profiled = True
        self._errors.pop(phase, None)
        if self._profiling_reviewed:
            self._states[phase] = State.AWAITING_SUBMISSION
        else:
            self._states[DATA_PROFILING] = State.COMPLETED
        return UpdateResult(
            accepted=True,
            message=f"Profiled {summary.row_count:,} rows × {summary.column_count} columns "
            f"in {summary.seconds:.1f} s.",
        )

    @register_population.validator
    def _validate_population(self, inp: RegisterPopulationInput) -> None:
        if inp.population_file_id in self._registered_files:
            return  # already applied: the handler says so
        if DATA_PROFILING in self._entering:
            return  # the database shows the phase open: the handler waits for the workflow to get there
        if self._profiling_reviewed:
            phase = self._population_phase()
            state = self._states.get(phase)
            if state == State.PROFILING:
                raise ValueError("Another population file is being profiled; upload this one when it is done.")
            if phase == DATA_PROFILING and state in (State.AWAITING_UPLOAD, State.AWAITING_SUBMISSION):
                return
            if phase == SCOPING and state == State.AWAITING_SUBMISSION:
                return
            if phase in self._states:
                raise ValueError(
                    f"{PHASE_LABELS[phase]} has a version submitted or approved; the population file can't change now."
                )
            where = PHASE_LABELS.get(self._phase, "no phase yet")
            raise ValueError(
                f"The report is in {where}: a population file can be replaced only until Scoping is approved."
            )
        if DATA_PROFILING not in self._states:
            where = PHASE_LABELS.get(self._phase, "no phase yet")
            raise ValueError(f"The report is in {where}, not Data Profiling.")
        if self._states[DATA_PROFILING] != State.AWAITING_UPLOAD:
            raise ValueError("A population file is already being profiled or Data Profiling is done.")
