"""Routes of the workflow API under /api/v1/ (trailing slash optional, as seed 001 calls them)."""
from django.urls import re_path

from workflows import api

urlpatterns = [
    re_path(r"^workflow/start/(?P<cycle_id>\d+)/?$", api.WorkflowStartApi.as_view(), name="api-workflow-start"),
    re_path(r"^workflow/status/(?P<cycle_id>\d+)/?$", api.WorkflowStatusApi.as_view(), name="api-workflow-status"),
    re_path(r"^workflow/cancel/(?P<cycle_id>\d+)/?$", api.WorkflowCancelApi.as_view(), name="api-workflow-cancel"),
]
