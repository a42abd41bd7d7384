"""The worker's workflow runner: serialization contexts looked up outside the sandbox only where nothing uses them."""
import dataclasses
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio.client import Client
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import _runner as sandbox_runner

from workflows.temporal.converter import DATA_CONVERTER
from workflows.temporal.worker import context_free_converter, workflow_runner
from workflows.tests.probe_workflow import ProbeWorkflow, probe_double

pytestmark = pytest.mark.temporal


class ContextCodec(PayloadCodec, WithSerializationContext):
    """Leaves payloads as they are; records the context of every copy that encodes one (a codec that keys its
    encryption by workflow, say)."""

    def __init__(self, seen: list, context: SerializationContext | None = None):
        self.seen, self.context = seen, context

    def with_context(self, context: SerializationContext) -> "ContextCodec":
        return ContextCodec(self.seen, context)

    async def encode(self, payloads):
        self.seen.extend([self.context] * len(payloads))
        return list(payloads)

    async def decode(self, payloads):
        return list(payloads)


def test_synapse_converter_ignores_contexts_a_context_codec_does_not():
    assert context_free_converter(DATA_CONVERTER)
    assert not context_free_converter(dataclasses.replace(DATA_CONVERTER, payload_codec=ContextCodec([])))


def _run_probe(harness, client: Client) -> int:
    """The probe workflow through a worker with the runner build_worker gives `client`: its result."""
    queue = f"runner-{uuid.uuid4().hex[:8]}"

    async def run() -> int:
        with ThreadPoolExecutor(max_workers=2) as executor:
            async with Worker(client, task_queue=queue, workflows=[ProbeWorkflow], activities=[probe_double],
                              activity_executor=executor, workflow_runner=workflow_runner(client)):
                handle = await client.start_workflow(ProbeWorkflow.run, 20, id=f"probe-{queue}", task_queue=queue)
                assert await handle.execute_update(ProbeWorkflow.add, 2) == 2
                return await handle.result()

    return harness.call(run())


def test_synapse_workers_never_enter_the_sandbox_for_a_context(temporal_harness, monkeypatch):
    """The sandbox's context lookup (an exec() per payload sequence) is not asked once for a whole run."""
    asked = []
    real = sandbox_runner._Instance.get_serialization_context
    monkeypatch.setattr(sandbox_runner._Instance, "get_serialization_context",
                        lambda self, info: asked.append(info) or real(self, info))
    assert workflow_runner(temporal_harness.client).context_free
    assert _run_probe(temporal_harness, temporal_harness.client) == 42
    assert asked == []


def test_a_context_codec_still_gets_each_payloads_context(temporal_harness):
    """A codec that reads the context gets the workflow's for the workflow's payloads, the activity's for its
    arguments, as with the SDK's own runner."""
    seen = []
    converter = dataclasses.replace(DATA_CONVERTER, payload_codec=ContextCodec(seen))
    client = Client(temporal_harness.client.service_client, namespace="default", data_converter=converter)
    assert not workflow_runner(client).context_free
    assert _run_probe(temporal_harness, client) == 42
    kinds = {type(context) for context in seen}
    assert ActivitySerializationContext in kinds and WorkflowSerializationContext in kinds
    assert {c.activity_type for c in seen if isinstance(c, ActivitySerializationContext)} == {"probe_double"}
