"""synapse.heap: what the long-lived processes do to the garbage collector once they have loaded."""
import gc

import pytest

from synapse import heap


@pytest.fixture
def collector():
    """Put the collector back as it was (a frozen heap stays frozen for the rest of the process otherwise)."""
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_settle_freezes_what_is_loaded_and_collects_young_objects_less_often(collector, monkeypatch):
    monkeypatch.delenv("SYNAPSE_GC_THRESHOLDS", raising=False)
    gc.unfreeze()
    heap.settle()
    assert gc.get_freeze_count() > 1000  # Django, the tests, the libraries: out of the collector's sight
    assert gc.get_threshold() == heap.DEFAULT_THRESHOLDS and heap.DEFAULT_THRESHOLDS[0] > 700

    # Cycles made afterwards are still collected.
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    gc.collect()
    ids = {id(a), id(b)}
    del a, b
    assert gc.collect() >= 2
    assert not ids & {id(o) for o in gc.get_objects() if isinstance(o, Node)}


@pytest.mark.parametrize("raw, expected", [
    ("700,10,10", (700, 10, 10)),  # Python's own
    ("", heap.DEFAULT_THRESHOLDS),
    ("lots", heap.DEFAULT_THRESHOLDS),
    ("1000,10", heap.DEFAULT_THRESHOLDS),
    ("0,10,10", heap.DEFAULT_THRESHOLDS),  # 0 would turn collection off
])
def test_the_thresholds_can_be_set_and_a_bad_value_keeps_the_default(monkeypatch, raw, expected):
    monkeypatch.setenv("SYNAPSE_GC_THRESHOLDS", raw)
    assert heap.thresholds() == expected


def test_load_pages_imports_the_urlconf_and_builds_the_reverse_map():
    """The worker and the web call it before their first activity or request."""
    from django.urls import clear_url_caches, get_resolver

    clear_url_caches()
    heap.load_pages()
    resolver = get_resolver()
    assert resolver.__dict__.get("urlconf_module") is not None  # the cached_property was filled
    assert resolver._populated and resolver.reverse_dict.getlist("login")
