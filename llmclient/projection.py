"""What a response says, as plain JSON values, never when or how fast: the text, the tool calls
(name and arguments), the finish reasons, the usage buckets and the cost (total as a fixed-point
decimal string, and its source). Latency, ids, dates, the model's dated name and the raw provider
body are left out, so a replayed cassette projects the same on every run. Snapshots
(`llmclient.snapshot`) and the conformance suite's cells compare this.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llmclient.types import Response

USAGE_BUCKETS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def response_projection(response: Response) -> dict[str, Any]:
    """The stable part of a response."""
    usage = response.usage
    cost = response.cost
    return {
        "text": response.text,
        "tool_calls": [{"name": call.name, "arguments": call.arguments} for call in response.tool_calls],
        "finish_reason": response.finish_reason,
        "raw_finish_reason": response.raw_finish_reason,
        "usage": None if usage is None else {name: getattr(usage, name) for name in USAGE_BUCKETS},
        "cost": None if cost is None else {"total": decimal_text(cost.total), "source": cost.source},
    }


def decimal_text(value: Decimal) -> str:
    """Fixed-point, without trailing zeros: Decimal('0.000004350') -> '0.00000435', never '4.35E-6'."""
    return format(value.normalize(), "f") if value else "0"
