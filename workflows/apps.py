from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    """Temporal integration: client, worker, tracking tables, workflow service."""

    name = "workflows"
    verbose_name = "Workflows"

    def ready(self):
        from workflows.logs import install_record_factory

        # Log lines carry the workflow, run and user they are about (structured logs, issue 9).
        install_record_factory()
