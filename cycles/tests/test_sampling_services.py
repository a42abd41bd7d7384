"""Sample Selection services: the plan and its size, seeded draws, hand-picked samples, versions and diffs."""
import hashlib
from collections import Counter
from pathlib import Path

import pytest

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError, PhaseLockedError
from cycles.models import (
    Attribute,
    Phase,
    PhaseState,
    PopulationFile,
    Sample,
    SampleSizeRule,
    SamplingPlan,
    ScopingDecision,
)
from cycles.services.artifacts import phase_artifact_items
from cycles.services.sampling import (
    sample_add_manual,
    sample_remove,
    samples_draw,
    samples_for,
    sampling_plan_explanation,
    sampling_plan_prepare,
    sampling_plan_update,
)
from cycles.testing import artifact_refusal
from synapse.models import AuditEvent
from versioning.models import VersionStatus
from versioning.selectors import version_diff
from versioning.services import version_create, version_decide, version_item_decide

pytestmark = pytest.mark.django_db

REGIONS = ["N"] * 5 + ["S"] * 3 + ["E"] * 2  # 50% / 30% / 20%, spread through the file
ROWS = 200


def row(i):
    name = "" if i % 50 == 7 else f"Customer {i}"  # rows 7, 57, 107, 157 have no name
    balance = f"{(i * 7919) % 100_000:,}.00"  # text with thousands separators, as a CSV gives it
    return f"A{i:04d},{name},\"{balance}\",{REGIONS[i % 10]}\n"


CSV_TEXT = "account_id,customer_name,balance,region\n" + "".join(row(i) for i in range(ROWS))


def balance_of(i):
    return (i * 7919) % 100_000


@pytest.fixture
def population(settings, tmp_path, cycle_report, users):
    settings.MEDIA_ROOT = str(tmp_path)
    path = Path(tmp_path) / "populations" / "loans.csv"
    path.parent.mkdir(parents=True)
    path.write_text(CSV_TEXT, encoding="utf-8")
    return PopulationFile.objects.create(
        cycle_report=cycle_report,
        file="populations/loans.csv",
        original_name="loans.csv",
        format=PopulationFile.Format.CSV,
        size_bytes=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        row_count=ROWS,
        columns=["account_id", "customer_name", "balance", "region"],
        status=PopulationFile.Status.PROFILED,
        uploaded_by=users["tester"],
    )


def attribute(cycle_report, user, name, *, risk_score, in_scope=True, **flags):
    a = Attribute.objects.create(cycle_report=cycle_report, name=name, risk_score=risk_score, **flags)
    ScopingDecision.objects.create(attribute=a, in_scope=in_scope, rationale="test", decided_by=user)
    return a


@pytest.fixture
def selection(cycle_report, population, users, report):
    """A monthly report in Sample Selection; its riskiest in-scope attribute is high risk."""
    report.frequency = "monthly"
    report.save(update_fields=["frequency"])
    tester = users["tester"]
    attribute(cycle_report, tester, "account_id", risk_score=8, primary_key=True, mandatory=True)
    attribute(cycle_report, tester, "customer_name", risk_score=3, mandatory=True)
    attribute(cycle_report, tester, "balance", risk_score=5)
    attribute(cycle_report, tester, "region", risk_score=9, in_scope=False)
    cycle_report.phase = Phase.SAMPLE_SELECTION
    cycle_report.save(update_fields=["phase"])
    return cycle_report


def keys(samples):
    return [s.key for s in samples]


def plan_of(cycle_report):
    return SamplingPlan.objects.get(cycle_report=cycle_report)


# -- the plan and its size ---------------------------------------------------------------------


def test_prepare_takes_the_size_from_the_table_at_the_highest_in_scope_risk(selection, population):
    # The admin edited monthly/high; region (risk 9) is out of scope, account_id (8) sets "high".
    SampleSizeRule.objects.filter(frequency="monthly", risk="high").update(sample_count=7)

    plan = sampling_plan_prepare(cycle_report_id=selection.pk)

    assert (plan.size_rule, plan.risk, plan.computed_size) == ("frequency", "high", 7)
    assert plan.allowed_deviations is None
    assert plan.size_explanation == "Frequency table: monthly, high risk → 7"
    assert plan.population_file == population
    assert plan.sample_size == 7


def test_prepare_falls_back_to_the_default_table_when_a_row_is_missing(selection):
    SampleSizeRule.objects.filter(frequency="monthly", risk="high").delete()

    plan = sampling_plan_prepare(cycle_report_id=selection.pk)

    assert plan.computed_size == 5
    assert plan.size_explanation == "Frequency table: monthly, high risk → 5"


def test_prepare_uses_medium_risk_when_nothing_is_in_scope(cycle_report, population):
    plan = sampling_plan_prepare(cycle_report_id=cycle_report.pk)

    assert (plan.risk, plan.computed_size) == ("medium", 2)  # quarterly


def test_prepare_twice_makes_one_plan_and_keeps_the_testers_changes(selection, users):
    first = sampling_plan_prepare(cycle_report_id=selection.pk)
    sampling_plan_update(user=users["tester"], cycle_report=selection, risk="low")

    again = sampling_plan_prepare(cycle_report_id=selection.pk)

    assert again.pk == first.pk
    assert (again.risk, again.computed_size) == ("low", 2)
    assert SamplingPlan.objects.filter(cycle_report=selection).count() == 1
    assert AuditEvent.objects.filter(action="sampling.plan_prepare").count() == 1


def test_statistical_rule_gives_the_aicpa_size_and_allowed_deviations(selection, users):
    plan = sampling_plan_update(
        user=users["tester"], cycle_report=selection, size_rule="statistical",
        risk_of_overreliance="0.05", tolerable_rate="0.05", expected_rate="0.01",
    )

    assert (plan.computed_size, plan.allowed_deviations) == (93, 1)
    assert plan.size_explanation.startswith("AICPA attribute sampling (binomial): 5% risk of overreliance")
    assert plan.size_explanation.endswith("→ 93 (up to 1 deviation allowed)")
    event = AuditEvent.objects.get(action="sampling.plan_update")
    assert event.before["computed_size"] == 5 and event.after["computed_size"] == 93
    assert event.after["size_rule"] == "statistical"


def test_statistical_rule_refuses_an_expected_rate_at_the_tolerable_rate(selection, users):
    with pytest.raises(ApplicationError, match="must be below the tolerable"):
        sampling_plan_update(user=users["tester"], cycle_report=selection, size_rule="statistical",
                             tolerable_rate="0.05", expected_rate="0.05")

    assert plan_of(selection).size_rule == "frequency"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tolerable_rate": "5"}, "below 1"),
        ({"expected_rate": "0.0125"}, "at most 3 decimals"),
        ({"method": "cluster"}, "not a valid method"),
        ({"stratify_by": "branch"}, "'branch' is not a column of loans.csv"),
        ({"method": "stratified"}, "Choose the column whose values form the strata"),
        ({"colour": "red"}, "Unknown sampling plan fields: colour"),
        ({"min_per_stratum": -1}, "at least 0"),
    ],
)
def test_update_refuses_invalid_fields(selection, users, fields, message):
    with pytest.raises(ApplicationError, match=message):
        sampling_plan_update(user=users["tester"], cycle_report=selection, **fields)


def test_column_names_match_ignoring_case(selection, users):
    plan = sampling_plan_update(user=users["tester"], cycle_report=selection, method="stratified",
                                stratify_by=" REGION ")

    assert plan.stratify_by == "region"


def test_override_needs_a_reason(selection, users):
    sampling_plan_prepare(cycle_report_id=selection.pk)

    with pytest.raises(ApplicationError, match="Say why the sample size is overridden"):
        sampling_plan_update(user=users["tester"], cycle_report=selection, override_size=25)

    assert plan_of(selection).override_size is None
    assert not AuditEvent.objects.filter(action="sampling.override_size").exists()


def test_override_is_audited_with_the_reason_and_the_rule_it_replaced(selection, users):
    plan = sampling_plan_update(user=users["tester"], cycle_report=selection, override_size="25",
                                override_reason="Prior-year finding on this control")

    assert (plan.sample_size, plan.computed_size) == (25, 5)
    assert sampling_plan_explanation(plan=plan) == (
        "Overridden: 25 instead of 5 (Frequency table: monthly, high risk → 5). "
        "Reason: Prior-year finding on this control"
    )
    event = AuditEvent.objects.get(action="sampling.override_size")
    assert event.actor == users["tester"]
    assert event.before == {"override_size": None, "override_reason": ""}
    assert event.after == {"override_size": 25, "override_reason": "Prior-year finding on this control"}
    assert event.context["reason"] == "Prior-year finding on this control"
    assert event.context["rule"] == "Frequency table: monthly, high risk → 5"

    cleared = sampling_plan_update(user=users["tester"], cycle_report=selection, override_size=None)

    assert (cleared.override_size, cleared.override_reason, cleared.sample_size) == (None, "", 5)
    assert AuditEvent.objects.filter(action="sampling.override_size").count() == 2


def test_a_reason_without_a_size_is_refused(selection, users):
    with pytest.raises(ApplicationError, match="Give the sample size that overrides the rule"):
        sampling_plan_update(user=users["tester"], cycle_report=selection, override_reason="more")


# -- who and when ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["tester2", "owner", "manager", "admin"])
def test_only_the_assigned_tester_changes_the_plan_and_samples(selection, users, who):
    user = users[who]
    with pytest.raises(PermissionDeniedError):
        sampling_plan_update(user=user, cycle_report=selection, risk="low")
    with pytest.raises(PermissionDeniedError):
        samples_draw(user=user, cycle_report=selection)
    with pytest.raises(PermissionDeniedError):
        sample_add_manual(user=user, cycle_report=selection, key="A0001", reason="why")
    assert not Sample.objects.exists()


def test_nothing_changes_outside_the_phase(selection, users):
    selection.phase = Phase.SCOPING
    selection.save(update_fields=["phase"])

    with pytest.raises(PhaseLockedError, match="only while Sample Selection is running"):
        sampling_plan_update(user=users["tester"], cycle_report=selection, risk="low")
    with pytest.raises(PhaseLockedError):
        samples_draw(user=users["tester"], cycle_report=selection)


def test_samples_change_while_sample_selection_runs_beside_data_owner_identification(selection, users):
    # In the parallel step the report's phase may name the other branch; the phase state decides.
    selection.phase = Phase.DATA_OWNER_IDENTIFICATION
    selection.save(update_fields=["phase"])
    PhaseState.objects.create(cycle_report=selection, phase=Phase.SAMPLE_SELECTION)
    PhaseState.objects.create(cycle_report=selection, phase=Phase.DATA_OWNER_IDENTIFICATION)

    assert len(samples_draw(user=users["tester"], cycle_report=selection)) == 5

    PhaseState.objects.filter(cycle_report=selection, phase=Phase.SAMPLE_SELECTION).update(
        status=PhaseState.Status.COMPLETED
    )
    with pytest.raises(PhaseLockedError):
        samples_draw(user=users["tester"], cycle_report=selection)


def test_nothing_changes_while_a_version_awaits_approval(selection, users):
    tester = users["tester"]
    drawn = samples_draw(user=tester, cycle_report=selection)
    version_create(cycle_report=selection, phase=Phase.SAMPLE_SELECTION, author=tester,
                   items=phase_artifact_items(cycle_report=selection, phase=Phase.SAMPLE_SELECTION))

    with pytest.raises(PhaseLockedError, match="submitted for approval"):
        samples_draw(user=tester, cycle_report=selection)
    with pytest.raises(PhaseLockedError):
        sample_remove(user=tester, sample=drawn[0])
    with pytest.raises(PhaseLockedError):
        sampling_plan_update(user=tester, cycle_report=selection, override_size=9, override_reason="x")
    assert Sample.objects.filter(cycle_report=selection).count() == 5


# -- drawing -----------------------------------------------------------------------------------


def test_a_random_draw_records_its_seed_and_each_samples_row(selection, users):
    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    plan = plan_of(selection)
    assert plan.seed is not None
    assert len(drawn) == 5
    assert [s.row_index for s in drawn] == sorted(s.row_index for s in drawn)
    for sample in drawn:
        assert sample.method == "random"
        assert sample.seed == plan.seed
        # Keyed by the primary-key attribute's value; the row is the file's text.
        assert sample.key == f"A{sample.row_index:04d}"
        assert sample.row_data["account_id"] == sample.key
        assert sample.row_data["balance"] == f"{balance_of(sample.row_index):,}.00"
        assert "_row_index" not in sample.row_data
        assert f"(seed {plan.seed})" in sample.reason
    event = AuditEvent.objects.get(action="sampling.draw")
    assert event.after["seed"] == plan.seed
    assert event.after["drawn"] == sorted(keys(drawn))
    assert event.context["population_sha256"] == selection.population_files.get().sha256


def test_same_seed_file_and_settings_give_the_same_samples(selection, users):
    tester = users["tester"]
    sampling_plan_update(user=tester, cycle_report=selection, seed=20240601, override_size=30,
                         override_reason="wider coverage")
    first = keys(samples_draw(user=tester, cycle_report=selection))

    sampling_plan_update(user=tester, cycle_report=selection, seed=7)
    other = keys(samples_draw(user=tester, cycle_report=selection))
    sampling_plan_update(user=tester, cycle_report=selection, seed=20240601)
    again = keys(samples_draw(user=tester, cycle_report=selection))

    assert len(first) == 30
    assert again == first
    assert other != first
    assert Sample.objects.filter(cycle_report=selection).count() == 30


def test_a_redraw_without_changes_keeps_the_recorded_seed(selection, users):
    tester = users["tester"]
    first = keys(samples_draw(user=tester, cycle_report=selection))
    seed = plan_of(selection).seed

    again = keys(samples_draw(user=tester, cycle_report=selection))

    assert again == first
    assert plan_of(selection).seed == seed


def test_stratified_draw_is_proportional_and_records_the_stratum(selection, users):
    sampling_plan_update(user=users["tester"], cycle_report=selection, method="stratified",
                         stratify_by="region", override_size=20, override_reason="cover every region")

    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    assert Counter(s.stratum for s in drawn) == {"N": 10, "S": 6, "E": 4}
    assert all(s.stratum == s.row_data["region"] for s in drawn)
    assert {s.method for s in drawn} == {"stratified"}


def test_stratified_minimum_per_stratum_is_honoured(selection, users):
    sampling_plan_update(user=users["tester"], cycle_report=selection, method="stratified",
                         stratify_by="region", min_per_stratum=2, override_size=7,
                         override_reason="small sample, every region")

    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    # Proportional shares are 3.5 / 2.1 / 1.4 (4, 2, 1); a minimum of 2 lifts E and N gives way.
    assert Counter(s.stratum for s in drawn) == {"N": 3, "S": 2, "E": 2}


def test_risk_based_draw_takes_the_largest_by_the_risk_column(selection, users):
    sampling_plan_update(user=users["tester"], cycle_report=selection, method="risk_based",
                         risk_column="balance")

    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    largest = sorted(range(ROWS), key=lambda i: (-balance_of(i), i))[:5]
    assert sorted(s.row_index for s in drawn) == sorted(largest)
    assert all(s.seed is None and s.method == "risk_based" for s in drawn)
    top = next(s for s in drawn if s.row_index == largest[0])
    assert top.reason == f"rank 1 by balance ({float(balance_of(largest[0]))})"
    assert top.row_data["balance"] == f"{balance_of(largest[0]):,}.00"
    assert plan_of(selection).seed is None


def test_risk_based_draw_without_a_column_takes_rows_a_mandatory_column_leaves_empty(selection, users):
    sampling_plan_update(user=users["tester"], cycle_report=selection, method="risk_based")

    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    assert [s.row_index for s in drawn] == [7, 57, 107, 157]
    assert all(s.row_data["customer_name"] is None for s in drawn)
    assert all(s.reason == "flagged by a risk rule" for s in drawn)


def test_risk_based_draw_refuses_a_column_without_numbers(selection, users):
    sampling_plan_update(user=users["tester"], cycle_report=selection, method="risk_based",
                         risk_column="region")

    with pytest.raises(ApplicationError, match="'region' holds no numbers"):
        samples_draw(user=users["tester"], cycle_report=selection)


def test_samples_are_named_by_row_number_without_a_primary_key(selection, users):
    Attribute.objects.filter(cycle_report=selection, name="account_id").update(primary_key=False)

    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    # Row numbers shown to people count from 1: the first data row is row 1.
    assert [s.key for s in drawn] == [str(s.row_index + 1) for s in drawn]
    # A row the draw (seeded afresh each run) did not take: row n is the file's (n - 1)th data row.
    row = next(n for n in range(1, ROWS + 1) if str(n) not in keys(drawn))
    added = sample_add_manual(user=users["tester"], cycle_report=selection, key=str(row), reason="known exception")
    assert (added.key, added.row_index, added.row_data["account_id"]) == (str(row), row - 1, f"A{row - 1:04d}")
    with pytest.raises(ApplicationError, match="'ML100001350' is not a row number. Rows of .* are named by their row"):
        sample_add_manual(user=users["tester"], cycle_report=selection, key="ML100001350", reason="known exception")
    with pytest.raises(ApplicationError, match="'0' is not a row number"):
        sample_add_manual(user=users["tester"], cycle_report=selection, key="0", reason="known exception")


def test_draw_needs_a_profiled_population_file(selection, users, population):
    population.status = PopulationFile.Status.FAILED
    population.save(update_fields=["status"])

    with pytest.raises(ApplicationError, match="no profiled population file"):
        samples_draw(user=users["tester"], cycle_report=selection)


# -- hand-picked samples -----------------------------------------------------------------------


def test_hand_picked_samples_survive_a_redraw(selection, users):
    tester = users["tester"]
    sampling_plan_update(user=tester, cycle_report=selection, seed=99)
    drawn = samples_draw(user=tester, cycle_report=selection)
    outside = next(f"A{i:04d}" for i in range(ROWS) if f"A{i:04d}" not in keys(drawn))

    picked = sample_add_manual(user=tester, cycle_report=selection, key=outside, reason="complaint on file")

    assert (picked.method, picked.reason, picked.seed) == ("manual", "complaint on file", None)
    assert picked.row_data["account_id"] == outside
    redrawn = samples_draw(user=tester, cycle_report=selection)
    assert sorted(keys(redrawn)) == sorted([*keys(drawn), outside])
    assert Sample.objects.get(cycle_report=selection, key=outside).method == "manual"
    assert AuditEvent.objects.get(action="sample.add_manual").after["key"] == outside


def test_a_drawn_row_picked_by_hand_keeps_its_pick_when_drawn_again(selection, users):
    tester = users["tester"]
    sampling_plan_update(user=tester, cycle_report=selection, seed=99)
    drawn = samples_draw(user=tester, cycle_report=selection)
    sample_remove(user=tester, sample=drawn[0])
    sample_add_manual(user=tester, cycle_report=selection, key=drawn[0].key, reason="pick it for its history")

    redrawn = samples_draw(user=tester, cycle_report=selection)

    assert keys(redrawn) == keys(drawn)
    methods = {s.key: s.method for s in redrawn}
    assert methods.pop(drawn[0].key) == "manual"
    assert set(methods.values()) == {"random"}


def test_a_hand_pick_needs_a_known_key_a_reason_and_a_new_row(selection, users):
    tester = users["tester"]
    with pytest.raises(ApplicationError, match="There is no account_id value 'Z9999' in loans.csv"):
        sample_add_manual(user=tester, cycle_report=selection, key="Z9999", reason="why")
    with pytest.raises(ApplicationError, match="Say why row A0001 is picked by hand"):
        sample_add_manual(user=tester, cycle_report=selection, key="A0001", reason="  ")
    sample_add_manual(user=tester, cycle_report=selection, key="A0001", reason="why")
    with pytest.raises(ConflictError, match="already a sample"):
        sample_add_manual(user=tester, cycle_report=selection, key="A0001", reason="again")
    assert keys(samples_for(cycle_report=selection)) == ["A0001"]


def test_a_hand_pick_in_a_stratified_plan_gets_its_stratum(selection, users):
    sampling_plan_update(user=users["tester"], cycle_report=selection, method="stratified", stratify_by="region")

    picked = sample_add_manual(user=users["tester"], cycle_report=selection, key="A0015", reason="why")

    assert picked.stratum == "S"


def test_remove_takes_a_sample_out_and_audits_it(selection, users):
    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    sample_remove(user=users["tester"], sample=drawn[0])

    assert keys(samples_for(cycle_report=selection)) == keys(drawn[1:])
    event = AuditEvent.objects.get(action="sample.remove")
    assert event.before["key"] == drawn[0].key
    with pytest.raises(PermissionDeniedError):
        sample_remove(user=users["tester2"], sample=drawn[1])


# -- the artifact and its revisions ------------------------------------------------------------


def test_artifact_items_freeze_each_sample(selection, users):
    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    items = phase_artifact_items(cycle_report=selection, phase=Phase.SAMPLE_SELECTION)

    assert [key for key, _ in items] == keys(drawn)
    key, data = items[0]
    assert data == {
        "row_index": drawn[0].row_index,
        "row_data": drawn[0].row_data,
        "stratum": "",
        "method": "random",
        "seed": plan_of(selection).seed,
        "reason": drawn[0].reason,
    }


def test_artifact_refuses_no_samples_or_too_few(selection, users):
    with pytest.raises(ApplicationError, match="Draw or pick samples"):
        phase_artifact_items(cycle_report=selection, phase=Phase.SAMPLE_SELECTION)
    assert artifact_refusal(selection, Phase.SAMPLE_SELECTION)  # a submission is refused so before it is sent

    drawn = samples_draw(user=users["tester"], cycle_report=selection)
    sample_remove(user=users["tester"], sample=drawn[0])
    sample_remove(user=users["tester"], sample=drawn[1])

    with pytest.raises(ApplicationError, match="calls for 5 samples but there are 3: add 2 more"):
        phase_artifact_items(cycle_report=selection, phase=Phase.SAMPLE_SELECTION)
    assert artifact_refusal(selection, Phase.SAMPLE_SELECTION)  # a submission is refused so before it is sent


def test_a_revision_lists_the_added_and_removed_samples(selection, users):
    tester, owner = users["tester"], users["owner"]
    drawn = samples_draw(user=tester, cycle_report=selection)
    first = version_create(cycle_report=selection, phase=Phase.SAMPLE_SELECTION, author=tester,
                           items=phase_artifact_items(cycle_report=selection, phase=Phase.SAMPLE_SELECTION))
    rejected = first.items.get(key=drawn[2].key)

    version_item_decide(item=rejected, user=owner, approve=False, note="Closed account, not in the period")
    with pytest.raises(ConflictError, match="rejected"):
        version_decide(version=first, user=owner, approve=True)
    version_decide(version=first, user=owner, approve=False, notes="Replace the closed account")

    sample_remove(user=tester, sample=Sample.objects.get(cycle_report=selection, key=rejected.key))
    replacement = next(f"A{i:04d}" for i in range(ROWS) if f"A{i:04d}" not in keys(drawn))
    sample_add_manual(user=tester, cycle_report=selection, key=replacement, reason="replaces the closed account")
    second = version_create(cycle_report=selection, phase=Phase.SAMPLE_SELECTION, author=tester,
                            items=phase_artifact_items(cycle_report=selection, phase=Phase.SAMPLE_SELECTION))

    first.refresh_from_db()
    assert first.status == VersionStatus.CHANGES_REQUESTED
    assert (second.number, second.parent_id, second.status) == (2, first.pk, VersionStatus.SUBMITTED)
    diff = version_diff(old=second.parent, new=second)
    assert [i.key for i in diff.added] == [replacement]
    assert diff.added[0].data["method"] == "manual"
    assert diff.added[0].data["reason"] == "replaces the closed account"
    assert [i.key for i in diff.removed] == [rejected.key]
    assert diff.removed[0].decision == "rejected"
    assert diff.changed == []
    assert diff.unchanged == 4
