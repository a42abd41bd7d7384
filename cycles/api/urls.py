"""Routes of the cycles API under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from cycles.api import cycles as api
from cycles.api import profiling as api_profiling
from cycles.api import execution as api_execution
from cycles.api import final_report as api_final_report
from cycles.api import observations as api_observations
from cycles.api import reassignments as api_reassignments
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
    path("cycle-reports/<int:pk>/data-owners/reassign/", api_reassignments.CycleReportDataOwnerReassignApi.as_view(),
         name="api-cycle-report-data-owners-reassign"),
    path("cycle-reports/<int:pk>/tester/reassign/", api_reassignments.CycleReportTesterReassignApi.as_view(),
         name="api-cycle-report-tester-reassign"),
    path("cycle-reports/<int:pk>/reassignments/", api_reassignments.CycleReportReassignmentsApi.as_view(),
         name="api-cycle-report-reassignments"),
    path("requests/<int:pk>/evidence/", api_requests.InformationRequestEvidenceApi.as_view(),
         name="api-request-evidence"),
    path("requests/<int:pk>/submit/", api_requests.InformationRequestSubmitApi.as_view(), name="api-request-submit"),
    path("requests/<int:pk>/review/", api_requests.InformationRequestReviewApi.as_view(), name="api-request-review"),
    path("evidence/<int:pk>/review/", api_requests.EvidenceReviewApi.as_view(), name="api-evidence-review"),
    path("evidence/<int:pk>/download/", api_requests.EvidenceDownloadApi.as_view(), name="api-evidence-download"),
    path("cycle-reports/<int:pk>/population-files/", api_profiling.CycleReportPopulationFilesApi.as_view(),
         name="api-cycle-report-population-files"),
    path("population-files/<int:pk>/profiles/", api_profiling.PopulationFileProfilesApi.as_view(),
         name="api-population-file-profiles"),
    path("population-files/<int:pk>/mappings/confirm/", api_profiling.PopulationFileMappingsConfirmApi.as_view(),
         name="api-population-file-mappings-confirm"),
    path("cycle-reports/<int:pk>/phases/", api_profiling.CycleReportPhasesApi.as_view(),
         name="api-cycle-report-phases"),
    path("cycle-reports/<int:pk>/data-owners/complete/", api_profiling.CycleReportDataOwnersCompleteApi.as_view(),
         name="api-cycle-report-data-owners-complete"),
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
    # Observations, Final Test Report, cycle completion (issue 6)
    path("cycle-reports/<int:pk>/observations/", api_observations.CycleReportObservationsApi.as_view(),
         name="api-cycle-report-observations"),
    path("cycle-reports/<int:pk>/observations/merge/", api_observations.ObservationsMergeApi.as_view(),
         name="api-cycle-report-observations-merge"),
    path("observations/<int:pk>/", api_observations.ObservationApi.as_view(), name="api-observation"),
    path("observations/<int:pk>/split/", api_observations.ObservationSplitApi.as_view(),
         name="api-observation-split"),
    path("observations/<int:pk>/remediation/", api_observations.ObservationRemediationApi.as_view(),
         name="api-observation-remediation"),
    path("cycle-reports/<int:pk>/final-report/", api_final_report.CycleReportFinalReportApi.as_view(),
         name="api-cycle-report-final-report"),
    path("cycle-reports/<int:pk>/final-report/pdf/", api_final_report.CycleReportFinalReportPdfApi.as_view(),
         name="api-cycle-report-final-report-pdf"),
    path("cycle-reports/<int:pk>/sign-off/", api_final_report.CycleReportSignOffApi.as_view(),
         name="api-cycle-report-sign-off"),
    path("cycle-reports/<int:pk>/package/", api_final_report.CycleReportPackageApi.as_view(),
         name="api-cycle-report-package"),
    path("cycle-reports/<int:pk>/remove/", api_final_report.CycleReportRemoveApi.as_view(),
         name="api-cycle-report-remove"),
    path("cycles/<int:pk>/results/", api_final_report.CycleResultsApi.as_view(), name="api-cycle-results"),
    *router.urls,
]
