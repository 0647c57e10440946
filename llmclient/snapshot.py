"""Snapshot llmclient responses with syrupy: what a response says, never when or how fast.

    def test_answer(llm_snapshot):           # the pytest plugin's fixture
        assert Client("openai/gpt-4o-mini").complete("Hi") == llm_snapshot

`ResponseSnapshotExtension` writes one JSON file per snapshot (`__snapshots__/<module>/<test>.json`)
holding `response_projection(response)`: the text, the tool calls (name and arguments), the finish
reasons, the usage buckets and the cost (total as a decimal string, and its source). Latency, ids,
dates, the model's dated name and the raw provider body are left out, so a replayed cassette gives
the same snapshot on every run. A list, tuple or dict of responses (a conversation) is projected
item by item; any other value is snapshotted as syrupy's JSON extension would.

This module imports syrupy: it needs `pip install syrupy` (the plugin imports it only on use).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from syrupy.extensions.json import JSONSnapshotExtension
from syrupy.types import PropertyFilter, PropertyMatcher, SerializableData, SerializedData

from llmclient.types import Response

__all__ = ["ResponseSnapshotExtension", "response_projection"]

_USAGE_BUCKETS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def response_projection(response: Response) -> dict[str, Any]:
    """The stable part of a response, as plain JSON values."""
    usage = response.usage
    cost = response.cost
    return {
        "text": response.text,
        "tool_calls": [{"name": call.name, "arguments": call.arguments} for call in response.tool_calls],
        "finish_reason": response.finish_reason,
        "raw_finish_reason": response.raw_finish_reason,
        "usage": None if usage is None else {name: getattr(usage, name) for name in _USAGE_BUCKETS},
        "cost": None if cost is None else {"total": _decimal(cost.total), "source": cost.source},
    }


def _decimal(value: Decimal) -> str:
    """Fixed-point, without trailing zeros: Decimal('0.000004350') -> '0.00000435', never '4.35E-6'."""
    return format(value.normalize(), "f") if value else "0"


def _project(data: Any) -> Any:
    if isinstance(data, Response):
        return response_projection(data)
    if isinstance(data, (list, tuple)):
        return [_project(item) for item in data]
    if isinstance(data, dict):
        return {key: _project(value) for key, value in data.items()}
    return data


class ResponseSnapshotExtension(JSONSnapshotExtension):
    """syrupy's JSON extension over `response_projection` of every Response in the value."""

    def serialize(
        self,
        data: SerializableData,
        *,
        exclude: PropertyFilter | None = None,
        include: PropertyFilter | None = None,
        matcher: PropertyMatcher | None = None,
    ) -> SerializedData:
        return super().serialize(_project(data), exclude=exclude, include=include, matcher=matcher)
