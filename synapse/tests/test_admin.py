"""The admin: every model registered and rendering, read-only where history lives, writes through services."""
import datetime
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from cycles.models import (
    LOB,
    Attribute,
    CycleReport,
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    Phase,
    PhaseState,
    PopulationFile,
    ProfileResult,
    Report,
    RequestNotification,
    Sample,
    SamplingPlan,
    ScopingDecision,
    TestCycle,
)
from synapse.models import AuditEvent, User
from synapse.roles import Role, user_roles
from versioning.models import Version, VersionStatus
from versioning.services import version_create, version_decide
from workflows.models import (
    WorkflowAlert,
    WorkflowDecision,
    WorkflowExecution,
    WorkflowStatusSnapshot,
    WorkflowStep,
    WorkflowTransition,
    WorkflowWait,
)

pytestmark = pytest.mark.django_db

OUR_APPS = ("synapse", "cycles", "versioning", "workflows")
REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def url(model_or_obj, view: str, *args) -> str:
    meta = model_or_obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser_client(users):
    client = Client()
    client.force_login(users["admin"])
    return client


@pytest.fixture
def every_model(users, cycle_report):
    """At least one row of every model the admin shows (audit events come with the services)."""
    CycleReport.objects.filter(pk=cycle_report.pk).update(
        phase=Phase.SCOPING, workflow_id=f"cycle-{cycle_report.cycle_id}-report-{cycle_report.report_id}"
    )
    cycle_report.refresh_from_db()
    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.SCOPING)
    attribute = Attribute.objects.create(cycle_report=cycle_report, name="account_id", primary_key=True)
    ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="Key.", decided_by=users["tester"])
    population = PopulationFile.objects.create(
        cycle_report=cycle_report, file="populations/2026/07/loans.csv", original_name="loans.csv", format="csv",
        size_bytes=120, sha256="0" * 64, row_count=3, columns=["account_id"], uploaded_by=users["tester"],
    )
    ProfileResult.objects.create(
        population_file=population, column_name="account_id", attribute=attribute, dtype="String", row_count=3,
        null_count=0, distinct_count=3,
    )
    from cycles.models import ColumnMapping, ProfilingRule

    ColumnMapping.objects.create(population_file=population, attribute=attribute, column_name="account_id",
                                 status=ColumnMapping.Status.CONFIRMED, decided_by=users["tester"])
    ProfilingRule.objects.create(attribute=attribute, kind="unique", source="system", source_detail="primary key")
    SamplingPlan.objects.create(cycle_report=cycle_report, population_file=population, computed_size=2,
                                updated_by=users["tester"])
    Sample.objects.create(cycle_report=cycle_report, key="A-1", row_index=0, row_data={"account_id": "A-1"},
                          method="random", seed=7, added_by=users["tester"])
    DataOwnerAssignment.objects.create(attribute=attribute, data_owner=users["data_owner"],
                                       assigned_by=users["executive"])
    request = InformationRequest.objects.create(cycle_report=cycle_report, data_owner=users["data_owner"],
                                                sample_keys=["A-1"], due_date=datetime.date(2026, 8, 1))
    request.attributes.add(attribute)
    RequestNotification.objects.create(key="request-1", request=request, cycle_report=cycle_report, kind="request",
                                       recipients=["dataowner@example.com"], subject="Evidence wanted")
    from cycles.models import Reassignment

    Reassignment.objects.create(kind="data_owner", cycle_report=cycle_report, attribute=attribute,
                                from_user=users["data_owner2"], to_user=users["data_owner"], reason="On leave",
                                reassigned_by=users["executive"], request=request)
    Evidence.objects.create(request=request, file="evidence/1/1/abc", original_name="statement.pdf",
                            content_type="application/pdf", size_bytes=10, sha256="1" * 64,
                            uploaded_by=users["data_owner"])
    approved = version_create(cycle_report=cycle_report, phase=Phase.PLANNING, author=users["tester"],
                              items=[("account_id", {"risk_score": 8})])
    version_decide(version=approved, user=users["owner"], approve=True, notes="Fine.")
    submitted = version_create(cycle_report=cycle_report, phase=Phase.SCOPING, author=users["tester"],
                               items=[("account_id", {"in_scope": True})])
    execution = WorkflowExecution.objects.create(
        workflow_id=cycle_report.workflow_id, run_id="run-1", workflow_type="ReportTestWorkflow",
        cycle=cycle_report.cycle, cycle_report=cycle_report, current_phase=Phase.SCOPING,
    )
    WorkflowStep.objects.create(execution=execution, activity_id="1", activity_type="enter_phase",
                                phase=Phase.PLANNING, status="completed", started_at=timezone.now(), duration_ms=12)
    WorkflowTransition.objects.create(execution=execution, from_phase="", to_phase=Phase.PLANNING, activity_id="1")
    WorkflowWait.objects.create(execution=execution, role="Tester", phase=Phase.PLANNING, started_at=timezone.now())
    WorkflowDecision.objects.create(workflow_id=execution.workflow_id, update_name="submit_version",
                                    payload={"phase": "scoping"}, requested_by=users["tester"],
                                    cycle_report=cycle_report)
    WorkflowAlert.objects.create(key="sla-1", workflow_id=execution.workflow_id, cycle_report=cycle_report,
                                 kind="sla_breach", message="Scoping is past its SLA.")
    WorkflowStatusSnapshot.objects.create(cycle_report=cycle_report, workflow_id=execution.workflow_id,
                                          status={"phase": "scoping"}, read_at=timezone.now())
    Token.objects.create(user=users["admin"])
    # Accounts (issue 8): a named API token and a failed login recorded by django-axes.
    from axes.models import AccessAttempt, AccessFailureLog

    from synapse.services import api_token_create

    api_token_create(user=users["tester"], name="export")
    AccessAttempt.objects.create(username="tester", ip_address="10.0.0.1", user_agent="pytest",
                                 failures_since_start=1)
    AccessFailureLog.objects.create(username="tester", ip_address="10.0.0.1", user_agent="pytest")
    # Test Execution (issue 6)
    from cycles.models import EvidenceLink, ExecutionRule, SampleExtension, TestResult, TestResultHistory

    sample = Sample.objects.get(key="A-1")
    cell = TestResult.objects.create(cycle_report=cycle_report, sample=sample, attribute=attribute,
                                     expected_value="A-1", observed_value="A-1", result="pass", attempt=2)
    TestResultHistory.objects.create(test_result=cell, attempt=1, result="fail", failure_kind="mismatch")
    ExecutionRule.objects.create(attribute=attribute, kind="format", pattern=r"A-\d+", updated_by=users["tester"])
    SampleExtension.objects.create(cycle_report=cycle_report, number=1, allowed_deviations=0, current_size=1,
                                   new_size=2, sample_keys=["A-2"])
    EvidenceLink.objects.create(evidence=Evidence.objects.get(), sample=sample, attribute=attribute,
                                created_by=users["data_owner"])
    _observations_and_sign_offs(users, cycle_report)
    _workflow_operations(users, cycle_report, execution)
    return {"approved": approved, "submitted": submitted, "execution": execution}


def _observations_and_sign_offs(users, cycle_report):
    """Rows of Observation Management and Finalize (issue 6)."""
    import uuid

    from cycles.models import (
        CycleReportRemoval,
        EvidencePackage,
        FinalReport,
        Observation,
        PhaseReopening,
        RemediationEvent,
        SignOff,
    )

    observation = Observation.objects.create(cycle_report=cycle_report, number=1, title="Balances misstated",
                                             status="open")
    RemediationEvent.objects.create(observation=observation, from_status="draft", to_status="open")
    report = FinalReport.objects.create(cycle_report=cycle_report, number=1, data={}, html="<p>r</p>",
                                        pdf="final_reports/r.pdf", pdf_sha256="2" * 64, request_key="k-1")
    sign_off = SignOff.objects.create(final_report=report, role="test_manager", decision="sent_back",
                                      signer=users["manager"], printed_name="manager", meaning="Sent back",
                                      send_back_to="observations", notes="n", request_id=uuid.uuid4())
    PhaseReopening.objects.create(cycle_report=cycle_report, phase="observations", sign_off=sign_off)
    EvidencePackage.objects.create(final_report=report, file="packages/p.zip", file_name="p.zip", sha256="3" * 64,
                                   size_bytes=1, manifest={})
    CycleReportRemoval.objects.create(cycle_report=cycle_report, reason="Not due", removed_by=users["manager"])


def _workflow_operations(users, cycle_report, execution):
    """Rows of the workflow operations (issue 9): retries, compensation, workers, versions, schedules."""
    from workflows.models import (
        CompensationEntry,
        CycleSchedule,
        ScheduledCycleRun,
        WorkerHeartbeat,
        WorkflowRetry,
        WorkflowVersion,
    )

    WorkflowRetry.objects.create(execution=execution, activity_type="scoping_recommend", activity_id="7",
                                 attempt=1, max_attempts=3, error="database away", delay_seconds=1.0)
    CompensationEntry.objects.create(key="c-1", cycle_report=cycle_report, workflow_id=execution.workflow_id,
                                     phase=Phase.SCOPING, strategy="rollback", trigger="reset",
                                     triggered_by=users["admin"], undone={"scoping_decisions": 1})
    WorkerHeartbeat.objects.create(identity="host:1", task_queue="q", started_at=timezone.now(),
                                   last_seen_at=timezone.now())
    WorkflowVersion.objects.create(execution=execution, build_id="abc", patches=["p"])
    schedule = CycleSchedule.objects.create(name="Quarterly", template=cycle_report.cycle, frequency="quarterly",
                                            created_by=users["manager"], schedule_id="schedule-1")
    ScheduledCycleRun.objects.create(schedule=schedule, run_key="schedule-1-2026", cycle=cycle_report.cycle)


def test_every_model_of_synapse_is_registered():
    missing = [
        model._meta.label
        for app in OUR_APPS
        for model in apps.get_app_config(app).get_models()
        if not admin.site.is_registered(model)
    ]
    assert missing == []


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_admin_pages_render_as_superuser(superuser_client, every_model, model):
    model_admin = admin.site._registry[model]
    assert superuser_client.get(url(model, "changelist")).status_code == 200
    if model_admin.search_fields:
        assert superuser_client.get(url(model, "changelist"), {"q": "a"}).status_code == 200
    add = superuser_client.get(url(model, "add"))
    assert add.status_code == (200 if model_admin.has_add_permission(add.wsgi_request) else 403)
    obj = model._default_manager.first()
    assert obj is not None, f"the fixture makes no {model._meta.label}"
    assert superuser_client.get(url(model, "change", obj.pk)).status_code == 200


def test_the_audit_trail_cannot_be_added_changed_or_deleted(superuser_client, every_model):
    event = AuditEvent.objects.first()
    page = superuser_client.get(url(event, "change", event.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert superuser_client.post(url(event, "change", event.pk), {"action": "rewritten"}).status_code == 403
    assert superuser_client.get(url(event, "delete", event.pk)).status_code == 403
    assert superuser_client.post(url(event, "delete", event.pk), {"post": "yes"}).status_code == 403
    assert superuser_client.get(url(event, "add")).status_code == 403
    assert b"delete_selected" not in superuser_client.get(url(AuditEvent, "changelist")).content
    event.refresh_from_db()
    assert event.action != "rewritten"


def inline_management_data(page) -> dict:
    """The inline formsets' management form fields, as a browser would post them back."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        form = inline.formset.management_form
        data.update({f"{form.prefix}-{name}": value for name, value in form.initial.items()})
    return data


def test_an_approved_version_is_read_only(superuser_client, every_model):
    approved, submitted = every_model["approved"], every_model["submitted"]
    page = superuser_client.get(url(approved, "change", approved.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b"account_id" in page.content  # its items, inline
    assert superuser_client.post(url(approved, "change", approved.pk), {"notes": "edited"}).status_code == 403
    approved.refresh_from_db()
    assert approved.notes == ""

    page = superuser_client.get(url(submitted, "change", submitted.pk))
    response = superuser_client.post(url(submitted, "change", submitted.pk),
                                     {"notes": "Typo fixed.", **inline_management_data(page)})
    assert response.status_code == 302
    submitted.refresh_from_db()
    assert (submitted.notes, submitted.status) == ("Typo fixed.", VersionStatus.SUBMITTED)
    assert superuser_client.get(url(Version, "add")).status_code == 403


def test_workflow_steps_and_transitions_show_under_their_execution(superuser_client, every_model, settings):
    execution = every_model["execution"]
    page = superuser_client.get(url(execution, "change", execution.pk)).content.decode()
    assert "enter_phase" in page
    assert "planning" in page
    assert f"{settings.TEMPORAL_UI_URL}/namespaces/default/workflows/{execution.workflow_id}" in page


def test_a_cycle_links_to_its_workflow_in_the_temporal_ui(superuser_client, cycle, settings):
    TestCycle.objects.filter(pk=cycle.pk).update(workflow_id=f"cycle-{cycle.pk}", status=TestCycle.Status.RUNNING)
    settings.TEMPORAL_UI_URL = "http://temporal.example:8233"
    page = superuser_client.get(url(TestCycle, "changelist")).content.decode()
    assert f'href="http://temporal.example:8233/namespaces/default/workflows/cycle-{cycle.pk}"' in page


def test_a_new_user_gets_their_roles_on_the_add_page(superuser_client, users):
    response = superuser_client.post(url(User, "add"), {
        "username": "newtester", "email": "new@example.com", "groups": [Group.objects.get(name=Role.TESTER).pk],
        "usable_password": "true", "password1": "a-long-pass-phrase-77", "password2": "a-long-pass-phrase-77",
    })
    assert response.status_code == 302, response.content
    assert user_roles(User.objects.get(username="newtester")) == {Role.TESTER}
    changelist = superuser_client.get(url(User, "changelist"), {"groups__id__exact": Group.objects.get(
        name=Role.TESTER).pk}).content.decode()
    assert "newtester" in changelist
    assert "owner2" not in changelist


def test_adding_an_lob_goes_through_the_service(superuser_client, users):
    data = {"name": "Cards", "code": "cards", "data_executive": users["tester"].pk}
    assert superuser_client.post(url(LOB, "add"), data).status_code == 200  # a tester isn't offered
    assert not LOB.objects.filter(code="cards").exists()

    response = superuser_client.post(url(LOB, "add"), {**data, "data_executive": users["executive"].pk})
    assert response.status_code == 302
    lob = LOB.objects.get(code="cards")
    assert AuditEvent.objects.for_object(lob).filter(action="lob.create", actor=users["admin"]).exists()


def test_a_service_refusal_is_a_form_error_and_saves_nothing(superuser_client, users, lob):
    data = {"name": "CCAR", "regulation": "CCAR", "description": "", "owner": users["owner"].pk, "lob": lob.pk,
            "frequency": "annual", "fields": '[{"name": "a"}, {"name": "a"}]'}
    response = superuser_client.post(url(Report, "add"), data)
    assert response.status_code == 200
    assert "names must be unique" in response.content.decode()
    assert not Report.objects.filter(name="CCAR").exists()

    response = superuser_client.post(url(Report, "add"), {**data, "fields": '[{"name": "a"}, {"name": "b"}]'})
    assert response.status_code == 302
    assert AuditEvent.objects.for_object(Report.objects.get(name="CCAR")).filter(action="report.create").exists()


def test_adding_a_cycle_and_reassigning_a_tester_go_through_services(superuser_client, users, cycle_report):
    response = superuser_client.post(url(TestCycle, "add"), {
        "name": "Q4 2026", "period_start": "2026-10-01", "period_end": "2026-12-31",
        "configuration": '{"skip_phases": ["lunch"]}',
    })
    assert "lunch" in response.content.decode()
    assert not TestCycle.objects.filter(name="Q4 2026").exists()
    response = superuser_client.post(url(TestCycle, "add"), {
        "name": "Q4 2026", "period_start": "2026-10-01", "period_end": "2026-12-31", "configuration": "{}",
    })
    assert response.status_code == 302
    created = TestCycle.objects.get(name="Q4 2026")
    assert created.test_manager == users["admin"]
    assert created.configuration["rfi_due_days"] == 10  # the service filled in the defaults

    response = superuser_client.post(url(created, "change", created.pk), {
        "name": "Q4 2026 (CCAR)", "period_start": "2026-10-01", "period_end": "2026-12-31",
        "test_manager": users["manager"].pk, "configuration": '{"rfi_due_days": 4}',
    })
    assert response.status_code == 302, response.content
    created.refresh_from_db()
    assert (created.name, created.test_manager, created.configuration["rfi_due_days"]) == (
        "Q4 2026 (CCAR)", users["manager"], 4
    )
    assert AuditEvent.objects.for_object(created).filter(action="cycle.configure").exists()

    response = superuser_client.post(url(cycle_report, "change", cycle_report.pk), {"tester": users["tester2"].pk})
    assert response.status_code == 302
    cycle_report.refresh_from_db()
    assert cycle_report.tester == users["tester2"]
    assert AuditEvent.objects.for_object(cycle_report).filter(action="cycle_report.assign_tester").exists()


def test_workflow_actions_report_errors_as_messages(superuser_client, cycle, cycle_report, settings):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_RPC_TIMEOUT = 2
    changelist = url(TestCycle, "changelist")

    response = superuser_client.post(changelist, {"action": "start_workflow", "_selected_action": [cycle.pk]},
                                     follow=True)
    assert response.status_code == 200
    [message] = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert message[0] == "error"
    assert "can't be reached" in message[1]
    cycle.refresh_from_db()
    assert cycle.status == TestCycle.Status.DRAFT

    response = superuser_client.post(changelist, {"action": "cancel_workflow", "_selected_action": [cycle.pk]},
                                     follow=True)
    [message] = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert message[0] == "error"
    assert "never started" in message[1]


def test_started_cycles_cannot_be_deleted(superuser_client, cycle):
    assert superuser_client.get(url(cycle, "delete", cycle.pk)).status_code == 200
    TestCycle.objects.filter(pk=cycle.pk).update(status=TestCycle.Status.RUNNING, started_at=datetime.datetime.now(
        tz=datetime.timezone.utc))
    assert superuser_client.get(url(cycle, "delete", cycle.pk)).status_code == 403


# --- changelists that cost the same however long the table (issue 11) ------------------------------------


def _main_select(captured, table: str) -> str:
    return next(q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT") and
                f'FROM "{table}"' in q["sql"] and "COUNT(" not in q["sql"])


def test_a_changelist_reads_no_json_or_long_text_its_rows_do_not_show(superuser_client, every_model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        page = superuser_client.get(url(Attribute, "changelist"))
    assert page.status_code == 200
    sql = _main_select(captured, "cycles_attribute")
    # The report and the cycle are joined for each row's name, without the report's field list or the
    # cycle's configuration; the attribute's own description isn't a column of the list either.
    assert '"cycles_report"."name"' in sql and '"cycles_testcycle"."name"' in sql
    assert '"cycles_report"."fields"' not in sql and '"cycles_testcycle"."configuration"' not in sql
    assert '"cycles_attribute"."description"' not in sql
    assert "account_id" in page.content.decode()
    # Newest first, by the primary key's index, not through the cycle, report and name.
    assert sql.rstrip().endswith('ORDER BY "cycles_attribute"."id" DESC LIMIT 50') or \
        'ORDER BY "cycles_attribute"."id" DESC' in sql
    # The change page still reads the whole row.
    attribute = Attribute.objects.get(name="account_id")
    Attribute.objects.filter(pk=attribute.pk).update(description="The account's key.")
    assert "The account&#x27;s key." in superuser_client.get(url(attribute, "change", attribute.pk)).content.decode()


def test_the_report_list_counts_fields_in_the_database(superuser_client, cycle_report):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    report = cycle_report.report
    Report.objects.filter(pk=report.pk).update(fields=[{"name": f"f{i}"} for i in range(7)])
    other = Report.objects.create(name="No fields yet", regulation="X", owner=report.owner, lob=report.lob)
    with CaptureQueriesContext(connection) as captured:
        page = superuser_client.get(url(Report, "changelist"))
    assert '"cycles_report"."fields",' not in _main_select(captured, "cycles_report")
    rows = re.findall(r"<tr>.*?</tr>", page.content.decode(), re.S)
    assert any(f">{report.name}</a>" in row and '<td class="field-field_count">7</td>' in row for row in rows)
    assert any(f">{other.name}</a>" in row and '<td class="field-field_count">0</td>' in row for row in rows)


def test_a_whole_big_table_is_counted_by_estimate_and_a_filtered_list_exactly(every_model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from synapse.admin import EstimatedCountPaginator

    if connection.vendor != "postgresql":
        pytest.skip("the estimate is PostgreSQL's")
    for i in range(5):
        Attribute.objects.create(cycle_report=Attribute.objects.first().cycle_report, name=f"extra_{i}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cycles_attribute")
    exact = Attribute.objects.count()

    class FromFive(EstimatedCountPaginator):
        estimate_from = 5

    with CaptureQueriesContext(connection) as captured:
        assert FromFive(Attribute.objects.order_by("-pk"), 2).count == exact  # ANALYZE just counted them all
    assert "reltuples" in captured.captured_queries[0]["sql"]
    assert not any("COUNT(" in q["sql"] for q in captured.captured_queries)
    with CaptureQueriesContext(connection) as captured:
        assert FromFive(Attribute.objects.filter(name__startswith="extra_"), 2).count == 5
    assert "COUNT(" in captured.captured_queries[-1]["sql"]
    # Under the threshold the whole table is counted exactly too.
    assert EstimatedCountPaginator(Attribute.objects.all(), 2).count == exact
