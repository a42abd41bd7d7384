"""Record workflow histories for the replay test: `python -m workflows.tests.record_histories`.

Run it when a release changes what running workflows have done so far; keep the
old files too. test_replay.py replays every file against today's workflow code, so
a change that would break a workflow already running (non-determinism) fails CI
until it is guarded with workflow.patched.
"""
import asyncio
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent / "histories"


async def record() -> None:
    from temporalio.testing import WorkflowEnvironment

    from workflows.temporal.contracts import (
        DATA_PROFILING,
        PLANNING,
        SCOPING,
        RegisterPopulationInput,
        ReportWorkflowInput,
        State,
        UpdateResult,
    )
    from workflows.temporal.report_workflow import ReportTestWorkflow
    from workflows.testing import TEST_SERVER
    from workflows.tests.test_report_workflow import FakeActivities, _decide, _submit, _wait_state, _worker

    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        fakes = FakeActivities()
        queue = f"record-{uuid.uuid4().hex}"
        async with _worker(env, fakes, queue):
            # 1. Planning with a send-back, profiling, scoping. Kept for the record: this is the path
            # before the patch "profiling-review" (the first profiled file ended Data Profiling), which
            # today's code no longer takes; report_first_three_phases.json holds it, and
            # record_profiling_review records the reviewed path.
            handle = await env.client.start_workflow(
                ReportTestWorkflow.run, ReportWorkflowInput(1, 10, 20, last_phase=SCOPING),
                id="replay-first-three-phases", task_queue=queue)
            await _wait_state(env, handle, State.AWAITING_SUBMISSION, PLANNING)
            v1 = await _submit(handle, PLANNING)
            await _decide(handle, PLANNING, v1.version_id, approve=False, notes="more")
            v2 = await _submit(handle, PLANNING)
            await _decide(handle, PLANNING, v2.version_id, approve=True)
            await _wait_state(env, handle, State.AWAITING_UPLOAD, DATA_PROFILING)
            await handle.execute_update("register_population", RegisterPopulationInput("p", 1, 1),
                                        result_type=UpdateResult)
            await _wait_state(env, handle, State.AWAITING_SUBMISSION, SCOPING)
            s1 = await _submit(handle, SCOPING)
            await _decide(handle, SCOPING, s1.version_id, approve=True)
            await handle.result()
            (HERE / "report_first_three_phases.json").write_text((await handle.fetch_history()).to_json())

            # 2. The parallel step, requests with reminders and escalation, waiting at test execution.
            fakes = FakeActivities(requests=(501,))
        async with _worker(env, fakes, queue):
            history = await _parallel_and_requests(env, queue, fakes, "replay-parallel-and-requests")
            (HERE / "report_parallel_and_requests.json").write_text(history.to_json())


async def _parallel_and_requests(env, queue: str, fakes, workflow_id: str):
    """Sample Selection ‖ Data Owner Identification, a request chased past its due date, submitted and accepted,
    up to Test Execution waiting for the tester; the run is then terminated and its history returned."""
    from workflows.temporal.contracts import (
        DATA_PROFILING,
        PLANNING,
        SAMPLE_SELECTION,
        SCOPING,
        CompleteDataOwnersInput,
        ReportWorkflowInput,
        RequestEventInput,
        RequestSchedule,
        State,
        UpdateResult,
    )
    from workflows.temporal.report_workflow import ReportTestWorkflow
    from workflows.tests.test_report_workflow import _decide, _submit, _wait_state

    handle = await env.client.start_workflow(
        ReportTestWorkflow.run,
        ReportWorkflowInput(1, 30, 130, skip_phases=[PLANNING, DATA_PROFILING, SCOPING], schedule=RequestSchedule()),
        id=workflow_id, task_queue=queue)
    await _wait_state(env, handle, State.AWAITING_SUBMISSION, SAMPLE_SELECTION)
    samples = await _submit(handle, SAMPLE_SELECTION)
    await _decide(handle, SAMPLE_SELECTION, samples.version_id, approve=True)
    await handle.execute_update("complete_data_owner_identification", CompleteDataOwnersInput("c", 3),
                                result_type=UpdateResult)
    await env.sleep(timedelta(days=13))
    fakes.request_status[501] = "submitted"
    await handle.execute_update("request_submitted", RequestEventInput("s", 501, 5), result_type=UpdateResult)
    fakes.request_status[501] = "accepted"
    await handle.execute_update("request_reviewed", RequestEventInput("r", 501, 5), result_type=UpdateResult)
    await _wait_state(env, handle, State.AWAITING_SUBMISSION, "test_execution")
    await handle.terminate("recorded")
    return await handle.fetch_history()


async def record_profiling_review() -> None:
    """Data Profiling since the patch "profiling-review": a file profiled, a replacement profiled, the
    Data Profiling version sent back and approved; a replacement while Scoping waits; Scoping approved."""
    from temporalio.testing import WorkflowEnvironment

    from workflows.temporal.contracts import (
        DATA_PROFILING,
        PLANNING,
        SCOPING,
        RegisterPopulationInput,
        ReportWorkflowInput,
        State,
        UpdateResult,
    )
    from workflows.temporal.report_workflow import ReportTestWorkflow
    from workflows.testing import TEST_SERVER
    from workflows.tests.test_report_workflow import FakeActivities, _decide, _submit, _wait_state, _worker

    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        queue = f"record-{uuid.uuid4().hex}"
        async with _worker(env, FakeActivities(), queue):
            handle = await env.client.start_workflow(
                ReportTestWorkflow.run, ReportWorkflowInput(1, 12, 22, skip_phases=[PLANNING], last_phase=SCOPING),
                id="replay-profiling-review", task_queue=queue)
            await _wait_state(env, handle, State.AWAITING_UPLOAD, DATA_PROFILING)
            for key, file_id in (("p1", 1), ("p2", 2)):
                await handle.execute_update("register_population", RegisterPopulationInput(key, file_id, 1),
                                            result_type=UpdateResult)
                await _wait_state(env, handle, State.AWAITING_SUBMISSION, DATA_PROFILING)
            first = await _submit(handle, DATA_PROFILING)
            await _decide(handle, DATA_PROFILING, first.version_id, approve=False, notes="map occupancy_type")
            await _wait_state(env, handle, State.AWAITING_SUBMISSION, DATA_PROFILING)
            second = await _submit(handle, DATA_PROFILING)
            await _decide(handle, DATA_PROFILING, second.version_id, approve=True)
            await _wait_state(env, handle, State.AWAITING_SUBMISSION, SCOPING)
            await handle.execute_update("register_population", RegisterPopulationInput("p3", 3, 1),
                                        result_type=UpdateResult)
            await _wait_state(env, handle, State.AWAITING_SUBMISSION, SCOPING)
            scoping = await _submit(handle, SCOPING)
            await _decide(handle, SCOPING, scoping.version_id, approve=True)
            await handle.result()
            (HERE / "report_profiling_review.json").write_text((await handle.fetch_history()).to_json())


async def record_test_execution(workflow_id: str = "replay-test-execution-extension",
                                path: Path = HERE / "report_test_execution_extension.json",
                                check=lambda history: True) -> None:
    """Test Execution with a sample extension: submitted, extension approved, request reopened and
    chased, submitted again and approved (issue 6); the history is checked by `check` and written to `path`."""
    from temporalio.testing import WorkflowEnvironment

    from workflows.temporal.contracts import (
        DATA_OWNER_IDENTIFICATION,
        DATA_PROFILING,
        PLANNING,
        REQUEST_FOR_INFORMATION,
        SAMPLE_SELECTION,
        SCOPING,
        TEST_EXECUTION,
        DecideExtensionInput,
        ReportWorkflowInput,
        RequestEventInput,
        State,
        UpdateResult,
    )
    from workflows.temporal.report_workflow import ReportTestWorkflow
    from workflows.testing import TEST_SERVER
    from workflows.tests.test_report_workflow import FakeActivities, _decide, _submit, _wait_state, _worker

    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        fakes = FakeActivities(requests=(801,))
        fakes.extensions = [91]
        fakes.extension_requests = {91: [801]}
        queue = f"record-{uuid.uuid4().hex}"
        async with _worker(env, fakes, queue):
            handle = await env.client.start_workflow(
                ReportTestWorkflow.run,
                ReportWorkflowInput(1, 50, 150, skip_phases=[PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION,
                                                              DATA_OWNER_IDENTIFICATION]),
                id=workflow_id, task_queue=queue)
            await _wait_state(env, handle, State.AWAITING_EVIDENCE, REQUEST_FOR_INFORMATION)
            fakes.request_status[801] = "submitted"
            await handle.execute_update("request_submitted", RequestEventInput("s", 801, 5), result_type=UpdateResult)
            fakes.request_status[801] = "accepted"
            await handle.execute_update("request_reviewed", RequestEventInput("r", 801, 5), result_type=UpdateResult)
            await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
            await _submit(handle, TEST_EXECUTION)
            await handle.execute_update("decide_sample_extension", DecideExtensionInput("x", 91, 2, True),
                                        result_type=UpdateResult)
            await _wait_state(env, handle, State.AWAITING_EVIDENCE, TEST_EXECUTION)
            await env.sleep(timedelta(days=9))
            fakes.request_status[801] = "submitted"
            await handle.execute_update("request_submitted", RequestEventInput("s2", 801, 5),
                                        result_type=UpdateResult)
            fakes.request_status[801] = "accepted"
            await handle.execute_update("request_reviewed", RequestEventInput("r2", 801, 5),
                                        result_type=UpdateResult)
            await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
            again = await _submit(handle, TEST_EXECUTION)
            await _decide(handle, TEST_EXECUTION, again.version_id, approve=True)
            await handle.result()
            history = await handle.fetch_history()
            assert check(history)
            path.write_text(history.to_json())


async def record_finalize() -> None:
    """Observations with a send-back of the signed report to Observations, three sign-offs, the package."""
    from temporalio.testing import WorkflowEnvironment

    from workflows.temporal.contracts import FINALIZE, OBSERVATIONS, State
    from workflows.testing import TEST_SERVER
    from workflows.tests.test_finalize_workflow import BEFORE_OBSERVATIONS, FinalizeFakes, _sign
    from workflows.tests.test_report_workflow import _wait_state, _worker

    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        queue = f"record-{uuid.uuid4().hex}"
        async with _worker(env, FinalizeFakes(), queue):
            history = await _observations_and_finalize(env, queue, "replay-observations-and-finalize")
            (HERE / "report_observations_and_finalize.json").write_text(history.to_json())

            # A cycle of two reports: one removed with a reason, the other signed off; the cycle completes.
            from workflows.temporal.contracts import (
                CycleReportRef,
                CycleWorkflowInput,
                RemoveReportInput,
                UpdateResult,
                report_workflow_id,
            )
            from workflows.temporal.cycle_workflow import TestCycleWorkflow

            cycle = await env.client.start_workflow(
                TestCycleWorkflow.run,
                CycleWorkflowInput(77, [CycleReportRef(1, 101), CycleReportRef(2, 102)],
                                   skip_phases=[*BEFORE_OBSERVATIONS, OBSERVATIONS], last_phase=FINALIZE),
                id="replay-cycle-with-removal", task_queue=queue)
            first = env.client.get_workflow_handle(report_workflow_id(77, 101))
            await _wait_state(env, first, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
            await _wait_state(env, env.client.get_workflow_handle(report_workflow_id(77, 102)),
                              State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
            await cycle.execute_update("remove_report", RemoveReportInput("r", 2, 1), result_type=UpdateResult)
            for role in ("test_manager", "report_owner", "data_executive"):
                await _sign(first, role)
            await cycle.result()
            (HERE / "cycle_with_removal.json").write_text((await cycle.fetch_history()).to_json())


async def record_compensation() -> None:
    """Scoping fails beyond its retries twice: compensated, waits, retried by an admin, then approved."""
    from temporalio.testing import WorkflowEnvironment

    from workflows.temporal.contracts import DATA_PROFILING, PLANNING, SCOPING, ReportWorkflowInput
    from workflows.temporal.report_workflow import ReportTestWorkflow
    from workflows.testing import TEST_SERVER
    from workflows.tests.test_report_workflow import FakeActivities, _worker, compensate_and_retry_scoping

    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        queue = f"record-{uuid.uuid4().hex}"
        async with _worker(env, FakeActivities(recommend_failures=2), queue):
            handle = await env.client.start_workflow(
                ReportTestWorkflow.run,
                ReportWorkflowInput(1, 12, 22, skip_phases=[PLANNING, DATA_PROFILING], last_phase=SCOPING),
                id="replay-compensate-and-retry", task_queue=queue)
            await compensate_and_retry_scoping(env, handle)
            (HERE / "report_compensate_and_retry.json").write_text((await handle.fetch_history()).to_json())


async def record_request_added() -> None:
    """Issue 7: a reassignment splits a request; request_added chases the new one and the phase waits for it."""
    from temporalio.testing import WorkflowEnvironment

    from workflows.temporal.contracts import (
        DATA_OWNER_IDENTIFICATION,
        DATA_PROFILING,
        PLANNING,
        REQUEST_FOR_INFORMATION,
        SAMPLE_SELECTION,
        SCOPING,
        ReportWorkflowInput,
        RequestAddedInput,
        RequestEventInput,
        RequestSchedule,
        UpdateResult,
    )
    from workflows.temporal.report_workflow import ReportTestWorkflow
    from workflows.testing import TEST_SERVER
    from workflows.tests.test_report_workflow import FakeActivities, _wait_until, _worker

    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        fakes = FakeActivities(requests=(801, 802))
        queue = f"record-{uuid.uuid4().hex}"
        async with _worker(env, fakes, queue):
            handle = await env.client.start_workflow(
                ReportTestWorkflow.run,
                ReportWorkflowInput(1, 41, 141, skip_phases=[PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION,
                                                              DATA_OWNER_IDENTIFICATION],
                                    last_phase=REQUEST_FOR_INFORMATION,
                                    schedule=RequestSchedule(due_days=10, reminder_days_before=[3])),
                id="replay-request-added", task_queue=queue)
            await _wait_until(env, lambda: ("notify", (802, "request")) in fakes.calls)
            await env.sleep(timedelta(days=2))
            await handle.execute_update("request_added", RequestAddedInput("a", 803, 7, "open", 801),
                                        result_type=UpdateResult)
            fakes.request_status[803] = "open"
            await env.sleep(timedelta(days=13))
            for rid in (801, 802, 803):
                fakes.request_status[rid] = "submitted"
                await handle.execute_update("request_submitted", RequestEventInput(f"s{rid}", rid, 5),
                                            result_type=UpdateResult)
                fakes.request_status[rid] = "accepted"
                await handle.execute_update("request_reviewed", RequestEventInput(f"r{rid}", rid, 5),
                                            result_type=UpdateResult)
            await handle.result()
            (HERE / "report_request_added.json").write_text((await handle.fetch_history()).to_json())


async def _observations_and_finalize(env, queue: str, workflow_id: str):
    """Observations approved, a send-back of the signed report to Observations, then three sign-offs: the history."""
    from workflows.temporal.contracts import FINALIZE, OBSERVATIONS, ReportWorkflowInput, State
    from workflows.temporal.report_workflow import ReportTestWorkflow
    from workflows.tests.test_finalize_workflow import BEFORE_OBSERVATIONS, _approve_observations, _sign
    from workflows.tests.test_report_workflow import _wait_state

    handle = await env.client.start_workflow(
        ReportTestWorkflow.run,
        ReportWorkflowInput(1, 10, 20, skip_phases=BEFORE_OBSERVATIONS, last_phase=FINALIZE),
        id=workflow_id, task_queue=queue)
    await _approve_observations(env, handle)
    await _wait_state(env, handle, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
    await _sign(handle, "test_manager")
    await _sign(handle, "report_owner", sign=False, send_back_to=OBSERVATIONS, notes="OBS-2 is high")
    await _approve_observations(env, handle)
    await _wait_state(env, handle, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
    for role in ("test_manager", "report_owner", "data_executive"):
        await _sign(handle, role)
    await handle.result()
    return await handle.fetch_history()


async def record_local_activities() -> None:
    """The Observations and Finalize path of record_finalize (decisions, a send-back that reopens a phase,
    three signatures, phases completed, the report finished) since the short database steps run as local
    activities (patch local-database-activities): their markers replay against today's code."""
    from temporalio.testing import WorkflowEnvironment

    from workflows.testing import TEST_SERVER
    from workflows.tests.test_finalize_workflow import FinalizeFakes
    from workflows.tests.test_report_workflow import _worker

    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        queue = f"record-{uuid.uuid4().hex}"
        async with _worker(env, FinalizeFakes(), queue):
            history = await _observations_and_finalize(env, queue, "replay-local-activities")
            assert any(e.HasField("marker_recorded_event_attributes") for e in history.events)
            (HERE / "report_local_activities.json").write_text(history.to_json())


async def _record_parallel_and_requests(workflow_id: str, check, path: Path) -> None:
    """Record _parallel_and_requests' path with today's code, check its history, write it to `path`."""
    from temporalio.testing import WorkflowEnvironment

    from workflows.testing import TEST_SERVER
    from workflows.tests.test_report_workflow import FakeActivities, _worker

    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        queue = f"record-{uuid.uuid4().hex}"
        fakes = FakeActivities(requests=(501,))
        async with _worker(env, fakes, queue):
            history = await _parallel_and_requests(env, queue, fakes, workflow_id)
            assert check(history)
            path.write_text(history.to_json())


def _scheduled(history) -> set[str]:
    """The names of the ordinary activities a history scheduled."""
    return {e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events if e.HasField("activity_task_scheduled_event_attributes")}


def _local(history) -> set[str]:
    """The names of the local activities a history recorded (a marker each)."""
    import json

    return {json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)["activity_type"]
            for e in history.events if e.HasField("marker_recorded_event_attributes")
            and e.marker_recorded_event_attributes.marker_name == "core_local_activity"}


async def record_local_entry() -> None:
    """The path of report_parallel_and_requests.json since entering a phase and opening the requests run as
    local activities (patch local-phase-entry): their markers replay, and an
    admin's reset finds where each phase was entered by them (workflows/tests/test_reset_point.py)."""
    await _record_parallel_and_requests(
        "replay-local-entry", lambda history: "cycle_report_enter_phase" not in _scheduled(history),
        HERE / "report_local_entry.json")


async def record_answer_first() -> None:
    """The path of report_local_entry.json since an update's answer goes out before the local activities that
    follow it (patch answer-before-local-activities): the first activity after an answer is an ordinary one."""
    await _record_parallel_and_requests(
        "replay-answer-first", lambda history: "cycle_report_complete_phase" in _scheduled(history),
        HERE / "report_answer_first.json")


async def record_local_versions() -> None:
    """Three paths since a phase's version (but Test Execution's), the data owners' check, the sample extension's
    proposal and the observations' draft run as local activities (patch local-versions): Sample Selection's
    version, the data owners and the requests; Test Execution with an extension (its version still ordinary);
    Observations and Finalize."""
    from temporalio.testing import WorkflowEnvironment

    from workflows.testing import TEST_SERVER
    from workflows.tests.test_finalize_workflow import FinalizeFakes
    from workflows.tests.test_report_workflow import _worker

    await _record_parallel_and_requests(
        "replay-local-versions", lambda history: {"version_create", "data_owner_identification_check"}
        <= _local(history) - _scheduled(history),
        HERE / "report_local_versions.json")
    await record_test_execution(
        "replay-local-versions-test-execution",
        HERE / "report_local_versions_test_execution.json",
        lambda history: "version_create" in _scheduled(history) - _local(history)
        and "sample_extension_propose" in _local(history) - _scheduled(history))
    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        queue = f"record-{uuid.uuid4().hex}"
        async with _worker(env, FinalizeFakes(), queue):
            history = await _observations_and_finalize(env, queue, "replay-local-versions-finalize")
            assert {"version_create", "observations_draft"} <= _local(history) - _scheduled(history)
            (HERE / "report_local_versions_finalize.json").write_text(history.to_json())


RECORDINGS = {"before_test_execution": record, "profiling_review": record_profiling_review,
              "test_execution": record_test_execution, "finalize": record_finalize,
              "compensation": record_compensation, "request_added": record_request_added,
              "local_activities": record_local_activities, "local_entry": record_local_entry,
              "answer_first": record_answer_first, "local_versions": record_local_versions}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synapse.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import django

    django.setup()
    # Name the recordings to make (default: all); keep the files of earlier releases.
    for name in sys.argv[1:] or list(RECORDINGS):
        asyncio.run(RECORDINGS[name]())
    print(f"histories written to {HERE}")
