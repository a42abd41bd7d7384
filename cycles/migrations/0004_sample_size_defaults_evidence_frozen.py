from django.db import migrations

from synapse.db_triggers import ImmutableRowTrigger

# cycles.sampling.size.DEFAULT_FREQUENCY_TABLE as it was when this migration was written
# (copied: a migration must not change when the code does).
DEFAULT_FREQUENCY_TABLE = {
    "annual": {"low": 1, "medium": 1, "high": 1},
    "quarterly": {"low": 2, "medium": 2, "high": 2},
    "monthly": {"low": 2, "medium": 3, "high": 5},
    "weekly": {"low": 5, "medium": 10, "high": 15},
    "daily": {"low": 20, "medium": 30, "high": 40},
    "many_per_day": {"low": 25, "medium": 45, "high": 60},
}

FILE_CHANGED = (
    "NEW.file <> OLD.file OR NEW.sha256 <> OLD.sha256 OR NEW.size_bytes <> OLD.size_bytes "
    "OR NEW.original_name <> OLD.original_name OR NEW.version <> OLD.version"
)


def seed_rules(apps, schema_editor):
    SampleSizeRule = apps.get_model("cycles", "SampleSizeRule")
    for frequency, by_risk in DEFAULT_FREQUENCY_TABLE.items():
        for risk, count in by_risk.items():
            SampleSizeRule.objects.get_or_create(
                frequency=frequency, risk=risk,
                defaults={"sample_count": count, "note": "Synapse default (common SOX practice)"},
            )


class Migration(migrations.Migration):
    """Frequency-table defaults; evidence files and their hashes can't be rewritten."""

    dependencies = [("cycles", "0003_sampling_requests_evidence")]

    operations = [
        migrations.RunPython(seed_rules, migrations.RunPython.noop),
        ImmutableRowTrigger("cycles_evidence_file_frozen", "cycles_evidence", "UPDATE", FILE_CHANGED,
                            "Evidence files are never overwritten: upload a new version."),
        ImmutableRowTrigger("cycles_evidence_no_delete", "cycles_evidence", "DELETE", None,
                            "Evidence is never deleted."),
    ]
