import threading
import uuid

import pytest
from django.db import DatabaseError, connection, connections, transaction

from synapse.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from versioning.models import Approval, ImmutableVersionError, Version, VersionItem, VersionStatus
from versioning.selectors import version_diff, version_previous
from versioning.services import WorkflowContext, version_create, version_decide, version_item_decide

ITEMS = [("account_id", {"data_type": "string", "cde": False}), ("balance", {"data_type": "decimal", "cde": True})]


@pytest.fixture
def version(cycle_report, users):
    return version_create(cycle_report=cycle_report, phase="planning", author=users["tester"], items=ITEMS)


def test_create_numbers_versions_and_links_workflow(cycle_report, users):
    ctx = WorkflowContext(workflow_id="cycle-1-report-1", run_id="r1", step="planning", activity="version_create")
    v1 = version_create(cycle_report=cycle_report, phase="planning", author=users["tester"], items=ITEMS,
                        workflow=ctx)
    v2 = version_create(cycle_report=cycle_report, phase="planning", author=users["tester"], items=ITEMS[:1])
    v1.refresh_from_db()
    assert (v1.number, v2.number) == (1, 2)
    assert v1.status == VersionStatus.SUPERSEDED  # replaced before anyone decided
    assert v2.status == VersionStatus.SUBMITTED and v2.parent == v1
    assert (v1.workflow_id, v1.activity_name, v1.workflow_step) == ("cycle-1-report-1", "version_create", "planning")
    # Numbering is per phase.
    s1 = version_create(cycle_report=cycle_report, phase="scoping", author=users["tester"], items=ITEMS)
    assert s1.number == 1


def test_create_is_idempotent_by_request_id(cycle_report, users):
    request_id = uuid.uuid4()
    first = version_create(cycle_report=cycle_report, phase="planning", author=users["tester"], items=ITEMS,
                           request_id=request_id)
    again = version_create(cycle_report=cycle_report, phase="planning", author=users["tester"], items=ITEMS,
                           request_id=request_id)
    assert first.pk == again.pk
    assert Version.objects.count() == 1 and VersionItem.objects.count() == 2


def test_duplicate_item_keys_are_refused(cycle_report, users):
    with pytest.raises(ApplicationError, match="same key"):
        version_create(cycle_report=cycle_report, phase="planning", author=users["tester"],
                       items=[ITEMS[0], ITEMS[0]])
    assert not Version.objects.exists()


def test_decide_approve_and_send_back(version, users):
    with pytest.raises(ApplicationError, match="notes are required"):
        version_decide(version=version, user=users["owner"], approve=False, notes="  ")
    with pytest.raises(PermissionDeniedError):
        version_decide(version=version, user=users["tester"], approve=True)
    version_decide(version=version, user=users["owner"], approve=False, notes="Flag balance as CDE")
    version.refresh_from_db()
    assert version.status == VersionStatus.CHANGES_REQUESTED
    assert version.approval.notes == "Flag balance as CDE"
    with pytest.raises(ConflictError, match="not waiting"):
        version_decide(version=version, user=users["owner"], approve=True)

    v2 = version_create(cycle_report=version.cycle_report, phase="planning", author=users["tester"], items=ITEMS)
    request_id = uuid.uuid4()
    version_decide(version=v2, user=users["owner"], approve=True, request_id=request_id)
    # A retried delivery of the same decision changes nothing.
    version_decide(version=v2, user=users["owner"], approve=True, request_id=request_id)
    v2.refresh_from_db()
    assert v2.status == VersionStatus.APPROVED and Approval.objects.filter(version=v2).count() == 1
    with pytest.raises(ConflictError, match="already approved"):
        version_create(cycle_report=v2.cycle_report, phase="planning", author=users["tester"], items=ITEMS)


def test_approved_version_is_immutable_through_the_model(version, users):
    version_decide(version=version, user=users["owner"], approve=True)
    version.refresh_from_db()
    version.notes = "rewritten"
    with pytest.raises(ImmutableVersionError):
        version.save()
    item = version.items.first()
    item.data = {"tampered": True}
    with pytest.raises(ImmutableVersionError):
        item.save()
    with pytest.raises(ImmutableVersionError):
        version.delete()


def test_approved_version_is_immutable_in_the_database(version, users):
    """Even a queryset update or raw SQL, which skip save(), is refused by the triggers."""
    version_decide(version=version, user=users["owner"], approve=True)
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Version.objects.filter(pk=version.pk).update(notes="rewritten")
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        VersionItem.objects.filter(version=version).update(data={"tampered": True})
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE versioning_version SET status = 'draft' WHERE id = %s", [version.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Approval.objects.filter(version=version).update(notes="changed my mind")
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED and version.notes == ""
    # A version still under review can change.
    other = version_create(cycle_report=version.cycle_report, phase="scoping", author=users["tester"], items=ITEMS)
    Version.objects.filter(pk=other.pk).update(notes="typo fixed")


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_get_unique_numbers(cycle_report, users):
    errors, barrier = [], threading.Barrier(4)

    def create():
        try:
            barrier.wait()
            version_create(cycle_report=cycle_report, phase="planning", author=users["tester"], items=ITEMS)
        except Exception as err:  # collected and asserted below
            errors.append(err)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = sorted(Version.objects.filter(cycle_report=cycle_report).values_list("number", flat=True))
    assert numbers == [1, 2, 3, 4]
    assert Version.objects.filter(status=VersionStatus.SUBMITTED).count() == 1


def test_diff_lists_added_removed_and_changed(cycle_report, users):
    v1 = version_create(cycle_report=cycle_report, phase="planning", author=users["tester"], items=ITEMS)
    v2 = version_create(
        cycle_report=cycle_report, phase="planning", author=users["tester"],
        items=[("balance", {"data_type": "decimal", "cde": False}), ("branch", {"data_type": "string"})],
    )
    assert version_previous(version=v2) == v1
    diff = version_diff(old=v1, new=v2)
    assert [i.key for i in diff.added] == ["branch"]
    assert [i.key for i in diff.removed] == ["account_id"]
    assert [(c.key, c.fields) for c in diff.changed] == [("balance", {"cde": (True, False)})]
    assert not diff.is_empty
    assert version_diff(old=v2, new=v2).is_empty


def test_item_decisions_only_while_submitted(cycle_report, users):
    version = version_create(cycle_report=cycle_report, phase="sample_selection", author=users["tester"], items=ITEMS)
    item = version.items.get(key="balance")
    with pytest.raises(ApplicationError, match="Say why"):
        version_item_decide(item=item, user=users["owner"], approve=False)
    version_item_decide(item=item, user=users["owner"], approve=False, note="Outside the period")
    item.refresh_from_db()
    assert item.decision == VersionItem.Decision.REJECTED
    with pytest.raises(ConflictError, match="rejected"):
        version_decide(version=version, user=users["owner"], approve=True)
    version_item_decide(item=item, user=users["owner"], approve=True)
    version_decide(version=version, user=users["owner"], approve=True)
    # Approving the set approves the items nobody decided on one by one.
    assert set(version.items.values_list("decision", flat=True)) == {VersionItem.Decision.APPROVED}
    with pytest.raises(ConflictError):
        version_item_decide(item=item, user=users["owner"], approve=True)


@pytest.mark.django_db(transaction=True)
def test_an_item_decision_does_not_wait_for_another_report_of_the_cycle(cycle_report, users):
    """Deciding a sample locks the item and its version, not the cycle every report of it shares."""
    from django.db import connection

    from synapse.testing import row_locked_elsewhere

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    version = version_create(cycle_report=cycle_report, phase="sample_selection", author=users["tester"], items=ITEMS)
    item = version.items.get(key="balance")
    with row_locked_elsewhere(cycle_report.cycle):
        version_item_decide(item=item, user=users["owner"], approve=True)
    item.refresh_from_db()
    assert item.decision == VersionItem.Decision.APPROVED


def _writes(queries, table: str) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith(("UPDATE", "INSERT")) and f'"{table}"' in q["sql"]]


def test_a_submitted_version_is_written_once_and_audited_as_created_then_submitted(cycle_report, users):
    from django.test.utils import CaptureQueriesContext

    from synapse.models import AuditEvent

    with CaptureQueriesContext(connection) as queries:
        version = version_create(cycle_report=cycle_report, phase="planning", author=users["tester"], items=ITEMS)
    # One INSERT of the version, already submitted; no UPDATE after it, and no read of its status first.
    assert [sql.split()[0] for sql in _writes(queries, "versioning_version")] == ["INSERT"]
    version.refresh_from_db()
    assert version.status == VersionStatus.SUBMITTED and version.submitted_at is not None
    events = list(AuditEvent.objects.filter(object_id=str(version.pk), action__startswith="version.")
                  .order_by("pk").values_list("action", "before", "after", "object_repr"))
    assert events == [("version.create", None, {"number": 1, "items": 2}, "Planning v1 (Draft)"),
                      ("version.submitted", {"status": "draft"}, {"status": "submitted"}, "Planning v1 (Submitted)")]


def test_a_decision_changes_the_locked_version_in_one_write(version, users):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        version_decide(version=version, user=users["owner"], approve=True)
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and 'FROM "versioning_version"' in q["sql"]]
    # The lock (where the database has one); no second read of the status to save it.
    assert len(reads) == 1 and ("FOR UPDATE" in reads[0] or not connection.features.has_select_for_update)
    assert len([sql for sql in _writes(queries, "versioning_version") if sql.startswith("UPDATE")]) == 1


def test_a_status_change_does_not_overwrite_a_version_that_moved_meanwhile(version, users):
    """A caller holding the version as it was (submitted) can't supersede it once the owner sent it back."""
    from versioning.services import version_set_status

    stale = Version.objects.get(pk=version.pk)
    version_decide(version=version, user=users["owner"], approve=False, notes="Flag balance as CDE")
    with pytest.raises(ConflictError, match="changed meanwhile"):
        version_set_status(version=stale, status=VersionStatus.SUPERSEDED, actor=users["tester"])
    version.refresh_from_db()
    assert version.status == VersionStatus.CHANGES_REQUESTED
