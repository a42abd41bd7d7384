"""Scoping: which attributes are tested, and why."""
from __future__ import annotations

from django.db import transaction

from cycles.exceptions import ApplicationError, PermissionDeniedError
from cycles.models import Attribute, CycleReport, Phase, ProfileResult, ScopingDecision
from cycles.permissions import can_work_on
from cycles.services.artifacts import phase_require_editable
from synapse.audit import audit_record, snapshot

# An attribute is recommended for testing from this risk score up, or when it is
# a primary key, a critical data element, or its profile shows failures.
RECOMMEND_RISK_FROM = 4


def scoping_decide(*, user, attribute: Attribute, in_scope: bool, rationale: str) -> ScopingDecision:
    cycle_report = attribute.cycle_report
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError("Only the report's assigned tester can scope its attributes.")
    phase_require_editable(cycle_report, Phase.SCOPING)
    rationale = rationale.strip()
    if not in_scope and not rationale:
        raise ApplicationError(f"Say why {attribute.name} is out of scope.")
    if not in_scope and (attribute.primary_key or attribute.cde) and len(rationale) < 20:
        raise ApplicationError(
            f"{attribute.name} is a primary key or critical data element: explain its exclusion in a sentence."
        )
    with transaction.atomic():
        decision = ScopingDecision.objects.filter(attribute=attribute).first()
        before = snapshot(decision, ["in_scope", "rationale"]) if decision else None
        decision, _ = ScopingDecision.objects.update_or_create(
            attribute=attribute,
            defaults={"in_scope": in_scope, "rationale": rationale, "decided_by": user, "decided_by_rule": ""},
        )
        audit_record(actor=user, action="scoping.decide", obj=decision, before=before,
                     after=snapshot(decision, ["in_scope", "rationale"]))
    return decision


RECOMMENDER = "scoping recommendation: key, critical data element, risk score ≥ 4, profiling failures"


def scoping_recommend(*, cycle_report_id: int) -> int:
    """Give every attribute without a decision a recommended one (idempotent); returns how many.

    The recommendation is the system's: decided_by stays empty and
    decided_by_rule names the rule, until the tester decides otherwise.
    """
    from cycles.models import ColumnMapping
    from cycles.services.profiling import population_file_current

    cycle_report = CycleReport.objects.select_related("report", "cycle").get(pk=cycle_report_id)
    current = population_file_current(cycle_report=cycle_report)
    # Profiles record every rule checked, failing or not ({"mandatory": 0}): count only real failures.
    failing = {
        attribute_id
        for attribute_id, violations, rules, results in ProfileResult.objects.filter(
            population_file=current, attribute__isnull=False
        ).values_list("attribute_id", "format_violations", "rule_failures", "rule_results")
        if violations or any(count for count in (rules or {}).values()) or any(r["failing"] for r in results or [])
    }
    absent = {
        m.attribute_id: m.reason or "no column of the population file holds it"
        for m in ColumnMapping.objects.filter(population_file=current).exclude(
            status__in=[ColumnMapping.Status.MATCHED, ColumnMapping.Status.CONFIRMED]
        )
    }
    created = 0
    with transaction.atomic():
        for attribute in Attribute.objects.filter(cycle_report=cycle_report, scoping__isnull=True):
            reasons = []
            if attribute.primary_key:
                reasons.append("primary key")
            if attribute.cde:
                reasons.append("critical data element")
            if attribute.risk_score >= RECOMMEND_RISK_FROM:
                reasons.append(f"risk score {attribute.risk_score}")
            if attribute.pk in failing:
                reasons.append("profiling found failures")
            if attribute.pk in absent:
                # No column, no profile: the population can't test it, so a person must decide.
                in_scope = False
                rationale = (
                    f"Recommended out of scope: not in the population file ({absent[attribute.pk]}), so it has "
                    "no profile and samples can't show it. Bring it into scope only with another source."
                )
            else:
                in_scope = bool(reasons)
                rationale = (
                    "Recommended: " + ", ".join(reasons) + "."
                    if in_scope
                    else f"Recommended out of scope: low risk ({attribute.risk_score}), not a key or CDE, "
                    "clean profile."
                )
            ScopingDecision.objects.create(
                attribute=attribute, in_scope=in_scope, rationale=rationale, decided_by=None,
                decided_by_rule=RECOMMENDER,
            )
            created += 1
        if created:
            audit_record(actor=None, action="scoping.recommend", obj=cycle_report,
                         after={"decisions": created}, context={"rule": RECOMMENDER})
    return created
