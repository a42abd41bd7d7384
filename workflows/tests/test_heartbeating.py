"""A long activity beats from a side thread when it runs as an ordinary activity; as a local one (a phase's
version since PATCH_LOCAL_VERSIONS) there is nothing to beat to, and no thread is started."""
from __future__ import annotations

import dataclasses
import threading

import pytest
from temporalio.testing import ActivityEnvironment

from workflows.temporal.activities import heartbeating


def _beating_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "heartbeat" and t.is_alive()]


@heartbeating
def _long_step(inp: str) -> list[str]:
    return _beating_threads()


@pytest.mark.parametrize("local, beating", [(False, ["heartbeat"]), (True, [])])
def test_a_long_activity_beats_only_when_it_is_not_local(local, beating):
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, is_local=local)
    assert env.run(_long_step, "x") == beating
