"""Routes of the workflow API under /api/v1/ (trailing slash optional, as seed 001 calls them)."""
from django.urls import re_path

from workflows import api

urlpatterns = [
    re_path(r"^workflow/start/(?P<cycle_id>\d+)/?$", api.WorkflowStartApi.as_view(), name="api-workflow-start"),
    re_path(r"^workflow/status/(?P<cycle_id>\d+)/?$", api.WorkflowStatusApi.as_view(), name="api-workflow-status"),
    re_path(r"^workflow/cancel/(?P<cycle_id>\d+)/?$", api.WorkflowCancelApi.as_view(), name="api-workflow-cancel"),
    # Issue 9: runs, operations, the retry and compensation logs, metrics.
    re_path(r"^workflow/executions/?$", api.WorkflowExecutionListApi.as_view(), name="api-workflow-executions"),
    re_path(r"^workflow/retries/?$", api.WorkflowRetryListApi.as_view(), name="api-workflow-retries"),
    re_path(r"^workflow/(?P<operation>terminate|reset|retry|cancel-run)/(?P<workflow_id>[\w-]+)/?$",
            api.WorkflowOperationApi.as_view(), name="api-workflow-operation"),
    re_path(r"^workflow-compensation/?$", api.WorkflowCompensationListApi.as_view(), name="api-workflow-compensation"),
    re_path(r"^workflow-versions/?$", api.WorkflowVersionListApi.as_view(), name="api-workflow-versions"),
    re_path(r"^workflow-metrics/?$", api.WorkflowMetricsApi.as_view(), name="api-workflow-metrics"),
    re_path(r"^workflow-schedules/?$", api.CycleScheduleListApi.as_view(), name="api-workflow-schedules"),
    re_path(r"^cycles/(?P<cycle_id>\d+)/schedules/?$", api.CycleScheduleCreateApi.as_view(),
            name="api-cycle-schedule-create"),
    re_path(r"^workflow-schedules/(?P<pk>\d+)/(?P<operation>pause|resume|trigger)/?$",
            api.CycleScheduleActionApi.as_view(), name="api-workflow-schedule-action"),
]
