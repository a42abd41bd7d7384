"""Services of accounts: named API tokens (create, revoke, authenticate)."""
from __future__ import annotations

import datetime
import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from synapse.audit import audit_record
from synapse.exceptions import ApplicationError, NotFoundError, PermissionDeniedError
from synapse.models import ApiToken
from synapse.roles import Role, has_role

MAX_ACTIVE_TOKENS = 20
# Writing last use on every call would make each API call a write; a minute is precise enough.
LAST_USE_RESOLUTION = datetime.timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_tokens_visible_to(*, user):
    """A person's own tokens; an Admin sees everyone's."""
    qs = ApiToken.objects.select_related("user")
    if user.is_superuser or has_role(user, Role.ADMIN):
        return qs
    return qs.filter(user=user)


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """Create a named token for `user`; returns (token, key). The key is not stored and can't be shown again."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the token a name, e.g. the integration that will use it.")
    with transaction.atomic():
        active = ApiToken.objects.select_for_update().filter(user=user, revoked_at__isnull=True)
        if active.count() >= MAX_ACTIVE_TOKENS:
            raise ApplicationError(f"You have {MAX_ACTIVE_TOKENS} active tokens: revoke one first.")
        if active.filter(name=name).exists():
            raise ApplicationError(f"You already have an active token named {name!r}.", code="duplicate")
        key = secrets.token_urlsafe(32)
        token = ApiToken.objects.create(user=user, name=name, prefix=key[:8], key_hash=_hash(key))
        audit_record(actor=user, action="api_token.create", obj=token, after={"name": name, "prefix": token.prefix})
    return token, key


def api_token_revoke(*, user, token: ApiToken) -> ApiToken:
    """Revoke a token: its owner, or an Admin. Revoking twice changes nothing."""
    if token.user_id != user.pk and not (user.is_superuser or has_role(user, Role.ADMIN)):
        raise PermissionDeniedError("Only the token's owner or an Admin can revoke it.")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_record(actor=user, action="api_token.revoke", obj=token, after={"name": token.name})
    return token


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token with this key (its user loaded), recording its use; None when there is none."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_hash(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USE_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def api_token_get(*, user, pk: int) -> ApiToken:
    token = api_tokens_visible_to(user=user).filter(pk=pk).first()
    if token is None:
        raise NotFoundError("No such token among yours.")
    return token
