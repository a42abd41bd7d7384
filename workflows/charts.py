"""The monitoring page's charts, drawn server-side as inline SVG by pygal (no script, no CDN)."""
from __future__ import annotations

import pygal
from django.utils.safestring import mark_safe
from pygal.style import Style

from workflows.metrics import WorkflowMetrics

STYLE = Style(background="white", plot_background="white", colors=("#417690", "#79aec8", "#ba2121", "#5b9b3a"),
              font_family="system-ui, sans-serif", label_font_size=11, major_label_font_size=11,
              legend_font_size=12, title_font_size=14)


def _chart(kind, title: str, **options):
    # js=[]: pygal's tooltips would load a script from the internet; the charts read without it.
    return kind(js=[], style=STYLE, title=title, disable_xml_declaration=True, height=320, width=760,
                legend_at_bottom=True, print_values=False, **options)


def _svg(chart) -> str:
    return mark_safe(chart.render(is_unicode=True))


def charts_for(metrics: WorkflowMetrics) -> dict[str, str]:
    """{name: svg} for the monitoring page; a chart with no data says so instead."""
    charts = {}
    if metrics.phase_durations:
        chart = _chart(pygal.Bar, "Phase durations (hours)", x_label_rotation=20)
        chart.x_labels = [d.phase.replace("_", " ") for d in metrics.phase_durations]
        for label, attr in (("p50", "p50_hours"), ("p90", "p90_hours"), ("p99", "p99_hours")):
            chart.add(label, [getattr(d, attr) for d in metrics.phase_durations])
        charts["durations"] = _svg(chart)
    if metrics.waiting_by_role:
        chart = _chart(pygal.HorizontalBar, "Time waiting now, by role (hours, all reports)")
        for waiting in metrics.waiting_by_role:
            chart.add(f"{waiting.who} ({waiting.reports})", [waiting.hours])
        charts["waiting"] = _svg(chart)
    if metrics.waited_by_role:
        chart = _chart(pygal.HorizontalBar, "Time waited, by role (hours, over every report's life)")
        for waiting in metrics.waited_by_role:
            chart.add(f"{waiting.who} ({waiting.reports})", [waiting.hours])
        charts["waited"] = _svg(chart)
    weeks = sorted(set(metrics.throughput_by_week) | set(metrics.sla_breaches_by_week))
    if weeks:
        chart = _chart(pygal.Line, "Throughput and SLA breaches per week")
        chart.x_labels = weeks
        chart.add("phases completed", [metrics.throughput_by_week.get(w, 0) for w in weeks])
        chart.add("SLA breaches", [metrics.sla_breaches_by_week.get(w, 0) for w in weeks])
        charts["trend"] = _svg(chart)
    return charts
