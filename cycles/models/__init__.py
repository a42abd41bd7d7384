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
    TestResultHistory,
    TestResultValue,
)
