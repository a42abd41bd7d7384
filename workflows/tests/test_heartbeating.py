"""A long activity beats from a side thread when it runs as an ordinary activity; as a local one (a phase's
version since PATCH_LOCAL_VERSIONS) there is nothing to beat to, and no thread is started."""
from __future__ import annotations

import dataclasses
import threading

import pytest
from temporalio.testing import ActivityEnvironment

from workflows.temporal.activities import heartbeating


def _beating_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "heartbeat" and t.is_alive()}


@heartbeating
def _long_step(before: set[threading.Thread]) -> list[str]:
    """The heartbeat threads started for this run (one that an earlier run left ending is not one)."""
    return [t.name for t in _beating_threads() - before]


@pytest.mark.parametrize("local, beating", [(False, ["heartbeat"]), (True, [])])
def test_a_long_activity_beats_only_when_it_is_not_local(local, beating):
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, is_local=local)
    assert env.run(_long_step, _beating_threads()) == beating
