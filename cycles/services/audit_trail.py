"""The audit trail of a report as people read it: names instead of ids, meanings instead of action codes.

audit_trail_for_report collects the events of the report and of everything
recorded under it (files, mappings, rules, attributes, decisions, versions,
samples, requests, evidence); audit_rows turns each into words; the export
writes the same rows as CSV or XLSX.
"""
from __future__ import annotations

import csv
import datetime
import io
import re

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from cycles.models import (
    Attribute,
    ColumnMapping,
    CycleReport,
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    PopulationFile,
    ProfilingRule,
    Sample,
    SamplingPlan,
    ScopingDecision,
)
from synapse.models import AuditEvent, User

ACTION_LABELS = {
    "cycle.create": "Created the cycle",
    "cycle.add_report": "Added a report to the cycle",
    "cycle.configure": "Configured the cycle",
    "cycle.start_workflow": "Started the cycle's workflow",
    "cycle.cancel_workflow": "Cancelled the cycle's workflow",
    "cycle_report.assign_tester": "Assigned the tester",
    "cycle_report.enter_phase": "Entered a phase",
    "cycle_report.complete_phase": "Completed a phase",
    "cycle_report.skip_phase": "Skipped a phase",
    "cycle_report.finish": "Finished the report's workflow",
    "attribute.create": "Added an attribute",
    "attribute.update": "Changed an attribute",
    "attribute.delete": "Removed an attribute",
    "attributes.draft": "Drafted the attributes",
    "sampling.override_size": "Overrode the sample size",
    "sampling.plan_prepare": "Prepared the sampling plan",
    "sampling.plan_update": "Changed the sampling plan",
    "data_owner.assign": "Assigned a data owner",
    "information_request.create": "Sent a request for information",
    "information_request.submit": "Submitted evidence",
    "information_request.return": "Returned a request to its data owner",
    "information_request.escalate": "Escalated a request",
    "evidence.upload": "Uploaded evidence",
    "evidence.accept": "Accepted evidence",
    "population.upload": "Uploaded a population file",
    "population.profile": "Profiled the population file",
    "population.profile_failed": "Profiling failed",
    "population.refused": "The workflow refused the population file",
    "population.key_resolve": "Resolved the population's key",
    "mapping.decide": "Set an attribute's column",
    "mapping.confirm_matched": "Confirmed the columns matched by name",
    "rules.draft": "Drafted validation rules",
    "rule.save": "Saved a validation rule",
    "rule.delete": "Removed a validation rule",
    "scoping.decide": "Decided an attribute's scope",
    "scoping.recommend": "Recommended the scope",
    "version.create": "Created a version",
    "version.carry_decisions": "Carried sample decisions into the new version",
    "version.approved": "Approved a version",
    "version.changes_requested": "Sent a version back",
    "version.submitted": "Submitted a version",
    "version.superseded": "Superseded a version",
    "version_item.decide": "Decided a sample",
    "version_item.decide_remaining": "Decided all remaining samples",
    "sampling.draw": "Drew samples",
    "sample.add_manual": "Picked a sample by hand",
    "sample.remove": "Removed a sample",
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Ids people don't read; their meaning is elsewhere in the row.
HIDDEN_KEYS = {"decision_id", "request_id", "workflow_run_id"}
EXPORT_COLUMNS = ("When", "Who", "What", "On", "Before", "After", "Why")


def _ids(queryset) -> list[str]:
    return [str(pk) for pk in queryset.values_list("pk", flat=True)]


def audit_trail_for_report(*, cycle_report: CycleReport):
    """Every audit event of the report and the records under it, newest first."""
    from versioning.models import Version, VersionItem

    owned = {
        CycleReport: [str(cycle_report.pk)],
        PopulationFile: _ids(cycle_report.population_files.all()),
        ColumnMapping: _ids(ColumnMapping.objects.filter(population_file__cycle_report=cycle_report)),
        ProfilingRule: _ids(ProfilingRule.objects.filter(attribute__cycle_report=cycle_report)),
        Attribute: _ids(cycle_report.attributes.all()),
        ScopingDecision: _ids(ScopingDecision.objects.filter(attribute__cycle_report=cycle_report)),
        Version: _ids(Version.objects.filter(cycle_report=cycle_report)),
        VersionItem: _ids(VersionItem.objects.filter(version__cycle_report=cycle_report)),
        Sample: _ids(Sample.objects.filter(cycle_report=cycle_report)),
        SamplingPlan: _ids(SamplingPlan.objects.filter(cycle_report=cycle_report)),
        DataOwnerAssignment: _ids(DataOwnerAssignment.objects.filter(attribute__cycle_report=cycle_report)),
        InformationRequest: _ids(InformationRequest.objects.filter(cycle_report=cycle_report)),
        Evidence: _ids(Evidence.objects.filter(request__cycle_report=cycle_report)),
    }
    where = Q(pk__in=[])
    for model, ids in owned.items():
        if ids:
            where |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in=ids)
    return AuditEvent.objects.filter(where).select_related("actor", "content_type").order_by("-created_at", "-pk")


def audit_filter(events, *, who: str = "", action: str = "", since: datetime.date | None = None,
                 until: datetime.date | None = None):
    """Narrow the events: who ("system" for the system's own), what (an action code), a date range."""
    if who == "system":
        events = events.filter(actor__isnull=True)
    elif who:
        events = events.filter(actor__username=who)
    if action:
        events = events.filter(action=action)
    if since:
        events = events.filter(created_at__date__gte=since)
    if until:
        events = events.filter(created_at__date__lte=until)
    return events


def _who(event: AuditEvent) -> str:
    if event.actor is not None:
        return str(event.actor)
    by = event.context.get("rule") or event.context.get("provider") or event.context.get("activity") or ""
    return f"The system ({by})" if by else "The system"


def _text(values, names: dict) -> str:
    if values is None:
        return ""
    if not isinstance(values, dict):
        return str(values)
    parts = []
    for key, value in values.items():
        if key in HIDDEN_KEYS or (isinstance(value, str) and UUID.match(value)):
            continue
        if key.endswith("_id") and value is not None:
            label = names.get((key, str(value)))
            key = key[:-3]
            value = label or value
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value[:20]) + (f" … ({len(value)})" if len(value) > 20 else "")
        parts.append(f"{key.replace('_', ' ')}: {'—' if value in (None, '') else value}")
    return "; ".join(parts)


def audit_rows(events) -> list[dict]:
    """Each event in words (the same rows the page shows and the export writes)."""
    events = list(events)
    user_ids = set()
    file_ids = set()
    for event in events:
        for values in (event.before, event.after, event.context):
            if isinstance(values, dict):
                for key, value in values.items():
                    if key in ("user_id", "decided_by_id", "data_owner_id", "tester_id") and value:
                        user_ids.add(value)
                    if key == "population_file_id" and value:
                        file_ids.add(value)
    names = {}
    for user in User.objects.filter(pk__in=user_ids):
        for key in ("user_id", "decided_by_id", "data_owner_id", "tester_id"):
            names[(key, str(user.pk))] = str(user)
    for pk, name in PopulationFile.objects.filter(pk__in=file_ids).values_list("pk", "original_name"):
        names[("population_file_id", str(pk))] = name
    rows = []
    for event in events:
        rows.append({
            "event": event,
            "when": event.created_at,
            "who": _who(event),
            "what": ACTION_LABELS.get(event.action, event.action.replace(".", ": ").replace("_", " ").capitalize()),
            "on": event.object_repr,
            "before": _text(event.before, names),
            "after": _text(event.after, names),
            "why": str(event.context.get("reason") or event.context.get("notes") or event.context.get("error") or ""),
        })
    return rows


def audit_export(rows: list[dict], fmt: str) -> bytes:
    """The rows as CSV (UTF-8 with a byte-order mark, so Excel reads it) or XLSX."""
    table = [[row["when"].strftime("%Y-%m-%d %H:%M:%S"), row["who"], row["what"], row["on"], row["before"],
              row["after"], row["why"]] for row in rows]
    if fmt == "xlsx":
        import xlsxwriter

        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
        sheet = workbook.add_worksheet("Audit trail")
        bold = workbook.add_format({"bold": True})
        sheet.write_row(0, 0, EXPORT_COLUMNS, bold)
        for i, values in enumerate(table, start=1):
            sheet.write_row(i, 0, values)
        sheet.set_column(0, 0, 20)
        sheet.set_column(1, 6, 30)
        workbook.close()
        return buffer.getvalue()
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(EXPORT_COLUMNS)
    # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it as text.
    writer.writerows([[f"'{v}" if v[:1] in "=+-@" else v for v in values] for values in table])
    return ("\ufeff" + text.getvalue()).encode()
