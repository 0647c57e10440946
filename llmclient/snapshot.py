"""Snapshot llmclient responses with syrupy: what a response says, never when or how fast.

    def test_answer(llm_snapshot):           # the pytest plugin's fixture
        assert Client("openai/gpt-4o-mini").complete("Hi") == llm_snapshot

`ResponseSnapshotExtension` writes one JSON file per snapshot (`__snapshots__/<module>/<test>.json`)
holding `response_projection(response)` (`llmclient.projection`: the text, the tool calls, the
finish reasons, the usage buckets and the cost, never latency, ids or dates), so a replayed
cassette gives the same snapshot on every run. A list, tuple or dict of responses (a conversation) is projected
item by item; any other value is snapshotted as syrupy's JSON extension would.

This module imports syrupy: it needs `pip install syrupy` (the plugin imports it only on use).
"""

from __future__ import annotations

from typing import Any

from syrupy.extensions.json import JSONSnapshotExtension
from syrupy.types import PropertyFilter, PropertyMatcher, SerializableData, SerializedData

from llmclient.projection import response_projection
from llmclient.types import Response

__all__ = ["ResponseSnapshotExtension", "response_projection"]

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
