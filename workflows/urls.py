from django.urls import path, re_path

from workflows import views

app_name = "workflows"

urlpatterns = [
    path("monitoring/", views.monitoring, name="monitoring"),
    path("cycles/<int:cycle_pk>/schedules/", views.schedule_create_view, name="schedule-create"),
    re_path(r"^schedules/(?P<pk>\d+)/(?P<operation>pause|resume|trigger)/$", views.schedule_action_view,
            name="schedule-action"),
]
