"""Verify a sealed evidence package offline: `manage.py verify_evidence_package FILE`.

Exit code 0 when every file matches the manifest; 1 with one line per problem
(altered, missing, added) otherwise; 2 when the file is not a readable package.
Needs no database and no Temporal.
"""
from django.core.management.base import BaseCommand

from cycles.services.package import package_verify


class Command(BaseCommand):
    help = "Check an evidence package against its SHA-256 manifest; name anything altered, missing or added."
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("file", help="The evidence package (.zip) to verify.")

    def handle(self, *args, file, **options):
        problems, checked = package_verify(file)
        if not problems:
            self.stdout.write(f"OK: {checked} files match the manifest of {file}.")
            return
        for problem in problems:
            self.stderr.write(str(problem))
        unreadable = any(p.kind == "unreadable" for p in problems) or checked == 0
        raise SystemExit(2 if unreadable else 1)
