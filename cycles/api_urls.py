"""Routes of the cycles API under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from cycles import api

router = SimpleRouter()
router.register("lobs", api.LOBViewSet, basename="api-lob")
router.register("reports", api.ReportViewSet, basename="api-report")
router.register("cycles", api.CycleViewSet, basename="api-cycle")
router.register("cycle-reports", api.CycleReportViewSet, basename="api-cycle-report")
router.register("attributes", api.AttributeViewSet, basename="api-attribute")

urlpatterns = [
    path("cycles/<int:pk>/reports/", api.CycleReportsApi.as_view(), name="api-cycle-reports"),
    path("cycle-reports/<int:pk>/attributes/", api.CycleReportAttributesApi.as_view(),
         name="api-cycle-report-attributes"),
    path("cycle-reports/<int:pk>/scoping/", api.CycleReportScopingApi.as_view(), name="api-cycle-report-scoping"),
    path("cycle-reports/<int:pk>/submit/", api.CycleReportSubmitApi.as_view(), name="api-cycle-report-submit"),
    *router.urls,
]
