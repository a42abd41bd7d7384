"""The monitoring page: charts of phase durations, waiting, bottlenecks and trends, progress per cycle, open alerts."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import render

from cycles.permissions import is_admin
from cycles.selectors import cycles_visible_to
from synapse.roles import Role, has_role
from workflows.charts import charts_for
from workflows.metrics import metrics_for
from workflows.models import WorkflowAlert


def can_monitor(user) -> bool:
    return is_admin(user) or has_role(user, Role.TEST_MANAGER)


@login_required
def monitoring(request):
    if not can_monitor(request.user):
        return render(request, "cycles/refused.html",
                      {"message": "The monitoring page is for test managers and admins."}, status=403)
    cycles = cycles_visible_to(user=request.user)
    cycle = None
    if request.GET.get("cycle"):
        try:
            cycle = cycles.filter(pk=int(request.GET["cycle"])).first()
        except ValueError:
            cycle = None
        if cycle is None:
            raise Http404("No such cycle among those you can see.")
    metrics = metrics_for(user=request.user, cycle=cycle)
    alerts = (WorkflowAlert.objects.filter(resolved_at__isnull=True,
                                           cycle_report__cycle__in=cycles.values("pk") if cycle is None else [cycle])
              .select_related("cycle_report__report", "cycle_report__cycle")[:50])
    return render(request, "workflows/monitoring.html", {
        "metrics": metrics, "charts": charts_for(metrics), "alerts": alerts, "cycle": cycle,
        "cycle_choices": cycles.order_by("-created_at"),
    })


def healthz(request):
    """200 when the database answers, Temporal answers and a worker's heartbeat is recent; else 503 saying which."""
    from django.db import connection

    from workflows.monitor import workers_alive
    from workflows.temporal.client import bridge

    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as err:  # the answer must come back whatever broke
        checks["database"] = f"error: {err}"
    try:
        bridge.run(lambda client: client.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok"
    except Exception as err:
        checks["temporal"] = f"unreachable: {type(err).__name__}"
    try:
        alive = list(workers_alive().values_list("identity", flat=True))
        checks["workers"] = f"{len(alive)} alive" if alive else "none alive"
    except Exception as err:
        alive, checks["workers"] = [], f"error: {err}"
    healthy = checks["database"] == "ok" and checks["temporal"] == "ok" and bool(alive)
    return JsonResponse({"status": "ok" if healthy else "unhealthy", "checks": checks}, status=200 if healthy else 503)
