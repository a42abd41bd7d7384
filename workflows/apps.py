from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    """Temporal integration: client, worker, tracking tables, workflow service."""

    name = "workflows"
    verbose_name = "Workflows"
