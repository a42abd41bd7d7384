"""Issue 10's "Done when", run against the live stack: reports driven through the HTTP API under faults.

    .venv/bin/python bench/faults_live.py [--reports 10] [--seed 10] [--duration 2400]
                                         [--to test_execution|seal]
                                         [--database-url postgres://postgres@127.0.0.1:5432/faults_live]

Starts the stack itself, as `make run` does but on PostgreSQL: `temporal server start-dev` with its
state in a file, on free ports; `manage.py run_temporal_worker`; the web server (daphne on
synapse.asgi, DEBUG off); and a local SMTP sink (aiosmtpd) that every email goes to. The database
is dropped and made afresh (never name one that holds anything you want).

Then creates --reports reports in one cycle and drives each through the API alone, each person with
their own token, from Planning through every phase the API allows to Test Execution (--to seal: on
through Test Execution, Observations and the three sign-offs). Meanwhile, from a seeded random
sequence:

- the worker is SIGKILLed at random moments (every 3-15 s) and started again at once;
- the Temporal server is SIGKILLed once (when a report first reaches a seeded phase) and started again
  from its file after ~60 s;
- the web server is SIGKILLed between two requests (every 10-40 s) and started again;
- once a report has an open request for information, the worker is stopped while data owners submit
  evidence and the tester accepts it through the API, then started again.

At the end it checks every report: the workflow (status query, through the API) and the database
agree, no row is missing or written twice, no step was refused, every email went out exactly once.
Prints each report's outcome, the decision latency (stored -> answered) p50/p90, the longest a report
waited after a worker restart (target: within 30 s of the new worker starting), and the fault counts.
Exits 0 only if everything holds.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdb import fresh_database  # noqa: E402 (bench/ is the script's own folder)

RESTART_TARGET = 30.0  # seconds a report may wait after a new worker started
TEMPORAL_DOWN = 60.0
REVIEWED = ("planning", "data_profiling", "scoping", "sample_selection")
SIGNERS = (("test_manager", "manager"), ("report_owner", "owner"), ("data_executive", "executive"))


def setup_django(args, media: str) -> None:
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DEBUG"] = "false"
    os.environ["MEDIA_ROOT"] = media
    os.environ["LLM_PROVIDER"] = "offline"
    os.environ.setdefault("SECRET_KEY", "faults-live-" + "k3y" * 20)
    os.environ["DJANGO_SETTINGS_MODULE"] = "synapse.settings"
    import django

    django.setup()


# --- the stack -------------------------------------------------------------------------------------------


class SmtpSink:
    """A local SMTP server that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from workflows.testing import free_port

        self.messages: list[dict] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                message = message_from_bytes(envelope.content, policy=policy.default)
                sink.messages.append({"to": tuple(sorted(envelope.rcpt_tos)), "subject": " ".join(str(message["Subject"]).split()),
                                      "body": envelope.content.split(b"\r\n\r\n", 1)[-1]})
                return "250 OK"

        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


class Gate:
    """People's requests pass while it is open; closing it waits for the requests in flight to end.

    The web server is killed between two requests: with the gate closed.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.inside = 0
        self.closed = False

    def __enter__(self):
        with self.cond:
            self.cond.wait_for(lambda: not self.closed)
            self.inside += 1

    def __exit__(self, *exc):
        with self.cond:
            self.inside -= 1
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.wait_for(lambda: self.inside == 0)

    def open(self) -> None:
        with self.cond:
            self.closed = False
            self.cond.notify_all()


@dataclass
class Log:
    """What happened, for the figures at the end (times are time.monotonic())."""

    worker_kills: int = 0
    worker_stops: int = 0
    web_kills: int = 0
    temporal_kills: int = 0
    worker_ready: list[float] = field(default_factory=list)  # each time a (new) worker started
    temporal_ready: list[float] = field(default_factory=list)
    # (report, what, started, ended) of every wait for the workflow or its activities.
    waits: list[tuple[int, str, float, float]] = field(default_factory=list)
    evidence_steps_while_stopped: int = 0
    errors: list[str] = field(default_factory=list)  # 409s, 5xx, anything a person should not see
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)
        print("  !", text, flush=True)


class Stack:
    def __init__(self, args, workdir: Path, smtp: SmtpSink) -> None:
        from django.conf import settings

        from workflows.testing import DevServer, WebProcess, WorkerProcess

        self.server = DevServer(workdir / "temporal.db")
        env = {
            **os.environ,
            "DATABASE_URL": args.database_url,
            "TEMPORAL_ADDRESS": self.server.address,
            "TEMPORAL_NAMESPACE": "default",
            "TEMPORAL_TASK_QUEUE": "synapse-faults-live",
            "MEDIA_ROOT": settings.MEDIA_ROOT,
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp.port),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.update({k: env[k] for k in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TASK_QUEUE")})
        settings.TEMPORAL_ADDRESS = env["TEMPORAL_ADDRESS"]
        settings.TEMPORAL_TASK_QUEUE = env["TEMPORAL_TASK_QUEUE"]
        # As `make run` starts it (the Procfile's worker line), plus patience for the server at start.
        self.worker = WorkerProcess(env, workdir, args=("--connect-retries", "180", "--metrics-port", "0"))
        self.web = WebProcess(env, workdir)

    def start(self) -> None:
        self.server.start()
        self.worker.start()
        self.web.start()

    def stop(self) -> None:
        for process in (self.web, self.worker):
            process.stop()
        self.server.kill()


# --- the people ------------------------------------------------------------------------------------------


class Person:
    """One person's token client on one thread: every request passes the gate; a dead web server is waited for."""

    def __init__(self, base: str, key: str, gate: Gate, log: Log, who: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.gate = gate
        self.log = log
        self.who = who

    def call(self, method: str, path: str, *, ok=(200,), **kwargs):
        gives_up = time.monotonic() + 180  # a web server that stays away or keeps failing ends the report
        while time.monotonic() < gives_up:
            with self.gate:
                try:
                    response = self.session.request(method, self.base + path, timeout=120, **kwargs)
                except requests.ConnectionError:
                    response = None
            if response is None:
                time.sleep(0.5)  # the web server is being restarted
                continue
            if response.status_code in ok:
                return response.json() if response.content else None
            text = f"{self.who} {method} {path}: {response.status_code} {response.text[:300]}"
            if response.status_code >= 500 or response.status_code in (401, 403):
                self.log.error(text)  # never expected; try again, as a person would
                time.sleep(2)
                continue
            raise StepRefused(text)
        raise StepRefused(f"{self.who} {method} {path}: no answer for 180 s")

    def get(self, path: str, **params):
        return self.call("GET", path, params=params)

    def post(self, path: str, *, ok=(200, 201, 202), **kwargs):
        return self.call("POST", path, ok=ok, **kwargs)


class StepRefused(Exception):
    pass


class StatusBoard:
    """One thread reads the cycle's status through the API (each report's live workflow status) for all."""

    def __init__(self, person: Person, cycle_id: int) -> None:
        self.person = person
        self.cycle_id = cycle_id
        self.live: dict[int, dict] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                body = self.person.get(f"/api/v1/workflow/status/{self.cycle_id}/")
                for row in body["reports"]:
                    live = row["live"]
                    if live and not live.get("as_of"):  # only what the workflow says now
                        self.live[row["cycle_report_id"]] = live
            except Exception as err:  # noqa: BLE001 - the board keeps reading
                self.person.log.error(f"status board: {err}")
            self.stop.wait(1.0)


class Driver:
    """Takes one report from Planning to Test Execution (or the seal) through the API, each step once."""

    def __init__(self, cr: int, people: dict[str, Person], board: StatusBoard, log: Log, deadline: float,
                 to: str, data_owner_id: int) -> None:
        self.cr = cr
        self.p = people
        self.board = board
        self.log = log
        self.deadline = deadline
        self.to = to
        self.data_owner_id = data_owner_id
        self.steps = 0
        self.outcome = "not started"

    def wait(self, predicate, what: str, *, interval: float = 0.5):
        started = time.monotonic()
        while True:
            value = predicate()
            if value:
                self.log.waits.append((self.cr, what, started, time.monotonic()))
                return value
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"report {self.cr}: timed out waiting for {what}")
            time.sleep(interval)

    def wait_for(self, phase: str, state: str) -> dict:
        return self.wait(lambda: (s := self.board.live.get(self.cr, {})).get("active", {}).get(phase) == state and s,
                         f"{phase} {state}")

    def step(self, person: str, path: str, **kwargs):
        self.steps += 1
        return self.p[person].post(path, **kwargs)

    def version_of(self, phase: str) -> int:
        rows = self.p["owner"].get("/api/v1/versions/", cycle_report=self.cr, phase=phase,
                                   status="submitted")["results"]
        return rows[0]["id"] if rows else 0

    def submit_and_approve(self, phase: str) -> None:
        self.wait_for(phase, "awaiting_submission")
        self.step("tester", f"/api/v1/cycle-reports/{self.cr}/submit/", json={"phase": phase})
        # The owner decides as soon as the submitted version is there to see (its page offers the decision),
        # which can be before the workflow has taken in the activity's result.
        version = self.wait(lambda: self.version_of(phase), f"{phase} version")
        self.step("owner", f"/api/v1/versions/{version}/decide/", json={"approve": True})

    def run(self) -> None:
        try:
            self._run()
            self.outcome = "ok"
        except Exception as err:  # noqa: BLE001 - reported per report
            self.outcome = f"FAILED: {err}"
            self.log.error(f"report {self.cr}: {err}\n{traceback.format_exc(limit=3)}")

    def _run(self) -> None:
        from workflows.tests.api_steps import population_csv

        cr, tester = self.cr, self.p["tester"]
        self.outcome = "planning"
        self.wait_for("planning", "awaiting_submission")
        attributes = tester.get("/api/v1/attributes/", cycle_report=cr)["results"]
        balance = next(a for a in attributes if a["name"] == "balance")
        self.steps += 1
        tester.call("PATCH", f"/api/v1/attributes/{balance['id']}/", json={"cde": True, "risk_score": 9})
        self.submit_and_approve("planning")

        self.outcome = "data_profiling"
        self.wait_for("data_profiling", "awaiting_upload")
        uploaded = self.step("tester", f"/api/v1/cycle-reports/{cr}/population-files/",
                             files={"file": ("population.csv", population_csv(200), "text/csv")})
        population = uploaded["file"]["id"]
        self.wait_for("data_profiling", "awaiting_submission")
        self.step("tester", f"/api/v1/population-files/{population}/mappings/confirm/")
        self.submit_and_approve("data_profiling")

        self.outcome = "scoping"
        self.wait_for("scoping", "awaiting_submission")
        for attribute in attributes:
            in_scope = attribute["name"] != "origination_date"
            self.step("tester", f"/api/v1/cycle-reports/{cr}/scoping/", json={
                "attribute_id": attribute["id"], "in_scope": in_scope,
                "rationale": "Tested every cycle" if in_scope else "Not reported this cycle"})
        self.submit_and_approve("scoping")

        self.outcome = "sample_selection"
        self.wait_for("sample_selection", "awaiting_submission")
        self.steps += 1
        tester.call("PATCH", f"/api/v1/cycle-reports/{cr}/sampling-plan/",
                    json={"seed": 7, "tolerable_rate": "0.25", "risk_of_overreliance": "0.10"})
        self.step("tester", f"/api/v1/cycle-reports/{cr}/samples/draw/")
        self.submit_and_approve("sample_selection")

        self.outcome = "data_owner_identification"
        self.wait_for("data_owner_identification", "awaiting_data_owners")
        rows = self.p["executive"].get(f"/api/v1/cycle-reports/{cr}/data-owners/")["results"]
        self.step("executive", f"/api/v1/cycle-reports/{cr}/data-owners/bulk/", json={
            "data_owner_id": self.data_owner_id, "attribute_ids": [row["attribute_id"] for row in rows]})

        self.outcome = "request_for_information"
        self.answer(f"ledger-{cr}.csv")
        self.outcome = "test_execution"
        self.wait_for("test_execution", "awaiting_submission")
        if self.to == "seal":
            self.to_the_seal()

    def open_request(self) -> int | None:
        rows = self.p["data_owner"].get("/api/v1/requests/", cycle_report=self.cr)["results"]
        return next((r["id"] for r in rows if r["cycle_report"] == self.cr and r["status"] == "open"), None)

    def answer(self, name: str) -> None:
        """The data owner uploads a file and submits; the tester accepts the evidence and the request."""
        request_id = self.wait(self.open_request, "an open request")
        self.step("data_owner", f"/api/v1/requests/{request_id}/evidence/",
                  files={"files": (name, f"account_id,balance\n{name}\n".encode(), "text/csv")})
        self.step("data_owner", f"/api/v1/requests/{request_id}/submit/")
        for evidence in self.p["tester"].get(f"/api/v1/requests/{request_id}/")["evidence"]:
            if evidence["status"] != "accepted":
                self.step("tester", f"/api/v1/evidence/{evidence['id']}/review/", json={"accept": True})
        self.step("tester", f"/api/v1/requests/{request_id}/review/")

    def to_the_seal(self) -> None:
        cr, tester = self.cr, self.p["tester"]
        untested, page = [], 1
        while True:
            body = tester.get(f"/api/v1/cycle-reports/{cr}/test-results/", result="not_tested", page=page)
            untested += [c["id"] for c in body["results"]]
            if not body.get("next"):
                break
            page += 1
        self.step("tester", f"/api/v1/cycle-reports/{cr}/test-results/bulk/",
                  json={"action": "pass", "result_ids": untested, "comment": "Agrees with the ledger"})
        self.submit_and_approve("test_execution")
        self.outcome = "observations"
        self.wait_for("observations", "awaiting_submission")
        self.submit_and_approve("observations")
        self.outcome = "finalize"
        for role, name in SIGNERS:
            self.wait_for("finalize", f"awaiting_{role}_sign_off")
            self.step(name, f"/api/v1/cycle-reports/{cr}/sign-off/", json={"role": role})
        self.outcome = "sealing"
        self.wait(lambda: self.p["manager"].get(f"/api/v1/cycle-reports/{cr}/")["status"] == "completed",
                  "the report sealed")


# --- faults ----------------------------------------------------------------------------------------------


class Chaos:
    """The seeded faults, on threads of their own, until stop()."""

    def __init__(self, stack: Stack, gate: Gate, log: Log, rng: random.Random, drivers: list[Driver]) -> None:
        self.stack = stack
        self.gate = gate
        self.log = log
        self.rng = rng
        self.drivers = drivers
        self.stopping = threading.Event()
        # Held by whoever takes the worker or the server away, so the kills don't overlap.
        self.worker_lock = threading.Lock()
        self.threads = [threading.Thread(target=t, daemon=True, name=t.__name__)
                        for t in (self._kill_workers, self._kill_web, self._scenario)]
        # Each thread's own random sequence, from the seed, whatever the others do.
        self.rngs = {t.name: random.Random(rng.random()) for t in self.threads}
        self.started = time.monotonic()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(300)

    def _pause(self, low: float, high: float, name: str) -> bool:
        return not self.stopping.wait(self.rngs[name].uniform(low, high))

    def _kill_workers(self) -> None:
        while self._pause(3, 15, "_kill_workers"):
            with self.worker_lock:
                if self.stopping.is_set():
                    return
                self.stack.worker.kill()
                self.log.worker_kills += 1
                self.stack.worker.start()
                self.log.worker_ready.append(time.monotonic())
                print(f"  worker SIGKILLed and restarted ({self.log.worker_kills})", flush=True)

    def _kill_web(self) -> None:
        while self._pause(10, 40, "_kill_web"):
            self.gate.close()
            try:
                self.stack.web.kill()
                self.log.web_kills += 1
                self.stack.web.start()
            finally:
                self.gate.open()
            print(f"  web server SIGKILLed and restarted ({self.log.web_kills})", flush=True)

    def _scenario(self) -> None:
        # The Temporal server goes away once for about a minute, when a report first reaches a seeded
        # phase (mid-run whatever the machine's speed).
        phase = self.rngs["_scenario"].choice(("data_profiling", "scoping", "sample_selection"))
        if not self._wait_for_phase(phase):
            return
        self._pause(0, 5, "_scenario")
        with self.worker_lock:
            self.stack.server.kill()
            self.log.temporal_kills += 1
            print("  Temporal server SIGKILLed", flush=True)
            self.stopping.wait(TEMPORAL_DOWN)
            self.stack.server.start()
            self.log.temporal_ready.append(time.monotonic())
            print("  Temporal server restarted from its file", flush=True)
        # The worker stops while people answer requests for information, and comes back.
        waiting = self._wait_for_open_requests()
        if not waiting:
            return
        with self.worker_lock:
            self.stack.worker.stop()
            self.log.worker_stops += 1
            print(f"  worker stopped while {len(waiting)} requests are open", flush=True)
            self._evidence_while_stopped(waiting)
            self.stack.worker.start()
            self.log.worker_ready.append(time.monotonic())
            print(f"  worker started again ({self.log.evidence_steps_while_stopped} request steps taken "
                  "while it was down)", flush=True)

    def _wait_for_phase(self, phase: str) -> bool:
        from cycles.models import PhaseState

        while not self.stopping.wait(1):
            if PhaseState.objects.filter(phase=phase, status="active").exists():
                return True
        return False

    def _wait_for_open_requests(self) -> set[int]:
        from cycles.models import InformationRequest

        first = None
        while not self.stopping.wait(1):
            open_ids = set(InformationRequest.objects.filter(status="open").values_list("pk", flat=True))
            first = first or (time.monotonic() if open_ids else None)
            # Once the first request is open, up to 30 s more for others, so several people answer meanwhile.
            if open_ids and (len(open_ids) >= max(1, len(self.drivers) // 2) or time.monotonic() - first > 30):
                return open_ids
        return set()

    def _evidence_while_stopped(self, waiting: set[int]) -> None:
        """Down until the open requests are submitted and accepted (at most 3 minutes)."""
        from cycles.models import InformationRequest

        ends = time.monotonic() + 180
        while time.monotonic() < ends and not self.stopping.is_set():
            done = InformationRequest.objects.filter(pk__in=waiting, status="accepted").count()
            if done == len(waiting):
                break
            time.sleep(1)
        submitted = InformationRequest.objects.filter(pk__in=waiting, status__in=("submitted", "accepted")).count()
        accepted = InformationRequest.objects.filter(pk__in=waiting, status="accepted").count()
        self.log.evidence_steps_while_stopped = submitted + accepted


# --- the checks ------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def check_report(cr: int, live: dict | None, to: str, emails: list[dict], unsent: list[str]) -> list[str]:
    """What is wrong with one report at the end (empty: workflow and database agree, nothing twice or missing)."""
    from django.db.models import Count

    from cycles.models import (
        Attribute,
        CycleReport,
        Evidence,
        InformationRequest,
        PhaseState,
        PopulationFile,
        ProfileResult,
        RequestNotification,
        Sample,
        TestResult,
    )
    from versioning.models import Version
    from workflows.models import WorkflowDecision, WorkflowStep

    problems = []
    report = CycleReport.objects.get(pk=cr)
    reviewed = REVIEWED + (("test_execution", "observations") if to == "seal" else ())
    if to == "seal":
        if report.status != "completed":
            problems.append(f"status {report.status}, not completed")
        if live is not None:
            problems.append(f"the workflow still runs: {live.get('active')}")
    else:
        if report.phase != "test_execution":
            problems.append(f"database phase {report.phase}")
        if live is None:
            problems.append("no live status from the workflow")
        elif live.get("active") != {"test_execution": "awaiting_submission"}:
            problems.append(f"workflow: {live.get('active')}")
        states = dict(PhaseState.objects.filter(cycle_report=report).values_list("phase", "status"))
        expected = {p: "completed" for p in (*REVIEWED, "data_owner_identification", "request_for_information")}
        expected["test_execution"] = "active"
        if {p: states.get(p) for p in expected} != expected:
            problems.append(f"phase rows {states}")
        if live is not None:
            db_requests = {str(r.pk): r.status for r in InformationRequest.objects.filter(cycle_report=report)}
            if live.get("requests") != db_requests:
                problems.append(f"requests: workflow {live.get('requests')}, database {db_requests}")
        if live is not None and live.get("completed_phases") and set(REVIEWED) - set(live["completed_phases"]):
            problems.append(f"workflow completed phases {live['completed_phases']}")
    for phase in reviewed:
        versions = list(Version.objects.filter(cycle_report=report, phase=phase).values_list("status", flat=True))
        if versions != ["approved"]:
            problems.append(f"{phase} versions {versions}")
    names = list(Attribute.objects.filter(cycle_report=report).values_list("name", flat=True))
    if sorted(names) != ["account_id", "balance", "origination_date"]:
        problems.append(f"attributes {names}")
    files = PopulationFile.objects.filter(cycle_report=report).count()
    if files != 1:
        problems.append(f"{files} population files")
    twice = (ProfileResult.objects.filter(population_file__cycle_report=report)
             .values("population_file", "column_name").annotate(n=Count("pk")).filter(n__gt=1).count())
    if twice:
        problems.append(f"{twice} attributes profiled twice")
    keys = list(Sample.objects.filter(cycle_report=report).values_list("key", flat=True))
    if not keys or len(keys) != len(set(keys)):
        problems.append(f"samples {len(keys)} ({len(set(keys))} distinct)")
    requests_ = list(InformationRequest.objects.filter(cycle_report=report).values_list("status", flat=True))
    if requests_ != ["accepted"]:
        problems.append(f"requests {requests_}")
    evidence = Evidence.objects.filter(request__cycle_report=report).count()
    if evidence != 1:
        problems.append(f"{evidence} evidence files")
    cells = TestResult.objects.filter(cycle_report=report)
    in_scope = Attribute.objects.filter(cycle_report=report, scoping__in_scope=True).count()
    if cells.count() != len(keys) * in_scope or cells.values("sample", "attribute").distinct().count() != cells.count():
        problems.append(f"{cells.count()} test cells for {len(keys)} samples x {in_scope} attributes")
    decisions = WorkflowDecision.objects.filter(cycle_report=report)
    open_ = decisions.filter(status__in=WorkflowDecision.OPEN).count()
    if open_:
        problems.append(f"{open_} decisions not answered")
    for update, error in decisions.filter(status=WorkflowDecision.Status.REJECTED).values_list("update_name", "error"):
        problems.append(f"refused {update}: {error[:160]}")
    if not RequestNotification.objects.filter(cycle_report=report, kind="data_owners").exists():
        problems.append("the data executive was never asked for data owners by email")
    # Each request's first email went out, unless the data owner had answered before its turn came (a
    # killed worker delays it; cycles.services.notifications doesn't send it to an answered request).
    for request in InformationRequest.objects.filter(cycle_report=report):
        if RequestNotification.objects.filter(request=request, kind="request").exists():
            continue
        answered = WorkflowDecision.objects.filter(subject=f"information_request:{request.pk}",
                                                   update_name="request_submitted").order_by("created_at").first()
        tried = WorkflowStep.objects.filter(execution__workflow_id=report.workflow_id, activity_type="request_notify",
                                            status="completed").order_by("-finished_at").first()
        if answered and tried and answered.created_at < tried.started_at:
            unsent.append(f"report {cr}: request {request.pk} answered before its email's turn (not sent)")
        else:
            problems.append(f"request {request.pk}: its email never went out")
    for note in RequestNotification.objects.filter(cycle_report=report):
        subject = " ".join(note.subject.split())
        sent = [m for m in emails if m["subject"] == subject and set(m["to"]) == set(note.recipients)]
        if len(sent) != 1:
            problems.append(f"email {note.key} went out {len(sent)} times")
    return problems


def wait_quiet(timeout: float = 120) -> None:
    """Until no decision is waiting (the outbox and the workflows have caught up)."""
    from workflows.models import WorkflowDecision

    ends = time.monotonic() + timeout
    while time.monotonic() < ends and WorkflowDecision.objects.filter(status__in=WorkflowDecision.OPEN).exists():
        time.sleep(1)


def longest_wait_after(ready: list[float], waits: list[tuple[int, str, float, float]]) -> tuple[float, str]:
    """The longest any wait went on after the last (re)start inside it: (seconds, which report and what)."""
    longest, where = 0.0, ""
    for cr, what, started, ended in waits:
        inside = [t for t in ready if started <= t <= ended]
        if inside and ended - max(inside) > longest:
            longest, where = ended - max(inside), f"report {cr}: {what}"
    return longest, where


# --- main ------------------------------------------------------------------------------------------------


def make_people_and_tokens(reports: int):
    from django.contrib.auth.models import Group

    from synapse.models import User
    from synapse.roles import Role
    from synapse.services import api_token_create

    roles = {"admin": Role.ADMIN, "manager": Role.TEST_MANAGER, "tester": Role.TESTER, "owner": Role.REPORT_OWNER,
             "executive": Role.DATA_EXECUTIVE, "data_owner": Role.DATA_OWNER}
    users, keys = {}, {}
    for name, role in roles.items():
        user = User.objects.create_user(username=name.replace("_", ""), password="faults-live-pass-123",
                                        email=f"{name}@example.com")
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        users[name] = user
        keys[name] = api_token_create(user=user, name="faults-live")[1]
    return users, keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=10)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--duration", type=float, default=2400, help="Seconds the drive may take at most.")
    parser.add_argument("--to", choices=("test_execution", "seal"), default="test_execution")
    parser.add_argument("--database-url", default=os.environ.get(
        "FAULTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/faults_live"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="faults-live-"))
    setup_django(args, str(workdir / "media"))
    fresh_database()
    print(f"faults_live: {args.reports} reports, seed {args.seed}, to {args.to}; logs in {workdir}", flush=True)

    smtp = SmtpSink()
    stack = Stack(args, workdir, smtp)
    log = Log()
    gate = Gate()
    chaos = None
    drivers: list[Driver] = []
    board = None
    try:
        stack.start()
        users, keys = make_people_and_tokens(args.reports)
        base = stack.web.url

        def person(name: str) -> Person:
            return Person(base, keys[name], gate, log, name)

        from workflows.tests.api_steps import FIELDS

        admin, manager = person("admin"), person("manager")
        lob = admin.post("/api/v1/lobs/", json={"name": "Cards", "code": "cards",
                                                "data_executive": users["executive"].pk}, ok=(201,))
        cycle = manager.post("/api/v1/cycles/", ok=(201,), json={
            "name": "Faults", "period_start": "2026-07-01", "period_end": "2026-09-30",
            "configuration": {"rfi_due_days": 10}})
        crs = []
        for i in range(args.reports):
            report = manager.post("/api/v1/reports/", ok=(201,), json={
                "name": f"Report {i:02d}", "regulation": "FR Y-14M", "lob": lob["id"], "frequency": "monthly",
                "owner": users["owner"].pk, "fields": FIELDS})
            crs.append(manager.post(f"/api/v1/cycles/{cycle['id']}/reports/", ok=(201,), json={
                "report": report["id"], "tester": users["tester"].pk})["id"])
        manager.post(f"/api/v1/workflow/start/{cycle['id']}/", json={}, ok=(201,))
        started = time.monotonic()
        board = StatusBoard(person("tester"), cycle["id"])
        deadline = started + args.duration
        for cr in crs:
            people = {name: person(name) for name in ("tester", "owner", "executive", "data_owner", "manager")}
            drivers.append(Driver(cr, people, board, log, deadline, args.to, users["data_owner"].pk))
        chaos = Chaos(stack, gate, log, rng, drivers)
        chaos.start()
        threads = [threading.Thread(target=d.run, name=f"report-{d.cr}") for d in drivers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        drive_seconds = time.monotonic() - started
        chaos.stop()
        board.stop.set()
        print(f"drive over after {drive_seconds:.0f} s; checking", flush=True)

        # The checks, with the stack up and quiet.
        if stack.worker.proc is None or stack.worker.proc.poll() is not None:
            stack.worker.start()
        wait_quiet()
        time.sleep(2)  # the outbox's last answers reach the workflows' status
        tester = person("tester")
        live = {r["cycle_report_id"]: r["live"] for r in tester.get(f"/api/v1/workflow/status/{cycle['id']}/")["reports"]}
        # The reconciliation an admin runs: with workflow and database agreeing it has nothing to repair.
        from workflows.services import workflows_reconcile

        reconciled = workflows_reconcile()
        return report_figures(args, drivers, live, log, smtp, drive_seconds, reconciled)
    finally:
        if chaos is not None:
            chaos.stopping.set()
        if board is not None:
            board.stop.set()
        stack.stop()
        smtp.stop()


def report_figures(args, drivers: list[Driver], live: dict, log: Log, smtp: SmtpSink, drive_seconds: float,
                   reconciled) -> int:
    from workflows.models import WorkflowAlert, WorkflowDecision

    failed = False
    unsent: list[str] = []
    print("\nper report:")
    for driver in drivers:
        problems = [] if driver.outcome == "ok" else [driver.outcome]
        problems += check_report(driver.cr, live.get(driver.cr), args.to, smtp.messages, unsent)
        failed |= bool(problems)
        print(f"  report {driver.cr}: {'ok' if not problems else 'FAILED'} ({driver.steps} steps)"
              + "".join(f"\n      - {p}" for p in problems))
    decisions = list(WorkflowDecision.objects.exclude(delivered_at=None).values_list("created_at", "delivered_at"))
    latencies = [(d - c).total_seconds() for c, d in decisions]
    counts = {s: WorkflowDecision.objects.filter(status=s).count() for s in WorkflowDecision.Status.values}
    seen = [(m["to"], m["subject"], m["body"]) for m in smtp.messages]
    duplicates = len(seen) - len(set(seen))
    if duplicates:
        failed = True
    restart_wait, restart_where = longest_wait_after(log.worker_ready, log.waits)
    temporal_wait, temporal_where = longest_wait_after(log.temporal_ready, log.waits)
    alerts = list(WorkflowAlert.objects.values_list("kind", "message"))
    print(f"\ndrive: {drive_seconds:.0f} s for {len(drivers)} reports to {args.to} (seed {args.seed})")
    print(f"decisions: {len(latencies)} answered {counts}; latency stored -> answered "
          f"p50 {percentile(latencies, 50):.2f} s, p90 {percentile(latencies, 90):.2f} s, "
          f"max {max(latencies, default=0):.1f} s")
    print(f"longest wait after a worker (re)start: {restart_wait:.1f} s ({restart_where or '-'}); "
          f"target {RESTART_TARGET:.0f} s")
    print(f"longest wait after the Temporal server restarted: {temporal_wait:.1f} s ({temporal_where or '-'})")
    print(f"faults: worker SIGKILLed {log.worker_kills} times, stopped {log.worker_stops} time(s) "
          f"({log.evidence_steps_while_stopped} request steps taken meanwhile), web server SIGKILLed "
          f"{log.web_kills} times, Temporal server SIGKILLed {log.temporal_kills} time(s) for ~{TEMPORAL_DOWN:.0f} s")
    print(f"emails: {len(smtp.messages)} received, {duplicates} duplicated, {len(unsent)} not due"
          + "".join(f"\n  - {u}" for u in unsent))
    print(f"alerts: {len(alerts)}" + "".join(f"\n  - {k}: {m[:200]}" for k, m in alerts))
    print(f"reconciliation at the end: {reconciled}" + "".join(f"\n  - {r}" for r in reconciled.repaired))
    if reconciled.repaired or reconciled.alerts or reconciled.unavailable:
        failed = True
    print(f"errors seen by people (409/5xx): {len(log.errors)}" + "".join(f"\n  - {e[:300]}" for e in log.errors))
    if restart_wait > RESTART_TARGET:
        failed = True
    if log.worker_stops and not log.evidence_steps_while_stopped:
        print("the worker stop saw no request step")
        failed = True
    if log.errors:
        failed = True
    print("\nRESULT:", "FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
