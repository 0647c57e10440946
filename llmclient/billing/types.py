"""What the providers' organisation usage and cost reports say, one row per grouped result.

`UsageBucket` is one result of one time bucket of a usage report (OpenAI
`/v1/organization/usage/completions`, Anthropic `/v1/organizations/usage_report/messages`), its
token counts in `llmclient.Usage`'s meaning: `input_tokens` is every prompt token billed (uncached
+ cache reads + cache writes), `cache_read_tokens` and `cache_write_tokens` are parts of it.
`CostBucket` is one result of a cost report (OpenAI `/v1/organization/costs`, Anthropic
`/v1/organizations/cost_report`) with its amount as exact `Decimal` US dollars: OpenAI's
`amount.value` is dollars, Anthropic's `amount` is a decimal string in cents ("123.45" is $1.2345).
A dimension the report was not grouped by is None. Times are UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, NonNegativeInt

Provider = Literal["openai", "anthropic"]
BucketWidth = Literal["1m", "1h", "1d"]
BUCKET_WIDTHS: tuple[BucketWidth, ...] = ("1m", "1h", "1d")


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider
    start: datetime
    """The bucket's start (UTC, inclusive)."""
    end: datetime
    """The bucket's end (UTC, exclusive)."""

    @property
    def day(self) -> date:
        """The UTC day the bucket starts on."""
        return self.start.date()


class UsageBucket(_Row):
    """One grouped result of a usage report's time bucket."""

    model: str | None = None
    project_id: str | None = None  # OpenAI
    api_key_id: str | None = None
    user_id: str | None = None  # OpenAI
    workspace_id: str | None = None  # Anthropic
    service_tier: str | None = None
    batch: bool | None = None  # OpenAI
    context_window: str | None = None  # Anthropic ("0-200k", "200k-1M")
    input_tokens: NonNegativeInt = 0
    """Every prompt token billed: uncached + cache reads + cache writes."""
    output_tokens: NonNegativeInt = 0
    cache_read_tokens: NonNegativeInt = 0
    cache_write_tokens: NonNegativeInt = 0
    requests: NonNegativeInt | None = None
    """OpenAI `num_model_requests`; None where the report gives no count (Anthropic)."""


class CostBucket(_Row):
    """One grouped result of a cost report's (daily) time bucket."""

    amount_usd: Decimal
    """Exact dollars, converted from the provider's unit (Anthropic reports cents)."""
    currency: str = "USD"
    line_item: str | None = None
    """OpenAI `line_item` ("gpt-4o-mini-2024-07-18, input"); Anthropic `description`."""
    model: str | None = None
    """Anthropic `model`; for OpenAI the model named by the line item, when it names one."""
    token_type: str | None = None
    """Anthropic `token_type`; for OpenAI what the line item charges ("input", "cached input", ...)."""
    cost_type: str | None = None  # Anthropic: tokens | web_search | code_execution
    project_id: str | None = None  # OpenAI
    api_key_id: str | None = None  # OpenAI
    workspace_id: str | None = None  # Anthropic
    service_tier: str | None = None  # Anthropic
    quantity: Decimal | None = None  # OpenAI, with group_by=line_item
    quantity_unit: str | None = None  # OpenAI
