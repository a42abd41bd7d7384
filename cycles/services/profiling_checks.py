"""Data Profiling's checks: column mapping, the primary key, validation rules, and when a file may be replaced.

The system's part (matching columns by name, finding key problems, drafting
rules) is recorded as the system's: decided_by stays empty and the audit
entry has no actor. What the tester settles (a confirmed column, "not in this
file" and why, another key or row numbers and why, an edited rule) is theirs.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError, PhaseLockedError
from cycles.models import (
    Attribute,
    ColumnMapping,
    CycleReport,
    Phase,
    PopulationFile,
    ProfileResult,
    ProfilingRule,
)
from cycles.permissions import can_work_on
from cycles.profiling import match_column
from cycles.profiling.rules import RuleError, RuleSpec, check_params, evaluate_rules_in_file
from cycles.services.artifacts import phase_is_active, phase_lock_reason, phase_require_editable
from synapse.audit import audit_record, snapshot

# A file whose columns match fewer than this share of the attributes is probably another report's.
FEW_MATCHES_SHARE = 0.5
PHASE = Phase.DATA_PROFILING


# --- when a file may be uploaded --------------------------------------------------------------------


def population_upload_check(
    *, cycle_report: CycleReport, facts=None, files: list[PopulationFile] | None = None
) -> None:
    """Raise unless a population file can be taken now; called before anything is stored.

    A file can be uploaded (or replace the current one) while Data Profiling
    is editable, and while Scoping runs and isn't submitted or approved; only
    one file is profiled at a time. A page that has read the report's phases (``facts``,
    cycles.selectors.PhaseFacts) and its population files (``files``, newest first) passes them.
    """
    def active(phase: str) -> bool:
        return phase_is_active(cycle_report, phase) if facts is None else \
            phase_is_active(cycle_report, phase, state=facts.states.get(phase))

    if active(Phase.DATA_PROFILING):
        reason = phase_lock_reason(cycle_report, Phase.DATA_PROFILING, facts=facts)
    elif active(Phase.SCOPING):
        reason = phase_lock_reason(cycle_report, Phase.SCOPING, facts=facts)
        if reason:
            reason = f"{reason} The population file can be replaced only until Scoping is approved."
    else:
        where = cycle_report.get_phase_display() or "not started"
        reason = (
            "A population file can be uploaded only in Data Profiling, or replaced until Scoping is approved; "
            f"this report is in {where}."
        )
    if reason:
        raise PhaseLockedError(reason)
    waiting = [PopulationFile.Status.UPLOADED, PopulationFile.Status.PROFILING]
    busy = (
        cycle_report.population_files.filter(status__in=waiting).order_by("-uploaded_at").first() if files is None
        else next((f for f in files if f.status in waiting), None)
    )
    if busy is not None:
        raise ConflictError(
            f"{busy.original_name} is still waiting to be profiled; upload the next file once its profile is shown."
        )


def population_file_refuse(*, population_file: PopulationFile, message: str) -> None:
    """The workflow refused to profile the file: keep it in history as refused, never as the current file."""
    with transaction.atomic():
        PopulationFile.objects.filter(pk=population_file.pk).update(
            status=PopulationFile.Status.REFUSED, error=message[:2000]
        )
        audit_record(actor=None, action="population.refused", obj=population_file, context={"error": message})


# --- column mapping ---------------------------------------------------------------------------------


def columns_map(*, population_file: PopulationFile, columns: list[str]) -> list[ColumnMapping]:
    """Map every attribute of the report to a column of the file (idempotent: kept if already mapped).

    What the tester settled for the previous file carries over when it still
    holds; otherwise the system matches by name.
    """
    existing = list(population_file.mappings.select_related("attribute"))
    if existing:
        return existing
    previous_file = (
        PopulationFile.objects.filter(
            cycle_report_id=population_file.cycle_report_id, status=PopulationFile.Status.PROFILED
        )
        .exclude(pk=population_file.pk)
        .order_by("-uploaded_at", "-pk")
        .first()
    )
    previous = {m.attribute_id: m for m in previous_file.mappings.all()} if previous_file else {}
    mappings = []
    for attribute in Attribute.objects.filter(cycle_report_id=population_file.cycle_report_id).order_by("name"):
        before = previous.get(attribute.pk)
        matched = match_column(attribute.name, columns)
        if before and before.status == ColumnMapping.Status.CONFIRMED and before.column_name in columns:
            mapping = ColumnMapping(column_name=before.column_name, status=before.status,
                                    decided_by_id=before.decided_by_id)
        elif before and before.status == ColumnMapping.Status.NOT_IN_FILE and matched is None:
            mapping = ColumnMapping(status=before.status, reason=before.reason, decided_by_id=before.decided_by_id)
        elif matched is not None:
            mapping = ColumnMapping(column_name=matched, status=ColumnMapping.Status.MATCHED)
        else:
            mapping = ColumnMapping(status=ColumnMapping.Status.UNMATCHED)
        mapping.population_file = population_file
        mapping.attribute = attribute
        mappings.append(mapping)
    ColumnMapping.objects.bulk_create(mappings)
    return list(population_file.mappings.select_related("attribute"))


def mapping_warning(mappings: list[ColumnMapping]) -> str:
    """Said first on the page when the file's columns match few attributes: likely the wrong file."""
    if not mappings:
        return ""
    found = sum(1 for m in mappings if m.column_name)
    if found >= FEW_MATCHES_SHARE * len(mappings):
        return ""
    return (
        f"Only {found} of the report's {len(mappings)} attributes match a column of this file. "
        "Is it this report's population? Upload the right file, or map each attribute to its column."
    )


def _require_editable(user, cycle_report: CycleReport, what: str) -> None:
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError(f"Only the report's assigned tester can {what}.")
    phase_require_editable(cycle_report, PHASE)


def column_mapping_decide(
    *, user, mapping: ColumnMapping, column_name: str = "", not_in_file_reason: str = ""
) -> ColumnMapping:
    """The tester confirms the attribute's column (or picks another), or marks it not in this file with a reason."""
    population_file = mapping.population_file
    _require_editable(user, population_file.cycle_report, "map its attributes to columns")
    column_name = (column_name or "").strip()
    reason = (not_in_file_reason or "").strip()
    name = mapping.attribute.name
    if column_name and reason:
        raise ApplicationError(f"{name}: choose a column or say why it is not in the file, not both.")
    if column_name and column_name not in population_file.columns:
        raise ApplicationError(f"{population_file.original_name} has no column {column_name!r}.")
    if not column_name and not reason:
        raise ApplicationError(f"{name}: choose its column, or say why it is not in this file.")
    if column_name:
        taken = population_file.mappings.filter(column_name=column_name).exclude(pk=mapping.pk).select_related(
            "attribute"
        ).first()
        if taken is not None and taken.status != ColumnMapping.Status.NOT_IN_FILE:
            raise ConflictError(f"Column {column_name} already holds {taken.attribute.name}.")
    with transaction.atomic():
        before = snapshot(mapping, ["column_name", "status", "reason"])
        mapping.column_name = column_name
        mapping.status = ColumnMapping.Status.CONFIRMED if column_name else ColumnMapping.Status.NOT_IN_FILE
        mapping.reason = reason
        mapping.decided_by = user
        mapping.save()
        ProfileResult.objects.filter(population_file=population_file, attribute=mapping.attribute).update(
            attribute=None
        )
        if column_name:
            ProfileResult.objects.filter(population_file=population_file, column_name=column_name).update(
                attribute=mapping.attribute
            )
        audit_record(actor=user, action="mapping.decide", obj=mapping, before=before,
                     after=snapshot(mapping, ["column_name", "status", "reason"]),
                     context={"attribute": name, "file": population_file.original_name})
    return mapping


def column_mappings_confirm_matched(*, user, population_file: PopulationFile) -> int:
    """Confirm every match by name at once; returns how many were confirmed."""
    _require_editable(user, population_file.cycle_report, "map its attributes to columns")
    with transaction.atomic():
        matched = list(population_file.mappings.filter(status=ColumnMapping.Status.MATCHED).select_related("attribute"))
        # One UPDATE for them all (decided_at is auto_now, which a queryset update doesn't stamp by itself).
        ColumnMapping.objects.filter(pk__in=[m.pk for m in matched]).update(
            status=ColumnMapping.Status.CONFIRMED, decided_by=user, decided_at=timezone.now())
        if matched:
            audit_record(actor=user, action="mapping.confirm_matched", obj=population_file,
                         after={"confirmed": {m.attribute.name: m.column_name for m in matched}})
    return len(matched)


# --- the primary key --------------------------------------------------------------------------------


def key_check(*, population_file: PopulationFile, results: list[ProfileResult]) -> None:
    """Record the key column, or the problem that keeps the primary key from naming each row."""
    by_column = {r.column_name: r for r in results}
    keys = [
        m for m in population_file.mappings.select_related("attribute").order_by("attribute__name")
        if m.attribute.primary_key and m.column_name
    ]
    population_file.key_column = ""
    population_file.key_problem = ""
    for mapping in keys:
        result = by_column.get(mapping.column_name)
        if result is None:
            continue
        repeats = result.row_count - result.null_count - result.distinct_count
        blanks = result.null_count
        if repeats or blanks:
            parts = []
            if repeats:
                parts.append(f"{repeats:,} repeated value{'s' if repeats != 1 else ''}")
            if blanks:
                parts.append(f"{blanks:,} blank{'s' if blanks != 1 else ''}")
            population_file.key_problem = (
                f"The primary key {mapping.column_name} has {' and '.join(parts)}, so it can't name each row. "
                "Choose another key column, or name rows by their row number and say why."
            )
        else:
            population_file.key_column = mapping.column_name
        break
    population_file.save(update_fields=["key_column", "key_problem"])


def population_key_resolve(*, user, population_file: PopulationFile, key_column: str = "", reason: str = "") -> None:
    """The tester resolves a key problem: another column that names each row once, or row numbers with a reason."""
    _require_editable(user, population_file.cycle_report, "choose the key of its population")
    key_column = (key_column or "").strip()
    reason = (reason or "").strip()
    if not key_column and not reason:
        raise ApplicationError("Choose a key column, or say why rows are named by their row number.")
    if key_column:
        if key_column not in population_file.columns:
            raise ApplicationError(f"{population_file.original_name} has no column {key_column!r}.")
        result = ProfileResult.objects.filter(population_file=population_file, column_name=key_column).first()
        if result is None or result.null_count or result.distinct_count != result.row_count:
            raise ApplicationError(
                f"{key_column} can't be the key either: it has repeated or blank values. "
                "Choose a column whose every value is different, or use row numbers."
            )
    with transaction.atomic():
        before = snapshot(population_file, ["key_column", "key_resolution", "key_reason"])
        population_file.key_column = key_column
        population_file.key_resolution = (
            PopulationFile.KeyResolution.COLUMN if key_column else PopulationFile.KeyResolution.ROW_NUMBERS
        )
        population_file.key_reason = reason
        population_file.key_resolved_by = user
        population_file.save(update_fields=["key_column", "key_resolution", "key_reason", "key_resolved_by"])
        audit_record(actor=user, action="population.key_resolve", obj=population_file, before=before,
                     after=snapshot(population_file, ["key_column", "key_resolution", "key_reason"]))


def population_key_column(population_file: PopulationFile) -> str | None:
    """The column that names rows (samples), None for row numbers; ApplicationError while a key problem is open."""
    if population_file.key_problem and not population_file.key_resolution:
        raise ApplicationError(
            f"{population_file.original_name}: {population_file.key_problem} Resolve it in Data Profiling first."
        )
    return population_file.key_column or None


# --- validation rules -------------------------------------------------------------------------------


def rules_draft_for_report(*, cycle_report: CycleReport) -> int:
    """Draft validation rules for a report that has none yet (the system's; idempotent); returns how many."""
    from cycles.llm import get_provider

    attributes = list(Attribute.objects.filter(cycle_report=cycle_report).order_by("name"))
    if not attributes or ProfilingRule.objects.filter(attribute__cycle_report=cycle_report).exists():
        return 0
    from cycles.llm import LLMError
    from cycles.llm.offline import OfflineProvider

    described = [
        {"name": a.name, "description": a.description, "data_type": a.data_type, "mandatory": a.mandatory,
         "primary_key": a.primary_key}
        for a in attributes
    ]
    provider = get_provider()
    fallback = ""
    try:
        drafts = provider.draft_rules(attributes=described, profiles={})
    except LLMError as err:
        # Rules are a draft the tester reviews: the deterministic ones stand in when the model can't answer.
        fallback = str(err)
        provider = OfflineProvider()
        drafts = provider.draft_rules(attributes=described, profiles={})
    by_name = {a.name: a for a in attributes}
    rules = []
    for draft in drafts:
        attribute = by_name.get(draft.attribute)
        if attribute is None:
            continue
        try:
            params = check_params(draft.kind, draft.params, attribute.data_type)
        except RuleError:
            continue  # a draft that doesn't hold together is dropped, not stored half-made
        if draft.kind == "compare" and params["other"] not in by_name:
            continue
        source = ProfilingRule.Source.SYSTEM if provider.name == "offline" else ProfilingRule.Source.LLM
        rules.append(ProfilingRule(attribute=attribute, kind=draft.kind, params=params, source=source,
                                   source_detail=f"{provider.name}: {draft.source_detail}"[:200]))
    with transaction.atomic():
        ProfilingRule.objects.bulk_create(rules)
        if rules:
            audit_record(actor=None, action="rules.draft", obj=cycle_report,
                         after={"rules": [f"{r.attribute.name}: {r.label}" for r in rules]},
                         context={"provider": provider.name, "model": getattr(provider, "model", ""),
                                  **({"error": f"the language model failed: {fallback}"} if fallback else {})})
    return len(rules)


def rule_specs(population_file: PopulationFile, rules=None) -> list[RuleSpec]:
    """The report's rules bound to the file's columns (rules of attributes without a column are left out)."""
    mappings = {
        m.attribute_id: m for m in population_file.mappings.select_related("attribute")
        if m.column_name and m.status != ColumnMapping.Status.NOT_IN_FILE
    }
    by_name = {m.attribute.name: m for m in mappings.values()}
    if rules is None:
        rules = ProfilingRule.objects.filter(attribute__cycle_report_id=population_file.cycle_report_id)
    specs = []
    for rule in rules:
        mapping = mappings.get(rule.attribute_id)
        if mapping is None:
            continue
        other = by_name.get((rule.params or {}).get("other", "")) if rule.kind == ProfilingRule.Kind.COMPARE else None
        if rule.kind == ProfilingRule.Kind.COMPARE and other is None:
            continue
        specs.append(RuleSpec(
            id=rule.pk, kind=rule.kind, column=mapping.column_name, data_type=mapping.attribute.data_type,
            params=rule.params or {}, other_column=other.column_name if other else None,
            other_data_type=other.attribute.data_type if other else "string",
        ))
    return specs


def rules_for_file(population_file: PopulationFile) -> list[ProfilingRule]:
    return list(
        ProfilingRule.objects.filter(attribute__cycle_report_id=population_file.cycle_report_id)
        .select_related("attribute")
    )


def rule_results(specs: list[RuleSpec], rules: list[ProfilingRule], outcomes: dict) -> dict[str, list[dict]]:
    """What ProfileResult.rule_results holds, per column: each rule's label, failing rows and example rows."""
    by_id = {r.pk: r for r in rules}
    per_column: dict[str, list[dict]] = {}
    for spec in specs:
        outcome = outcomes.get(spec.id)
        if outcome is None:
            continue
        per_column.setdefault(spec.column, []).append({
            "rule": spec.id, "label": by_id[spec.id].label, "kind": spec.kind,
            "failing": outcome.failing, "examples": outcome.examples,
        })
    return per_column


def rules_evaluate(*, population_file: PopulationFile) -> int:
    """Count each rule's failing rows in the file and store them on the columns' profiles; returns the rule count.

    Profiling counts the rules in its own pass; this is for counting them again after the tester changed them.
    """
    rules = rules_for_file(population_file)
    specs = rule_specs(population_file, rules)
    outcomes = evaluate_rules_in_file(population_file.file.path, population_file.format, specs)
    per_column = rule_results(specs, rules, outcomes)
    with transaction.atomic():
        for result in ProfileResult.objects.select_for_update().filter(population_file=population_file):
            result.rule_results = per_column.get(result.column_name, [])
            result.save(update_fields=["rule_results"])
    return len(specs)


def profiling_rule_save(
    *, user, attribute: Attribute, kind: str, params: dict, rule: ProfilingRule | None = None
) -> ProfilingRule:
    """Add a rule to an attribute, or change one; the tester's from then on."""
    _require_editable(user, attribute.cycle_report, "change its validation rules")
    try:
        params = check_params(kind, params, attribute.data_type)
    except RuleError as err:
        raise ApplicationError(f"{attribute.name}: {err}") from None
    if kind == ProfilingRule.Kind.COMPARE:
        if params["other"] == attribute.name or not Attribute.objects.filter(
            cycle_report_id=attribute.cycle_report_id, name=params["other"]
        ).exists():
            raise ApplicationError(f"{attribute.name}: {params['other']!r} is not another attribute of this report.")
    with transaction.atomic():
        before = snapshot(rule, ["kind", "params", "source"]) if rule else None
        if rule is None:
            rule = ProfilingRule(attribute=attribute)
        rule.kind = kind
        rule.params = params
        rule.source = ProfilingRule.Source.PERSON
        rule.created_by = user
        rule.save()
        audit_record(actor=user, action="rule.save", obj=rule, before=before,
                     after={**snapshot(rule, ["kind", "params", "source"]), "attribute": attribute.name})
    return rule


def profiling_rule_delete(*, user, rule: ProfilingRule) -> None:
    _require_editable(user, rule.attribute.cycle_report, "change its validation rules")
    with transaction.atomic():
        audit_record(actor=user, action="rule.delete", obj=rule,
                     before={**snapshot(rule, ["kind", "params", "source"]), "attribute": rule.attribute.name})
        rule.delete()


def population_rules_recheck(*, user, population_file: PopulationFile) -> int:
    """Count the rules' failures again after the tester changed them."""
    _require_editable(user, population_file.cycle_report, "check its validation rules")
    return rules_evaluate(population_file=population_file)


# --- what keeps the phase from completing -----------------------------------------------------------


_UNREAD = object()


def profiling_open_points(*, cycle_report: CycleReport, current: PopulationFile | None = _UNREAD,
                          pending: PopulationFile | None = _UNREAD) -> list[str]:
    """What the tester must settle before Data Profiling can be submitted (empty: ready).

    ``current``: the report's current population file, and ``pending`` a newer one waiting for its profile,
    when the caller has read them already.
    """
    from cycles.services.profiling import population_file_current

    if current is _UNREAD:
        current = population_file_current(cycle_report=cycle_report)
    if current is None:
        return ["Upload the population file and wait for its profile."]
    points = []
    if pending is _UNREAD:
        pending = cycle_report.population_files.filter(
            status__in=[PopulationFile.Status.UPLOADED, PopulationFile.Status.PROFILING],
            uploaded_at__gt=current.uploaded_at,
        ).first()
    if pending is not None:
        points.append(f"Wait until {pending.original_name} is profiled.")
    # Names only, asked of the database: a report's mappings are hundreds of rows, nearly all settled.
    unsettled = list(
        current.mappings.exclude(status__in=[ColumnMapping.Status.CONFIRMED, ColumnMapping.Status.NOT_IN_FILE])
        .order_by().values_list("attribute__name", flat=True)  # sorted below with the others
    )
    unsettled += list(
        Attribute.objects.filter(cycle_report=cycle_report).exclude(mappings__population_file=current)
        .order_by().values_list("name", flat=True)
    )
    if unsettled:
        points.append(
            "Confirm the column of each attribute, or mark it not in this file with a reason: "
            + ", ".join(sorted(unsettled)) + "."
        )
    if current.key_problem and not current.key_resolution:
        points.append(current.key_problem)
    return points
