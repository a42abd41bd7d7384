from django.apps import AppConfig


class CyclesConfig(AppConfig):
    """LOBs, reports, cycles and every phase's records."""

    name = "cycles"
    verbose_name = "Test cycles"
