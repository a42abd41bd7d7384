"""Routes of the versioning API under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from versioning import api

router = SimpleRouter()
router.register("versions", api.VersionViewSet, basename="api-version")
router.register("approvals", api.ApprovalViewSet, basename="api-approval")

urlpatterns = [
    path("versions/<int:pk>/decide/", api.VersionDecideApi.as_view(), name="api-version-decide"),
    path("versions/<int:pk>/items/<int:item_id>/decide/", api.VersionItemDecideApi.as_view(),
         name="api-version-item-decide"),
    *router.urls,
]
