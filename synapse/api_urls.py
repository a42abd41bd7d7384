"""The REST API under /api/v1/: each app contributes its routes."""
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from synapse.api_root import ApiRootView, api_not_found

urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include("synapse.accounts_api_urls")),
    path("", include("cycles.api.urls")),
    path("", include("versioning.api_urls")),
    path("", include("workflows.api_urls")),
    # Last: anything else under /api/v1/ is a 404 in the API's error shape, not an HTML page.
    re_path(r"^.*$", api_not_found),
]
