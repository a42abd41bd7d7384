"""A report's audit trail: filtered by who, what and when, and exported as CSV or XLSX."""
from __future__ import annotations

import datetime

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from cycles.services.audit_trail import ACTION_LABELS, audit_export, audit_filter, audit_rows, audit_trail_for_report
from cycles.views.pages import _cycle_report_or_404

PAGE_LIMIT = 500


class AuditFilterForm(forms.Form):
    who = forms.ChoiceField(label="Who", required=False)
    action = forms.ChoiceField(label="What", required=False)
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="Until", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, people: list[tuple[str, str]], actions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["who"].choices = [("", "Anyone"), ("system", "The system"), *people]
        self.fields["action"].choices = [("", "Anything"), *((a, ACTION_LABELS.get(a, a)) for a in actions)]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return cleaned


@login_required
@require_GET
def report_audit(request, pk: int):
    """Everyone who can see the report sees its trail (404 otherwise); ?format=csv|xlsx downloads it."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    events = audit_trail_for_report(cycle_report=cycle_report)
    people = sorted({(e.actor.username, str(e.actor)) for e in events if e.actor_id}, key=lambda p: p[1])
    actions = sorted(set(events.values_list("action", flat=True)))
    form = AuditFilterForm(request.GET or None, people=people, actions=actions)
    if form.is_bound and form.is_valid():
        events = audit_filter(events, **form.cleaned_data)
    fmt = request.GET.get("format", "")
    if fmt in ("csv", "xlsx") and (not form.is_bound or form.is_valid()):
        rows = audit_rows(events)
        content = audit_export(rows, fmt)
        stamp = datetime.date.today().isoformat()
        response = HttpResponse(
            content,
            content_type="text/csv; charset=utf-8" if fmt == "csv"
            else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="audit-report-{cycle_report.pk}-{stamp}.{fmt}"'
        return response
    rows = audit_rows(events[:PAGE_LIMIT])
    query = request.GET.copy()
    query.pop("format", None)
    return render(request, "cycles/audit_trail.html", {
        "cycle_report": cycle_report, "cycle": cycle_report.cycle, "form": form, "rows": rows,
        "limit": PAGE_LIMIT, "query": query.urlencode(),
    })
