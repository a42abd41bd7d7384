from django.contrib.auth.models import AbstractUser
from django.contrib.contenttypes.models import ContentType
from django.db import models


class User(AbstractUser):
    """A person using Synapse; roles are Django groups (see synapse.roles)."""

    title = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["username"]

    def __str__(self):
        return self.get_full_name() or self.username


class AuditEventQuerySet(models.QuerySet):
    def for_object(self, obj):
        return self.filter(
            content_type=ContentType.objects.get_for_model(type(obj)), object_id=str(obj.pk)
        )

    def update(self, **kwargs):
        raise TypeError("The audit trail is append-only.")

    def delete(self):
        raise TypeError("The audit trail is append-only.")


class AuditEvent(models.Model):
    """One entry of the append-only audit trail, written by services.

    UPDATE and DELETE are refused by database triggers too (migration 0002),
    so not even raw SQL through the ORM's connection can rewrite history.
    """

    actor = models.ForeignKey(
        "synapse.User", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    action = models.CharField(max_length=80)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=255)
    before = models.JSONField(null=True, blank=True, help_text="Field values before the change.")
    after = models.JSONField(null=True, blank=True, help_text="Field values after the change.")
    context = models.JSONField(
        default=dict, blank=True, help_text="Where the change came from: workflow id, activity, reason."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["content_type", "object_id", "-created_at"]),
            # A phase's trail gathers its rows' events by the report or request their services record in context
            # (cycles.views.sampling.related_audit_entries): without these, every phase page scans the trail.
            models.Index(models.F("content_type"), models.F("context__cycle_report"), name="audit_type_cycle_report"),
            models.Index(models.F("content_type"), models.F("context__request"), name="audit_type_request"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The audit trail is append-only.")


class ApiToken(models.Model):
    """A named API token of one person, for an integration. Only its SHA-256 is stored; the key is shown once.

    Sent as "Authorization: Bearer <key>" (synapse.authentication). Revoking
    keeps the row (revoked_at), so the list still shows what a token was.
    """

    user = models.ForeignKey("synapse.User", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, help_text="The key's first characters, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
