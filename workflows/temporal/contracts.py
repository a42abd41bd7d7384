"""What crosses the wire between Django, the workflows and the activities.

Standard library only: workflow modules import this inside the sandbox. Each
workflow, activity and update takes exactly one dataclass, so a field can be
added (with a default) without breaking workflows already running.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# The values of cycles.models.Phase, in order (a test keeps both equal).
PLANNING = "planning"
DATA_PROFILING = "data_profiling"
SCOPING = "scoping"
SAMPLE_SELECTION = "sample_selection"
DATA_OWNER_IDENTIFICATION = "data_owner_identification"
REQUEST_FOR_INFORMATION = "request_for_information"
TEST_EXECUTION = "test_execution"
OBSERVATIONS = "observations"
FINALIZE = "finalize"

PHASE_ORDER: tuple[str, ...] = (
    PLANNING,
    DATA_PROFILING,
    SCOPING,
    SAMPLE_SELECTION,
    DATA_OWNER_IDENTIFICATION,
    REQUEST_FOR_INFORMATION,
    TEST_EXECUTION,
    OBSERVATIONS,
    FINALIZE,
)

# Phases whose artifact is a version the report owner approves or sends back.
REVIEWED_PHASES: frozenset[str] = frozenset({PLANNING, SCOPING, SAMPLE_SELECTION, OBSERVATIONS})

TASK_QUEUE_DEFAULT = "synapse-workflow-queue"
CYCLE_WORKFLOW_TYPE = "TestCycleWorkflow"
REPORT_WORKFLOW_TYPE = "ReportTestWorkflow"

# Update and query names, shared by the workflow and WorkflowService.
UPDATE_SUBMIT_VERSION = "submit_version"
UPDATE_DECIDE_VERSION = "decide_version"
UPDATE_REGISTER_POPULATION = "register_population"
QUERY_STATUS = "status"


class ActivityName:
    """Activity names; workflows call activities by name so they never import Django."""

    ENTER_PHASE = "cycle_report_enter_phase"
    FINISH_REPORT = "cycle_report_finish"
    SET_CYCLE_STATUS = "cycle_set_status"
    DRAFT_ATTRIBUTES = "planning_draft_attributes"
    RECOMMEND_SCOPE = "scoping_recommend"
    CREATE_VERSION = "version_create"
    RECORD_DECISION = "version_record_decision"
    PROFILE_POPULATION = "population_profile"


def cycle_workflow_id(cycle_id: int) -> str:
    return f"cycle-{cycle_id}"


def report_workflow_id(cycle_id: int, report_id: int) -> str:
    return f"cycle-{cycle_id}-report-{report_id}"


# Who a report waits on, by workflow state (role names of synapse.roles.Role).
class WaitingOn:
    TESTER = "Tester"
    REPORT_OWNER = "Report Owner"
    DATA_EXECUTIVE = "Data Executive"
    DATA_OWNER = "Data Owner"
    SYSTEM = "System"
    NOBODY = ""


class State:
    """A report workflow's state inside its current phase."""

    STARTING = "starting"
    DRAFTING = "drafting"
    AWAITING_SUBMISSION = "awaiting_submission"
    SUBMITTING = "submitting"
    AWAITING_DECISION = "awaiting_decision"
    DECIDING = "deciding"
    AWAITING_UPLOAD = "awaiting_upload"
    PROFILING = "profiling"
    COMPLETED = "completed"


# --- workflow inputs and results -------------------------------------------


@dataclass
class CycleReportRef:
    cycle_report_id: int
    report_id: int


@dataclass
class PhaseSettings:
    """Per-phase settings from the cycle's configuration."""

    approvers: list[int] = field(default_factory=list)
    sla_days: int | None = None


@dataclass
class CycleWorkflowInput:
    cycle_id: int
    cycle_reports: list[CycleReportRef]
    skip_phases: list[str] = field(default_factory=list)
    phase_settings: dict[str, PhaseSettings] = field(default_factory=dict)
    started_by: int | None = None
    activity_timeout_seconds: int = 300
    last_phase: str = SCOPING


@dataclass
class CycleWorkflowResult:
    cycle_id: int
    report_statuses: dict[str, str]


@dataclass
class ReportWorkflowInput:
    cycle_id: int
    cycle_report_id: int
    report_id: int
    skip_phases: list[str] = field(default_factory=list)
    phase_settings: dict[str, PhaseSettings] = field(default_factory=dict)
    # The last phase this version of the product runs; later issues move it.
    last_phase: str = SCOPING
    activity_timeout_seconds: int = 300


@dataclass
class ReportWorkflowResult:
    cycle_report_id: int
    status: str
    completed_phases: list[str]
    skipped_phases: list[str]


@dataclass
class ReportStatus:
    """Answer of the status query: which phase, in which state, waiting on whom."""

    cycle_report_id: int
    phase: str
    state: str
    waiting_on: str
    current_version_id: int | None = None
    completed_phases: list[str] = field(default_factory=list)
    skipped_phases: list[str] = field(default_factory=list)
    last_error: str = ""


# --- update inputs and result -----------------------------------------------


@dataclass
class SubmitVersionInput:
    decision_id: str
    phase: str
    user_id: int
    notes: str = ""


@dataclass
class DecideVersionInput:
    decision_id: str
    phase: str
    version_id: int
    user_id: int
    approve: bool
    notes: str = ""


@dataclass
class RegisterPopulationInput:
    decision_id: str
    population_file_id: int
    user_id: int


@dataclass
class UpdateResult:
    accepted: bool
    message: str
    version_id: int | None = None
    version_number: int | None = None


# --- activity inputs and results --------------------------------------------


@dataclass
class EnterPhaseInput:
    cycle_report_id: int
    phase: str
    from_phase: str = ""
    skipped: bool = False


@dataclass
class PhaseTransitionResult:
    """Returned by the phase-entry activity; the interceptor records it as a transition."""

    cycle_report_id: int
    from_phase: str
    to_phase: str
    skipped: bool = False


@dataclass
class DraftAttributesInput:
    cycle_report_id: int
    phase: str = PLANNING


@dataclass
class DraftAttributesResult:
    cycle_report_id: int
    provider: str
    created: int
    updated: int


@dataclass
class CreateVersionInput:
    decision_id: str
    cycle_report_id: int
    phase: str
    user_id: int
    notes: str = ""


@dataclass
class VersionRef:
    version_id: int
    number: int
    status: str


@dataclass
class RecordDecisionInput:
    decision_id: str
    phase: str
    version_id: int
    user_id: int
    approve: bool
    notes: str = ""


@dataclass
class ProfilePopulationInput:
    population_file_id: int
    phase: str = DATA_PROFILING


@dataclass
class ProfileSummary:
    population_file_id: int
    row_count: int
    column_count: int
    seconds: float


@dataclass
class RecommendScopeInput:
    cycle_report_id: int
    phase: str = SCOPING


@dataclass
class RecommendScopeResult:
    created: int


@dataclass
class FinishReportInput:
    cycle_report_id: int
    status: str
    phase: str = ""


@dataclass
class SetCycleStatusInput:
    cycle_id: int
    status: str


@dataclass
class WorkflowFinishedResult:
    """Returned by a finishing activity; the interceptor closes the execution row."""

    status: str
