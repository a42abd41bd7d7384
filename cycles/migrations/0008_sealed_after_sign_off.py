from django.db import migrations

from synapse.db_triggers import ImmutableRowTrigger


def sealed(cycle_report_id: str) -> str:
    """SQL: the cycle report's final test report is signed off (its records are sealed)."""
    return (f"EXISTS (SELECT 1 FROM cycles_finalreport WHERE cycle_report_id = {cycle_report_id} "
            "AND status = 'signed')")


EVIDENCE_REPORT = "(SELECT cycle_report_id FROM cycles_informationrequest WHERE id = OLD.request_id)"
CELL_REPORT_OLD = "(SELECT cycle_report_id FROM cycles_testresult WHERE id = OLD.testresult_id)"
CELL_REPORT_NEW = "(SELECT cycle_report_id FROM cycles_testresult WHERE id = NEW.testresult_id)"
HISTORY_REPORT_NEW = "(SELECT cycle_report_id FROM cycles_testresult WHERE id = NEW.test_result_id)"
HISTORY_REPORT_OLD = "(SELECT cycle_report_id FROM cycles_testresult WHERE id = OLD.test_result_id)"
OBSERVATION_REPORT_OLD = "(SELECT cycle_report_id FROM cycles_observation WHERE id = OLD.observation_id)"
OBSERVATION_REPORT_NEW = "(SELECT cycle_report_id FROM cycles_observation WHERE id = NEW.observation_id)"

# What an observation says; its remediation status keeps moving after sign-off.
_OBSERVATION_FIELDS = ("number", "title", "severity", "type", "description", "impact", "root_cause",
                       "failure_kind")
_OBSERVATION_NULLABLE = ("attribute_id", "remediation_owner_id", "remediation_target_date")
OBSERVATION_CHANGED_PG = " OR ".join(
    [f"NEW.{f} <> OLD.{f}" for f in _OBSERVATION_FIELDS]
    + [f"NEW.{f} IS DISTINCT FROM OLD.{f}" for f in _OBSERVATION_NULLABLE]
)
OBSERVATION_CHANGED_SQLITE = " OR ".join(
    [f"NEW.{f} <> OLD.{f}" for f in _OBSERVATION_FIELDS] + [f"NEW.{f} IS NOT OLD.{f}" for f in _OBSERVATION_NULLABLE]
)

SEALED = "The report is signed off and sealed: its evidence, results and observations are frozen."


class Migration(migrations.Migration):
    """After the last sign-off, a report's evidence, test results, observations and versions are frozen;
    sign-offs, packages and remediation history are append-only."""

    dependencies = [("cycles", "0007_observations_final_report"), ("versioning", "0002_immutability_triggers")]

    operations = [
        # Evidence (its file is already frozen by 0004): no review change once sealed.
        ImmutableRowTrigger("cycles_evidence_sealed_update", "cycles_evidence", "UPDATE",
                            sealed(EVIDENCE_REPORT), SEALED),
        # The test matrix, its history and its evidence links.
        ImmutableRowTrigger("cycles_testresult_sealed_update", "cycles_testresult", "UPDATE",
                            sealed("OLD.cycle_report_id"), SEALED),
        ImmutableRowTrigger("cycles_testresult_sealed_delete", "cycles_testresult", "DELETE",
                            sealed("OLD.cycle_report_id"), SEALED),
        ImmutableRowTrigger("cycles_testresult_sealed_insert", "cycles_testresult", "INSERT",
                            sealed("NEW.cycle_report_id"), SEALED),
        ImmutableRowTrigger("cycles_testresult_evidence_sealed_insert", "cycles_testresult_evidence", "INSERT",
                            sealed(CELL_REPORT_NEW), SEALED),
        ImmutableRowTrigger("cycles_testresult_evidence_sealed_delete", "cycles_testresult_evidence", "DELETE",
                            sealed(CELL_REPORT_OLD), SEALED),
        ImmutableRowTrigger("cycles_testresulthistory_sealed_insert", "cycles_testresulthistory", "INSERT",
                            sealed(HISTORY_REPORT_NEW), SEALED),
        ImmutableRowTrigger("cycles_testresulthistory_sealed_update", "cycles_testresulthistory", "UPDATE",
                            sealed(HISTORY_REPORT_OLD), SEALED),
        ImmutableRowTrigger("cycles_testresulthistory_sealed_delete", "cycles_testresulthistory", "DELETE",
                            sealed(HISTORY_REPORT_OLD), SEALED),
        # Observations: what they say and the cells they rest on.
        ImmutableRowTrigger("cycles_observation_sealed_update", "cycles_observation", "UPDATE",
                            f"{sealed('OLD.cycle_report_id')} AND ({OBSERVATION_CHANGED_PG})", SEALED,
                            sqlite_when=f"{sealed('OLD.cycle_report_id')} AND ({OBSERVATION_CHANGED_SQLITE})"),
        ImmutableRowTrigger("cycles_observation_sealed_delete", "cycles_observation", "DELETE",
                            sealed("OLD.cycle_report_id"), SEALED),
        ImmutableRowTrigger("cycles_observation_sealed_insert", "cycles_observation", "INSERT",
                            sealed("NEW.cycle_report_id"), SEALED),
        ImmutableRowTrigger("cycles_observation_cells_sealed_insert", "cycles_observation_cells", "INSERT",
                            sealed(OBSERVATION_REPORT_NEW), SEALED),
        ImmutableRowTrigger("cycles_observation_cells_sealed_delete", "cycles_observation_cells", "DELETE",
                            sealed(OBSERVATION_REPORT_OLD), SEALED),
        # No new version of any phase of a sealed report (approved ones are frozen by versioning 0002).
        ImmutableRowTrigger("versioning_version_sealed_insert", "versioning_version", "INSERT",
                            sealed("NEW.cycle_report_id"), SEALED),
        # Signatures, signed reports, packages and remediation history are append-only.
        ImmutableRowTrigger("cycles_signoff_no_update", "cycles_signoff", "UPDATE", None,
                            "Sign-offs are append-only."),
        ImmutableRowTrigger("cycles_signoff_no_delete", "cycles_signoff", "DELETE", None,
                            "Sign-offs are append-only."),
        ImmutableRowTrigger("cycles_finalreport_signed_update", "cycles_finalreport", "UPDATE",
                            "OLD.status = 'signed'", "A signed final report is immutable."),
        ImmutableRowTrigger("cycles_finalreport_no_delete", "cycles_finalreport", "DELETE", None,
                            "Final reports are kept."),
        ImmutableRowTrigger("cycles_evidencepackage_no_update", "cycles_evidencepackage", "UPDATE", None,
                            "An evidence package is sealed."),
        ImmutableRowTrigger("cycles_evidencepackage_no_delete", "cycles_evidencepackage", "DELETE", None,
                            "An evidence package is sealed."),
        ImmutableRowTrigger("cycles_remediationevent_no_update", "cycles_remediationevent", "UPDATE", None,
                            "Remediation history is append-only."),
        ImmutableRowTrigger("cycles_remediationevent_no_delete", "cycles_remediationevent", "DELETE", None,
                            "Remediation history is append-only."),
    ]
