"""Business records of a test cycle, one module per area (import from cycles.models)."""
from cycles.models.core import (  # noqa: F401
    LOB,
    Attribute,
    CycleReport,
    DataType,
    Frequency,
    Phase,
    PhaseState,
    PopulationFile,
    ProfileResult,
    Report,
    RiskLevel,
    ScopingDecision,
    TestCycle,
    default_cycle_configuration,
)
from cycles.models.requests import (  # noqa: F401
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    Reassignment,
    RequestNotification,
)
from cycles.models.sampling import SampleSizeRule, SamplingPlan, Sample  # noqa: F401
from cycles.models.execution import (  # noqa: F401
    EvidenceLink,
    ExecutionRule,
    FailureKind,
    SampleExtension,
    TestMethod,
    TestResult,
    TestResultCount,
    TestResultHistory,
    TestResultValue,
)
from cycles.models.observations import (  # noqa: F401
    Observation,
    ObservationType,
    RemediationEvent,
    Severity,
)
from cycles.models.reporting import (  # noqa: F401
    SIGN_OFF_MEANING,
    SIGN_OFF_ORDER,
    CycleReportRemoval,
    EvidencePackage,
    FinalReport,
    PhaseReopening,
    SignOff,
    SignOffRole,
)
from cycles.models.profiling import ColumnMapping, ProfilingRule  # noqa: F401
