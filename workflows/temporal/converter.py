"""How Synapse's values travel through Temporal: the default JSON encoding, with decoding failures made visible.

A value that can't be decoded into the type the code expects (a workflow input stored by an older
release, a hand-made start with the wrong shape) raises UndecodablePayload instead of the SDK's
RuntimeError. The workflows list it among their failure exception types, so such a workflow FAILS with
that message (Temporal's UI, the workflow admin and reconciliation show it) instead of retrying its
workflow task forever. An update whose arguments can't be decoded is rejected, as before; an activity
whose input can't be decoded fails its attempt, as before.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import temporalio.api.common.v1
from temporalio.converter import DataConverter, DefaultPayloadConverter


class UndecodablePayload(TypeError):
    """A payload that is not what the code that reads it expects."""


class SynapsePayloadConverter(DefaultPayloadConverter):
    def from_payloads(
        self, payloads: Sequence[temporalio.api.common.v1.Payload], type_hints: list[type] | None = None,
    ) -> list:
        try:
            return super().from_payloads(payloads, type_hints)
        except (TypeError, ValueError, KeyError, RuntimeError) as err:
            expected = ", ".join(getattr(t, "__name__", str(t)) for t in type_hints or []) or "a value"
            chain, cause = [], err
            while cause is not None:  # the SDK nests one error per level: field, key, value
                chain.append(str(cause))
                cause = cause.__cause__
            raise UndecodablePayload(f"Can't read the value as {expected}: {' / '.join(chain)}") from err


DATA_CONVERTER = dataclasses.replace(DataConverter.default, payload_converter_class=SynapsePayloadConverter)
