"""The REST API under /api/v1/: each app contributes its routes."""
from django.urls import include, path

urlpatterns = [
    path("", include("cycles.api.urls")),
    path("", include("versioning.api_urls")),
    path("", include("workflows.api_urls")),
]
