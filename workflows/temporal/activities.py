"""Activities: the only bridge from workflows to the database.

Each is a sync function run on the worker's thread pool (the tracking
interceptor closes stale connections around it). Each loads by id, calls one
service, and returns a small dataclass. Each is idempotent: a retry writes
nothing twice (versions and decisions are keyed by the decision id, phase moves
and finishes are no-ops when already done, profiles replace their rows).
A domain error becomes a non-retryable ApplicationError: retrying can't fix it.
"""
from __future__ import annotations

import contextvars
import functools
import threading
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from temporalio import activity
from temporalio.exceptions import ApplicationError as TemporalApplicationError

from synapse.exceptions import ApplicationError
from workflows.temporal.contracts import (
    COMPENSATE_PHASE_ACTIVITY,
    SCHEDULED_CYCLE_START_ACTIVITY,
    Ack,
    ActivityName,
    BuildPackageInput,
    DraftObservationsResult,
    FinalReportRef,
    GenerateReportInput,
    PackageRef,
    RecordSignOffInput,
    ReopenPhaseInput,
    SignOffRef,
    CompensateInput,
    CompensationResult,
    CreateRequestsInput,
    CreateVersionInput,
    DataOwnersCheck,
    DraftAttributesInput,
    DraftAttributesResult,
    EnterPhaseInput,
    FinishReportInput,
    NotifyRequestInput,
    PhaseInput,
    PhaseTransitionResult,
    ProfilePopulationInput,
    ProfileSummary,
    RecommendScopeInput,
    RecommendScopeResult,
    RecordDecisionInput,
    ReportStatusInput,
    RequestRef,
    RequestsCreated,
    RequestStatusInput,
    ScheduledCycleResult,
    ScheduledCycleStartInput,
    SetCycleStatusInput,
    VersionRef,
    WorkflowFinishedResult,
)
from workflows.temporal.contracts import (  # Test Execution (issue 6)
    ExtensionDecided,
    ExtensionProposal,
    ProposeExtensionInput,
    RecordExtensionDecisionInput,
    TestMatrixInput,
    TestProgress,
)


def _non_retryable(fn):
    """Turn domain errors into non-retryable Temporal failures with the same message."""

    @functools.wraps(fn)
    def wrapper(inp):
        try:
            return fn(inp)
        except TemporalApplicationError:
            raise
        except ApplicationError as err:
            raise TemporalApplicationError(err.message, type=type(err).__name__, non_retryable=True) from err
        except Exception as err:
            if getattr(err, "non_retryable", False):
                raise TemporalApplicationError(str(err), type=type(err).__name__, non_retryable=True) from err
            raise

    return wrapper


HEARTBEAT_EVERY = 2.0  # seconds; the workflow's heartbeat timeout is 10 s


def heartbeating(fn):
    """Heartbeat from a side thread while a long activity runs (an LLM call, profiling).

    When the worker dies the beats stop, and Temporal retries the activity after the
    heartbeat timeout instead of its whole start-to-close timeout. Run as a local activity (a version
    since PATCH_LOCAL_VERSIONS) it has no heartbeat: its workflow task's timeout plays that part.
    """

    @functools.wraps(fn)
    def wrapper(inp):
        if activity.info().is_local:
            return fn(inp)
        done = threading.Event()
        context = contextvars.copy_context()  # activity.heartbeat() finds its activity here

        def beat():
            while not done.wait(HEARTBEAT_EVERY):
                try:
                    activity.heartbeat()
                except Exception:  # noqa: BLE001 - the activity finished or was cancelled meanwhile
                    return

        threading.Thread(target=context.run, args=(beat,), name="heartbeat", daemon=True).start()
        try:
            return fn(inp)
        finally:
            done.set()

    return wrapper


def _context(step: str = "") -> dict:
    info = activity.info()
    return {
        "workflow_id": info.workflow_id,
        "run_id": info.workflow_run_id,
        "activity": info.activity_type,
        "step": step,
    }


def _workflow_context(step: str):
    from versioning.services import WorkflowContext

    info = activity.info()
    return WorkflowContext(
        workflow_id=info.workflow_id, run_id=info.workflow_run_id, step=step, activity=info.activity_type
    )


@activity.defn(name=ActivityName.ENTER_PHASE)
@_non_retryable
def cycle_report_enter_phase(inp: EnterPhaseInput) -> PhaseTransitionResult:
    from cycles.services.cycles import cycle_report_enter_phase as enter

    previous, _ = enter(
        cycle_report_id=inp.cycle_report_id, phase=inp.phase, skipped=inp.skipped,
        set_current=inp.set_current, workflow_id=activity.info().workflow_id, context=_context(inp.phase),
    )
    return PhaseTransitionResult(
        cycle_report_id=inp.cycle_report_id,
        from_phase=inp.from_phase or previous,
        to_phase=inp.phase,
        skipped=inp.skipped,
    )


@activity.defn(name=ActivityName.FINISH_REPORT)
@_non_retryable
def cycle_report_finish(inp: FinishReportInput) -> WorkflowFinishedResult:
    from cycles.services.cycles import cycle_report_finish as finish

    finish(cycle_report_id=inp.cycle_report_id, status=inp.status, context=_context(inp.phase))
    return WorkflowFinishedResult(status="completed")


@activity.defn(name=ActivityName.SET_CYCLE_STATUS)
@_non_retryable
def cycle_set_status(inp: SetCycleStatusInput) -> WorkflowFinishedResult:
    from cycles.services.cycles import cycle_set_status as set_status

    set_status(cycle_id=inp.cycle_id, status=inp.status, context=_context())
    return WorkflowFinishedResult(status=inp.status)


@activity.defn(name=ActivityName.DRAFT_ATTRIBUTES)
@_non_retryable
@heartbeating
def planning_draft_attributes(inp: DraftAttributesInput) -> DraftAttributesResult:
    from cycles.llm.base import LLMBadResponseError
    from cycles.services.planning import attributes_draft

    try:
        provider, created, updated = attributes_draft(cycle_report_id=inp.cycle_report_id)
    except (LLMBadResponseError, ImproperlyConfigured) as err:
        # A bad answer or a missing key: asking again gives the same result.
        raise TemporalApplicationError(str(err), type=type(err).__name__, non_retryable=True) from err
    return DraftAttributesResult(
        cycle_report_id=inp.cycle_report_id, provider=provider, created=created, updated=updated
    )


@activity.defn(name=ActivityName.RECOMMEND_SCOPE)
@_non_retryable
@heartbeating
def scoping_recommend(inp: RecommendScopeInput) -> RecommendScopeResult:
    from cycles.services.scoping import scoping_recommend as recommend

    return RecommendScopeResult(created=recommend(cycle_report_id=inp.cycle_report_id))


@activity.defn(name=ActivityName.CREATE_VERSION)
@_non_retryable
@heartbeating
def version_create(inp: CreateVersionInput) -> VersionRef:
    from cycles.models import CycleReport
    from cycles.services.artifacts import phase_artifact_items
    from cycles.services.final_report import phase_is_reopened
    from versioning.services import version_create as create

    cycle_report = CycleReport.objects.select_related("report").get(pk=inp.cycle_report_id)
    author = get_user_model().objects.get(pk=inp.user_id)
    version = create(
        cycle_report=cycle_report,
        phase=inp.phase,
        author=author,
        items=phase_artifact_items(cycle_report=cycle_report, phase=inp.phase),
        notes=inp.notes,
        request_id=inp.decision_id,
        workflow=_workflow_context(inp.phase),
        after_approved=phase_is_reopened(cycle_report, inp.phase),
    )
    return VersionRef(version_id=version.pk, number=version.number, status=version.status)


@activity.defn(name=ActivityName.RECORD_DECISION)
@_non_retryable
def version_record_decision(inp: RecordDecisionInput) -> VersionRef:
    from versioning.models import Version
    from versioning.services import version_decide

    version = Version.objects.get(pk=inp.version_id)
    approver = get_user_model().objects.get(pk=inp.user_id)
    approval = version_decide(
        version=version,
        user=approver,
        approve=inp.approve,
        notes=inp.notes,
        request_id=inp.decision_id,
        workflow=_workflow_context(inp.phase),
    )
    # The version as the decision left it (read afresh when a retry found the decision already made).
    version = approval.version
    return VersionRef(version_id=version.pk, number=version.number, status=version.status)


@activity.defn(name=ActivityName.PROFILE_POPULATION)
@_non_retryable
@heartbeating
def population_profile(inp: ProfilePopulationInput) -> ProfileSummary:
    from cycles.services.profiling import population_file_profile

    started = time.monotonic()
    population_file = population_file_profile(population_file_id=inp.population_file_id)
    return ProfileSummary(
        population_file_id=population_file.pk,
        row_count=population_file.row_count or 0,
        column_count=len(population_file.columns),
        seconds=time.monotonic() - started,
    )


@activity.defn(name=ActivityName.COMPLETE_PHASE)
@_non_retryable
def cycle_report_complete_phase(inp: PhaseInput) -> Ack:
    from cycles.services.cycles import cycle_report_complete_phase as complete

    complete(cycle_report_id=inp.cycle_report_id, phase=inp.phase, context=_context(inp.phase))
    return Ack()


@activity.defn(name=ActivityName.SET_REPORT_STATUS)
@_non_retryable
def cycle_report_set_status(inp: ReportStatusInput) -> Ack:
    from cycles.services.cycles import cycle_report_finish as set_status

    set_status(cycle_report_id=inp.cycle_report_id, status=inp.status, context=_context(inp.phase))
    return Ack(detail=inp.status)


@activity.defn(name=ActivityName.PREPARE_SAMPLING)
@_non_retryable
@heartbeating
def sampling_plan_prepare(inp: PhaseInput) -> Ack:
    from cycles.services.sampling import sampling_plan_prepare as prepare

    plan = prepare(cycle_report_id=inp.cycle_report_id)
    return Ack(detail=plan.size_explanation)


@activity.defn(name=ActivityName.NOTIFY_DATA_EXECUTIVE)
@_non_retryable
def data_owner_identification_notify(inp: PhaseInput) -> Ack:
    from cycles.services.notifications import data_owner_identification_notify as notify

    return Ack(ok=notify(cycle_report_id=inp.cycle_report_id))


@activity.defn(name=ActivityName.CHECK_DATA_OWNERS)
@_non_retryable
def data_owner_identification_check(inp: PhaseInput) -> DataOwnersCheck:
    from cycles.models import CycleReport
    from cycles.services.requests import data_owner_identification_missing

    missing = data_owner_identification_missing(cycle_report=CycleReport.objects.get(pk=inp.cycle_report_id))
    return DataOwnersCheck(complete=not missing, missing=[a.name for a in missing])


@activity.defn(name=ActivityName.ESCALATE_DATA_OWNERS)
@_non_retryable
def data_owner_sla_escalate(inp: PhaseInput) -> Ack:
    from cycles.services.notifications import data_owner_sla_escalate as escalate
    from workflows.services import alert_raise

    alert_raise(
        key=f"data-owner-sla-{inp.cycle_report_id}",
        kind="data_owner_sla",
        cycle_report_id=inp.cycle_report_id,
        message="Data owners were not assigned to every in-scope attribute within the SLA.",
    )
    return Ack(ok=escalate(cycle_report_id=inp.cycle_report_id))


@activity.defn(name=ActivityName.CREATE_REQUESTS)
@_non_retryable
def information_requests_create(inp: CreateRequestsInput) -> RequestsCreated:
    import datetime

    from cycles.services.requests import information_requests_create as create

    requests = create(cycle_report_id=inp.cycle_report_id, due_date=datetime.date.fromisoformat(inp.due_date))
    return RequestsCreated(requests=[RequestRef(request_id=r.pk, status=r.status) for r in requests])


@activity.defn(name=ActivityName.NOTIFY_REQUEST)
@_non_retryable
def request_notify(inp: NotifyRequestInput) -> Ack:
    from cycles.models import InformationRequest
    from cycles.services.notifications import request_notify as notify
    from workflows.services import alert_raise

    if inp.kind == "escalation":
        request = InformationRequest.objects.select_related("data_owner", "cycle_report__report").get(
            pk=inp.request_id
        )
        alert_raise(
            key=f"request-overdue-{inp.request_id}",
            kind="request_overdue",
            cycle_report_id=request.cycle_report_id,
            message=f"The request to {request.data_owner} for {request.cycle_report.report} is overdue "
            f"(due {request.due_date:%Y-%m-%d}).",
        )
    return Ack(ok=notify(request_id=inp.request_id, kind=inp.kind, key_suffix=inp.key_suffix))


@activity.defn(name=ActivityName.REQUEST_STATUS)
@_non_retryable
def information_request_status(inp: RequestStatusInput) -> Ack:
    from cycles.services.requests import information_request_status as status

    return Ack(detail=status(request_id=inp.request_id))


# --- issue 9: compensation -------------------------------------------------------------------


@activity.defn(name=COMPENSATE_PHASE_ACTIVITY)
@_non_retryable
def phase_compensate(inp: CompensateInput) -> CompensationResult:
    from workflows.compensation import compensation_run

    user = get_user_model().objects.filter(pk=inp.user_id).first() if inp.user_id else None
    entry = compensation_run(cycle_report_id=inp.cycle_report_id, phase=inp.phase, trigger=inp.trigger,
                             key=inp.key, reason=inp.reason, user=user)
    return CompensationResult(strategy=entry.strategy, outcome=entry.outcome, undone=dict(entry.undone))


@activity.defn(name=SCHEDULED_CYCLE_START_ACTIVITY)
@_non_retryable
def scheduled_cycle_start(inp: ScheduledCycleStartInput) -> ScheduledCycleResult:
    from workflows.schedules import schedule_run

    cycle = schedule_run(schedule_pk=inp.schedule_pk, run_key=inp.run_key)
    return ScheduledCycleResult(cycle_id=cycle.pk, workflow_id=cycle.workflow_id)
# --- Test Execution (issue 6) ------------------------------------------------------------------


def _progress(counts: dict) -> TestProgress:
    return TestProgress(total=counts["total"], done=counts["done"],
                        counts={k: v for k, v in counts.items() if k not in ("total", "done")})


@activity.defn(name=ActivityName.PREPARE_TEST_MATRIX)
@_non_retryable
@heartbeating
def test_matrix_prepare(inp: TestMatrixInput) -> TestProgress:
    from cycles.services.execution import test_matrix_prepare as prepare

    return _progress(prepare(cycle_report_id=inp.cycle_report_id))


@activity.defn(name=ActivityName.PROPOSE_SAMPLE_EXTENSION)
@_non_retryable
def sample_extension_propose(inp: ProposeExtensionInput) -> ExtensionProposal:
    from cycles.models import CycleReport
    from cycles.services.execution import test_execution_progress
    from cycles.services.sample_extension import sample_extension_propose as propose

    extension = propose(cycle_report_id=inp.cycle_report_id)
    progress = _progress(test_execution_progress(cycle_report=CycleReport.objects.get(pk=inp.cycle_report_id)))
    if extension is None:
        return ExtensionProposal(progress=progress)
    failures = ", ".join(f"{name} {count}" for name, count in sorted(extension.failures.items()))
    return ExtensionProposal(
        extension_id=extension.pk,
        number=extension.number,
        message=(f"Failures ({failures}) exceed the {extension.allowed_deviations} the sample allows: "
                 f"extension {extension.number} proposes {len(extension.sample_keys)} more samples."),
        progress=progress,
    )


@activity.defn(name=ActivityName.DECIDE_SAMPLE_EXTENSION)
@_non_retryable
def sample_extension_decide(inp: RecordExtensionDecisionInput) -> ExtensionDecided:
    import datetime

    from cycles.services.sample_extension import sample_extension_decide as decide

    extension, reopened = decide(
        extension_id=inp.extension_id,
        user=get_user_model().objects.get(pk=inp.user_id),
        approve=inp.approve,
        notes=inp.notes,
        decision_id=inp.decision_id,
        due_date=datetime.date.fromisoformat(inp.due_date) if inp.due_date else None,
    )
    return ExtensionDecided(
        approved=extension.status == extension.Status.APPROVED,
        number=extension.number,
        requests=[RequestRef(request_id=r.pk, status=r.status) for r in reopened],
    )


# --- Observations and Finalize (issue 6, parts 4-7) ------------------------------


@activity.defn(name=ActivityName.DRAFT_OBSERVATIONS)
@_non_retryable
def observations_draft(inp: PhaseInput) -> DraftObservationsResult:
    from cycles.services.observations import observations_draft as draft

    created, failed = draft(cycle_report_id=inp.cycle_report_id)
    return DraftObservationsResult(created=created, failed_cells=failed)


@activity.defn(name=ActivityName.OPEN_OBSERVATIONS)
@_non_retryable
def observations_open(inp: PhaseInput) -> Ack:
    from cycles.services.observations import observations_open as open_

    return Ack(detail=str(open_(cycle_report_id=inp.cycle_report_id)))


@activity.defn(name=ActivityName.GENERATE_FINAL_REPORT)
@_non_retryable
def final_report_generate(inp: GenerateReportInput) -> FinalReportRef:
    from cycles.services.final_report import final_report_generate as generate

    report = generate(cycle_report_id=inp.cycle_report_id, generation=inp.generation,
                      workflow_id=activity.info().workflow_id)
    return FinalReportRef(final_report_id=report.pk, number=report.number)


@activity.defn(name=ActivityName.RECORD_SIGN_OFF)
@_non_retryable
def sign_off_record(inp: RecordSignOffInput) -> SignOffRef:
    from cycles.services.final_report import sign_off_record as record

    sign_off = record(
        decision_id=inp.decision_id, final_report_id=inp.final_report_id, role=inp.role, user_id=inp.user_id,
        sign=inp.sign, send_back_to=inp.send_back_to, notes=inp.notes, context=_context(inp.phase),
    )
    return SignOffRef(sign_off_id=sign_off.pk, role=sign_off.role, decision=sign_off.decision)


@activity.defn(name=ActivityName.REOPEN_PHASE)
@_non_retryable
def cycle_report_reopen_phase(inp: ReopenPhaseInput) -> Ack:
    from cycles.services.final_report import phase_reopen

    phase_reopen(cycle_report_id=inp.cycle_report_id, phase=inp.phase, sign_off_id=inp.sign_off_id,
                 context=_context(inp.phase))
    return Ack(detail=inp.phase)


@activity.defn(name=ActivityName.BUILD_PACKAGE)
@_non_retryable
def evidence_package_build(inp: BuildPackageInput) -> PackageRef:
    from cycles.services.package import package_build

    package = package_build(final_report_id=inp.final_report_id, heartbeat=lambda path: activity.heartbeat(path))
    return PackageRef(package_id=package.pk, sha256=package.sha256, files=len(package.manifest))


ALL_ACTIVITIES = [
    cycle_report_enter_phase,
    cycle_report_finish,
    cycle_set_status,
    planning_draft_attributes,
    scoping_recommend,
    version_create,
    version_record_decision,
    population_profile,
    cycle_report_complete_phase,
    cycle_report_set_status,
    sampling_plan_prepare,
    data_owner_identification_notify,
    data_owner_identification_check,
    data_owner_sla_escalate,
    information_requests_create,
    request_notify,
    information_request_status,
    phase_compensate,
    scheduled_cycle_start,
    test_matrix_prepare,
    sample_extension_propose,
    sample_extension_decide,
    observations_draft,
    observations_open,
    final_report_generate,
    sign_off_record,
    cycle_report_reopen_phase,
    evidence_package_build,
]
