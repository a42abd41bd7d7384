"""A workflow of one activity and one update, for tests of the worker's runner (imports nothing of Django, so
the sandbox can import it on its own)."""
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="probe_double")
def probe_double(value: int) -> int:
    return value * 2


@workflow.defn(name="ProbeWorkflow")
class ProbeWorkflow:
    def __init__(self) -> None:
        self._added = 0

    @workflow.run
    async def run(self, value: int) -> int:
        doubled = await workflow.execute_activity(
            "probe_double", value, result_type=int, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: self._added != 0)
        return doubled + self._added

    @workflow.update
    async def add(self, value: int) -> int:
        self._added = value
        return value
