"""Prometheus metrics: Synapse's own, from the web (/metrics, read from the tracking tables at scrape time)
and from the worker (activity counts, durations and retries as they happen, on WORKER_METRICS_PORT).

The SDK's runtime metrics (task latencies, pollers, sticky cache) come from the worker's
Temporal Runtime with a PrometheusConfig (TEMPORAL_SDK_METRICS_ADDRESS), see run_temporal_worker.
"""
from __future__ import annotations

from django.db.models import Count
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

ACTIVITIES = Counter("synapse_activity_total", "Activity attempts run by this worker.", ["activity", "outcome"])
ACTIVITY_SECONDS = Histogram("synapse_activity_seconds", "Activity attempt durations.", ["activity"],
                             buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
RETRIES = Counter("synapse_activity_retries_total", "Failed activity attempts that Temporal retries.", ["activity"])


class TrackingCollector:
    """Gauges read from the database when Prometheus scrapes the web process."""

    def collect(self):
        from workflows.models import WorkflowAlert, WorkflowDecision, WorkflowExecution
        from workflows.monitor import workers_alive

        executions = GaugeMetricFamily("synapse_workflow_executions", "Workflow runs by type and status.",
                                       labels=["workflow_type", "status"])
        for row in WorkflowExecution.objects.values("workflow_type", "status").annotate(n=Count("pk")):
            executions.add_metric([row["workflow_type"], row["status"]], row["n"])
        yield executions
        open_alerts = GaugeMetricFamily("synapse_alerts_open", "Unresolved alerts by kind.", labels=["kind"])
        for row in WorkflowAlert.objects.filter(resolved_at__isnull=True).values("kind").annotate(n=Count("pk")):
            open_alerts.add_metric([row["kind"]], row["n"])
        yield open_alerts
        yield GaugeMetricFamily("synapse_decisions_pending", "Decisions stored but not yet delivered.",
                                value=WorkflowDecision.objects.filter(status=WorkflowDecision.Status.PENDING).count())
        yield GaugeMetricFamily("synapse_workers_alive", "Workers whose heartbeat is recent.",
                                value=workers_alive().count())


_registered = []


def metrics_view(request):
    if not _registered:
        REGISTRY.register(TrackingCollector())
        _registered.append(True)
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
