"""Finalize Test Report: generate the report, three sign-offs in order, send-backs, the sealed package."""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.temporal import retry
from workflows.temporal.contracts import (
    FINALIZE,
    PHASE_ORDER,
    SEND_BACK_TARGETS,
    SIGN_OFF_ORDER,
    SIGN_OFF_STATES,
    UPDATE_SIGN_OFF,
    Ack,
    ActivityName,
    BuildPackageInput,
    FinalReportRef,
    GenerateReportInput,
    PackageRef,
    RecordSignOffInput,
    ReopenPhaseInput,
    SignOffInput,
    SignOffRef,
    State,
    UpdateResult,
)
from workflows.temporal.phases.base import PhaseSteps, answers, cause

ROLE_LABELS = {"test_manager": "test manager", "report_owner": "report owner", "data_executive": "data executive"}
# Building the package reads every evidence file; it reports progress by heartbeats.
PACKAGE_HEARTBEAT = timedelta(minutes=2)
PACKAGE_TIMEOUT = timedelta(hours=2)


class FinalizeSteps(PhaseSteps):
    """Update: sign_off (sign in one's role, in order, or send back naming what to reopen)."""

    _generation: int
    _final_report_id: int | None
    _signatures: dict[str, int]
    _send_back: tuple[str, int] | None
    _package_id: int | None
    _completed: list[str]

    async def _finalize(self) -> None:
        while True:
            self._states[FINALIZE] = State.STARTING
            self._generation += 1
            ref = await self._activity(
                ActivityName.GENERATE_FINAL_REPORT,
                GenerateReportInput(cycle_report_id=self._input.cycle_report_id, generation=self._generation),
                FinalReportRef,
            )
            self._final_report_id = ref.final_report_id
            self._signatures = {}
            self._send_back = None
            self._states[FINALIZE] = SIGN_OFF_STATES[SIGN_OFF_ORDER[0]]
            await workflow.wait_condition(
                lambda: len(self._signatures) == len(SIGN_OFF_ORDER) or self._send_back is not None
            )
            if self._send_back is None:
                break
            target, sign_off_id = self._send_back
            if target != FINALIZE:
                await self._reopen_from(target, sign_off_id)
        self._states[FINALIZE] = State.PACKAGING
        package = await workflow.execute_activity(
            ActivityName.BUILD_PACKAGE,
            BuildPackageInput(final_report_id=self._final_report_id),
            result_type=PackageRef,
            start_to_close_timeout=max(PACKAGE_TIMEOUT, timedelta(seconds=self._input.activity_timeout_seconds)),
            heartbeat_timeout=PACKAGE_HEARTBEAT,
            retry_policy=retry.DATABASE,
        )
        self._package_id = package.package_id

    async def _reopen_from(self, target: str, sign_off_id: int) -> None:
        """Run `target` and every phase after it up to Finalize again, then enter Finalize again."""
        phases = [
            p for p in PHASE_ORDER[PHASE_ORDER.index(target):PHASE_ORDER.index(FINALIZE)]
            if p not in self._input.skip_phases
        ]
        for phase in phases:
            await self._activity(
                ActivityName.REOPEN_PHASE,
                ReopenPhaseInput(cycle_report_id=self._input.cycle_report_id, phase=phase, sign_off_id=sign_off_id),
                Ack,
            )
            self._phase = phase
            self._approved.discard(phase)
            if phase in self._completed:
                self._completed.remove(phase)
            self._states.pop(FINALIZE, None)
            self._states[phase] = State.STARTING
            await self._runners[phase]()
            await self._complete(phase)
        await self._enter(FINALIZE)

    # Decision ids of the sign-offs and send-backs this workflow applied (a redelivery is answered as such).
    _signed_decisions: set[str]

    def _sign_off_applied(self, inp: SignOffInput) -> UpdateResult | None:
        """The answer to a sign-off that was already applied (a redelivery after a crash), else None."""
        label = ROLE_LABELS.get(inp.role, inp.role)
        if inp.decision_id in self._signed_decisions:
            what = "signed" if inp.sign else f"sent back to {inp.send_back_to}"
            return UpdateResult(accepted=True, duplicate=True, message=f"Already applied: the {label} {what}.")
        return None

    def _sign_off_moved_on(self, inp: SignOffInput) -> bool:
        return inp.role in self._signatures or self._states.get(FINALIZE) not in (
            State.STARTING, SIGN_OFF_STATES[inp.role])

    @workflow.update(name=UPDATE_SIGN_OFF)

    @answers
    async def sign_off(self, inp: SignOffInput) -> UpdateResult:
        applied = self._sign_off_applied(inp)
        if applied:
            return applied
        if not await self._claim(FINALIZE, SIGN_OFF_STATES[inp.role], lambda: self._sign_off_moved_on(inp)):
            # Finalize moved on while this update waited (another sign-off, a send-back, the package).
            applied = self._sign_off_applied(inp)
            if applied:
                return applied
            if inp.sign and inp.role in self._signatures:
                raise ApplicationError(f"The {ROLE_LABELS[inp.role]} has already signed this report.",
                                       type="NotWaiting")
            state = self._states.get(FINALIZE, "done")
            raise ApplicationError(f"The report is not waiting for the {ROLE_LABELS[inp.role]}'s sign-off now "
                                   f"(it is {state}).", type="NotWaiting")
        try:
            result = await self._record_sign_off(inp)
            self._signed_decisions.add(inp.decision_id)
            return result
        finally:
            self._claimed.discard(FINALIZE)

    async def _record_sign_off(self, inp: SignOffInput) -> UpdateResult:
        waiting = self._states[FINALIZE]
        self._states[FINALIZE] = State.DECIDING
        try:
            ref = await self._activity(
                ActivityName.RECORD_SIGN_OFF,
                RecordSignOffInput(
                    decision_id=inp.decision_id, final_report_id=self._final_report_id, role=inp.role,
                    user_id=inp.user_id, sign=inp.sign, send_back_to=inp.send_back_to, notes=inp.notes,
                ),
                SignOffRef,
            )
        except ActivityError as err:
            self._states[FINALIZE] = waiting
            raise ApplicationError(cause(err), type="SignOffRefused") from err
        label = ROLE_LABELS[inp.role]
        if not inp.sign:
            self._send_back = (inp.send_back_to, ref.sign_off_id)
            self._states[FINALIZE] = State.STARTING
            return UpdateResult(accepted=True, message=f"Sent back by the {label}: {inp.send_back_to} reopens.")
        self._signatures[inp.role] = ref.sign_off_id
        if len(self._signatures) < len(SIGN_OFF_ORDER):
            following = SIGN_OFF_ORDER[len(self._signatures)]
            self._states[FINALIZE] = SIGN_OFF_STATES[following]
            return UpdateResult(accepted=True, message=f"Signed by the {label}; the {ROLE_LABELS[following]} "
                                                       "signs next.")
        self._states[FINALIZE] = State.PACKAGING
        return UpdateResult(accepted=True, message=f"Signed by the {label}: the report is signed off and sealed.")

    @sign_off.validator
    def _validate_sign_off(self, inp: SignOffInput) -> None:
        if inp.role not in SIGN_OFF_ORDER:
            raise ValueError(f"{inp.role!r} is not a signing role.")
        if self._sign_off_applied(inp):
            return  # already applied: the handler says so
        state = self._states.get(FINALIZE)
        if state is None:
            raise ValueError("The report is not waiting for sign-off.")
        if state == State.STARTING:
            # The report is being generated: only the first signature can be next.
            expected = SIGN_OFF_ORDER[0]
        elif state in SIGN_OFF_STATES.values():
            expected = SIGN_OFF_ORDER[len(self._signatures)]
        else:
            raise ValueError(f"The report is not waiting for sign-off (it is {state}).")
        if inp.role != expected:
            done = SIGN_OFF_ORDER.index(inp.role) < SIGN_OFF_ORDER.index(expected)
            if done:
                raise ValueError(f"The {ROLE_LABELS[inp.role]} has already signed this report.")
            raise ValueError(
                f"The {ROLE_LABELS[inp.role]} signs after the {ROLE_LABELS[expected]}: "
                f"waiting for the {ROLE_LABELS[expected]}'s sign-off."
            )
        if not inp.sign:
            if inp.send_back_to not in SEND_BACK_TARGETS:
                raise ValueError(f"A send-back names what it reopens: one of {', '.join(SEND_BACK_TARGETS)}.")
            if inp.send_back_to in self._input.skip_phases:
                raise ValueError(f"{inp.send_back_to} was skipped in this cycle; it can't reopen.")
            if not inp.notes.strip():
                raise ValueError("Say what needs to change: notes are required when sending the report back.")
