"""Who may do what to which object: the one table.

Rows are actions on an object of a cycle (the cycle, one of its reports and
what hangs off it: attributes, samples, versions, requests, evidence); columns
are the relations a person can have to that object. cycles.permissions and
the selectors implement it; synapse/tests/test_api_access.py walks every
role × endpoint × object pair (API and pages) and checks the answer against
this table. A person with none of the listed relations gets 403 (they see the
object but may not act) or 404 (they may not see it at all).

Separation of duties on top of the table: nobody decides on a version they
authored, whatever their relations (version.decide, version_item.decide).
"""
from __future__ import annotations

# Relations to a cycle report (and its cycle, versions, requests).
ADMIN = "admin"  # the Admin role (or a superuser)
CYCLE_MANAGER = "cycle_manager"  # the cycle's Test Manager
TESTER = "report_tester"  # the report's assigned Tester
OWNER = "report_owner"  # the report's Report Owner
APPROVER = "configured_approver"  # a Report Owner named in the cycle's configuration (approvers)
EXECUTIVE = "lob_executive"  # the Data Executive of the report's LOB
REQUEST_DATA_OWNER = "request_data_owner"  # the Data Owner a request was sent to
UNRELATED = "unrelated"  # any role, but none of the above

RELATIONS = (ADMIN, CYCLE_MANAGER, TESTER, OWNER, APPROVER, EXECUTIVE, REQUEST_DATA_OWNER, UNRELATED)

_REPORT_PEOPLE = frozenset({ADMIN, CYCLE_MANAGER, TESTER, OWNER, APPROVER, EXECUTIVE})

ACCESS: dict[str, frozenset[str]] = {
    # The cycle: read by everyone on one of its reports; configured, staffed, started, cancelled by its manager.
    "cycle.read": _REPORT_PEOPLE,
    "cycle.manage": frozenset({ADMIN, CYCLE_MANAGER}),
    # A report in a cycle and its phase records (attributes, scoping, profiles, samples, data owners, phases).
    "cycle_report.read": _REPORT_PEOPLE,
    "cycle_report.staff": frozenset({ADMIN, CYCLE_MANAGER}),  # assign the tester
    "cycle_report.work": frozenset({TESTER}),  # edit attributes, scope, upload, sample, submit
    # Versions of phase artifacts and their decisions (never by their author).
    "version.read": _REPORT_PEOPLE,
    "version.decide": frozenset({OWNER, APPROVER}),
    "version_item.decide": frozenset({OWNER, APPROVER}),  # Sample Selection only
    # Data Owner Identification.
    "data_owners.assign": frozenset({EXECUTIVE}),
    # Reassignments on a running cycle (issue 7): an attribute's data owner, with a reason, after
    # "Assignments complete"; a report's tester, with a reason.
    "data_owners.reassign": frozenset({EXECUTIVE}),
    "cycle_report.reassign_tester": frozenset({ADMIN, CYCLE_MANAGER}),
    # Requests for Information and evidence.
    "request.read": frozenset({ADMIN, CYCLE_MANAGER, TESTER, OWNER, EXECUTIVE, REQUEST_DATA_OWNER}),
    "request.answer": frozenset({REQUEST_DATA_OWNER}),  # upload evidence, submit
    "request.review": frozenset({TESTER}),  # review evidence, finish the review
    "evidence.download": frozenset({ADMIN, CYCLE_MANAGER, TESTER, OWNER, EXECUTIVE, REQUEST_DATA_OWNER}),
    # A report's workflow run (issue 9): terminate, reset, retry by an admin; cancel also by the cycle's manager.
    "workflow.operate": frozenset({ADMIN}),
    "workflow.cancel_run": frozenset({ADMIN, CYCLE_MANAGER}),
    # Recurring cycles (issue 9): the template cycle's manager makes it recur, pauses, resumes, runs it now.
    "schedule.manage": frozenset({ADMIN, CYCLE_MANAGER}),
}


def allowed(action: str, relations: set[str] | frozenset[str]) -> bool:
    return bool(ACCESS[action] & set(relations))
