"""Reads of the cycles domain, scoped to what the user may see."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from cycles.models import LOB, CycleReport, Phase, PopulationFile, Report, TestCycle
from cycles.permissions import is_admin
from synapse.roles import Role, has_role


def cycle_reports_visible_to(*, user) -> QuerySet[CycleReport]:
    qs = CycleReport.objects.select_related(
        "cycle", "cycle__test_manager", "report", "report__owner", "report__lob", "tester"
    # The report's field list (a JSON entry per field: ~20 KB at 300 fields) is read by Planning alone:
    # decoding it for every row of a cycle's reports cost a list tens of milliseconds.
    ).defer("report__fields")
    if is_admin(user):
        return qs
    q = Q(pk__in=[])
    if has_role(user, Role.TEST_MANAGER):
        q |= Q(cycle__test_manager=user)
    if has_role(user, Role.TESTER):
        q |= Q(tester=user)
    if has_role(user, Role.REPORT_OWNER):
        q |= Q(report__owner=user) | Q(cycle_id__in=cycles_approved_by(user=user))
    if has_role(user, Role.DATA_EXECUTIVE):
        q |= Q(report__lob__data_executive=user)
    return qs.filter(q)


def cycles_approved_by(*, user) -> list[int]:
    """Ids of the cycles whose configuration names the user as an approver of some phase.

    Read in Python: approvers are a JSON object per cycle, and only cycles that
    have any are loaded (few), so no JSON lookup differs between SQLite and PostgreSQL.
    """
    rows = TestCycle.objects.exclude(configuration__approvers={}).values_list("pk", "configuration")
    return [pk for pk, config in rows
            if any(user.username in (names or []) for names in ((config or {}).get("approvers") or {}).values())]


def cycles_visible_to(*, user) -> QuerySet[TestCycle]:
    qs = TestCycle.objects.select_related("test_manager").annotate(report_count=Count("cycle_reports"))
    if is_admin(user):
        return qs
    visible = cycle_reports_visible_to(user=user).values("cycle_id")
    return qs.filter(Q(test_manager=user) | Q(pk__in=visible)).distinct()


def reports_visible_to(*, user) -> QuerySet[Report]:
    qs = Report.objects.select_related("owner", "lob", "lob__data_executive")
    if is_admin(user) or has_role(user, Role.TEST_MANAGER):
        return qs
    visible = cycle_reports_visible_to(user=user).values("report_id")
    return qs.filter(Q(owner=user) | Q(lob__data_executive=user) | Q(pk__in=visible)).distinct()


def lobs_visible_to(*, user) -> QuerySet[LOB]:
    return LOB.objects.select_related("data_executive")


def cycle_report_get(*, user, pk: int) -> CycleReport:
    """The cycle report if the user may see it; NotFoundError otherwise (no existence leak)."""
    from cycles.exceptions import NotFoundError

    try:
        return cycle_reports_visible_to(user=user).get(pk=pk)
    except CycleReport.DoesNotExist:
        raise NotFoundError("No such report in a cycle you can see.") from None


# --- progress: which phase each report is in, and who it waits on ------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a cycle report stands, derived from the database (no Temporal call)."""

    phase: str
    phase_label: str
    state_label: str
    waiting_on_role: str
    waiting_on_people: tuple[str, ...] = ()
    finished: bool = False

    @property
    def waiting_on(self) -> str:
        if not self.waiting_on_role:
            return ""
        if self.waiting_on_people:
            return f"{self.waiting_on_role} ({', '.join(self.waiting_on_people)})"
        return self.waiting_on_role


FINISHED_STATUSES = {
    CycleReport.Status.SCOPED,
    CycleReport.Status.AWAITING_TEST_EXECUTION,
    CycleReport.Status.COMPLETED,
    CycleReport.Status.CANCELLED,
    CycleReport.Status.FAILED,
}


def _person(user) -> tuple[str, ...]:
    return (str(user),) if user is not None else ()


def _approvers(cycle_report: CycleReport, phase: str) -> tuple[str, ...]:
    configured = ((cycle_report.cycle.configuration or {}).get("approvers") or {}).get(phase, [])
    names = [str(cycle_report.report.owner)]
    names += [u for u in configured if u != cycle_report.report.owner.username]
    return tuple(names)


def _progress_of(
    cycle_report: CycleReport,
    *,
    latest_versions: dict[str, tuple[int, str]],
    latest_population,
    pending_decision: bool,
    active_phases: list[str] = (),
    doi_counts: tuple[int, int] | None = None,
    data_executive: str | None = None,
    requests: list[tuple[str, str]] = (),
    sign_off: tuple[int, str, str | None] | None = None,
) -> Progress:
    from workflows.temporal.contracts import WaitingOn

    phase = cycle_report.phase
    phase_label = cycle_report.get_phase_display() if phase else "—"

    if cycle_report.status in FINISHED_STATUSES:
        return Progress(phase, phase_label, cycle_report.get_status_display(), WaitingOn.NOBODY, finished=True)
    if not phase:
        if cycle_report.tester_id is None:
            return Progress(phase, phase_label, "Needs a tester", "Test Manager",
                            _person(cycle_report.cycle.test_manager))
        if cycle_report.cycle.status == cycle_report.cycle.Status.DRAFT:
            return Progress(phase, phase_label, "Not started", "Test Manager",
                            _person(cycle_report.cycle.test_manager))
        return Progress(phase, phase_label, "Starting", WaitingOn.SYSTEM)
    if pending_decision:
        return Progress(phase, phase_label, "Decision queued for the workflow service", WaitingOn.SYSTEM)

    def one(p: str) -> Progress:
        return _phase_progress(
            cycle_report, p, latest_version=latest_versions.get(p), latest_population=latest_population,
            doi_counts=doi_counts, data_executive=data_executive, requests=requests, sign_off=sign_off,
        )

    # Phase states say what runs now: two phases during the parallel step, or the one of them still
    # running after the other finished. Reports without phase states have only their current phase.
    running = list(active_phases) or [phase]
    if len(running) == 1:
        return one(running[0])
    parts = [one(p) for p in running]
    roles = list(dict.fromkeys(r for part in parts for r in part.waiting_on_role.split(", ")
                               if r and r != WaitingOn.SYSTEM))
    return Progress(
        phase,
        " ‖ ".join(f"{part.phase_label} ({part.waiting_on_role or 'nobody'})" for part in parts),
        " ‖ ".join(part.state_label for part in parts),
        ", ".join(roles) if roles else WaitingOn.SYSTEM,
        tuple(dict.fromkeys(person for part in parts for person in part.waiting_on_people)),
    )


def _phase_progress(
    cycle_report: CycleReport, phase: str, *, latest_version, latest_population,
    doi_counts: tuple[int, int] | None, data_executive: str | None, requests, sign_off=None,
) -> Progress:
    from cycles.models import InformationRequest
    from versioning.models import VersionStatus
    from workflows.temporal.contracts import REVIEWED_PHASES, WaitingOn

    phase_label = Phase(phase).label
    tester = _person(cycle_report.tester)

    # Data Profiling is reviewed too, but until a version exists its state is the file's.
    if phase == Phase.DATA_PROFILING and latest_version is None:
        if latest_population is None:
            return Progress(phase, phase_label, "Awaiting the population file", WaitingOn.TESTER, tester)
        status = latest_population
        if status == PopulationFile.Status.PROFILED:
            return Progress(phase, phase_label, "Profiled: confirm the columns, key and rules, then submit",
                            WaitingOn.TESTER, tester)
        if status in (PopulationFile.Status.FAILED, PopulationFile.Status.REFUSED):
            return Progress(phase, phase_label, "Profiling failed: upload a corrected file", WaitingOn.TESTER,
                            tester)
        return Progress(phase, phase_label, "Profiling the population", WaitingOn.SYSTEM)

    if phase in REVIEWED_PHASES:
        if latest_version is None:
            return Progress(phase, phase_label, "Being prepared", WaitingOn.TESTER, tester)
        number, status = latest_version
        if status == VersionStatus.SUBMITTED:
            return Progress(phase, phase_label, f"Version {number} awaits approval", WaitingOn.REPORT_OWNER,
                            _approvers(cycle_report, phase))
        if status == VersionStatus.CHANGES_REQUESTED:
            return Progress(phase, phase_label, f"Changes requested on version {number}", WaitingOn.TESTER, tester)
        if status == VersionStatus.APPROVED:
            return Progress(phase, phase_label, f"Version {number} approved", WaitingOn.SYSTEM)
        return Progress(phase, phase_label, "Being prepared", WaitingOn.TESTER, tester)

    if phase == Phase.DATA_OWNER_IDENTIFICATION:
        executive = (data_executive,) if data_executive else ()
        total, missing = doi_counts or (0, 0)
        if missing or not total:
            return Progress(phase, phase_label, f"{missing} of {total} attributes need a data owner",
                            WaitingOn.DATA_EXECUTIVE, executive)
        return Progress(phase, phase_label, "Every attribute has a data owner: confirm with Done",
                        WaitingOn.DATA_EXECUTIVE, executive)

    if phase == Phase.REQUEST_FOR_INFORMATION:
        if not requests:
            return Progress(phase, phase_label, "Sending the requests", WaitingOn.SYSTEM)
        counts = {status: sum(1 for s, _ in requests if s == status) for status in InformationRequest.Status.values}
        state = " · ".join(
            f"{counts[value]} {label.lower()}" for value, label in InformationRequest.Status.choices if counts[value]
        )
        answering = tuple(dict.fromkeys(
            owner for status, owner in requests
            if status in (InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED)
        ))
        roles, people = [], list(answering)
        if answering:
            roles.append(WaitingOn.DATA_OWNER)
        if counts[InformationRequest.Status.SUBMITTED]:
            roles.append(WaitingOn.TESTER)
            people += list(tester)
        if not roles:
            return Progress(phase, phase_label, state, WaitingOn.SYSTEM)
        return Progress(phase, phase_label, state, ", ".join(roles), tuple(people))

    if phase == Phase.FINALIZE:
        return _finalize_progress(cycle_report, phase_label, sign_off, data_executive)

    return Progress(phase, phase_label, "In progress", WaitingOn.TESTER, tester)


def _finalize_progress(cycle_report: CycleReport, phase_label: str, sign_off, data_executive) -> Progress:
    """Finalize waits on the next signer: (generation, status, next role) of the latest final report."""
    from cycles.models import FinalReport, SignOffRole
    from workflows.temporal.contracts import WaitingOn

    if sign_off is None:
        return Progress(Phase.FINALIZE, phase_label, "Generating the report", WaitingOn.SYSTEM)
    number, status, role = sign_off
    if status == FinalReport.Status.SIGNED:
        return Progress(Phase.FINALIZE, phase_label, "Signed off: building the package", WaitingOn.SYSTEM)
    if status == FinalReport.Status.SENT_BACK or role is None:
        return Progress(Phase.FINALIZE, phase_label, f"Report {number} sent back", WaitingOn.SYSTEM)
    people = {
        SignOffRole.TEST_MANAGER: _person(cycle_report.cycle.test_manager),
        SignOffRole.REPORT_OWNER: _person(cycle_report.report.owner),
        SignOffRole.DATA_EXECUTIVE: (data_executive,) if data_executive else (),
    }[role]
    label = SignOffRole(role).label
    return Progress(Phase.FINALIZE, phase_label, f"Report {number} awaits the {label}'s sign-off", label, people)


def _full_name(username: str, first: str, last: str) -> str:
    # As User.__str__ says it, without loading the users.
    return f"{first} {last}".strip() or username


@dataclass(frozen=True)
class PhaseFacts:
    """A report's phases as its pages ask of them, read once: each phase's state and its latest version."""

    states: dict[str, str]  # phase → PhaseState status (no entry: the phase has no state row)
    versions: dict[str, tuple[int, str]]  # phase → its latest version's (number, status)

    def active(self) -> list[str]:
        from cycles.models import PhaseState
        from workflows.temporal.contracts import PHASE_ORDER

        return sorted((p for p, status in self.states.items() if status == PhaseState.Status.ACTIVE),
                      key=lambda p: PHASE_ORDER.index(p) if p in PHASE_ORDER else len(PHASE_ORDER))


def phase_facts(cycle_report_ids) -> dict[int, PhaseFacts]:
    """Each report's PhaseFacts, in two queries whatever the number of reports."""
    from cycles.models import PhaseState
    from versioning.models import Version

    facts = {pk: PhaseFacts(states={}, versions={}) for pk in cycle_report_ids}
    if not facts:
        return facts
    for cr_id, phase, status in PhaseState.objects.filter(cycle_report_id__in=list(facts)).values_list(
            "cycle_report_id", "phase", "status"):
        facts[cr_id].states[phase] = status
    for cr_id, phase, number, status in (
        Version.objects.filter(cycle_report_id__in=list(facts))
        .order_by("cycle_report_id", "phase", "-number")
        .values_list("cycle_report_id", "phase", "number", "status")
    ):
        facts[cr_id].versions.setdefault(phase, (number, status))
    return facts


def cycle_reports_progress(cycle_reports, *, facts: dict[int, PhaseFacts] | None = None) -> dict[int, Progress]:
    """Progress of many cycle reports in a fixed number of queries, whatever their number.

    Pass cycle reports loaded with cycle, cycle__test_manager, report__owner and tester, and their
    ``facts`` (phase_facts) when the caller has read them already.
    """
    from cycles.models import Attribute, InformationRequest
    from workflows.models import WorkflowDecision

    cycle_reports = list(cycle_reports)
    ids = [cr.pk for cr in cycle_reports]
    if not ids:
        return {}
    facts = facts if facts is not None else phase_facts(ids)
    latest_populations: dict[int, str] = {}
    for cr_id, status in (
        # A file the workflow refused never replaced the report's population.
        PopulationFile.objects.filter(cycle_report_id__in=ids).exclude(status=PopulationFile.Status.REFUSED)
        .order_by("cycle_report_id", "-uploaded_at", "-id")
        .values_list("cycle_report_id", "status")
    ):
        latest_populations.setdefault(cr_id, status)
    pending = set(
        WorkflowDecision.objects.filter(cycle_report_id__in=ids, status=WorkflowDecision.Status.PENDING)
        .values_list("cycle_report_id", flat=True)
    )
    active = {pk: facts[pk].active() for pk in ids}

    # What the Data Owner Identification and Request for Information phases need, only when one runs.
    doi_ids = [cr.pk for cr in cycle_reports if Phase.DATA_OWNER_IDENTIFICATION in active.get(cr.pk, ())]
    doi_counts: dict[int, tuple[int, int]] = {}
    executives: dict[int, str] = {}
    if doi_ids:
        for row in (
            Attribute.objects.filter(cycle_report_id__in=doi_ids, scoping__in_scope=True)
            .values("cycle_report_id")
            .annotate(total=Count("pk"), missing=Count("pk", filter=Q(data_owner_assignment__isnull=True)))
        ):
            doi_counts[row["cycle_report_id"]] = (row["total"], row["missing"])
        lob_ids = {cr.report.lob_id for cr in cycle_reports if cr.pk in doi_ids}
        for lob_id, *name in LOB.objects.filter(pk__in=lob_ids).values_list(
            "pk", "data_executive__username", "data_executive__first_name", "data_executive__last_name"
        ):
            executives[lob_id] = _full_name(*name)
    rfi_ids = [
        cr.pk for cr in cycle_reports
        if Phase.REQUEST_FOR_INFORMATION in active.get(cr.pk, ()) or cr.phase == Phase.REQUEST_FOR_INFORMATION
    ]
    requests: dict[int, list[tuple[str, str]]] = {}
    if rfi_ids:
        for cr_id, status, *name in (
            InformationRequest.objects.filter(cycle_report_id__in=rfi_ids)
            .order_by("cycle_report_id", "data_owner__username")
            .values_list("cycle_report_id", "status", "data_owner__username", "data_owner__first_name",
                         "data_owner__last_name")
        ):
            requests.setdefault(cr_id, []).append((status, _full_name(*name)))
    # Finalize: the latest final report and who signs next, only when a report is there.
    sign_offs: dict[int, tuple[int, str, str | None]] = {}
    finalize_ids = [cr.pk for cr in cycle_reports if cr.phase == Phase.FINALIZE]
    if finalize_ids:
        from cycles.models import SIGN_OFF_ORDER, FinalReport, SignOff

        latest: dict[int, tuple[int, int, str]] = {}
        for cr_id, report_id, number, status in (
            FinalReport.objects.filter(cycle_report_id__in=finalize_ids).order_by("cycle_report_id", "-number")
            .values_list("cycle_report_id", "pk", "number", "status")
        ):
            latest.setdefault(cr_id, (report_id, number, status))
        signed: dict[int, set[str]] = {}
        for report_id, role in SignOff.objects.filter(
            final_report_id__in=[v[0] for v in latest.values()], decision=SignOff.Decision.SIGNED
        ).values_list("final_report_id", "role"):
            signed.setdefault(report_id, set()).add(role)
        for cr_id, (report_id, number, status) in latest.items():
            role = next((r for r in SIGN_OFF_ORDER if r not in signed.get(report_id, set())), None)
            sign_offs[cr_id] = (number, status, role)
        lob_ids = {cr.report.lob_id for cr in cycle_reports if cr.pk in finalize_ids} - set(executives)
        for lob_id, *name in LOB.objects.filter(pk__in=lob_ids).values_list(
            "pk", "data_executive__username", "data_executive__first_name", "data_executive__last_name"
        ):
            executives[lob_id] = _full_name(*name)
    return {
        cr.pk: _progress_of(
            cr,
            latest_versions=facts[cr.pk].versions,
            latest_population=latest_populations.get(cr.pk),
            pending_decision=cr.pk in pending,
            active_phases=active.get(cr.pk, []),
            doi_counts=doi_counts.get(cr.pk),
            data_executive=executives.get(cr.report.lob_id),
            requests=requests.get(cr.pk, []),
            sign_off=sign_offs.get(cr.pk),
        )
        for cr in cycle_reports
    }


def cycle_report_progress(cycle_report: CycleReport, *, facts: PhaseFacts | None = None) -> Progress:
    return cycle_reports_progress([cycle_report], facts=facts and {cycle_report.pk: facts})[cycle_report.pk]
