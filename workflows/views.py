"""The monitoring page: charts of phase durations, waiting, bottlenecks and trends, progress per cycle, open alerts."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from cycles.permissions import can_manage_cycle, is_admin
from cycles.selectors import cycles_visible_to
from cycles.views.pages import refuse
from synapse.exceptions import ApplicationError
from synapse.roles import Role, has_role
from workflows.charts import charts_for
from workflows.forms import CycleScheduleForm, ScheduleActionForm
from workflows.metrics import metrics_for
from workflows.models import WorkflowAlert
from workflows.schedules import (
    schedule_create, schedule_next_run, schedule_pause, schedule_resume, schedule_trigger,
)
from workflows.selectors import schedules_visible_to


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


@login_required
@require_POST
def schedule_create_view(request, cycle_pk: int):
    """Make the cycle recur (the cycle page's "Recurring" card): a Temporal Schedule copies it monthly or quarterly."""
    cycle = cycles_visible_to(user=request.user).filter(pk=cycle_pk).first()
    if cycle is None:
        raise Http404("No such cycle among those you can see.")
    if not can_manage_cycle(request.user, cycle):
        return refuse(request, "Only the cycle's Test Manager can make it recur.")
    form = CycleScheduleForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("cycles:cycle-detail", pk=cycle.pk)
    try:
        schedule = schedule_create(user=request.user, template=cycle, **form.cleaned_data)
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"{schedule.name} recurs {schedule.frequency}: the next cycle is created and started on "
                                  f"{schedule_next_run(schedule.frequency):%-d %b %Y at %H:%M} UTC.")
    return redirect("cycles:cycle-detail", pk=cycle.pk)


SCHEDULE_OPERATIONS = {
    "pause": (schedule_pause, "paused: no cycle is created until it is resumed"),
    "resume": (schedule_resume, "resumed"),
    "trigger": (schedule_trigger, "run now: a new cycle is being created and started"),
}


@login_required
@require_POST
def schedule_action_view(request, pk: int, operation: str):
    schedule = schedules_visible_to(user=request.user).filter(pk=pk).first()
    if schedule is None:
        raise Http404("No such schedule among those you manage.")
    form = ScheduleActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The reason is too long (1000 characters at most).")
        return redirect("cycles:cycle-detail", pk=schedule.template_id)
    operate, done = SCHEDULE_OPERATIONS[operation]
    try:
        operate(user=request.user, schedule=schedule, reason=form.cleaned_data["reason"])
    except ApplicationError as err:
        messages.error(request, f"{schedule.name}: {err.message}")
    else:
        messages.success(request, f"{schedule.name}: {done}.")
    return redirect("cycles:cycle-detail", pk=schedule.template_id)


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
