"""The six roles of ARCHITECTURE.md, each a Django group (created by a migration)."""
from django.db import models


class Role(models.TextChoices):
    ADMIN = "Admin"
    TEST_MANAGER = "Test Manager"
    TESTER = "Tester"
    REPORT_OWNER = "Report Owner"
    DATA_EXECUTIVE = "Data Executive"
    DATA_OWNER = "Data Owner"


def user_roles(user) -> set[str]:
    """Return the role names the user holds (cached on the user object)."""
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_synapse_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached.add(Role.ADMIN)
        user._synapse_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
