"""Who may do what to which object. Pages, the API and WorkflowService all ask here."""
from __future__ import annotations

from synapse.roles import Role, has_role


def is_admin(user) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or has_role(user, Role.ADMIN)))


def can_create_cycle(user) -> bool:
    return is_admin(user) or has_role(user, Role.TEST_MANAGER)


def can_manage_cycle(user, cycle) -> bool:
    """Add reports, assign testers, start or cancel the workflow."""
    return is_admin(user) or (has_role(user, Role.TEST_MANAGER) and cycle.test_manager_id == user.pk)


def can_view_cycle(user, cycle) -> bool:
    if can_manage_cycle(user, cycle):
        return True
    from cycles.selectors import cycle_reports_visible_to

    return cycle_reports_visible_to(user=user).filter(cycle=cycle).exists()


def can_view_cycle_report(user, cycle_report) -> bool:
    if is_admin(user) or can_manage_cycle(user, cycle_report.cycle):
        return True
    if has_role(user, Role.TESTER) and cycle_report.tester_id == user.pk:
        return True
    if has_role(user, Role.REPORT_OWNER) and (
        cycle_report.report.owner_id == user.pk
        or any(user.username in names for names in ((cycle_report.cycle.configuration or {}).get("approvers") or {}).values())
    ):
        # A configured approver reads what they are asked to approve.
        return True
    if has_role(user, Role.DATA_EXECUTIVE) and cycle_report.report.lob.data_executive_id == user.pk:
        return True
    return False


def can_work_on(user, cycle_report) -> bool:
    """Do a phase's work (attributes, population file, scoping): the assigned tester."""
    return has_role(user, Role.TESTER) and cycle_report.tester_id == user.pk


def approvers_for(cycle_report, phase: str) -> list[str]:
    """Usernames configured as approvers of the phase, beside the report owner."""
    approvers = (cycle_report.cycle.configuration or {}).get("approvers") or {}
    return list(approvers.get(phase, []))


def can_approve(user, cycle_report, phase: str) -> bool:
    """Approve or send back a phase's version: the report's owner (or a configured approver)."""
    if not has_role(user, Role.REPORT_OWNER):
        return False
    return cycle_report.report.owner_id == user.pk or user.username in approvers_for(cycle_report, phase)


def can_sign_off(user, cycle_report, role: str) -> bool:
    """Sign the final test report in `role`: the cycle's test manager, the report's owner, the LOB's data executive."""
    if role == "test_manager":
        return has_role(user, Role.TEST_MANAGER) and cycle_report.cycle.test_manager_id == user.pk
    if role == "report_owner":
        return can_approve(user, cycle_report, "finalize")
    if role == "data_executive":
        return has_role(user, Role.DATA_EXECUTIVE) and cycle_report.report.lob.data_executive_id == user.pk
    return False
