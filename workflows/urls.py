from django.urls import path

from workflows import views

app_name = "workflows"

urlpatterns = [
    path("monitoring/", views.monitoring, name="monitoring"),
]
