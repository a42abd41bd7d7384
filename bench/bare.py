"""The bare Temporal workflow bench/orchestration.py compares Synapse with: no-op activities and updates.

In a module of its own, with nothing but temporalio and the standard library, so it runs as
`@workflow.defn` runs it by default: in the SDK's sandbox, which imports a workflow's module afresh for
each run (Synapse's workflows run there too). `UnsandboxedBareWorkflow` is the same code outside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow


@dataclass
class BareInput:
    activities: int
    updates: int
    activity_timeout_seconds: int


@dataclass
class BareStep:
    number: int


@activity.defn(name="bare_noop")
def bare_noop(step: BareStep) -> int:
    return step.number


class _Bare:
    """activities no-op activities in updates + 1 stretches; update k is taken once stretch k is done."""

    def __init__(self) -> None:
        self.reached = -1
        self.taken = 0

    @workflow.update(name="step")
    async def step(self, inp: BareStep) -> int:
        await workflow.wait_condition(lambda: self.reached >= inp.number)
        self.taken = inp.number + 1
        return self.taken

    async def run(self, inp: BareInput) -> int:
        per = [inp.activities // (inp.updates + 1)] * (inp.updates + 1)
        per[-1] += inp.activities - sum(per)
        for stretch, count in enumerate(per):
            for i in range(count):
                await workflow.execute_activity(
                    "bare_noop", BareStep(number=i), result_type=int,
                    start_to_close_timeout=timedelta(seconds=inp.activity_timeout_seconds),
                )
            if stretch < inp.updates:
                self.reached = stretch
                await workflow.wait_condition(lambda: self.taken > stretch)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return inp.activities


@workflow.defn(name="BareWorkflow")
class BareWorkflow(_Bare):
    """The SDK's defaults: sandboxed."""

    @workflow.run
    async def run(self, inp: BareInput) -> int:
        return await super().run(inp)


@workflow.defn(name="BareWorkflow", sandboxed=False)
class UnsandboxedBareWorkflow(_Bare):
    """The same, outside the sandbox (what this bench compared with before)."""

    @workflow.run
    async def run(self, inp: BareInput) -> int:
        return await super().run(inp)
