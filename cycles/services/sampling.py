"""Services of the Sample Selection phase: the sampling plan, drawing samples, hand-picked samples.

The size and the draw are computed by the pure functions of cycles.sampling;
this module loads their inputs (the size table, the population file, the
report's attributes), checks who may do what and when, and stores the result
with its audit trail. A draw is reproducible: the plan records the seed, and
the same seed, file and settings give the same samples.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation

import polars as pl
from django.db import transaction
from django.db.models import QuerySet

from cycles.exceptions import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError
from cycles.models import (
    Attribute,
    CycleReport,
    Phase,
    PopulationFile,
    ProfilingRule,
    RiskLevel,
    Sample,
    SampleSizeRule,
    SamplingPlan,
)
from cycles.permissions import can_work_on
from cycles.profiling import READ_ERRORS, PopulationReadError, match_column, read_population
from cycles.sampling import (
    DEFAULT_FREQUENCY_TABLE,
    ROW_INDEX_COLUMN,
    SampleSizeResult,
    Selection,
    attribute_sample_size,
    frequency_sample_size,
    new_seed,
    override_sample_size,
    select_manual,
    select_random,
    select_risk_based,
    select_stratified,
)
from cycles.sampling.selection import MAX_SEED
from cycles.profiling.rules import flagged as rules_flagged
from cycles.sampling.keys import natural_sorted
from cycles.services.artifacts import phase_require_editable
from cycles.services.profiling_checks import population_key_column, rule_specs
from synapse.audit import audit_record, snapshot

__all__ = [
    "PLAN_FIELDS",
    "frequency_table",
    "sample_add_manual",
    "sample_remove",
    "samples_draw",
    "samples_for",
    "sampling_plan_explanation",
    "sampling_plan_prepare",
    "sampling_plan_update",
]

# What the tester may change on a plan (sampling_plan_update's keyword arguments).
PLAN_FIELDS = (
    "size_rule",
    "risk",
    "risk_of_overreliance",
    "tolerable_rate",
    "expected_rate",
    "override_size",
    "override_reason",
    "method",
    "stratify_by",
    "min_per_stratum",
    "risk_column",
    "seed",
)
AUDITED_PLAN_FIELDS = [
    "population_file_id",
    *PLAN_FIELDS,
    "computed_size",
    "allowed_deviations",
    "size_explanation",
]
RISK_ORDER = (RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH)
RATE_PLACES = Decimal("0.001")
KEY_MAX = Sample._meta.get_field("key").max_length
STRATUM_MAX = Sample._meta.get_field("stratum").max_length
EXPLANATION_MAX = SamplingPlan._meta.get_field("size_explanation").max_length
# Stored for a stratified sample whose stratum column is empty, so the page
# doesn't show a stratified sample without a stratum.
EMPTY_STRATUM = "(empty)"
PHASE = Phase.SAMPLE_SELECTION
# The risk column parsed as numbers while ranking; never stored.
RANK_COLUMN = "_risk_rank_value"


@contextmanager
def _as_application_error() -> Iterator[None]:
    # cycles.sampling speaks ValueError with a message meant for the tester.
    try:
        yield
    except ValueError as exc:
        raise ApplicationError(str(exc)) from exc


# -- the size ------------------------------------------------------------------------------------


def frequency_table() -> dict[str, dict[str, int]]:
    """The frequency table as the admin left it; a missing row falls back to the built-in default."""
    table = {frequency: dict(by_risk) for frequency, by_risk in DEFAULT_FREQUENCY_TABLE.items()}
    for frequency, risk, count in SampleSizeRule.objects.values_list("frequency", "risk", "sample_count"):
        table.setdefault(frequency, {})[risk] = count
    return table


def _computed_size(plan: SamplingPlan, cycle_report: CycleReport) -> SampleSizeResult:
    with _as_application_error():
        if plan.size_rule == SamplingPlan.SizeRule.STATISTICAL:
            return attribute_sample_size(
                risk_of_overreliance=Decimal(str(plan.risk_of_overreliance)),
                tolerable_rate=Decimal(str(plan.tolerable_rate)),
                expected_rate=Decimal(str(plan.expected_rate)),
            )
        return frequency_sample_size(
            frequency=cycle_report.report.frequency, risk=plan.risk, table=frequency_table()
        )


def _apply_size(plan: SamplingPlan, result: SampleSizeResult) -> None:
    plan.computed_size = result.sample_size
    plan.allowed_deviations = result.allowed_deviations
    plan.size_explanation = result.rule[:EXPLANATION_MAX]


def sampling_plan_explanation(*, plan: SamplingPlan) -> str:
    """Which rule produced the plan's sample size, including an override and its reason."""
    if plan.override_size is None:
        return plan.size_explanation
    replaced = SampleSizeResult(
        sample_size=plan.computed_size, method=plan.size_rule, rule=plan.size_explanation
    )
    with _as_application_error():
        return override_sample_size(
            result=replaced, sample_size=plan.override_size, reason=plan.override_reason
        ).rule


def _highest_in_scope_risk(cycle_report: CycleReport) -> str | None:
    levels = [
        a.risk_level
        for a in Attribute.objects.filter(cycle_report=cycle_report, scoping__in_scope=True)
    ]
    return max(levels, key=RISK_ORDER.index) if levels else None


def _latest_profiled_file(cycle_report: CycleReport) -> PopulationFile | None:
    return (
        PopulationFile.objects.filter(cycle_report=cycle_report, status=PopulationFile.Status.PROFILED)
        .order_by("-uploaded_at", "-pk")
        .first()
    )


def sampling_plan_prepare(*, cycle_report_id: int) -> SamplingPlan:
    """The report's sampling plan, made with its defaults the first time (safe to call again).

    Defaults: the frequency table for the report's control frequency at the
    highest risk level among the in-scope attributes (medium when none is in
    scope), and the latest profiled population file. A plan that exists is
    returned as it is, so a retried activity never undoes the tester's changes.
    """
    try:
        cycle_report = CycleReport.objects.select_related("report", "cycle").get(pk=cycle_report_id)
    except CycleReport.DoesNotExist:
        raise NotFoundError(f"Cycle report {cycle_report_id} does not exist.") from None
    existing = SamplingPlan.objects.filter(cycle_report=cycle_report).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        # The report row lock makes a concurrent first call wait, then find the plan.
        CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
        existing = SamplingPlan.objects.filter(cycle_report=cycle_report).first()
        if existing is not None:
            return existing
        plan = SamplingPlan(
            cycle_report=cycle_report,
            population_file=_latest_profiled_file(cycle_report),
            size_rule=SamplingPlan.SizeRule.FREQUENCY,
            risk=_highest_in_scope_risk(cycle_report) or RiskLevel.MEDIUM,
            risk_of_overreliance=Decimal("0.05"),
            tolerable_rate=Decimal("0.05"),
            expected_rate=Decimal("0"),
        )
        _apply_size(plan, _computed_size(plan, cycle_report))
        plan.save()
        audit_record(
            actor=None,
            action="sampling.plan_prepare",
            obj=plan,
            after=snapshot(plan, AUDITED_PLAN_FIELDS),
            context={"cycle_report": cycle_report.pk},
        )
    return plan


# -- validation of the tester's plan fields ------------------------------------------------------


def _choice(name: str, value: object, choices: type) -> str:
    if value not in choices.values:
        raise ApplicationError(
            f"{value!r} is not a valid {name.replace('_', ' ')}; choose one of: {', '.join(choices.values)}."
        )
    return value


def _rate(name: str, value: object, *, zero_allowed: bool) -> Decimal:
    label = name.replace("_", " ")
    if isinstance(value, bool) or value is None or value == "":
        raise ApplicationError(f"Give the {label} as a fraction, e.g. 0.05 for 5%.")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise ApplicationError(f"The {label} must be a number, e.g. 0.05 for 5% (got {value!r}).") from None
    if not rate.is_finite():
        raise ApplicationError(f"The {label} must be a number, e.g. 0.05 for 5% (got {value!r}).")
    low_ok = rate >= 0 if zero_allowed else rate > 0
    if not (low_ok and rate < 1):
        bound = "from 0" if zero_allowed else "above 0"
        raise ApplicationError(f"The {label} must be a fraction {bound} and below 1, e.g. 0.05 for 5% (got {value}).")
    if rate != rate.quantize(RATE_PLACES):
        raise ApplicationError(f"The {label} can have at most 3 decimals, e.g. 0.035 for 3.5% (got {value}).")
    return rate.quantize(RATE_PLACES)


def _whole(name: str, value: object, *, minimum: int, maximum: int | None = None,
           optional: bool = False) -> int | None:
    label = name.replace("_", " ")
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
        maximum is not None and value > maximum
    ):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ApplicationError(f"The {label} must be a whole number of at least {minimum}{upper} (got {value!r}).")
    return value


def _text(name: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApplicationError(f"The {name.replace('_', ' ')} must be text.")
    return value.strip()


def _population_columns(population_file: PopulationFile) -> list[str]:
    if population_file.columns:
        return list(population_file.columns)
    with _reading(population_file):
        return read_population(population_file.file.path, population_file.format).collect_schema().names()


def _column(name: str, value: object, plan: SamplingPlan) -> str:
    column = _text(name, value)
    if not column:
        return ""
    population_file = plan.population_file
    if population_file is None:
        raise ApplicationError(
            f"There is no profiled population file to take the {name.replace('_', ' ')} from."
        )
    columns = _population_columns(population_file)
    found = match_column(column, columns)
    if found is None:
        raise ApplicationError(
            f"{column!r} is not a column of {population_file.original_name}; its columns are: {', '.join(columns)}."
        )
    return found


def _clean_plan_fields(fields: dict, plan: SamplingPlan) -> dict:
    unknown = sorted(set(fields) - set(PLAN_FIELDS))
    if unknown:
        raise ApplicationError(f"Unknown sampling plan fields: {', '.join(unknown)}.")
    cleaned: dict = {}
    for name, value in fields.items():
        if name == "size_rule":
            cleaned[name] = _choice(name, value, SamplingPlan.SizeRule)
        elif name == "risk":
            cleaned[name] = _choice(name, value, RiskLevel)
        elif name == "method":
            cleaned[name] = _choice(name, value, SamplingPlan.Method)
        elif name in ("risk_of_overreliance", "tolerable_rate"):
            cleaned[name] = _rate(name, value, zero_allowed=False)
        elif name == "expected_rate":
            cleaned[name] = _rate(name, value, zero_allowed=True)
        elif name == "override_size":
            cleaned[name] = _whole(name, value, minimum=1, optional=True)
        elif name == "override_reason":
            cleaned[name] = _text(name, value)
        elif name == "min_per_stratum":
            cleaned[name] = _whole(name, value, minimum=0)
        elif name == "seed":
            cleaned[name] = _whole(name, value, minimum=0, maximum=MAX_SEED, optional=True)
        elif name in ("stratify_by", "risk_column"):
            cleaned[name] = _column(name, value, plan)
    return cleaned


# -- the plan ------------------------------------------------------------------------------------


def _require_tester(user, cycle_report: CycleReport, what: str) -> None:
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError(f"Only the tester assigned to this report can {what}.")


def _lock_for_edit(*, user, cycle_report: CycleReport, what: str) -> CycleReport:
    """Check permission, then lock the report row and check the phase under the lock.

    The lock serialises the phase's writes for one report, so an edit can't
    race a submission that freezes the samples.
    """
    _require_tester(user, cycle_report, what)
    locked = CycleReport.objects.select_for_update(no_key=True).select_related("report").get(pk=cycle_report.pk)
    phase_require_editable(locked, PHASE)
    return locked


def sampling_plan_update(*, user, cycle_report: CycleReport, **fields) -> SamplingPlan:
    """Change the tester's sampling settings and recompute the size.

    An override of the size needs a reason; it is audited on its own
    ("sampling.override_size") so the audit trail shows who overrode which
    rule and why.
    """
    _require_tester(user, cycle_report, "change its sampling plan")
    phase_require_editable(cycle_report, PHASE)
    sampling_plan_prepare(cycle_report_id=cycle_report.pk)
    with transaction.atomic():
        cycle_report = _lock_for_edit(user=user, cycle_report=cycle_report, what="change its sampling plan")
        plan = SamplingPlan.objects.select_for_update(of=("self",)).select_related("population_file").get(
            cycle_report=cycle_report
        )
        if plan.population_file is None:
            plan.population_file = _latest_profiled_file(cycle_report)
        cleaned = _clean_plan_fields(fields, plan)
        before = snapshot(plan, AUDITED_PLAN_FIELDS)
        for name, value in cleaned.items():
            setattr(plan, name, value)

        if plan.override_size is None:
            if cleaned.get("override_reason"):
                raise ApplicationError("Give the sample size that overrides the rule, not only the reason.")
            plan.override_reason = ""
        if plan.method == SamplingPlan.Method.STRATIFIED and not plan.stratify_by:
            raise ApplicationError("Choose the column whose values form the strata.")
        result = _computed_size(plan, cycle_report)
        _apply_size(plan, result)
        if plan.override_size is not None:
            with _as_application_error():
                override_sample_size(result=result, sample_size=plan.override_size, reason=plan.override_reason)

        after = snapshot(plan, AUDITED_PLAN_FIELDS)
        if after == before:
            return plan
        plan.updated_by = user
        plan.save()
        changed = [name for name in AUDITED_PLAN_FIELDS if before[name] != after[name]]
        audit_record(
            actor=user,
            action="sampling.plan_update",
            obj=plan,
            before={name: before[name] for name in changed},
            after={name: after[name] for name in changed},
            context={"cycle_report": cycle_report.pk},
        )
        override_fields = ("override_size", "override_reason")
        if any(before[name] != after[name] for name in override_fields):
            audit_record(
                actor=user,
                action="sampling.override_size",
                obj=plan,
                before={name: before[name] for name in override_fields},
                after={name: after[name] for name in override_fields},
                context={
                    "reason": plan.override_reason,
                    "computed_size": plan.computed_size,
                    "rule": plan.size_explanation,
                },
            )
    return plan


# -- reading the population ----------------------------------------------------------------------


@contextmanager
def _reading(population_file: PopulationFile) -> Iterator[None]:
    try:
        yield
    except PopulationReadError as exc:
        raise ApplicationError(str(exc)) from exc
    except READ_ERRORS as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ApplicationError(
            f"The population file {population_file.original_name} could not be read: {detail[:300]}."
        ) from exc


def _population(population_file: PopulationFile) -> pl.LazyFrame:
    """The population with each row's 0-based file position, which seeded draws key on."""
    with _reading(population_file):
        return read_population(population_file.file.path, population_file.format).with_row_index(
            ROW_INDEX_COLUMN
        )


def _in_scope_attributes(cycle_report: CycleReport) -> list[Attribute]:
    return list(
        Attribute.objects.filter(cycle_report=cycle_report, scoping__in_scope=True).order_by("name")
    )


def _key_column(cycle_report: CycleReport, population_file: PopulationFile, lazy: pl.LazyFrame) -> str | None:
    """The column that names samples, or None to name them by row number (1 = the first data row).

    Data Profiling settles it: the primary key if it names each row once, else
    the column or row numbers the tester chose. A primary key with repeats or
    blanks is never switched silently: sampling waits until the tester chose.
    Files profiled before keys were checked there fall back to the old rule
    (a primary-key column that names each row once, else row numbers).
    """
    if population_file.key_column or population_file.key_problem or population_file.key_resolution:
        return population_key_column(population_file)
    with _reading(population_file):
        columns = lazy.collect_schema().names()
    keys = list(
        Attribute.objects.filter(cycle_report=cycle_report, primary_key=True).select_related("scoping").order_by("name")
    )
    in_scope = [a for a in keys if getattr(getattr(a, "scoping", None), "in_scope", False)]
    for attribute in [*in_scope, *(a for a in keys if a not in in_scope)]:
        column = match_column(attribute.name, columns)
        if column is None:
            continue
        text = pl.col(column).cast(pl.Utf8)
        with _reading(population_file):
            stats = lazy.select(
                pl.len().alias("rows"),
                text.n_unique().alias("distinct"),
                text.null_count().alias("nulls"),
                text.str.len_chars().max().alias("longest"),
            ).collect().row(0, named=True)
        if stats["nulls"] == 0 and stats["distinct"] == stats["rows"] and (stats["longest"] or 0) <= KEY_MAX:
            return column
    return None


def _plan_population_file(plan: SamplingPlan, cycle_report: CycleReport) -> PopulationFile:
    population_file = plan.population_file or _latest_profiled_file(cycle_report)
    if population_file is None:
        raise ApplicationError(
            "There is no profiled population file to sample from: upload and profile one in Data Profiling."
        )
    return population_file


def _numbers(column: str, dtype: pl.DataType) -> pl.Expr:
    # CSV and XLSX cells arrive as text; "1,250.00" ranks as 1250.
    if dtype.is_numeric():
        return pl.col(column)
    return (
        pl.col(column).cast(pl.Utf8).str.replace_all(",", "").str.strip_chars()
        .cast(pl.Float64, strict=False)
    )


def _flagged_mask(cycle_report: CycleReport, df: pl.DataFrame,
                  population_file: PopulationFile | None = None) -> tuple[pl.Expr, list[str]]:
    """Rows a risk-based draw targets: an in-scope mandatory attribute left empty, or a validation rule broken."""
    in_scope = _in_scope_attributes(cycle_report)
    columns = []
    for attribute in in_scope:
        column = match_column(attribute.name, df.columns) if attribute.mandatory else None
        if column is not None:
            columns.append(column)
    masks = []
    for column in columns:
        missing = pl.col(column).is_null()
        if df.schema[column] == pl.Utf8:
            missing = missing | (pl.col(column).str.strip_chars() == "")
        masks.append(missing)
    if population_file is not None:
        in_scope_ids = {a.pk for a in in_scope}
        rules = ProfilingRule.objects.filter(attribute_id__in=in_scope_ids)
        specs = rule_specs(population_file, rules)
        broken = rules_flagged(specs, dict(df.schema))
        if broken is not None:
            masks.append(broken)
            columns += [spec.column for spec in specs if spec.column not in columns]
    if not masks:
        raise ApplicationError(
            "A risk-based draw needs a numeric column to rank rows by, or in-scope mandatory attributes "
            "or validation rules whose failures flag rows: choose a risk column."
        )
    return pl.any_horizontal(masks), columns


def _draw(plan: SamplingPlan, cycle_report: CycleReport, df: pl.DataFrame, *, seed: int | None,
          key_column: str | None) -> Selection:
    size = plan.sample_size
    if size < 1:
        raise ApplicationError("The plan's sample size is 0: set the size rule or override the size first.")
    with _as_application_error():
        if plan.method == SamplingPlan.Method.RANDOM:
            return select_random(df, size=size, seed=seed, key_column=key_column)
        if plan.method == SamplingPlan.Method.STRATIFIED:
            if not plan.stratify_by:
                raise ApplicationError("Choose the column whose values form the strata.")
            return select_stratified(
                df, size=size, stratify_by=plan.stratify_by, seed=seed,
                min_per_stratum=plan.min_per_stratum, key_column=key_column,
            )
        if plan.risk_column:
            if plan.risk_column not in df.columns:
                raise ApplicationError(f"The risk column {plan.risk_column!r} is not in the population file.")
            # Ranked by a parsed copy of the column, so each sample keeps the row as the file has it.
            ranked = df.with_columns(_numbers(plan.risk_column, df.schema[plan.risk_column]).alias(RANK_COLUMN))
            if ranked[RANK_COLUMN].null_count() == ranked.height:
                raise ApplicationError(
                    f"Column {plan.risk_column!r} holds no numbers: it can't rank rows by size."
                )
            selection = select_risk_based(ranked, size=size, by_column=RANK_COLUMN, key_column=key_column)
            samples = [
                dataclasses.replace(
                    s,
                    detail=s.detail.replace(RANK_COLUMN, plan.risk_column),
                    row={name: value for name, value in s.row.items() if name != RANK_COLUMN},
                )
                for s in selection.samples
            ]
            parameters = {**selection.parameters, "by_column": plan.risk_column}
            return dataclasses.replace(selection, samples=samples, parameters=parameters)
        mask, columns = _flagged_mask(cycle_report, df, plan.population_file or _latest_profiled_file(cycle_report))
        selection = select_risk_based(df, size=size, flagged_mask=mask, key_column=key_column)
        if not selection.samples:
            raise ApplicationError(
                f"No row leaves a mandatory in-scope column empty or breaks a rule ({', '.join(columns)}): "
                "choose a risk column to rank rows by."
            )
        return selection


def _sample_fields(selected, *, stratified: bool) -> dict:
    stratum = selected.stratum if selected.stratum is not None else (EMPTY_STRATUM if stratified else "")
    return {
        "key": selected.sample_key,
        "row_index": selected.row_index,
        "row_data": selected.row,
        "stratum": stratum[:STRATUM_MAX],
        "method": selected.method,
    }


# -- samples -------------------------------------------------------------------------------------


def samples_for(*, cycle_report: CycleReport) -> QuerySet[Sample]:
    """The report's working samples in file order (pages list them by natural_sorted key)."""
    return Sample.objects.filter(cycle_report=cycle_report).select_related("added_by").order_by("row_index")


def samples_draw(*, user, cycle_report: CycleReport) -> list[Sample]:
    """Draw the plan's samples from the population file; return every working sample in file order.

    The drawn samples replace the previous draw; hand-picked ones stay (a row
    picked by hand keeps its pick when the draw lands on it too). Random and
    stratified draws record their seed on the plan, a new one if it has none.
    """
    _require_tester(user, cycle_report, "draw its samples")
    phase_require_editable(cycle_report, PHASE)
    plan = sampling_plan_prepare(cycle_report_id=cycle_report.pk)
    cycle_report = CycleReport.objects.select_related("report").get(pk=cycle_report.pk)
    if plan.method == SamplingPlan.Method.MANUAL:
        raise ApplicationError(
            "The plan picks every sample by hand: add them by key, or choose a method that draws."
        )
    population_file = _plan_population_file(plan, cycle_report)
    seeded = plan.method in (SamplingPlan.Method.RANDOM, SamplingPlan.Method.STRATIFIED)
    seed = (plan.seed if plan.seed is not None else new_seed()) if seeded else None

    # Reading and drawing stay outside the transaction: a large file takes
    # seconds, and the report's row lock would block every other edit meanwhile.
    with _reading(population_file):
        df = _population(population_file).collect()
    key_column = _key_column(cycle_report, population_file, df.lazy())
    selection = _draw(plan, cycle_report, df, seed=seed, key_column=key_column)

    with transaction.atomic():
        cycle_report = _lock_for_edit(user=user, cycle_report=cycle_report, what="draw its samples")
        locked = SamplingPlan.objects.select_for_update().get(pk=plan.pk)
        if locked.updated_at != plan.updated_at:
            raise ConflictError("The sampling plan changed while the samples were drawn: draw again.")
        plan = locked
        plan.cycle_report = cycle_report  # the audit entry names it: not read again
        plan_before = snapshot(plan, ["population_file_id", "seed"])
        current = list(Sample.objects.filter(cycle_report=cycle_report))
        manual = [s for s in current if s.method == SamplingPlan.Method.MANUAL]
        drawn_before = natural_sorted(s.key for s in current if s.method != SamplingPlan.Method.MANUAL)
        taken_rows = {s.row_index for s in manual}
        taken_keys = {s.key for s in manual}
        stratified = plan.method == SamplingPlan.Method.STRATIFIED
        new = [
            Sample(
                cycle_report=cycle_report,
                seed=selection.seed,
                reason=selected.detail,
                added_by=user,
                **_sample_fields(selected, stratified=stratified),
            )
            for selected in selection.samples
            if selected.row_index not in taken_rows and selected.sample_key not in taken_keys
        ]
        Sample.objects.filter(cycle_report=cycle_report).exclude(method=SamplingPlan.Method.MANUAL).delete()
        Sample.objects.bulk_create(new)
        plan.population_file = population_file
        if seeded:
            plan.seed = seed
        plan.updated_by = user
        plan.save()
        audit_record(
            actor=user,
            action="sampling.draw",
            obj=plan,
            before={**plan_before, "drawn": drawn_before},
            after={**snapshot(plan, ["population_file_id", "seed"]), "drawn": natural_sorted(s.key for s in new)},
            context={
                "method": plan.method,
                "sample_size": plan.sample_size,
                "population_sha256": population_file.sha256,
                "population_rows": df.height,
                "key_column": key_column,
                "parameters": dict(selection.parameters),
                "kept_manual": natural_sorted(taken_keys),
            },
        )
    return list(samples_for(cycle_report=cycle_report))


def sample_add_manual(*, user, cycle_report: CycleReport, key: str, reason: str) -> Sample:
    """Add the population row whose key (primary-key value, else row number) is `key`, picked by hand."""
    _require_tester(user, cycle_report, "pick its samples")
    phase_require_editable(cycle_report, PHASE)
    key = _text("key", str(key) if isinstance(key, int) and not isinstance(key, bool) else key)
    reason = _text("reason", reason)
    if not key:
        raise ApplicationError("Give the key of the row to add.")
    if not reason:
        raise ApplicationError(f"Say why row {key} is picked by hand.")
    plan = sampling_plan_prepare(cycle_report_id=cycle_report.pk)
    population_file = _plan_population_file(plan, cycle_report)

    lazy = _population(population_file)
    key_column = _key_column(cycle_report, population_file, lazy)
    # Only the matching rows are collected, so a pick from a large file stays quick.
    if key_column is not None:
        matches = lazy.filter(pl.col(key_column).cast(pl.Utf8) == key)
        what = f"{key_column} value"
    elif key.isdigit() and int(key) >= 1:
        matches = lazy.filter(pl.col(ROW_INDEX_COLUMN) == int(key) - 1)
        what = "row number"
    else:
        why = (
            f"the tester chose row numbers in Data Profiling: {population_file.key_reason}"
            if population_file.key_resolution == PopulationFile.KeyResolution.ROW_NUMBERS
            else "the population has no primary-key column"
        )
        raise ApplicationError(
            f"{key!r} is not a row number. Rows of {population_file.original_name} are named by their row number "
            f"(1 = the first data row) because {why}."
        )
    with _reading(population_file):
        rows = matches.collect()
    if rows.height == 0:
        raise ApplicationError(f"There is no {what} {key!r} in {population_file.original_name}.")
    with _as_application_error():
        (selected,) = select_manual(rows, keys=[key], key_column=key_column, reason=reason).samples

    stratum = ""
    if plan.method == SamplingPlan.Method.STRATIFIED and plan.stratify_by:
        value = selected.row.get(plan.stratify_by)
        stratum = EMPTY_STRATUM if value is None else str(value)[:STRATUM_MAX]

    with transaction.atomic():
        cycle_report = _lock_for_edit(user=user, cycle_report=cycle_report, what="pick its samples")
        clash = Sample.objects.filter(cycle_report=cycle_report).filter(
            key=selected.sample_key
        ).first() or Sample.objects.filter(cycle_report=cycle_report, row_index=selected.row_index).first()
        if clash is not None:
            raise ConflictError(
                f"Row {selected.sample_key} is already a sample ({clash.get_method_display().lower()})."
            )
        sample = Sample.objects.create(
            cycle_report=cycle_report,
            key=selected.sample_key,
            row_index=selected.row_index,
            row_data=selected.row,
            stratum=stratum,
            method=SamplingPlan.Method.MANUAL,
            seed=None,
            reason=reason,
            added_by=user,
        )
        audit_record(
            actor=user,
            action="sample.add_manual",
            obj=sample,
            after=snapshot(sample, ["key", "row_index", "stratum", "method", "reason"]),
            context={"cycle_report": cycle_report.pk, "population_file": population_file.pk},
        )
    return sample


def sample_remove(*, user, sample: Sample) -> None:
    """Take a sample out of the working set (drawn or hand-picked)."""
    cycle_report = sample.cycle_report
    _require_tester(user, cycle_report, "remove its samples")
    with transaction.atomic():
        _lock_for_edit(user=user, cycle_report=cycle_report, what="remove its samples")
        try:
            sample = Sample.objects.select_for_update().get(pk=sample.pk)
        except Sample.DoesNotExist:
            raise NotFoundError(f"Sample {sample.key} is no longer in the working set.") from None
        audit_record(
            actor=user,
            action="sample.remove",
            obj=sample,
            before=snapshot(sample, ["key", "row_index", "stratum", "method", "seed", "reason"]),
            context={"cycle_report": cycle_report.pk},
        )
        sample.delete()


def samples_decide_remaining(*, user, version, approve: bool, note: str = "") -> int:
    """The approver approves or rejects every sample not yet decided, with one note; returns how many.

    One audit entry lists the samples, so a review of sixty samples is one step and one record.
    """
    from django.utils import timezone

    from cycles.permissions import can_approve
    from versioning.models import Version, VersionItem, VersionStatus

    if version.phase != PHASE:
        raise ApplicationError("Only Sample Selection versions have samples to decide.")
    if not can_approve(user, version.cycle_report, version.phase):
        raise PermissionDeniedError("Only the report's owner (or a configured approver) decides on its samples.")
    if version.author_id == user.pk:
        raise PermissionDeniedError("Nobody approves their own version.")
    note = (note or "").strip()
    if not approve and not note:
        raise ApplicationError("Say why the remaining samples are rejected.")
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        if version.status != VersionStatus.SUBMITTED:
            raise ConflictError(f"{version} is not waiting for a decision.")
        pending = version.items.filter(decision=VersionItem.Decision.PENDING)
        keys = natural_sorted(pending.values_list("key", flat=True))
        decision = VersionItem.Decision.APPROVED if approve else VersionItem.Decision.REJECTED
        pending.update(decision=decision, decision_note=note, decided_by=user, decided_at=timezone.now())
        if keys:
            audit_record(actor=user, action="version_item.decide_remaining", obj=version,
                         after={"decision": decision, "note": note, "samples": keys})
    return len(keys)
