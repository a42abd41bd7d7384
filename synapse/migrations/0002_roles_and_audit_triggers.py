from django.db import migrations

from synapse.db_triggers import ImmutableRowTrigger

ROLES = ["Admin", "Test Manager", "Tester", "Report Owner", "Data Executive", "Data Owner"]


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [("synapse", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunPython(create_roles, delete_roles),
        ImmutableRowTrigger("synapse_audit_no_update", "synapse_auditevent", "UPDATE", None,
                            "The audit trail is append-only."),
        ImmutableRowTrigger("synapse_audit_no_delete", "synapse_auditevent", "DELETE", None,
                            "The audit trail is append-only."),
    ]
