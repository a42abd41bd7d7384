from django.apps import AppConfig


class SynapseConfig(AppConfig):
    """The project's own app: the user model, roles and the audit trail."""

    name = "synapse"
    verbose_name = "Synapse"

    def ready(self):
        # Registers the schema extensions (the Bearer token scheme) with drf-spectacular.
        from synapse import schema  # noqa: F401
