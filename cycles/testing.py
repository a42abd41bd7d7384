"""A cycle at scale, built fast with bulk inserts: for query-count tests and bench/pages.py.

``scale_dataset_build(reports=50, attributes=300, samples=100)`` makes one running
cycle whose reports stand where every page has something to show: Planning and
Scoping approved, the population profiled (each attribute mapped to its column,
a rule per mandatory attribute), and, in turn (report i by i % 5):
0. Requests for Information out (with evidence);
1. Sample Selection submitted (some samples decided) beside an open Data Owner Identification;
2. Test Execution open: the matrix of approved samples × in-scope attributes, 70 % tested, some failed;
3. Observation Management open: every cell tested, the failures drafted into observations by attribute;
4. Finalize: observations approved, a final report generated and signed by the test manager.
Rows are written
with ``bulk_create``, so no service runs and no audit is written by services;
the audit rows the pages read are added here in bulk the way the services
write them.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from synapse.roles import Role

BENCH_PASSWORD = "bench-pass-123"


@dataclass
class ScaleDataset:
    """What scale_dataset_build made: the people by role and the ids the pages need."""

    users: dict = field(default_factory=dict)
    cycle_id: int = 0
    cycle_report_ids: list[int] = field(default_factory=list)
    # A report of each kind: in the parallel step (odd), in Request for Information (even).
    parallel_id: int = 0
    rfi_id: int = 0
    sample_version_id: int = 0
    planning_version_id: int = 0
    population_file_id: int = 0
    request_id: int = 0
    # A report in each of the later phases.
    execution_id: int = 0
    observations_id: int = 0
    finalize_id: int = 0


def _user(username: str, *roles: str, **extra):
    user_model = get_user_model()
    user = user_model(username=username, email=f"{username}@example.com", first_name=username.title(), **extra)
    user.set_password(BENCH_PASSWORD)
    user.save()
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def scale_dataset_build(
    *, reports: int = 50, attributes: int = 300, samples: int = 100, data_owners: int = 10, prefix: str = "scale"
) -> ScaleDataset:
    """Build the data set and return its handles (call inside a test's database or a bench database)."""
    from cycles.models import (
        LOB,
        Attribute,
        ColumnMapping,
        CycleReport,
        DataOwnerAssignment,
        Evidence,
        InformationRequest,
        PhaseState,
        PopulationFile,
        ProfileResult,
        ProfilingRule,
        Report,
        Sample,
        SamplingPlan,
        ScopingDecision,
        TestCycle,
    )
    from synapse.models import AuditEvent
    from versioning.models import Approval, Version, VersionItem, VersionStatus

    now = timezone.now()
    ds = ScaleDataset()
    u = ds.users
    u["admin"] = _user(f"{prefix}-admin", Role.ADMIN, is_staff=True, is_superuser=True)
    u["manager"] = _user(f"{prefix}-manager", Role.TEST_MANAGER)
    u["tester"] = _user(f"{prefix}-tester", Role.TESTER)
    u["owner"] = _user(f"{prefix}-owner", Role.REPORT_OWNER)
    u["executive"] = _user(f"{prefix}-executive", Role.DATA_EXECUTIVE)
    owners = [_user(f"{prefix}-dataowner{i}", Role.DATA_OWNER) for i in range(data_owners)]
    u["data_owner"] = owners[0]

    lob = LOB.objects.create(name=f"{prefix} lending", code=f"{prefix}-lending", data_executive=u["executive"])
    names = [f"field_{i:03d}" for i in range(attributes)]
    report_rows = Report.objects.bulk_create(
        Report(name=f"{prefix} report {r:03d}", regulation="FR Y-14Q", owner=u["owner"], lob=lob,
               fields=[{"name": n, "description": f"{n} as reported"} for n in names])
        for r in range(reports)
    )
    cycle = TestCycle.objects.create(
        name=f"{prefix} cycle", period_start=datetime.date(2026, 1, 1), period_end=datetime.date(2026, 3, 31),
        test_manager=u["manager"], status=TestCycle.Status.RUNNING, workflow_id=f"{prefix}-cycle", started_at=now,
    )
    ds.cycle_id = cycle.pk
    crs = CycleReport.objects.bulk_create(
        CycleReport(
            cycle=cycle, report=rep, tester=u["tester"], status=CycleReport.Status.IN_PROGRESS,
            phase=KIND_PHASE[_kind(i)], workflow_id=f"cycle-{cycle.pk}-report-{rep.pk}",
        )
        for i, rep in enumerate(report_rows)
    )
    ds.cycle_report_ids = [cr.pk for cr in crs]
    kind_of = {cr.pk: _kind(i) for i, cr in enumerate(crs)}
    parallel = [cr for cr in crs if kind_of[cr.pk] == "parallel"]
    # Every report past Sample Selection and Data Owner Identification (its requests went out).
    in_rfi = [cr for cr in crs if kind_of[cr.pk] != "parallel"]
    later = [cr for cr in crs if kind_of[cr.pk] in ("execution", "observations", "finalize")]

    states = []
    for cr in crs:
        for phase in ("planning", "data_profiling", "scoping"):
            states.append(PhaseState(cycle_report=cr, phase=phase, status=PhaseState.Status.COMPLETED, completed_at=now))
        done = cr in in_rfi
        for phase in ("sample_selection", "data_owner_identification"):
            states.append(PhaseState(cycle_report=cr, phase=phase, completed_at=now if done else None,
                                     status=PhaseState.Status.COMPLETED if done else PhaseState.Status.ACTIVE))
        if done:
            current = KIND_PHASE[kind_of[cr.pk]]
            for phase in LATER_PHASES[:LATER_PHASES.index(current) + 1]:
                states.append(PhaseState(
                    cycle_report=cr, phase=phase, completed_at=None if phase == current else now,
                    status=PhaseState.Status.ACTIVE if phase == current else PhaseState.Status.COMPLETED,
                ))
    PhaseState.objects.bulk_create(states)

    attrs = Attribute.objects.bulk_create(
        Attribute(cycle_report=cr, name=n, description=f"{n} as reported", risk_score=1 + j % 10,
                  cde=j % 7 == 0, mandatory=j % 3 == 0, primary_key=j == 0)
        for cr in crs for j, n in enumerate(names)
    )
    by_report: dict[int, list] = {}
    for a in attrs:
        by_report.setdefault(a.cycle_report_id, []).append(a)
    # Two in three attributes are in scope.
    ScopingDecision.objects.bulk_create(
        ScopingDecision(attribute=a, in_scope=j % 3 != 2, rationale="" if j % 3 != 2 else "Not material.",
                        decided_by=u["tester"])
        for cr_attrs in by_report.values() for j, a in enumerate(cr_attrs)
    )
    pop_files = PopulationFile.objects.bulk_create(
        PopulationFile(cycle_report=cr, file=f"populations/{prefix}-{cr.pk}.csv", original_name=f"population-{cr.pk}.csv",
                       format=PopulationFile.Format.CSV, size_bytes=10_000_000, sha256="0" * 64, row_count=100_000,
                       columns=names, status=PopulationFile.Status.PROFILED, uploaded_by=u["tester"], profiled_at=now,
                       profile_seconds=1.5)
        for cr in crs
    )
    pop_of = {p.cycle_report_id: p for p in pop_files}
    ProfileResult.objects.bulk_create(
        ProfileResult(population_file=pop_of[a.cycle_report_id], column_name=a.name, attribute=a, dtype="str",
                      row_count=100_000, null_count=j % 50, distinct_count=1000 + j, min_value="a", max_value="z",
                      top_values=[{"value": "a", "count": 10}], rule_failures={"mandatory": j % 4})
        for cr_attrs in by_report.values() for j, a in enumerate(cr_attrs)
    )
    ColumnMapping.objects.bulk_create(
        (ColumnMapping(population_file=pop_of[a.cycle_report_id], attribute=a, column_name=a.name,
                       status=ColumnMapping.Status.CONFIRMED, decided_by=u["tester"])
         for a in attrs), batch_size=5000,
    )
    ProfilingRule.objects.bulk_create(
        (ProfilingRule(attribute=a, kind=ProfilingRule.Kind.NOT_NULL, source=ProfilingRule.Source.SYSTEM,
                       source_detail="mandatory attribute")
         for a in attrs if a.mandatory), batch_size=5000,
    )
    SamplingPlan.objects.bulk_create(
        SamplingPlan(cycle_report=cr, population_file=pop_of[cr.pk], computed_size=samples, seed=7,
                     size_explanation="Quarterly, medium risk", updated_by=u["tester"])
        for cr in crs
    )
    row = {n: f"v{j}" for j, n in enumerate(names[:8])}
    sample_rows = Sample.objects.bulk_create(
        Sample(cycle_report=cr, key=f"K{s:05d}", row_index=s * 37, row_data={**row, names[0]: f"K{s:05d}"},
               method=SamplingPlan.Method.RANDOM, seed=7, added_by=u["tester"])
        for cr in crs for s in range(samples)
    )

    versions = []
    for cr in crs:
        for phase in ("planning", "scoping"):
            versions.append(Version(cycle_report=cr, phase=phase, number=1, status=VersionStatus.APPROVED,
                                    author=u["tester"], submitted_at=now, decided_at=now))
        versions.append(Version(
            cycle_report=cr, phase="sample_selection", number=1, author=u["tester"], submitted_at=now,
            status=VersionStatus.APPROVED if cr in in_rfi else VersionStatus.SUBMITTED,
            decided_at=now if cr in in_rfi else None,
        ))
    versions = Version.objects.bulk_create(versions)
    Approval.objects.bulk_create(
        Approval(version=v, decision=Approval.Decision.APPROVED, decided_by=u["owner"])
        for v in versions if v.status == VersionStatus.APPROVED
    )
    version_of = {(v.cycle_report_id, v.phase): v for v in versions}
    items = []
    for cr in crs:
        for j, a in enumerate(by_report[cr.pk]):
            items.append(VersionItem(version=version_of[cr.pk, "planning"], key=a.name, data={
                "description": a.description, "data_type": a.data_type, "mandatory": a.mandatory,
                "primary_key": a.primary_key, "cde": a.cde, "historical_issues": False,
                "risk_score": a.risk_score, "source": a.source}))
            items.append(VersionItem(version=version_of[cr.pk, "scoping"], key=a.name, data={
                "in_scope": j % 3 != 2, "rationale": "", "risk_score": a.risk_score, "cde": a.cde,
                "primary_key": a.primary_key}))
    sample_version_items = []
    for s in sample_rows:
        decided = s.row_index % 2 == 0
        sample_version_items.append(VersionItem(
            version=version_of[s.cycle_report_id, "sample_selection"], key=s.key,
            data={"row_index": s.row_index, "row_data": s.row_data, "stratum": "", "method": s.method,
                  "seed": s.seed, "reason": ""},
            decision=VersionItem.Decision.APPROVED if decided else VersionItem.Decision.PENDING,
            decided_by=u["owner"] if decided else None, decided_at=now if decided else None,
        ))
    VersionItem.objects.bulk_create(items + sample_version_items, batch_size=5000)

    # Data owners: every in-scope attribute of a report in Request for Information, half of the others.
    assignments = []
    for cr in crs:
        in_scope = [a for j, a in enumerate(by_report[cr.pk]) if j % 3 != 2]
        for j, a in enumerate(in_scope):
            if cr in in_rfi or j % 2 == 0:
                assignments.append(DataOwnerAssignment(attribute=a, data_owner=owners[j % len(owners)],
                                                       assigned_by=u["executive"]))
    assignments = DataOwnerAssignment.objects.bulk_create(assignments)

    requests = InformationRequest.objects.bulk_create(
        InformationRequest(cycle_report=cr, data_owner=owner, due_date=datetime.date(2026, 4, 15),
                           sample_keys=[f"K{s:05d}" for s in range(samples)],
                           status=InformationRequest.Status.ACCEPTED if cr in later
                           else InformationRequest.Status.SUBMITTED if k % 2 else InformationRequest.Status.OPEN)
        for cr in in_rfi for k, owner in enumerate(owners)
    )
    through = InformationRequest.attributes.through
    owner_index = {o.pk: k for k, o in enumerate(owners)}
    request_of = {(r.cycle_report_id, r.data_owner_id): r for r in requests}
    through.objects.bulk_create(
        through(informationrequest_id=request_of[a.attribute.cycle_report_id, a.data_owner_id].pk,
                attribute_id=a.attribute_id)
        for a in assignments if (a.attribute.cycle_report_id, a.data_owner_id) in request_of
    )
    evidence = Evidence.objects.bulk_create(
        Evidence(request=r, file=f"evidence/{prefix}/{r.pk}/{n}", original_name=f"extract-{n}.csv", version=1,
                 content_type="text/csv", size_bytes=2048, sha256="1" * 64,
                 uploaded_by=owners[owner_index[r.data_owner_id]],
                 status=Evidence.Status.ACCEPTED if r.status == InformationRequest.Status.ACCEPTED
                 else Evidence.Status.PENDING)
        for r in requests
        if r.status in (InformationRequest.Status.SUBMITTED, InformationRequest.Status.ACCEPTED) for n in range(3)
    )
    _later_phases_build(ds, later=later, kind_of=kind_of, by_report=by_report, sample_rows=sample_rows, now=now)

    # Reassignments (issue 7): one per third of a reported attribute's owners, so the history grows with the set.
    from cycles.models import Reassignment

    Reassignment.objects.bulk_create(
        Reassignment(kind=Reassignment.Kind.DATA_OWNER, cycle_report_id=a.attribute.cycle_report_id,
                     attribute_id=a.attribute_id, from_user=owners[(n + 1) % len(owners)], to_user=a.data_owner,
                     reason="On leave.", reassigned_by=u["executive"],
                     request=request_of.get((a.attribute.cycle_report_id, a.data_owner_id)))
        for n, a in enumerate(assignments) if a.attribute.cycle_report_id in {cr.pk for cr in in_rfi} and not n % 3
    )

    # The audit trail the pages read, as the services write it.
    ct = ContentType.objects.get_for_models(CycleReport, DataOwnerAssignment, InformationRequest, Evidence, TestCycle)
    events = [AuditEvent(actor=u["manager"], action="cycle.create", content_type=ct[TestCycle],
                         object_id=str(cycle.pk), object_repr=str(cycle)[:255])]
    events += [AuditEvent(actor=u["manager"], action="cycle_report.assign_tester", content_type=ct[CycleReport],
                          object_id=str(cr.pk), object_repr=f"report {cr.pk}", after={"tester": u["tester"].pk},
                          context={"cycle_report": cr.pk}) for cr in crs]
    events += [AuditEvent(actor=u["executive"], action="data_owner.assign", content_type=ct[DataOwnerAssignment],
                          object_id=str(a.pk), object_repr=f"assignment {a.pk}", after={"data_owner": a.data_owner_id},
                          context={"cycle_report": a.attribute.cycle_report_id, "attribute": a.attribute.name})
               for a in assignments]
    events += [AuditEvent(actor=None, action="information_request.create", content_type=ct[InformationRequest],
                          object_id=str(r.pk), object_repr=f"request {r.pk}", after={"status": r.status},
                          context={"cycle_report": r.cycle_report_id}) for r in requests]
    events += [AuditEvent(actor=e.uploaded_by, action="evidence.upload", content_type=ct[Evidence],
                          object_id=str(e.pk), object_repr=str(e), after={"version": 1},
                          context={"request": e.request_id, "cycle_report": e.request.cycle_report_id})
               for e in evidence]
    AuditEvent.objects.bulk_create(events, batch_size=5000)

    ds.parallel_id = parallel[0].pk if parallel else crs[0].pk
    ds.rfi_id = in_rfi[0].pk
    ds.sample_version_id = version_of[ds.parallel_id, "sample_selection"].pk
    ds.planning_version_id = version_of[ds.parallel_id, "planning"].pk
    ds.population_file_id = pop_of[ds.parallel_id].pk
    ds.request_id = next(r.pk for r in requests if r.status == InformationRequest.Status.SUBMITTED)
    for kind in ("execution", "observations", "finalize"):
        setattr(ds, f"{kind}_id", next(cr.pk for cr in crs if kind_of[cr.pk] == kind))
    return ds


KINDS = ("rfi", "parallel", "execution", "observations", "finalize")
KIND_PHASE = {"rfi": "request_for_information", "parallel": "sample_selection", "execution": "test_execution",
              "observations": "observations", "finalize": "finalize"}
LATER_PHASES = ("request_for_information", "test_execution", "observations", "finalize")


def _kind(index: int) -> str:
    return KINDS[index % len(KINDS)]


def _later_phases_build(ds: ScaleDataset, *, later, kind_of, by_report, sample_rows, now) -> None:
    """Test results, observations and final reports of the reports past Request for Information."""
    import uuid

    from cycles.models import FinalReport, Observation, SignOff, SignOffRole, TestResult
    from cycles.models.reporting import SIGN_OFF_MEANING
    from cycles.services.final_report import final_report_data, final_report_html
    from versioning.models import Approval, Version, VersionItem, VersionStatus

    u = ds.users
    samples_of: dict[int, list] = {}
    for sample in sample_rows:
        samples_of.setdefault(sample.cycle_report_id, []).append(sample)

    def cells():
        for cr in later:
            samples = samples_of[cr.pk]
            tested_up_to = len(samples) * 7 // 10 if kind_of[cr.pk] == "execution" else len(samples)
            for j, a in enumerate(by_report[cr.pk]):
                if j % 3 == 2:  # out of scope
                    continue
                for index, sample in enumerate(samples):
                    tested = index < tested_up_to
                    failed = tested and j % 10 == 3 and index % 5 == 0
                    value = sample.row_data.get(a.name, f"v{j}")
                    yield TestResult(
                        cycle_report=cr, sample=sample, attribute=a, expected_value=value,
                        observed_value=("x" + value) if failed else value if tested else "",
                        result="fail" if failed else "pass" if tested else "not_tested",
                        failure_kind="mismatch" if failed else "", method="manual" if tested else "",
                        comment="Differs from the source extract." if failed else "",
                        attempt=1 if tested else 0, tested_by=u["tester"] if tested else None,
                        tested_at=now if tested else None,
                    )

    TestResult.objects.bulk_create(cells(), batch_size=5000)

    # Observations: the failures of each attribute, drafted (Observation Management) or approved (Finalize).
    failed: dict[tuple[int, int], list[int]] = {}
    for cr_id, attribute_id, pk in TestResult.objects.filter(
        cycle_report__in=[cr for cr in later if kind_of[cr.pk] != "execution"], result="fail"
    ).values_list("cycle_report_id", "attribute_id", "pk").order_by("pk"):
        failed.setdefault((cr_id, attribute_id), []).append(pk)
    attribute_of = {a.pk: a for cr in later for a in by_report[cr.pk]}
    numbers: dict[int, int] = {}
    observations = []
    for (cr_id, attribute_id), _ in failed.items():
        numbers[cr_id] = numbers.get(cr_id, 0) + 1
        approved = kind_of[cr_id] == "finalize"
        observations.append(Observation(
            cycle_report_id=cr_id, number=numbers[cr_id], title=f"{attribute_of[attribute_id].name} differs from the source",
            attribute_id=attribute_id, failure_kind="mismatch", severity="medium", type="data_accuracy",
            description="Reported values differ from the source extract.", impact="Misstated figures.",
            root_cause="Manual adjustment not reflected in the source." if approved else "",
            remediation_owner=u["data_owner"] if approved else None,
            remediation_target_date=datetime.date(2026, 6, 30) if approved else None,
            status=Observation.Status.OPEN if approved else Observation.Status.DRAFT, drafted=True,
        ))
    observations = Observation.objects.bulk_create(observations)
    through = Observation.cells.through
    through.objects.bulk_create(
        (through(observation_id=o.pk, testresult_id=pk)
         for o in observations for pk in failed[o.cycle_report_id, o.attribute_id]), batch_size=5000,
    )
    finalize = [cr for cr in later if kind_of[cr.pk] == "finalize"]
    versions = Version.objects.bulk_create(
        Version(cycle_report=cr, phase="observations", number=1, status=VersionStatus.APPROVED, author=u["tester"],
                submitted_at=now, decided_at=now)
        for cr in finalize
    )
    Approval.objects.bulk_create(
        Approval(version=v, decision=Approval.Decision.APPROVED, decided_by=u["owner"]) for v in versions)
    version_of = {v.cycle_report_id: v for v in versions}
    VersionItem.objects.bulk_create(
        VersionItem(version=version_of[o.cycle_report_id], key=o.code,
                    data={"title": o.title, "severity": o.severity, "type": o.type, "cells": len(
                        failed[o.cycle_report_id, o.attribute_id])})
        for o in observations if o.cycle_report_id in version_of
    )
    # The final report as final_report_generate makes it (its PDF left out: WeasyPrint is slow and no page reads it).
    for cr in finalize:
        cr = type(cr).objects.select_related("cycle__test_manager", "report__owner", "report__lob", "tester").get(
            pk=cr.pk)
        report = FinalReport(cycle_report=cr, number=1, data=final_report_data(cr), request_key=f"{cr.workflow_id}:1",
                             html="", pdf_sha256="0" * 64)
        report.html = final_report_html(report, sign_offs=[])
        report.save()
        SignOff.objects.create(
            final_report=report, role=SignOffRole.TEST_MANAGER, decision=SignOff.Decision.SIGNED,
            signer=u["manager"], printed_name=str(u["manager"]), meaning=SIGN_OFF_MEANING[SignOffRole.TEST_MANAGER],
            request_id=uuid.uuid4(),
        )


@dataclass(frozen=True)
class ScalePage:
    """A page or API list to measure: which app owns it, as whom, and its URL from the data set's handles."""

    app: str
    role: str
    label: str
    url_of: object  # (handles: dict) -> str

    @property
    def name(self) -> str:
        return f"{self.role}: {self.label}"

    def url(self, ds: ScaleDataset) -> str:
        return self.url_of(scale_handles(ds))


def _page(app, role, label, name, *args):
    from django.urls import reverse

    # An argument names a handle of the data set, or is given as is with a leading "="; one starting with "?"
    # is the query string (with {handle}s in it).
    query = "".join(a for a in args if a.startswith("?"))
    args = [a for a in args if not a.startswith("?")]
    return ScalePage(app, role, label, lambda h: reverse(
        name, args=[a[1:] if a.startswith("=") else h[a] for a in args]) + query.format(**h))


def _api(app, role, label, path):
    return ScalePage(app, role, label, lambda h: path.format(**h))


SCALE_PAGES = [
    _page("cycles", "manager", "my work", "cycles:my-work"),
    _page("cycles", "tester", "my work", "cycles:my-work"),
    _page("cycles", "owner", "my work", "cycles:my-work"),
    _page("cycles", "executive", "my work", "cycles:my-work"),
    _page("cycles", "data_owner", "my work", "cycles:my-work"),
    _page("cycles", "manager", "cycle list", "cycles:cycle-list"),
    _page("cycles", "manager", "cycle detail", "cycles:cycle-detail", "cycle"),
    _page("cycles", "owner", "cycle detail", "cycles:cycle-detail", "cycle"),
    _page("cycles", "manager", "cycle progress rows", "cycles:cycle-progress", "cycle"),
    _page("cycles", "tester", "planning", "cycles:planning", "parallel"),
    _page("cycles", "tester", "data profiling", "cycles:data-profiling", "parallel"),
    _page("cycles", "tester", "scoping", "cycles:scoping", "parallel"),
    _page("cycles", "tester", "sample selection", "cycles:sample-selection", "parallel"),
    _page("cycles", "tester", "data owners", "cycles:data-owners", "parallel"),
    _page("cycles", "executive", "data owners (open)", "cycles:data-owners", "parallel"),
    _page("cycles", "tester", "report requests", "cycles:report-requests", "rfi"),
    _page("cycles", "executive", "data owners (reassign)", "cycles:data-owners", "rfi"),
    _page("cycles", "manager", "request list", "cycles:request-list"),
    _page("cycles", "tester", "request list", "cycles:request-list"),
    _page("cycles", "data_owner", "request list", "cycles:request-list"),
    _page("cycles", "manager", "request list (filtered)", "cycles:request-list", "?status=open&report=report&page=2"),
    _page("cycles", "tester", "request detail (evidence)", "cycles:request-detail", "request"),
    _page("versioning", "owner", "version: sample selection", "versioning:version-detail", "sample_version"),
    _page("versioning", "owner", "version: planning", "versioning:version-detail", "planning_version"),
    _page("versioning", "owner", "version: scoping", "versioning:version-detail", "scoping_version"),
    _page("versioning", "tester", "version history", "versioning:version-history", "parallel", "=planning"),
    _api("cycles", "tester", "api cycles", "/api/v1/cycles/"),
    _api("cycles", "tester", "api cycle reports", "/api/v1/cycle-reports/"),
    _api("cycles", "tester", "api cycle's reports", "/api/v1/cycles/{cycle}/reports/"),
    _api("cycles", "tester", "api report attributes", "/api/v1/cycle-reports/{parallel}/attributes/"),
    _api("cycles", "tester", "api report scoping", "/api/v1/cycle-reports/{parallel}/scoping/"),
    _api("cycles", "tester", "api report samples", "/api/v1/cycle-reports/{parallel}/samples/"),
    _api("cycles", "tester", "api report data owners", "/api/v1/cycle-reports/{parallel}/data-owners/"),
    _api("cycles", "tester", "api requests", "/api/v1/requests/"),
    _api("cycles", "tester", "api report reassignments", "/api/v1/cycle-reports/{rfi}/reassignments/"),
    _api("cycles", "data_owner", "api requests", "/api/v1/requests/"),
    _api("cycles", "tester", "api requests (filtered)", "/api/v1/requests/?status=open"),
    _api("cycles", "tester", "api reports", "/api/v1/reports/"),
    # The later phases: Test Execution, Observation Management, Finalize, and the cycle's results.
    _page("cycles", "tester", "test execution", "cycles:test-execution", "execution"),
    _page("cycles", "tester", "test execution (failed)", "cycles:test-execution", "execution", "?show=failed"),
    _page("cycles", "owner", "test execution (done)", "cycles:test-execution", "observations"),
    # Working through the matrix: a later page of cells, every cell of one sample (its second).
    _page("cycles", "tester", "test execution (page 2)", "cycles:test-execution", "execution", "?page=2"),
    _page("cycles", "tester", "test execution (one sample)", "cycles:test-execution", "execution",
          "?sample={execution_sample}"),
    _page("cycles", "tester", "observations", "cycles:observations", "observations"),
    _page("cycles", "owner", "observations (approved)", "cycles:observations", "finalize"),
    _page("cycles", "owner", "final report", "cycles:final-report", "finalize"),
    _page("cycles", "executive", "final report", "cycles:final-report", "finalize"),
    _api("cycles", "tester", "api test execution", "/api/v1/cycle-reports/{execution}/test-execution/"),
    _api("cycles", "tester", "api test results", "/api/v1/cycle-reports/{execution}/test-results/"),
    _api("cycles", "tester", "api test results (page 2)",
         "/api/v1/cycle-reports/{execution}/test-results/?page_size=10&page=2"),
    _api("cycles", "tester", "api sample extensions", "/api/v1/cycle-reports/{execution}/sample-extensions/"),
    _api("cycles", "tester", "api observations", "/api/v1/cycle-reports/{observations}/observations/"),
    _api("cycles", "owner", "api final report", "/api/v1/cycle-reports/{finalize}/final-report/"),
    _api("cycles", "manager", "api cycle results", "/api/v1/cycles/{cycle}/results/"),
    _api("cycles", "tester", "api lobs", "/api/v1/lobs/"),
    _api("versioning", "tester", "api versions", "/api/v1/versions/"),
    _api("versioning", "tester", "api approvals", "/api/v1/approvals/"),
]

# Changelists of the models in the admin (app, model), and the change pages worth measuring.
ADMIN_CHANGELISTS = [
    ("cycles", "lob"), ("cycles", "report"), ("cycles", "testcycle"), ("cycles", "cyclereport"),
    ("cycles", "attribute"), ("cycles", "populationfile"), ("cycles", "profileresult"),
    ("cycles", "scopingdecision"), ("cycles", "phasestate"), ("cycles", "samplingplan"), ("cycles", "sample"),
    ("cycles", "samplesizerule"), ("cycles", "dataownerassignment"), ("cycles", "informationrequest"),
    ("cycles", "requestnotification"), ("cycles", "evidence"), ("cycles", "reassignment"),
    ("versioning", "version"), ("versioning", "versionitem"), ("versioning", "approval"),
    ("workflows", "workflowexecution"), ("workflows", "workflowstep"), ("workflows", "workflowtransition"),
    ("workflows", "workflowdecision"), ("workflows", "workflowalert"),
    ("cycles", "columnmapping"), ("cycles", "profilingrule"), ("cycles", "testresult"), ("cycles", "observation"),
    ("cycles", "testresultcount"),
    ("cycles", "finalreport"), ("cycles", "signoff"),
]
ADMIN_CHANGES = [
    ("cycles", "cyclereport", "parallel"), ("cycles", "testcycle", "cycle"), ("cycles", "report", "report"),
    ("cycles", "populationfile", "population_file"), ("cycles", "attribute", "attribute"),
    ("cycles", "scopingdecision", "scoping"), ("cycles", "dataownerassignment", "assignment"),
    ("cycles", "informationrequest", "request"), ("versioning", "version", "sample_version"),
    ("cycles", "observation", "observation"), ("cycles", "finalreport", "final_report"),
    ("versioning", "version", "planning_version"),
]
SCALE_PAGES += [_page(app, "admin", f"admin {model} list", f"admin:{app}_{model}_changelist")
                for app, model in ADMIN_CHANGELISTS]
SCALE_PAGES += [_page(app, "admin", f"admin {model} change ({key})", f"admin:{app}_{model}_change", key)
                for app, model, key in ADMIN_CHANGES]
# The big tables' changelists searched and filtered: no longer the whole table, so counted exactly.
SCALE_PAGES += [
    _page("cycles", "admin", "admin attribute list (searched)", "admin:cycles_attribute_changelist", "?q=field"),
    _page("cycles", "admin", "admin testresult list (filtered)", "admin:cycles_testresult_changelist",
          "?result__exact=pass"),
    _page("versioning", "admin", "admin versionitem list (filtered)", "admin:versioning_versionitem_changelist",
          "?decision__exact=approved"),
]


def scale_handles(ds: ScaleDataset) -> dict:
    """The ids the pages' URLs take, read once per data set."""
    if getattr(ds, "_handles", None) is None:
        from cycles.models import (
            Attribute,
            CycleReport,
            DataOwnerAssignment,
            FinalReport,
            Observation,
            Sample,
            ScopingDecision,
        )
        from versioning.models import Version

        attribute = Attribute.objects.filter(cycle_report_id=ds.parallel_id).order_by("pk").first()
        ds._handles = {
            "cycle": ds.cycle_id, "parallel": ds.parallel_id, "rfi": ds.rfi_id, "request": ds.request_id,
            "sample_version": ds.sample_version_id, "planning_version": ds.planning_version_id,
            "scoping_version": Version.objects.get(cycle_report_id=ds.parallel_id, phase="scoping").pk,
            "population_file": ds.population_file_id, "attribute": attribute.pk,
            "scoping": ScopingDecision.objects.get(attribute=attribute).pk,
            "assignment": DataOwnerAssignment.objects.filter(attribute__cycle_report_id=ds.rfi_id)
            .order_by("pk").first().pk,
            "report": CycleReport.objects.values_list("report_id", flat=True).get(pk=ds.parallel_id),
            "execution": ds.execution_id, "observations": ds.observations_id, "finalize": ds.finalize_id,
            "execution_sample": Sample.objects.filter(cycle_report_id=ds.execution_id).order_by("row_index", "pk")
            .values_list("pk", flat=True)[1],
            "observation": Observation.objects.filter(cycle_report_id=ds.finalize_id).order_by("number").first().pk,
            "final_report": FinalReport.objects.filter(cycle_report_id=ds.finalize_id).order_by("-number").first().pk,
        }
    return ds._handles


def queries_of(client, url: str) -> tuple[int, int, list[str]]:
    """(status, number of queries, their SQL) of one GET."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    return response.status_code, len(captured), [q["sql"] for q in captured.captured_queries]


# Five reports: one of each kind (see scale_dataset_build).
SMALL = {"reports": 5, "attributes": 6, "samples": 4, "data_owners": 2}
LARGE = {key: value * 3 for key, value in SMALL.items()}


def closed_port() -> int:
    """A local port nothing listens on: Temporal refuses at once, so pages read status from the database."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scale_pair_build() -> tuple[ScaleDataset, ScaleDataset]:
    return scale_dataset_build(prefix="x1", **SMALL), scale_dataset_build(prefix="x3", **LARGE)


def assert_same_queries_at_scale(page: ScalePage, pair: tuple[ScaleDataset, ScaleDataset]) -> None:
    """Fetch the page as its role in both data sets; the query counts must be equal (and the page a 200)."""
    from django.test import Client
    from django.urls import NoReverseMatch

    counts = []
    for ds in pair:
        client = Client()
        client.force_login(ds.users[page.role])
        try:
            url = page.url(ds)
        except NoReverseMatch:
            import pytest

            pytest.skip(f"{page.label}: not in the admin on this branch")
        client.get(url)  # warm per-process caches (content types, permissions)
        status, count, sql = queries_of(client, url)
        assert status == 200, f"{page.name} at {url} answered {status}"
        counts.append((count, sql))
    (small, small_sql), (large, large_sql) = counts
    extra = "\n".join(large_sql[len(small_sql):][:10]) if large > small else ""
    assert small == large, f"{page.name}: {small} queries at 1×, {large} at 3×; extra queries:\n{extra}"


def artifact_refusal(cycle_report, phase: str) -> str:
    """Why a submission of the phase is refused: the message of phase_artifact_items (which the worker builds a
    version from) and of phase_artifact_check (what a tester's submission is checked with first), the same."""
    from cycles.exceptions import ApplicationError
    from cycles.services.artifacts import phase_artifact_check, phase_artifact_items

    refusals = []
    for step in (phase_artifact_items, phase_artifact_check):
        try:
            step(cycle_report=cycle_report, phase=phase)
        except ApplicationError as err:
            refusals.append((type(err).__name__, str(err)))
        else:
            refusals.append(None)
    assert refusals[0] is not None, f"{phase} is not refused"
    assert refusals[1] == refusals[0], f"the check and the items differ: {refusals}"
    return refusals[0][1]
