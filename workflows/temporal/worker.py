"""Building the worker: every workflow, every activity, the interceptor, a thread pool."""
from __future__ import annotations

import functools
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
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
)
from workflows.temporal.phases.profiling import PATCH_PROFILING_REVIEW
from workflows.temporal.phases.requests import (
    PATCH_REQUEST_ADDED,
    PATCH_REQUEST_BEFORE_ENTRY,
    PATCH_REQUEST_READ_ACCEPTED,
)
from workflows.temporal.phases.reviews import PATCH_DECIDE_WAITS_FOR_SUBMISSION
from workflows.temporal.phases.test_execution import PATCH_EXTENSION_ALREADY_APPLIED, PATCH_TEST_EXECUTION
from workflows.temporal.interceptors import TrackingInterceptor
from workflows.temporal.recurring_workflow import RecurringCycleWorkflow
from workflows.temporal.report_workflow import PATCH_FINISH_CANCELLED_IN_ACTIVITY, ReportTestWorkflow

WORKFLOWS = [TestCycleWorkflow, ReportTestWorkflow, RecurringCycleWorkflow]
# The sandbox imports the workflow modules afresh for every workflow run it starts (or takes back into its
# cache). The wire dataclasses and the retry policies are plain data with no workflow logic: imported once
# and shared, they make starting a run three times cheaper (the hundred dataclasses of contracts were most
# of it). The workflow code itself stays sandboxed, with its determinism checks.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
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
    waits for a thread while holding a task slot.
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
        **{"build_id": build_id(), "workflow_runner": WORKFLOW_RUNNER, **kwargs},
    )
    return worker, executor
