"""More samples on failure: when an attribute fails more often than its sample size allows.

On each Test Execution submission the workflow asks `sample_extension_propose`;
a proposal draws the next samples of the same seed, as many as the sampling
rule needs to allow the deviations found. Once the report owner approves it
(`sample_extension_decide`), the samples exist, the data owners' requests are
reopened for them, and the matrix gains their cells for the attributes that
called for them.
"""
from __future__ import annotations

import datetime
import uuid

from django.db import transaction
from django.utils import timezone

from cycles.exceptions import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError
from cycles.models import (
    Attribute,
    CycleReport,
    InformationRequest,
    Phase,
    Sample,
    SampleExtension,
    SamplingPlan,
    TestResultValue,
)
from cycles.permissions import can_approve
from cycles.services.execution import result_counts_by_attribute
from cycles.sampling.extension import allowed_deviations, extended_sample_size
from synapse.audit import audit_record, snapshot

PHASE = Phase.TEST_EXECUTION
EXTENSION_FIELDS = ["status", "decision_note", "decided_by_id", "decided_at"]


def _allowed(plan: SamplingPlan, size: int, extended: bool) -> int:
    # The plan's own figure while the attribute still has the planned AICPA sample.
    if not extended and plan.size_rule == SamplingPlan.SizeRule.STATISTICAL and plan.allowed_deviations is not None \
            and plan.override_size is None:
        return plan.allowed_deviations
    return allowed_deviations(sample_size=size, risk_of_overreliance=plan.risk_of_overreliance,
                              tolerable_rate=plan.tolerable_rate)


def sample_extension_pending(*, cycle_report: CycleReport) -> SampleExtension | None:
    return SampleExtension.objects.filter(cycle_report=cycle_report, status=SampleExtension.Status.PROPOSED).first()


def sample_extension_check(
    *, cycle_report: CycleReport, attributes: list[Attribute] | None = None,
    counts_by_attribute: dict[int, dict[str, int]] | None = None, extensions: list[SampleExtension] | None = None,
) -> list[dict]:
    """Per in-scope attribute with cells: failures, cells tested, deviations allowed, and whether it exceeds.

    ``attributes`` (the in-scope ones, by name), ``counts_by_attribute`` (result_counts_by_attribute) and
    ``extensions`` (the report's, with their attributes prefetched): a page that has read them already passes
    them rather than have them read again.
    """
    plan = SamplingPlan.objects.filter(cycle_report=cycle_report).first()
    if plan is None:
        return []
    if extensions is None:
        extensions = SampleExtension.objects.filter(cycle_report=cycle_report).prefetch_related("attributes")
    by_status: dict[str, set[int]] = {SampleExtension.Status.APPROVED: set(), SampleExtension.Status.REJECTED: set()}
    for extension in extensions:
        if extension.status in by_status:
            by_status[extension.status].update(a.pk for a in extension.attributes.all())
    extended, settled = by_status[SampleExtension.Status.APPROVED], by_status[SampleExtension.Status.REJECTED]
    # Cells and failures of every attribute from the stored counts, not by counting the cells.
    counts = {
        attribute_id: (sum(by_result.values()), by_result.get(TestResultValue.FAIL, 0))
        for attribute_id, by_result in (
            result_counts_by_attribute(cycle_report=cycle_report) if counts_by_attribute is None
            else counts_by_attribute
        ).items()
    }
    if attributes is None:
        attributes = Attribute.objects.filter(cycle_report=cycle_report, scoping__in_scope=True).order_by("name")
    rows = []
    for attribute in attributes:
        size, failures = counts.get(attribute.pk, (0, 0))
        if not size:
            continue
        allowed = _allowed(plan, size, attribute.pk in extended)
        rows.append({
            "attribute": attribute, "size": size, "failures": failures, "allowed": allowed,
            "exceeds": failures > allowed, "accepted_by_owner": attribute.pk in settled,
        })
    return rows


def _next_samples(cycle_report: CycleReport, plan: SamplingPlan, count: int, seed: int) -> list[dict]:
    """The next `count` rows of the seeded random order that are not samples yet."""
    # The sampling service's readers: the same file, row numbering and key column as the first draw.
    from cycles.sampling import select_random
    from cycles.services.sampling import _key_column, _plan_population_file, _population, _reading

    population_file = _plan_population_file(plan, cycle_report)
    with _reading(population_file):
        df = _population(population_file).collect()
    key_column = _key_column(cycle_report, population_file, df.lazy())
    existing = Sample.objects.filter(cycle_report=cycle_report)
    taken_rows = set(existing.values_list("row_index", flat=True))
    taken_keys = set(existing.values_list("key", flat=True))
    selection = select_random(df, size=min(df.height, count + len(taken_rows)), seed=seed, key_column=key_column)
    fresh = [s for s in selection.samples if s.row_index not in taken_rows and s.sample_key not in taken_keys]
    return [
        {"key": s.sample_key, "row_index": s.row_index, "row_data": s.row, "detail": s.detail}
        for s in fresh[:count]
    ]


def sample_extension_propose(*, cycle_report_id: int) -> SampleExtension | None:
    """Propose more samples if an attribute's failures exceed what its size allows (idempotent)."""
    from cycles.sampling import new_seed

    cycle_report = CycleReport.objects.select_related("report").get(pk=cycle_report_id)
    pending = sample_extension_pending(cycle_report=cycle_report)
    if pending is not None:
        return pending
    plan = SamplingPlan.objects.filter(cycle_report=cycle_report).select_related("population_file").first()
    over = [r for r in sample_extension_check(cycle_report=cycle_report) if r["exceeds"] and not r["accepted_by_owner"]]
    if plan is None or not over:
        return None
    population = plan.population_file.row_count if plan.population_file else None
    sizes = {
        r["attribute"].name: extended_sample_size(
            deviations=r["failures"], risk_of_overreliance=plan.risk_of_overreliance,
            tolerable_rate=plan.tolerable_rate, population=population,
        )
        for r in over
    }
    current = max(r["size"] for r in over)
    target_name, target = max(sizes.items(), key=lambda item: item[1].sample_size)
    if target.sample_size <= current:
        return None  # the whole population is already tested
    seed = plan.seed if plan.seed is not None else new_seed()
    added = _next_samples(cycle_report, plan, target.sample_size - current, seed)
    if not added:
        return None
    with transaction.atomic():
        CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
        pending = sample_extension_pending(cycle_report=cycle_report)
        if pending is not None:
            return pending
        number = SampleExtension.objects.filter(cycle_report=cycle_report).count() + 1
        extension = SampleExtension.objects.create(
            cycle_report=cycle_report,
            number=number,
            failures={r["attribute"].name: r["failures"] for r in over},
            allowed_deviations=min(r["allowed"] for r in over),
            current_size=current,
            new_size=current + len(added),
            seed=seed,
            rule=f"{target_name}: {target.rule}"[:255],
            sample_keys=[a["key"] for a in added],
        )
        extension.attributes.set([r["attribute"] for r in over])
        audit_record(actor=None, action="sample_extension.propose", obj=extension,
                     after={**snapshot(extension, ["number", "current_size", "new_size", "seed", "sample_keys"]),
                            "failures": extension.failures},
                     context={"cycle_report": cycle_report.pk})
    return extension


def _require_owner(user, cycle_report: CycleReport) -> None:
    if not can_approve(user, cycle_report, PHASE):
        raise PermissionDeniedError("Only the report's owner approves or rejects a sample extension.")


def sample_extension_decide(
    *,
    extension_id: int,
    user,
    approve: bool,
    notes: str = "",
    decision_id: str | uuid.UUID | None = None,
    due_date: datetime.date | None = None,
) -> tuple[SampleExtension, list[InformationRequest]]:
    """The report owner approves (samples added, requests reopened) or rejects an extension.

    Idempotent by decision id: the same decision again returns what the first made.
    """
    notes = (notes or "").strip()
    extension = SampleExtension.objects.select_related("cycle_report__report", "cycle_report__cycle").filter(
        pk=extension_id).first()
    if extension is None:
        raise NotFoundError("No such sample extension.")
    cycle_report = extension.cycle_report
    _require_owner(user, cycle_report)
    if decision_id is not None and extension.decision_id == uuid.UUID(str(decision_id)):
        return extension, _reopened(extension)
    if extension.status != SampleExtension.Status.PROPOSED:
        raise ConflictError(f"Extension {extension.number} is already {extension.get_status_display().lower()}.")
    if not approve and not notes:
        raise ApplicationError("Say why the failures don't call for more samples: notes are required to reject.")
    rows = None
    if approve:
        plan = SamplingPlan.objects.select_related("population_file").get(cycle_report=cycle_report)
        # The same seed draws the same rows again: exactly what the owner saw proposed.
        rows = {r["key"]: r for r in _next_samples(cycle_report, plan, len(extension.sample_keys), extension.seed)}
        missing = [k for k in extension.sample_keys if k not in rows]
        if missing:
            raise ConflictError("The population changed since the extension was proposed: "
                                f"{', '.join(missing[:5])} can't be drawn again.")
    with transaction.atomic():
        extension = SampleExtension.objects.select_for_update().get(pk=extension.pk)
        if extension.status != SampleExtension.Status.PROPOSED:
            raise ConflictError(f"Extension {extension.number} was decided meanwhile.")
        before = snapshot(extension, EXTENSION_FIELDS)
        extension.status = SampleExtension.Status.APPROVED if approve else SampleExtension.Status.REJECTED
        extension.decided_by = user
        extension.decided_at = timezone.now()
        extension.decision_note = notes
        extension.decision_id = decision_id
        extension.save()
        reopened: list[InformationRequest] = []
        if approve:
            Sample.objects.bulk_create(
                Sample(cycle_report=cycle_report, key=key, row_index=rows[key]["row_index"],
                       row_data=rows[key]["row_data"], method=SamplingPlan.Method.RANDOM, seed=extension.seed,
                       reason=f"Extension {extension.number}: {rows[key]['detail']}", added_by=user)
                for key in extension.sample_keys
            )
            reopened = _reopen_requests(extension, user, due_date or (timezone.localdate() + datetime.timedelta(
                days=(cycle_report.cycle.configuration or {}).get("rfi_due_days", 10))))
            _supersede_submitted(cycle_report, user)
        audit_record(actor=user, action=f"sample_extension.{'approve' if approve else 'reject'}", obj=extension,
                     before=before, after={**snapshot(extension, EXTENSION_FIELDS),
                                           "requests": [r.pk for r in reopened]},
                     context={"cycle_report": cycle_report.pk, "decision_id": str(decision_id or "")})
    if approve:
        from cycles.services.execution import test_matrix_prepare

        test_matrix_prepare(cycle_report_id=cycle_report.pk, extension_id=extension.pk)
    return extension, reopened


def _reopened(extension: SampleExtension) -> list[InformationRequest]:
    if extension.status != SampleExtension.Status.APPROVED:
        return []
    return [
        r for r in InformationRequest.objects.filter(cycle_report=extension.cycle_report,
                                                      attributes__in=extension.attributes.all()).distinct()
        if set(extension.sample_keys) <= set(r.sample_keys or [])
    ]


def _reopen_requests(extension: SampleExtension, user, due_date: datetime.date) -> list[InformationRequest]:
    """The data owners of the attributes that called for more samples get them in their request, open again."""
    reopened = []
    # The ids first: PostgreSQL locks no DISTINCT query, and the attribute join repeats requests.
    ids = set(InformationRequest.objects.filter(cycle_report=extension.cycle_report,
                                                attributes__in=extension.attributes.all()).values_list("pk", flat=True))
    for request in InformationRequest.objects.select_for_update().filter(pk__in=ids).order_by("pk"):
        before = snapshot(request, ["status", "due_date", "sample_keys"])
        request.sample_keys = [*request.sample_keys, *(k for k in extension.sample_keys if k not in request.sample_keys)]
        request.status = InformationRequest.Status.OPEN
        request.due_date = due_date
        request.save(update_fields=["sample_keys", "status", "due_date"])
        audit_record(actor=user, action="information_request.extend", obj=request, before=before,
                     after=snapshot(request, ["status", "due_date", "sample_keys"]),
                     context={"extension": extension.pk, "cycle_report": extension.cycle_report_id})
        reopened.append(request)
    return reopened


def _supersede_submitted(cycle_report: CycleReport, user) -> None:
    """The submitted results no longer cover the sample: the tester submits again with the new cells."""
    from versioning.models import VersionStatus
    from versioning.selectors import version_latest
    from versioning.services import version_set_status

    latest = version_latest(cycle_report=cycle_report, phase=PHASE)
    if latest is not None and latest.status == VersionStatus.SUBMITTED:
        version_set_status(version=latest, status=VersionStatus.SUPERSEDED, actor=user,
                           context={"reason": "sample extension approved"})


def approved_extension_keys(*, cycle_report: CycleReport) -> list[str]:
    keys: list[str] = []
    for extension in SampleExtension.objects.filter(cycle_report=cycle_report, status=SampleExtension.Status.APPROVED):
        keys.extend(extension.sample_keys)
    return keys
