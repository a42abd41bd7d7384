"""Routes of the cycles API under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from cycles.api import cycles as api
from cycles.api import execution as api_execution
from cycles.api import requests as api_requests
from cycles.api import sampling as api_sampling

router = SimpleRouter()
router.register("lobs", api.LOBViewSet, basename="api-lob")
router.register("reports", api.ReportViewSet, basename="api-report")
router.register("cycles", api.CycleViewSet, basename="api-cycle")
router.register("cycle-reports", api.CycleReportViewSet, basename="api-cycle-report")
router.register("attributes", api.AttributeViewSet, basename="api-attribute")
router.register("samples", api_sampling.SampleViewSet, basename="api-sample")
router.register("requests", api_requests.InformationRequestViewSet, basename="api-request")

urlpatterns = [
    path("cycles/<int:pk>/reports/", api.CycleReportsApi.as_view(), name="api-cycle-reports"),
    path("cycle-reports/<int:pk>/attributes/", api.CycleReportAttributesApi.as_view(),
         name="api-cycle-report-attributes"),
    path("cycle-reports/<int:pk>/scoping/", api.CycleReportScopingApi.as_view(), name="api-cycle-report-scoping"),
    path("cycle-reports/<int:pk>/submit/", api.CycleReportSubmitApi.as_view(), name="api-cycle-report-submit"),
    path("cycle-reports/<int:pk>/sampling-plan/", api_sampling.CycleReportSamplingPlanApi.as_view(),
         name="api-cycle-report-sampling-plan"),
    path("cycle-reports/<int:pk>/samples/", api_sampling.CycleReportSamplesApi.as_view(),
         name="api-cycle-report-samples"),
    path("cycle-reports/<int:pk>/samples/draw/", api_sampling.CycleReportSamplesDrawApi.as_view(),
         name="api-cycle-report-samples-draw"),
    path("cycle-reports/<int:pk>/data-owners/", api_requests.CycleReportDataOwnersApi.as_view(),
         name="api-cycle-report-data-owners"),
    path("cycle-reports/<int:pk>/data-owners/bulk/", api_requests.CycleReportDataOwnersBulkApi.as_view(),
         name="api-cycle-report-data-owners-bulk"),
    path("requests/<int:pk>/evidence/", api_requests.InformationRequestEvidenceApi.as_view(),
         name="api-request-evidence"),
    path("requests/<int:pk>/submit/", api_requests.InformationRequestSubmitApi.as_view(), name="api-request-submit"),
    path("requests/<int:pk>/review/", api_requests.InformationRequestReviewApi.as_view(), name="api-request-review"),
    path("evidence/<int:pk>/review/", api_requests.EvidenceReviewApi.as_view(), name="api-evidence-review"),
    path("evidence/<int:pk>/download/", api_requests.EvidenceDownloadApi.as_view(), name="api-evidence-download"),
    # Test Execution (issue 6)
    path("cycle-reports/<int:pk>/test-execution/", api_execution.CycleReportTestExecutionApi.as_view(),
         name="api-cycle-report-test-execution"),
    path("cycle-reports/<int:pk>/test-results/", api_execution.CycleReportTestResultsApi.as_view(),
         name="api-cycle-report-test-results"),
    path("cycle-reports/<int:pk>/test-results/bulk/", api_execution.CycleReportTestResultsBulkApi.as_view(),
         name="api-cycle-report-test-results-bulk"),
    path("cycle-reports/<int:pk>/sample-extensions/", api_execution.CycleReportSampleExtensionsApi.as_view(),
         name="api-cycle-report-sample-extensions"),
    path("test-results/<int:pk>/", api_execution.TestResultApi.as_view(), name="api-test-result"),
    path("attributes/<int:pk>/execution-rule/", api_execution.AttributeExecutionRuleApi.as_view(),
         name="api-attribute-execution-rule"),
    path("sample-extensions/<int:pk>/decide/", api_execution.SampleExtensionDecideApi.as_view(),
         name="api-sample-extension-decide"),
    path("evidence/<int:pk>/links/", api_execution.EvidenceLinksApi.as_view(), name="api-evidence-links"),
    path("requests/<int:pk>/coverage/", api_execution.InformationRequestCoverageApi.as_view(),
         name="api-request-coverage"),
    *router.urls,
]
