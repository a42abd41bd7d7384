"""Building the worker: every workflow, every activity, the interceptor, a thread pool."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client
from temporalio.converter import DataConverter, StorageDriverStoreContext, WorkflowSerializationContext
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.temporal.activities import ALL_ACTIVITIES
from workflows.temporal.compensation import PATCH_PHASE_COMPENSATION
from workflows.temporal.cycle_workflow import PATCH_REMOVAL_COMPENSATION, TestCycleWorkflow
from workflows.temporal.phases.base import (
    PATCH_ANSWER_FIRST,
    PATCH_CANCEL_NOT_FAILURE,
    PATCH_CLAIM_WAITS,
    PATCH_LOCAL_ACTIVITIES,
    PATCH_LOCAL_ENTRY,
    PATCH_LOCAL_VERSIONS,
)
from workflows.temporal.phases.profiling import PATCH_PROFILING_REVIEW
from workflows.temporal.phases.requests import (
    PATCH_REQUEST_ADDED,
    PATCH_REQUEST_BEFORE_ENTRY,
    PATCH_REQUEST_READ_ACCEPTED,
)
from workflows.temporal.phases.reviews import (
    PATCH_DECIDE_WAITS_FOR_SUBMISSION,
    PATCH_DECIDE_WAITS_FOR_SUBMISSION_IN_FLIGHT,
)
from workflows.temporal.phases.test_execution import PATCH_EXTENSION_ALREADY_APPLIED, PATCH_TEST_EXECUTION
from workflows.temporal.interceptors import TrackingInterceptor
from workflows.temporal.recurring_workflow import RecurringCycleWorkflow
from workflows.temporal.report_workflow import PATCH_FINISH_CANCELLED_IN_ACTIVITY, ReportTestWorkflow

WORKFLOWS = [TestCycleWorkflow, ReportTestWorkflow, RecurringCycleWorkflow]


class _OutsideContext(WorkflowInstance):
    """A sandboxed workflow instance whose serialization context is answered without entering the sandbox:
    None, the context-free data converter (see SynapseWorkflowRunner)."""

    def __init__(self, sandboxed: WorkflowInstance):
        self._sandboxed = sandboxed

    def activate(self, act):
        return self._sandboxed.activate(act)

    def get_serialization_context(self, command_info):
        return None

    def get_external_store_context(self, command_info):
        return StorageDriverStoreContext(target=None)

    def get_info(self):
        return self._sandboxed.get_info()

    def get_thread_id(self):
        return self._sandboxed.get_thread_id()


@dataclasses.dataclass(frozen=True)
class SynapseWorkflowRunner(SandboxedWorkflowRunner):
    """The SDK's sandbox; with `context_free`, a run's serialization context is not looked up inside it.

    Around every workflow activation the SDK walks the activation's and the completion's payloads six times
    (storage references, external storage, codec; each way) and, for every payload sequence, asks the
    workflow instance which serialization context applies: the workflow's, or an activity's for its
    arguments. Asked of a sandboxed instance, that is an exec() of a code string under the sandbox's
    importer, a tenth of the worker's CPU over a cycle (bench/orchestration.py, sampled with py-spy). The
    answer only picks which copy of the data converter the codec runs with; when no part of the converter
    reads a context and nothing is stored externally (`context_free_converter`), every answer picks the same
    converter and the six passes change nothing. The instance then answers None without entering the sandbox.
    The workflow code, its determinism checks and the conversion of values inside the sandbox are untouched.
    """

    context_free: bool = False

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        instance = super().create_instance(det)
        return _OutsideContext(instance) if self.context_free else instance


def context_free_converter(converter: DataConverter) -> bool:
    """Whether `converter` is the same under every serialization context and stores nothing externally."""
    context = WorkflowSerializationContext(namespace="", workflow_id="")
    return converter.external_storage is None and converter.with_context(context) is converter


def workflow_runner(client: Client) -> SynapseWorkflowRunner:
    """The runner for a worker of `client`: contexts looked up outside the sandbox when its converter ignores them."""
    return dataclasses.replace(WORKFLOW_RUNNER, context_free=context_free_converter(client.data_converter))


# The sandbox imports the workflow modules afresh for every workflow run it starts (or takes back into its
# cache). The wire dataclasses and the retry policies are plain data with no workflow logic: imported once
# and shared, they make starting a run three times cheaper (the hundred dataclasses of contracts were most
# of it). The workflow code itself stays sandboxed, with its determinism checks.
WORKFLOW_RUNNER = SynapseWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflows.temporal.contracts", "workflows.temporal.retry"),
)
# Every workflow.patched id the workflow code knows (the migration history records them per build).
# workflows/tests/test_worker.py checks the list against every workflow.patched call in workflows/temporal/.
KNOWN_PATCHES = [
    PATCH_PROFILING_REVIEW,
    PATCH_TEST_EXECUTION,
    PATCH_FINISH_CANCELLED_IN_ACTIVITY,
    PATCH_PHASE_COMPENSATION,
    PATCH_REMOVAL_COMPENSATION,
    PATCH_CLAIM_WAITS,
    PATCH_REQUEST_ADDED,
    PATCH_EXTENSION_ALREADY_APPLIED,
    PATCH_DECIDE_WAITS_FOR_SUBMISSION,
    PATCH_REQUEST_READ_ACCEPTED,
    PATCH_LOCAL_ACTIVITIES,
    PATCH_LOCAL_ENTRY,
    PATCH_CANCEL_NOT_FAILURE,
    PATCH_ANSWER_FIRST,
    PATCH_REQUEST_BEFORE_ENTRY,
    PATCH_LOCAL_VERSIONS,
    PATCH_DECIDE_WAITS_FOR_SUBMISSION_IN_FLIGHT,
]


@functools.cache
def build_id() -> str:
    """A hash of the code that running workflows replay: it changes exactly when that code does."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("*workflow*.py"), root / "contracts.py", root / "compensation.py",
                        root / "retry.py", *root.glob("phases/*.py")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]



def build_worker(
    client: Client, *, task_queue: str, max_concurrent_activities: int = 10, activities=None, **kwargs
) -> tuple[Worker, ThreadPoolExecutor]:
    """A worker for `task_queue`; the caller shuts the executor down after the worker stops.

    The pool has as many threads as concurrent activities, so an activity never
    waits for a thread while holding a task slot. The workflows' serialization contexts are looked up
    outside the sandbox when the client's data converter doesn't use them (SynapseWorkflowRunner).
    """
    executor = ThreadPoolExecutor(max_workers=max_concurrent_activities, thread_name_prefix="activity")
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=ALL_ACTIVITIES if activities is None else activities,
        activity_executor=executor,
        max_concurrent_activities=max_concurrent_activities,
        interceptors=[TrackingInterceptor()],
        **{"build_id": build_id(), "workflow_runner": workflow_runner(client), **kwargs},
    )
    return worker, executor
