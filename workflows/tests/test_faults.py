"""Faults while a report goes from Sample Selection to Test Execution, or on to the seal (issue 10), seeded
and bounded.

The worker runs as a real process (manage.py run_temporal_worker, with its outbox) that these tests
SIGKILL; people act through the services, as the pages and the API do. Each test ends with the report
at Test Execution, the workflow and the database agreeing, nothing written twice and nothing lost.
Set FAULT_SEED to replay another random sequence.
"""
from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from cycles.models import (
    Attribute,
    CycleReport,
    EvidencePackage,
    FinalReport,
    InformationRequest,
    PhaseState,
    PopulationFile,
    ProfileResult,
    RequestNotification,
    SignOff,
    TestResult as Cell,
)
from cycles.services.execution import test_results_bulk as results_bulk
from cycles.services.profiling import population_file_upload
from cycles.services.profiling_checks import column_mappings_confirm_matched
from cycles.services.requests import (
    data_owners_assign_bulk,
    evidence_review,
    evidence_upload,
    information_request_review,
    information_request_submit,
)
from cycles.services.sampling import samples_draw
from synapse.exceptions import ServiceUnavailableError
from versioning.models import Version, VersionStatus
from workflows.models import WorkflowDecision, WorkflowStep
from workflows.services import (
    workflow_complete_data_owners,
    workflow_decide_version,
    workflow_register_population,
    workflow_request_reviewed,
    workflow_request_submitted,
    workflow_sign_off,
    workflow_start,
    workflow_status,
    workflow_submit_version,
)
from workflows.temporal.client import bridge
from workflows.testing import DevServer, WorkerProcess, database_url, point_settings_at, wait_until
from workflows.tests.test_integration_requests import scoped_report  # noqa: F401 - fixture

SEED = int(os.environ.get("FAULT_SEED", "10"))
SKIP = ["planning", "data_profiling", "scoping"]
pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]


def worker_env(harness, settings, **extra) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "synapse.settings",
        "DATABASE_URL": database_url(),
        "TEMPORAL_ADDRESS": harness.address if harness else settings.TEMPORAL_ADDRESS,
        "TEMPORAL_TASK_QUEUE": settings.TEMPORAL_TASK_QUEUE,
        "MEDIA_ROOT": settings.MEDIA_ROOT,
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def fresh(cycle_report) -> CycleReport:
    return CycleReport.objects.select_related("report__lob", "cycle", "tester").get(pk=cycle_report.pk)


def active(cycle_report, phase: str) -> bool:
    return PhaseState.objects.filter(cycle_report=cycle_report, phase=phase, status="active").exists()


def drive_report(users, cycle, report, *, between=lambda step: None, through_finalize: bool = False,
                 skip=SKIP) -> None:
    """Take a scoped report from its start to Test Execution the way people do, whatever the worker does;
    with through_finalize, on through Test Execution, Observations and the three sign-offs to the seal.
    With skip=[] the report starts unplanned and Planning, Data Profiling and Scoping are driven too.

    Each step is taken once, as a person would; when its message can't be delivered at once it stays
    stored and the worker's outbox delivers it. `between(step)` runs after each step (to inject faults).
    """
    tester, owner, executive, data_owner = users["tester"], users["owner"], users["executive"], users["data_owner"]
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=list(skip))
    between("started")
    if "planning" not in skip:
        drive_the_start(users, report, between=between)
    wait_until(lambda: hasattr(fresh(report), "sampling_plan"), timeout=90, what="sampling plan")
    samples_draw(user=tester, cycle_report=fresh(report))
    workflow_submit_version(user=tester, cycle_report=fresh(report), phase="sample_selection")
    between("samples submitted")
    version = wait_until(
        lambda: Version.objects.filter(cycle_report=report, phase="sample_selection").first(),
        timeout=90, what="sample version")
    workflow_decide_version(user=owner, version=version, approve=True)
    between("samples approved")
    wait_until(lambda: active(report, "data_owner_identification"), timeout=90, what="data owner identification")
    data_owners_assign_bulk(user=executive, cycle_report=fresh(report), data_owner=data_owner,
                            attribute_ids=list(Attribute.objects.filter(cycle_report=report, scoping__in_scope=True)
                                               .values_list("pk", flat=True)))
    workflow_complete_data_owners(user=executive, cycle_report=fresh(report))
    between("data owners complete")
    request = wait_until(lambda: InformationRequest.objects.filter(cycle_report=report).first(),
                         timeout=90, what="the request for information")
    evidence_upload(user=data_owner, request=request,
                    files=[SimpleUploadedFile("ledger.csv", b"account_id,balance\nA0001,101\n")])
    request = information_request_submit(user=data_owner, request=request)
    workflow_request_submitted(user=data_owner, request=request)
    between("evidence submitted")
    evidence_review(user=tester, evidence=request.evidence.get(), accept=True)
    request = information_request_review(user=tester, request=request)
    workflow_request_reviewed(user=tester, request=request)
    between("evidence accepted")
    wait_until(lambda: in_test_execution(report), timeout=120, what="Test Execution")
    if through_finalize:
        drive_to_the_seal(users, report, between=between)


def live_state(user, report, phase: str) -> str:
    """The phase's state as the workflow says it now (the page shows it; '' while only a stored one is known)."""
    try:
        status = workflow_status(user=user, cycle_report=fresh(report))
    except ServiceUnavailableError:  # the worker is away and no answer was stored yet
        return ""
    return status.active.get(phase, "") if status and not status.unavailable else ""


def wait_live(user, report, phase: str, state: str) -> None:
    wait_until(lambda: live_state(user, report, phase) == state, timeout=120, interval=0.3,
               what=f"{phase} {state}")


def submit_and_approve(users, report, phase: str, *, between, name: str) -> None:
    """The tester submits when the page offers it; the owner decides the version the page shows."""
    wait_live(users["tester"], report, phase, "awaiting_submission")
    workflow_submit_version(user=users["tester"], cycle_report=fresh(report), phase=phase)
    between(f"{name} submitted")
    version = wait_until(lambda: Version.objects.filter(cycle_report=report, phase=phase,
                                                        status=VersionStatus.SUBMITTED).first(),
                         timeout=120, what=f"{phase} version")
    workflow_decide_version(user=users["owner"], version=version, approve=True)
    between(f"{name} approved")


def drive_the_start(users, report, *, between) -> None:
    """Planning, Data Profiling (reviewed) and Scoping, each step taken once when the page would offer it."""
    tester = users["tester"]
    submit_and_approve(users, report, "planning", between=between, name="planning")
    wait_live(tester, report, "data_profiling", "awaiting_upload")
    population = population_file_upload(
        user=tester, cycle_report=fresh(report),
        uploaded_file=SimpleUploadedFile("population.csv", POPULATION, content_type="text/csv"))
    workflow_register_population(user=tester, population_file=population)
    between("population uploaded")
    wait_live(tester, report, "data_profiling", "awaiting_submission")
    column_mappings_confirm_matched(user=tester, population_file=population)
    submit_and_approve(users, report, "data_profiling", between=between, name="profiling")
    submit_and_approve(users, report, "scoping", between=between, name="scoping")


POPULATION = ("\n".join(
    ["account_id,customer_name,balance,origination_date,is_delinquent"]
    + [f"A{i:04d},Customer {i},{100 + i},2024-01-{1 + i % 28:02d},{'true' if i % 9 == 0 else 'false'}"
       for i in range(200)]) + "\n").encode()


def drive_to_the_seal(users, report, *, between) -> None:
    """Test Execution, Observations and Finalize, each step taken once when the page would offer it."""
    tester, owner = users["tester"], users["owner"]
    untested = list(Cell.objects.filter(cycle_report=report, result="not_tested").values_list("pk", flat=True))
    results_bulk(user=tester, cycle_report=fresh(report), result_ids=untested, action="pass")
    workflow_submit_version(user=tester, cycle_report=fresh(report), phase="test_execution")
    between("tests submitted")
    version = wait_until(lambda: Version.objects.filter(cycle_report=report, phase="test_execution").first(),
                         timeout=90, what="test execution version")
    workflow_decide_version(user=owner, version=version, approve=True)
    between("tests approved")
    wait_until(lambda: active(report, "observations") and WorkflowStep.objects.filter(
        activity_type="observations_draft", status=WorkflowStep.Status.COMPLETED).exists(),
        timeout=90, what="observations drafted")
    workflow_submit_version(user=tester, cycle_report=fresh(report), phase="observations")
    between("observations submitted")
    version = wait_until(lambda: Version.objects.filter(cycle_report=report, phase="observations").first(),
                         timeout=90, what="observations version")
    workflow_decide_version(user=owner, version=version, approve=True)
    between("observations approved")
    final = wait_until(lambda: FinalReport.objects.filter(cycle_report=report).first(), timeout=120,
                       what="the final report")
    for number, (role, name) in enumerate(SIGNERS):
        # The page offers a signature once the one before it is recorded.
        wait_until(lambda: SignOff.objects.filter(final_report=final).count() == number, timeout=90,
                   what=f"the sign-off before the {role}'s")
        workflow_sign_off(user=users[name], cycle_report=fresh(report), role=role)
        between(f"{role} signed")
    wait_until(lambda: fresh(report).status == "completed", timeout=180, what="the report sealed")


SIGNERS = (("test_manager", "manager"), ("report_owner", "owner"), ("data_executive", "executive"))
# The steps drive_report takes with through_finalize, by phase.
PHASE_STEPS = (
    ("started",), ("planning submitted", "planning approved"),
    ("population uploaded", "profiling submitted", "profiling approved"), ("scoping submitted", "scoping approved"),
    ("samples submitted", "samples approved"), ("data owners complete",),
    ("evidence submitted", "evidence accepted"), ("tests submitted", "tests approved"),
    ("observations submitted", "observations approved"),
    ("test_manager signed", "report_owner signed", "data_executive signed"),
)


def in_test_execution(report) -> bool:
    """Test Execution entered and its matrix prepared (the workflow waits for the tester there)."""
    return active(report, "test_execution") and WorkflowStep.objects.filter(
        activity_type="test_matrix_prepare", status=WorkflowStep.Status.COMPLETED).exists()


def diagnosis(worker: WorkerProcess) -> str:
    """What to look at when a fault test fails: decisions, the last steps, the worker's last lines."""
    if worker.proc and worker.proc.poll() is None:
        worker.proc.send_signal(signal.SIGUSR1)  # the worker prints its threads' stacks
        time.sleep(1)
    lines = [f"decision {d.update_name} {d.status} attempts={d.attempts} {d.error[:200]}"
             for d in WorkflowDecision.objects.order_by("created_at")]
    lines += [f"step {s.activity_type} {s.status} attempt={s.attempt} {s.error[:200]}"
              for s in WorkflowStep.objects.order_by("-started_at")[:8]]
    lines += [f"phase {p.phase} {p.status}" for p in PhaseState.objects.all()]
    logs = sorted(worker.log_dir.glob("worker-*.log"), key=lambda p: p.stat().st_mtime)
    if logs:
        lines.append(logs[-1].read_text()[-12000:])
    return "\n".join(lines)


def assert_consistent(report) -> None:
    """Workflow and database agree; nothing was written twice, nothing refused, nothing left undelivered."""
    report = fresh(report)
    assert in_test_execution(report) and report.phase == "test_execution"
    versions = Version.objects.filter(cycle_report=report, phase="sample_selection")
    assert [v.status for v in versions] == [VersionStatus.APPROVED]
    assert InformationRequest.objects.filter(cycle_report=report).count() == 1
    assert set(InformationRequest.objects.values_list("status", flat=True)) == {"accepted"}
    keys = list(RequestNotification.objects.values_list("key", flat=True))
    assert len(keys) == len(set(keys)), "an email went out twice"
    wait_for_every_decision_answered()
    refused = list(WorkflowDecision.objects.filter(status=WorkflowDecision.Status.REJECTED)
                   .values_list("update_name", "error"))
    assert refused == []


def wait_for_every_decision_answered(timeout: float = 60) -> None:
    """The outbox answers what was stored while Temporal was away (a bound for a loaded machine, not a target)."""
    def open_decisions():
        return list(WorkflowDecision.objects.filter(status__in=WorkflowDecision.OPEN)
                    .values_list("update_name", "status", "attempts", "error"))

    try:
        wait_until(lambda: not open_decisions(), timeout=timeout, what="every decision answered")
    except AssertionError as err:
        raise AssertionError(f"{err}; still open: {open_decisions()}") from None


def assert_sealed(report, *, from_start: bool = False) -> None:
    """After Test Execution: every version approved once, three signatures, one package, nothing refused."""
    report = fresh(report)
    assert report.status == "completed"
    reviewed = ("planning", "data_profiling", "scoping") if from_start else ()
    for phase in (*reviewed, "sample_selection", "test_execution", "observations"):
        versions = Version.objects.filter(cycle_report=report, phase=phase)
        assert [v.status for v in versions] == [VersionStatus.APPROVED], phase
    assert InformationRequest.objects.filter(cycle_report=report).count() == 1
    if from_start:
        assert PopulationFile.objects.filter(cycle_report=report).count() == 1
        assert Attribute.objects.filter(cycle_report=report).count() == 5  # drafted once, one per field
        profiled = list(ProfileResult.objects.filter(population_file__cycle_report=report)
                        .values_list("column_name", flat=True))
        assert len(profiled) == len(set(profiled)) == 5, profiled
    final = FinalReport.objects.get(cycle_report=report)
    assert list(SignOff.objects.filter(final_report=final).values_list("role", "decision")) == [
        (role, "signed") for role, _ in SIGNERS]
    assert EvidencePackage.objects.filter(final_report=final).count() == 1
    keys = list(RequestNotification.objects.values_list("key", flat=True))
    assert len(keys) == len(set(keys)), "an email went out twice"
    wait_for_every_decision_answered()
    refused = list(WorkflowDecision.objects.filter(status=WorkflowDecision.Status.REJECTED)
                   .values_list("update_name", "error"))
    assert refused == []


@pytest.fixture
def unplanned_report(users, cycle, cycle_report, settings, tmp_path):
    """A report at its very start (the random-kill test drives Planning, Profiling and Scoping too)."""
    settings.MEDIA_ROOT = str(tmp_path)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cycle.configuration = {**cycle.configuration, "rfi_due_days": 10, "reminder_days_before": [3, 1],
                           "escalation_days_after": 2, "data_owner_sla_days": 5}
    cycle.save(update_fields=["configuration"])
    return cycle_report


@pytest.fixture
def faults(temporal_harness, settings, transactional_db, cycle, tmp_path):
    point_settings_at(temporal_harness, settings)
    settings.TEMPORAL_BREAKER_SECONDS = 3
    bridge.reset()
    workers: list[WorkerProcess] = []

    def make(**extra) -> WorkerProcess:
        worker = WorkerProcess(worker_env(temporal_harness, settings, **extra), tmp_path)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()
    bridge.reset()

    async def terminate():
        try:
            await temporal_harness.client.get_workflow_handle(f"cycle-{cycle.pk}").terminate("test over")
        except Exception:  # noqa: BLE001 - already closed
            pass

    temporal_harness.call(terminate())


def test_worker_sigkilled_at_random_points_of_a_report(faults, users, cycle, unplanned_report):
    """SIGKILL the worker at a seeded random moment after a seeded step of each phase, from the very start
    (Planning, Data Profiling with its review, Scoping) through every phase to the sealed package (inside
    the activities and updates the step set off, or the outbox's delivery of it); a new worker starts at
    once, while people keep working."""
    rng = random.Random(SEED)
    worker = faults()
    worker.start()
    lock = threading.Lock()
    kills: list[str] = []
    restarts: list[threading.Thread] = []

    def kill_and_restart(where: str) -> None:
        with lock:
            worker.kill()
            kills.append(where)
            worker.start()

    # One kill per phase (at a seeded step of it), so the file stays within minutes on a busy machine.
    chosen = {rng.choice(steps) for steps in PHASE_STEPS}

    def between(step):
        if step not in chosen:
            return
        time.sleep(rng.uniform(0.0, 1.5))
        restarts.append(threading.Thread(target=kill_and_restart, args=(step,), daemon=True))
        restarts[-1].start()

    try:
        drive_report(users, cycle, unplanned_report, between=between, through_finalize=True, skip=[])
    except AssertionError as err:
        raise AssertionError(f"{err} (seed {SEED}, kills {kills})\n{diagnosis(worker)}") from err
    finally:
        for thread in restarts:
            thread.join(90)
    assert sorted(kills) == sorted(chosen), kills
    assert_sealed(unplanned_report, from_start=True)
    # Each killed attempt was retried after seconds (heartbeats, short timeouts), not after the old
    # 300 s start-to-close timeout: the report's whole life above is bounded by drive_report's waits.


def test_two_workers_on_one_queue_one_killed(faults, users, cycle, scoped_report):  # noqa: F811
    first, second = faults(), faults()
    first.start()
    second.start()

    def between(step):
        if step == "samples submitted":
            first.kill()  # the other worker on the queue carries on alone

    drive_report(users, cycle, scoped_report, between=between)
    assert_consistent(scoped_report)


# --- Temporal's dev server stopped and restarted with its database file -----------------------------------


def test_temporal_server_killed_mid_cycle_and_restarted_from_its_file(
    settings, transactional_db, users, cycle, scoped_report, tmp_path,  # noqa: F811
):
    server = DevServer(tmp_path / "temporal.db")
    server.start()
    settings.TEMPORAL_ADDRESS = server.address
    settings.TEMPORAL_NAMESPACE = "default"
    settings.TEMPORAL_TASK_QUEUE = f"test-{uuid.uuid4().hex[:12]}"
    settings.TEMPORAL_BREAKER_SECONDS = 3
    bridge.reset()
    worker = WorkerProcess(worker_env(None, settings), tmp_path)
    worker.start()
    def between(step):
        if step == "data owners complete":
            wait_until(lambda: InformationRequest.objects.exists(), timeout=60, what="request created")
            server.kill()  # the data owner submits and the tester accepts while it is down
        if step == "evidence accepted":
            assert WorkflowDecision.objects.filter(status=WorkflowDecision.Status.PENDING).count() == 2
            server.start()

    try:
        drive_report(users, cycle, scoped_report, between=between)
        assert_consistent(scoped_report)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{diagnosis(worker)}") from err
    finally:
        worker.stop()
        server.kill()
        bridge.reset()


# --- PostgreSQL unreachable for a while during an activity -------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(50)
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.open.clear()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_postgresql_unreachable_during_activities(faults, users, cycle, scoped_report):  # noqa: F811
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (the worker reaches it through a TCP proxy)")
    proxy = TcpProxy(int(connection.settings_dict["PORT"] or 5432))
    worker = faults(DATABASE_URL=database_url(proxy.port))
    worker.start()

    restore = threading.Timer(8, proxy.restore)

    def between(step):
        if step == "samples approved":
            # The database goes away for the worker for 8 s while the executive completes the data owners
            # (through the web's own connection): the activities that step sets off (the owners checked, the
            # requests created and emailed) meet the outage for sure. Before, the cut came after the
            # approval's activities had often finished and before any other began, and missed them.
            proxy.cut()
            restore.start()

    try:
        drive_report(users, cycle, scoped_report, between=between)
        assert_consistent(scoped_report)
    finally:
        restore.cancel()
        proxy.close()
    # The outage did hit activities: they failed on the database and were retried.
    assert WorkflowStep.objects.filter(attempt__gt=1, status=WorkflowStep.Status.COMPLETED).exists()
