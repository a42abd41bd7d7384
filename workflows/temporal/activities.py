"""Activities: the only bridge from workflows to the database.

Each is a sync function run on the worker's thread pool (the tracking
interceptor closes stale connections around it). Each loads by id, calls one
service, and returns a small dataclass. Each is idempotent: a retry writes
nothing twice (versions and decisions are keyed by the decision id, phase moves
and finishes are no-ops when already done, profiles replace their rows).
A domain error becomes a non-retryable ApplicationError: retrying can't fix it.
"""
from __future__ import annotations

import functools
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from temporalio import activity
from temporalio.exceptions import ApplicationError as TemporalApplicationError

from synapse.exceptions import ApplicationError
from workflows.temporal.contracts import (
    ActivityName,
    CreateVersionInput,
    DraftAttributesInput,
    DraftAttributesResult,
    EnterPhaseInput,
    FinishReportInput,
    PhaseTransitionResult,
    ProfilePopulationInput,
    ProfileSummary,
    RecommendScopeInput,
    RecommendScopeResult,
    RecordDecisionInput,
    SetCycleStatusInput,
    VersionRef,
    WorkflowFinishedResult,
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
        cycle_report_id=inp.cycle_report_id, phase=inp.phase, skipped=inp.skipped, context=_context(inp.phase)
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
def scoping_recommend(inp: RecommendScopeInput) -> RecommendScopeResult:
    from cycles.services.scoping import scoping_recommend as recommend

    return RecommendScopeResult(created=recommend(cycle_report_id=inp.cycle_report_id))


@activity.defn(name=ActivityName.CREATE_VERSION)
@_non_retryable
def version_create(inp: CreateVersionInput) -> VersionRef:
    from cycles.models import CycleReport
    from cycles.services.artifacts import phase_artifact_items
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
    )
    return VersionRef(version_id=version.pk, number=version.number, status=version.status)


@activity.defn(name=ActivityName.RECORD_DECISION)
@_non_retryable
def version_record_decision(inp: RecordDecisionInput) -> VersionRef:
    from versioning.models import Version
    from versioning.services import version_decide

    version = Version.objects.get(pk=inp.version_id)
    approver = get_user_model().objects.get(pk=inp.user_id)
    version_decide(
        version=version,
        user=approver,
        approve=inp.approve,
        notes=inp.notes,
        request_id=inp.decision_id,
        workflow=_workflow_context(inp.phase),
    )
    version.refresh_from_db()
    return VersionRef(version_id=version.pk, number=version.number, status=version.status)


@activity.defn(name=ActivityName.PROFILE_POPULATION)
@_non_retryable
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


ALL_ACTIVITIES = [
    cycle_report_enter_phase,
    cycle_report_finish,
    cycle_set_status,
    planning_draft_attributes,
    scoping_recommend,
    version_create,
    version_record_decision,
    population_profile,
]
