"""manage.py reconcile_workflows: compare running report workflows with the database, repair, alert."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Compare every running report's workflow with the database: deliver waiting decisions, repair "
            "what can be repaired, raise an alert for the rest. Exit code 1 when Temporal can't be asked.")

    def add_arguments(self, parser):
        parser.add_argument("--cycle-report", type=int, action="append", dest="cycle_report_ids",
                            help="Only this cycle report (repeatable).")

    def handle(self, *args, **options):
        from workflows.services import workflows_reconcile

        report = workflows_reconcile(cycle_report_ids=options["cycle_report_ids"])
        for line in report.repaired:
            self.stdout.write(f"repaired: {line}")
        for line in report.alerts:
            self.stdout.write(f"alert: {line}")
        if report.unavailable:
            raise CommandError(f"reconcile_workflows: {report}")
        self.stdout.write(str(report))
