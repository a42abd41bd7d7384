from django.db import migrations

from synapse.db_triggers import ImmutableRowTrigger

APPROVED_ITEM = "(SELECT status FROM versioning_version WHERE id = OLD.version_id) = 'approved'"


class Migration(migrations.Migration):
    """Approved versions, their items and approval decisions can't be rewritten."""

    dependencies = [("versioning", "0001_initial")]

    operations = [
        ImmutableRowTrigger("versioning_version_frozen_update", "versioning_version", "UPDATE",
                            "OLD.status = 'approved'", "An approved version is immutable."),
        ImmutableRowTrigger("versioning_version_frozen_delete", "versioning_version", "DELETE",
                            "OLD.status = 'approved'", "An approved version is immutable."),
        ImmutableRowTrigger("versioning_item_frozen_update", "versioning_versionitem", "UPDATE",
                            APPROVED_ITEM, "Items of an approved version are immutable."),
        ImmutableRowTrigger("versioning_item_frozen_delete", "versioning_versionitem", "DELETE",
                            APPROVED_ITEM, "Items of an approved version are immutable."),
        ImmutableRowTrigger("versioning_approval_no_update", "versioning_approval", "UPDATE", None,
                            "Approval decisions are append-only."),
        ImmutableRowTrigger("versioning_approval_no_delete", "versioning_approval", "DELETE", None,
                            "Approval decisions are append-only."),
    ]
