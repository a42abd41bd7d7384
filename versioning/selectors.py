"""Reads of versions: latest, history, what waits for a user, and diffs."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Prefetch, QuerySet

from versioning.models import Version, VersionItem, VersionStatus


def versions_for(*, cycle_report, phase: str) -> QuerySet[Version]:
    return (
        Version.objects.filter(cycle_report=cycle_report, phase=phase)
        .select_related("author", "approval", "approval__decided_by", "parent")
        .order_by("-number")
    )


def version_latest(*, cycle_report, phase: str) -> Version | None:
    return versions_for(cycle_report=cycle_report, phase=phase).first()


def version_with_items(*, pk: int) -> Version:
    return (
        Version.objects.select_related("cycle_report__report", "cycle_report__cycle", "author", "parent")
        .prefetch_related(Prefetch("items", queryset=VersionItem.objects.select_related("decided_by").order_by("key")))
        .get(pk=pk)
    )


def versions_awaiting_decision(*, cycle_reports: QuerySet) -> QuerySet[Version]:
    """Submitted versions of the given cycle reports (pass those the user may approve)."""
    return (
        Version.objects.filter(cycle_report__in=cycle_reports, status=VersionStatus.SUBMITTED)
        .select_related("cycle_report__report", "cycle_report__cycle", "author")
        .order_by("submitted_at")
    )


@dataclass
class ItemChange:
    key: str
    fields: dict[str, tuple] = field(default_factory=dict)  # field -> (old, new)


@dataclass
class VersionDiff:
    old: Version | None
    new: Version
    added: list[VersionItem] = field(default_factory=list)
    removed: list[VersionItem] = field(default_factory=list)
    changed: list[ItemChange] = field(default_factory=list)
    unchanged: int = 0

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def version_diff(*, old: Version | None, new: Version) -> VersionDiff:
    """Compare two versions item by item (by key): added, removed, and changed fields."""
    new_items = {i.key: i for i in new.items.all()}
    old_items = {i.key: i for i in old.items.all()} if old else {}
    diff = VersionDiff(old=old, new=new)
    for key, item in new_items.items():
        before = old_items.get(key)
        if before is None:
            diff.added.append(item)
            continue
        changes = {
            name: (before.data.get(name), item.data.get(name))
            for name in sorted(set(before.data) | set(item.data))
            if before.data.get(name) != item.data.get(name)
        }
        if changes:
            diff.changed.append(ItemChange(key=key, fields=changes))
        else:
            diff.unchanged += 1
    diff.removed = [item for key, item in old_items.items() if key not in new_items]
    diff.added.sort(key=lambda i: i.key)
    diff.removed.sort(key=lambda i: i.key)
    diff.changed.sort(key=lambda c: c.key)
    return diff


def version_previous(*, version: Version) -> Version | None:
    """The version to diff against: its parent, else the one numbered just before."""
    if version.parent_id:
        return version.parent
    return (
        Version.objects.filter(cycle_report_id=version.cycle_report_id, phase=version.phase, number__lt=version.number)
        .order_by("-number")
        .first()
    )
