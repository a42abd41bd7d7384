from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from workflows import views as workflow_views
from workflows.prometheus import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="cycles:my-work", permanent=False)),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("synapse.api_urls")),
    path("", include("cycles.urls")),
    path("", include("versioning.urls")),
    # Issue 9: the monitoring page and the health check.
    path("workflows/", include("workflows.urls")),
    path("healthz", workflow_views.healthz, name="healthz"),
    path("metrics", metrics_view, name="prometheus-metrics"),
]

# Static files in development (DEBUG only); production serves them from STATIC_ROOT (see docs/operators.md).
urlpatterns += staticfiles_urlpatterns()
