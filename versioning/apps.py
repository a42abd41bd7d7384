from django.apps import AppConfig


class VersioningConfig(AppConfig):
    """Versions of phase artifacts, their items, approvals and diffs."""

    name = "versioning"
    verbose_name = "Versioning"
