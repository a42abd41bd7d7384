from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from synapse.views import PasswordChangeView, api_token_revoke_view, api_tokens
from workflows import views as workflow_views
from workflows.prometheus import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="cycles:my-work", permanent=False)),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    # Accounts (issue 8): password change and API tokens.
    path("account/password/", PasswordChangeView.as_view(), name="password-change"),
    path("account/tokens/", api_tokens, name="api-tokens"),
    path("account/tokens/<int:pk>/revoke/", api_token_revoke_view, name="api-token-revoke"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("synapse.api_urls")),
    path("", include("cycles.urls")),
    path("", include("versioning.urls")),
    # Issue 9: the monitoring page and the health check.
    path("workflows/", include("workflows.urls")),
    path("healthz", workflow_views.healthz, name="healthz"),
    path("metrics", metrics_view, name="prometheus-metrics"),
]

# Static files: WhiteNoise serves them in every mode; this adds runserver's view when DEBUG is on.
urlpatterns += staticfiles_urlpatterns()
