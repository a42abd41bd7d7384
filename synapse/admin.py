"""Admin of users (with their roles), the audit trail (read-only), and read-only helpers for the apps."""
from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.paginator import Paginator
from django.db import connections, models
from django.forms.models import BaseInlineFormSet
from django.utils.functional import cached_property
from django.utils.html import format_html_join

from synapse.models import ApiToken, AuditEvent, User
from synapse.widgets import PythonHiddenInput


# Columns a changelist row never shows: a related row is shown by its __str__ (names, numbers), never by its
# JSON documents or long texts (a report's field list alone is some 20 KB, read back and decoded per row).
BULKY_FIELDS = (models.JSONField, models.TextField)
# The order of a big table's changelist: newest first, by the primary key's index.
BIG_TABLE_ORDERING = ("-pk",)


def bulky_related_fields(model, paths) -> list[str]:
    """The JSON and text columns of the models that ``paths`` (select_related paths from ``model``) reach."""
    deferred = []
    for path in paths:
        current, walked = model, []
        for name in path.split("__"):
            field = current._meta.get_field(name)
            current, walked = field.related_model, [*walked, name]
            prefix = "__".join(walked)
            deferred += [f"{prefix}__{f.name}" for f in current._meta.concrete_fields if isinstance(f, BULKY_FIELDS)]
    return list(dict.fromkeys(deferred))


class EstimatedCountPaginator(Paginator):
    """Exact counts, except for a whole table of ``estimate_from`` rows or more on PostgreSQL: its planner's count.

    Counting 600 000 rows takes longer than the rest of the page; the estimate (pg_class.reltuples, kept by
    ANALYZE and autovacuum) is free and close. A filtered or searched list is always counted exactly.
    """

    estimate_from = 100_000

    @cached_property
    def count(self):
        qs = self.object_list
        connection = connections[getattr(qs, "db", "default")]
        if hasattr(qs, "query") and not qs.query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                               [qs.model._meta.db_table])
                row = cursor.fetchone()
            if row and row[0] >= self.estimate_from:
                return row[0]
        return super().count


class LeanChangeList(ChangeList):
    """A changelist whose query leaves out what its rows never show (see ListCostAdmin)."""

    def get_queryset(self, request, exclude_parameters=None):
        qs = super().get_queryset(request, exclude_parameters)
        deferred = [*self.model_admin.changelist_defer]
        if isinstance(self.list_select_related, (list, tuple)):
            deferred += bulky_related_fields(self.model, self.list_select_related)
        return qs.defer(*deferred) if deferred else qs


class ListCostAdmin(admin.ModelAdmin):
    """A changelist that costs the same however long the table: what a row shows and no more.

    ``changelist_defer``: the model's own columns the rows don't show (JSON documents, long texts); the
    related rows' JSON and text columns are left out without asking. The change page reads whole rows as
    usual. A big table also sets ``ordering`` to one an index serves (newest first, ``("-pk",)``) instead of
    its model's order through joins, which sorts the whole table before the first page.
    """

    changelist_defer: tuple[str, ...] = ()

    def get_changelist(self, request, **kwargs):
        return LeanChangeList


class ReadOnlyAdmin(ListCostAdmin):
    """Viewable, searchable, never written here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class FirstRowsInlineFormSet(BaseInlineFormSet):
    """Related rows of a read-only inline: at most ``max_rows`` of them (None: all), each knowing its parent.

    A version's 300 items or a file's 300 column profiles would make the change
    page slow to build and to read (the changelist has them all); and each row's
    ``__str__`` names its parent, a query per row unless the parent is set here.
    """

    max_rows: int | None = None

    def add_fields(self, form, index):
        super().add_fields(form, index)
        # Each row's id and parent key are hidden inputs: rendered in Python, not through two templates each.
        for field in form.fields.values():
            if type(field.widget) is forms.HiddenInput:
                field.widget = PythonHiddenInput(attrs=field.widget.attrs)

    def get_queryset(self):
        if not hasattr(self, "_first_rows"):
            rows = super().get_queryset()
            rows = list(rows[: self.max_rows] if self.max_rows is not None else rows)
            for row in rows:
                self.fk.set_cached_value(row, self.instance)
            self._first_rows = rows
        return self._first_rows


class ReadOnlyTabularInline(admin.TabularInline):
    """Related rows shown on the parent's change page; at most ``max_rows`` of them (None: all)."""

    max_rows: int | None = None
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_formset(self, request, obj=None, **kwargs):
        kwargs.setdefault("formset", type("FirstRows", (FirstRowsInlineFormSet,), {"max_rows": self.max_rows}))
        return super().get_formset(request, obj, **kwargs)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Roles are Django groups (synapse.roles.Role); the list shows and filters by them."""

    list_display = ("username", "get_full_name", "email", "title", "roles", "is_active", "is_staff", "last_login")
    list_filter = ("groups", "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "first_name", "last_name", "email", "title")
    fieldsets = (
        *DjangoUserAdmin.fieldsets[:1],
        ("Personal info", {"fields": ("first_name", "last_name", "email", "title")}),
        ("Roles", {"fields": ("groups",), "description": "A user's roles are the groups they belong to."}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "user_permissions"),
                         "classes": ("collapse",)}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",),
                "fields": ("username", "email", "first_name", "last_name", "groups", "usable_password", "password1",
                           "password2")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Roles")
    def roles(self, user):
        return ", ".join(group.name for group in user.groups.all()) or "—"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The append-only audit trail: viewable and searchable, never added, changed or deleted here."""

    list_display = ("created_at", "actor", "action", "content_type", "object_repr", "object_id")
    list_filter = ("content_type", "created_at")
    search_fields = ("action", "object_repr", "object_id", "actor__username")
    date_hierarchy = "created_at"
    list_select_related = ("actor", "content_type")
    readonly_fields = ("created_at", "actor", "action", "content_type", "object_id", "object_repr",
                       "changes", "before", "after", "context")
    fields = readonly_fields

    @admin.display(description="Changed fields")
    def changes(self, event):
        before, after = event.before or {}, event.after or {}
        if not isinstance(before, dict) or not isinstance(after, dict):
            return "—"
        rows = [
            (name, before.get(name, "—"), after.get(name, "—"))
            for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)
        ]
        return format_html_join("\n", "<div><strong>{}</strong>: {} → {}</div>", rows) or "—"


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Every person's named API tokens; revoking goes through the service (and is audited)."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    actions = ["revoke"]

    def has_change_permission(self, request, obj=None):
        # The action needs change permission to show; the fields stay read-only (no form posts them).
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from synapse.services import api_token_revoke

        for token in queryset:
            api_token_revoke(user=request.user, token=token)
        self.message_user(request, f"{queryset.count()} token(s) revoked.")
