"""Who may see which people: the user directory a role may read.

Admins and Test Managers staff cycles, so they see everyone active. A Data
Executive assigns data owners, so sees the Data Owners. Everyone sees
themselves. Anyone else's name appears only where the object itself shows it
(a report's owner, a request's data owner) to people who may see that object.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model

from synapse.roles import Role, has_role


def users_visible_to(*, user):
    users = get_user_model().objects.filter(is_active=True).prefetch_related("groups").order_by("username")
    if user.is_superuser or has_role(user, Role.ADMIN, Role.TEST_MANAGER):
        return users
    visible_roles = [Role.DATA_OWNER] if has_role(user, Role.DATA_EXECUTIVE) else []
    from django.db.models import Q

    return users.filter(Q(pk=user.pk) | Q(groups__name__in=visible_roles)).distinct()


def can_see_user(viewer, other_id: int | None, *, cache: dict | None = None) -> bool:
    """May `viewer` see user `other_id`? With `cache` (e.g. a serializer's context), a list asks the
    database once for every row, not once per row."""
    if other_id is None:
        return False
    if viewer.pk == other_id or viewer.is_superuser or has_role(viewer, Role.ADMIN, Role.TEST_MANAGER):
        return True
    if cache is None:
        return users_visible_to(user=viewer).filter(pk=other_id).exists()
    key = ("visible_user_ids", viewer.pk)
    if key not in cache:
        cache[key] = set(users_visible_to(user=viewer).values_list("pk", flat=True))
    return other_id in cache[key]
