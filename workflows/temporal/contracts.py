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

# Phases as people read them, for the workflow's own messages (cycles.models.Phase labels).
PHASE_LABELS: dict[str, str] = {
    PLANNING: "Planning",
    DATA_PROFILING: "Data Profiling",
    SCOPING: "Scoping",
    SAMPLE_SELECTION: "Sample Selection",
    DATA_OWNER_IDENTIFICATION: "Data Owner Identification",
    REQUEST_FOR_INFORMATION: "Request for Information",
    TEST_EXECUTION: "Test Execution",
    OBSERVATIONS: "Observation Management",
    FINALIZE: "Finalize Test Report",
}

# The steps of a report workflow: phases in one tuple run in parallel and join.
PHASE_STEPS: tuple[tuple[str, ...], ...] = (
    (PLANNING,),
    (DATA_PROFILING,),
    (SCOPING,),
    (SAMPLE_SELECTION, DATA_OWNER_IDENTIFICATION),
    (REQUEST_FOR_INFORMATION,),
    (TEST_EXECUTION,),
    (OBSERVATIONS,),
    (FINALIZE,),
)

# Phases whose artifact is a version the report owner approves or sends back.
REVIEWED_PHASES: frozenset[str] = frozenset(
    {PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION, TEST_EXECUTION, OBSERVATIONS}
)

TASK_QUEUE_DEFAULT = "synapse-workflow-queue"
CYCLE_WORKFLOW_TYPE = "TestCycleWorkflow"
REPORT_WORKFLOW_TYPE = "ReportTestWorkflow"

# Update and query names, shared by the workflow and WorkflowService.
UPDATE_SUBMIT_VERSION = "submit_version"
UPDATE_DECIDE_VERSION = "decide_version"
UPDATE_REGISTER_POPULATION = "register_population"
UPDATE_COMPLETE_DATA_OWNERS = "complete_data_owner_identification"
UPDATE_REQUEST_SUBMITTED = "request_submitted"
UPDATE_REQUEST_REVIEWED = "request_reviewed"
# Issue 7: part of a request moved to another data owner became a request of its own (a reassignment).
UPDATE_REQUEST_ADDED = "request_added"
QUERY_STATUS = "status"
UPDATE_DECIDE_EXTENSION = "decide_sample_extension"


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
    COMPLETE_PHASE = "cycle_report_complete_phase"
    SET_REPORT_STATUS = "cycle_report_set_status"
    PREPARE_SAMPLING = "sampling_plan_prepare"
    NOTIFY_DATA_EXECUTIVE = "data_owner_identification_notify"
    CHECK_DATA_OWNERS = "data_owner_identification_check"
    ESCALATE_DATA_OWNERS = "data_owner_sla_escalate"
    CREATE_REQUESTS = "information_requests_create"
    NOTIFY_REQUEST = "request_notify"
    REQUEST_STATUS = "information_request_status"
    # Test Execution (issue 6)
    PREPARE_TEST_MATRIX = "test_matrix_prepare"
    PROPOSE_SAMPLE_EXTENSION = "sample_extension_propose"
    DECIDE_SAMPLE_EXTENSION = "sample_extension_decide"
    # Observations and Finalize (issue 6, parts 4-7)
    DRAFT_OBSERVATIONS = "observations_draft"
    OPEN_OBSERVATIONS = "observations_open"
    GENERATE_FINAL_REPORT = "final_report_generate"
    RECORD_SIGN_OFF = "sign_off_record"
    REOPEN_PHASE = "cycle_report_reopen_phase"
    BUILD_PACKAGE = "evidence_package_build"


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
    TEST_MANAGER = "Test Manager"
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
    AWAITING_ASSIGNMENT = "awaiting_data_owners"
    AWAITING_EVIDENCE = "awaiting_evidence"
    AWAITING_TEST_EXECUTION = "awaiting_test_execution"
    AWAITING_EXTENSION_DECISION = "awaiting_extension_decision"
    # Finalize: the report waits for each signature in turn, then its package is built.
    AWAITING_TEST_MANAGER_SIGN_OFF = "awaiting_test_manager_sign_off"
    AWAITING_REPORT_OWNER_SIGN_OFF = "awaiting_report_owner_sign_off"
    AWAITING_DATA_EXECUTIVE_SIGN_OFF = "awaiting_data_executive_sign_off"
    PACKAGING = "packaging"
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
class RequestSchedule:
    """Timers of Data Owner Identification and Requests for Information, in days (from the cycle's configuration)."""

    due_days: int = 10
    reminder_days_before: list[int] = field(default_factory=lambda: [3, 1])
    escalation_days_after: int = 2
    data_owner_sla_days: int = 5


@dataclass
class CycleWorkflowInput:
    cycle_id: int
    cycle_reports: list[CycleReportRef]
    skip_phases: list[str] = field(default_factory=list)
    phase_settings: dict[str, PhaseSettings] = field(default_factory=dict)
    started_by: int | None = None
    activity_timeout_seconds: int = 300
    last_phase: str = TEST_EXECUTION
    schedule: RequestSchedule = field(default_factory=RequestSchedule)


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
    # The last phase to run; workflow_start asks for every phase (FINALIZE), tests often stop earlier.
    last_phase: str = TEST_EXECUTION
    activity_timeout_seconds: int = 300
    schedule: RequestSchedule = field(default_factory=RequestSchedule)


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
    # Every active phase and its state (two while the parallel step runs).
    active: dict[str, str] = field(default_factory=dict)
    # Request id -> status, during Requests for Information.
    requests: dict[str, str] = field(default_factory=dict)
    # Test Execution: cells done / total and per result, as of the workflow's last look at the matrix.
    test_progress: dict[str, int] = field(default_factory=dict)
    # A sample extension waiting for the report owner, or 0.
    pending_extension_id: int = 0
    # What reconciliation compares with the database (issue 10): each reviewed phase's version the
    # workflow has (submitted or decided), the final report it generated (or 0) and the roles signed on it.
    versions: dict[str, int] = field(default_factory=dict)
    final_report_id: int = 0
    signatures: list[str] = field(default_factory=list)
    # Set by the workflow service, never by the workflow: when the answer is the last one stored
    # (Temporal or the worker away), when it was read (ISO time) and why it isn't live.
    as_of: str = ""
    unavailable: str = ""


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
class CompleteDataOwnersInput:
    decision_id: str
    user_id: int


@dataclass
class RequestAddedInput:
    """A data owner reassignment split a request: the attribute moved now has a request of its own,
    to be chased like the others (its reminders and escalation go to its new data owner)."""

    decision_id: str
    request_id: int
    user_id: int
    status: str = "open"
    # The request the attribute was taken from (it stays open for its other attributes).
    from_request_id: int = 0


@dataclass
class RequestEventInput:
    """The data owner submitted a request's evidence, or the tester finished reviewing it."""

    decision_id: str
    request_id: int
    user_id: int
    # The request's status after the step, as committed with the stored decision (issue 10): the workflow
    # takes it from the message and never re-reads the database to decide. Empty in messages sent before.
    status: str = ""


@dataclass
class UpdateResult:
    accepted: bool
    message: str
    version_id: int | None = None
    version_number: int | None = None
    # The step had already been applied (a redelivery, or the same step asked twice): nothing changed.
    duplicate: bool = False


# --- activity inputs and results --------------------------------------------


@dataclass
class EnterPhaseInput:
    cycle_report_id: int
    phase: str
    from_phase: str = ""
    skipped: bool = False
    # False for the second phase of a parallel step: the report's current phase stays the first.
    set_current: bool = True


@dataclass
class PhaseInput:
    cycle_report_id: int
    phase: str


@dataclass
class ReportStatusInput:
    cycle_report_id: int
    status: str
    phase: str = ""


@dataclass
class Ack:
    ok: bool = True
    detail: str = ""


@dataclass
class DataOwnersCheck:
    complete: bool
    missing: list[str] = field(default_factory=list)


@dataclass
class CreateRequestsInput:
    cycle_report_id: int
    due_date: str  # ISO date
    phase: str = REQUEST_FOR_INFORMATION


@dataclass
class RequestRef:
    request_id: int
    status: str


@dataclass
class RequestsCreated:
    requests: list[RequestRef]


@dataclass
class NotifyRequestInput:
    request_id: int
    kind: str
    key_suffix: str = ""
    phase: str = REQUEST_FOR_INFORMATION


@dataclass
class RequestStatusInput:
    request_id: int
    phase: str = REQUEST_FOR_INFORMATION


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


# --- issue 9: compensation, retrying a failed phase, removing a report ---------------------

COMPENSATE_PHASE_ACTIVITY = "phase_compensate"
UPDATE_RETRY_PHASE = "retry_phase"
# A phase that failed beyond its retries waits here for an admin (State.FAILED).
STATE_FAILED = "failed"
WAITING_ON_ADMIN = "Admin"

ROLLBACK, PARTIAL_ROLLBACK, NOTIFY, SKIP = "rollback", "partial_rollback", "notify", "skip"
TRIGGER_PHASE_FAILED, TRIGGER_REPORT_REMOVED, TRIGGER_ADMIN_RESET = "phase_failed", "report_removed", "admin_reset"


@dataclass
class CompensateInput:
    """Undo (part of) what `phase` wrote, by its declared strategy; `key` makes a retry a no-op.

    An empty phase means the report's current phase (the cycle workflow doesn't know it).
    """

    cycle_report_id: int
    phase: str
    trigger: str
    key: str
    reason: str = ""
    user_id: int | None = None


@dataclass
class CompensationResult:
    strategy: str
    outcome: str
    undone: dict[str, int] = field(default_factory=dict)


@dataclass
class RetryPhaseInput:
    """An admin asks a phase that failed beyond its retries to run again from its start."""

    phase: str
    user_id: int
    reason: str = ""


# --- issue 9: recurring cycles ------------------------------------------------------------------

RECURRING_CYCLE_WORKFLOW_TYPE = "RecurringCycleWorkflow"
SCHEDULED_CYCLE_START_ACTIVITY = "scheduled_cycle_start"


def cycle_schedule_id(schedule_pk: int) -> str:
    return f"cycle-schedule-{schedule_pk}"


@dataclass
class ScheduledCycleInput:
    schedule_pk: int


@dataclass
class ScheduledCycleStartInput:
    schedule_pk: int
    run_key: str


@dataclass
class ScheduledCycleResult:
    cycle_id: int
    workflow_id: str


# --- Test Execution (issue 6) -------------------------------------------------


@dataclass
class TestMatrixInput:
    __test__ = False  # not a pytest class

    cycle_report_id: int
    phase: str = TEST_EXECUTION


@dataclass
class TestProgress:
    """Cells done / total and the count per result (pass, fail, inconclusive, not_applicable, not_tested)."""

    __test__ = False

    total: int = 0
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class ProposeExtensionInput:
    cycle_report_id: int
    phase: str = TEST_EXECUTION


@dataclass
class ExtensionProposal:
    """A sample extension the report owner must decide (extension_id 0: none needed)."""

    extension_id: int = 0
    number: int = 0
    message: str = ""
    progress: TestProgress = field(default_factory=TestProgress)


@dataclass
class DecideExtensionInput:
    """Update: the report owner approves or rejects a proposed sample extension."""

    decision_id: str
    extension_id: int
    user_id: int
    approve: bool
    notes: str = ""


@dataclass
class RecordExtensionDecisionInput:
    decision_id: str
    extension_id: int
    user_id: int
    approve: bool
    notes: str = ""
    due_date: str = ""  # ISO date the reopened requests are due
    phase: str = TEST_EXECUTION


@dataclass
class ExtensionDecided:
    approved: bool
    number: int
    requests: list[RequestRef] = field(default_factory=list)
    message: str = ""


# --- Observations and Finalize (issue 6, parts 4-7) ---------------------------

UPDATE_SIGN_OFF = "sign_off"
UPDATE_REMOVE_REPORT = "remove_report"
QUERY_REPORTS = "reports"

# Values of cycles.models.SignOffRole, in signing order (a test keeps both equal).
SIGN_OFF_ORDER: tuple[str, ...] = ("test_manager", "report_owner", "data_executive")
SIGN_OFF_STATES = {
    "test_manager": State.AWAITING_TEST_MANAGER_SIGN_OFF,
    "report_owner": State.AWAITING_REPORT_OWNER_SIGN_OFF,
    "data_executive": State.AWAITING_DATA_EXECUTIVE_SIGN_OFF,
}
# What a send-back may reopen: the report itself (regenerated) or a phase before it.
SEND_BACK_TARGETS: tuple[str, ...] = (FINALIZE, OBSERVATIONS, TEST_EXECUTION)


@dataclass
class DraftObservationsResult:
    created: int
    failed_cells: int
    phase: str = OBSERVATIONS


@dataclass
class GenerateReportInput:
    cycle_report_id: int
    generation: int
    phase: str = FINALIZE


@dataclass
class FinalReportRef:
    final_report_id: int
    number: int


@dataclass
class SignOffInput:
    """A signer signs the final report in their role, or sends it back naming what to reopen."""

    decision_id: str
    role: str
    user_id: int
    sign: bool = True
    send_back_to: str = ""
    notes: str = ""


@dataclass
class RecordSignOffInput:
    decision_id: str
    final_report_id: int
    role: str
    user_id: int
    sign: bool
    send_back_to: str = ""
    notes: str = ""
    phase: str = FINALIZE


@dataclass
class SignOffRef:
    sign_off_id: int
    role: str
    decision: str


@dataclass
class ReopenPhaseInput:
    cycle_report_id: int
    phase: str
    sign_off_id: int


@dataclass
class BuildPackageInput:
    final_report_id: int
    phase: str = FINALIZE


@dataclass
class PackageRef:
    package_id: int
    sha256: str
    files: int


@dataclass
class RemoveReportInput:
    """The test manager took a report out of the running cycle (the reason is stored by Synapse)."""

    decision_id: str
    cycle_report_id: int
    user_id: int
