"""OpenAI's organisation usage and costs (admin key in OPENAI_ADMIN_KEY).

    GET https://api.openai.com/v1/organization/usage/completions
        start_time, end_time (unix seconds; end exclusive), bucket_width 1m|1h|1d, group_by (repeated:
        project_id, user_id, api_key_id, model, batch, service_tier), models, project_ids, api_key_ids,
        batch, limit, page
    GET https://api.openai.com/v1/organization/costs
        start_time, end_time, bucket_width 1d, group_by (project_id, line_item, api_key_id), project_ids,
        limit, page

Both answer `{"object": "page", "data": [{"object": "bucket", "start_time", "end_time", "results":
[...]}], "has_more", "next_page"}` (openai/openai-openapi `UsageResponse`, `UsageCompletionsResult`,
`CostsResult`). Usage results count `input_tokens` with the cached and cache-write tokens included
(`input_cached_tokens`, `input_cache_write_tokens` are parts of it), as `llmclient.Usage` does. A
cost's `amount.value` is dollars (`currency` "usd"), read as an exact Decimal; grouped by
`line_item`, the line item names the model and what it charges ("gpt-4o-mini-2024-07-18, input").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from llmclient.billing.admin_http import AdminAPI, built, checked, count, strings, text
from llmclient.billing.types import BUCKET_WIDTHS, BucketWidth, CostBucket, UsageBucket
from llmclient.errors import MalformedResponseError

USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
COST_GROUPS = ("project_id", "line_item", "api_key_id")
# "gpt-4o-mini-2024-07-18, input", "ft:gpt-4o-mini-2024-07-18:org::abc, cached input": a model id
# (no spaces) and what it charges; other line items ("web search tool calls") name no model.
_LINE_ITEM = re.compile(r"^(?P<model>[A-Za-z0-9][A-Za-z0-9._:/-]*), (?P<kind>[^,]+)$")


def split_line_item(line_item: str | None) -> tuple[str | None, str | None]:
    """(model, what it charges) of a costs line item; (None, None) when it names no model."""
    match = _LINE_ITEM.match(line_item.strip()) if line_item else None
    return (match.group("model"), match.group("kind").strip()) if match else (None, None)


class OpenAIAdmin(AdminAPI):
    """`OpenAIAdmin().usage(date(2026, 3, 1), date(2026, 3, 8))`: the 7 UTC days from 1 March, by
    model (ranges, pages and errors as `AdminAPI` says)."""

    provider = "openai"
    key_env = "OPENAI_ADMIN_KEY"
    default_base_url = "https://api.openai.com/v1"
    label = "OpenAI's organization usage and cost reports"
    key_shape = "sk-admin-..."
    start_key, end_key = "start_time", "end_time"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def instant(self, moment: datetime) -> str:
        """Unix seconds."""
        return str(int(moment.timestamp()))

    def usage(self, start: date | datetime, end: date | datetime, *, bucket_width: BucketWidth = "1d",
              group_by: Sequence[str] = ("model",), models: Sequence[str] = (), project_ids: Sequence[str] = (),
              api_key_ids: Sequence[str] = (), batch: bool | None = None, limit: int | None = None,
              ) -> list[UsageBucket]:
        """Completions usage per time bucket and group (`/v1/organization/usage/completions`)."""
        width = checked([bucket_width], BUCKET_WIDTHS, "bucket_width")[0]
        params = [("bucket_width", width), *(("group_by", g) for g in checked(group_by, USAGE_GROUPS, "group_by")),
                  *(("models", m) for m in strings(models)), *(("project_ids", p) for p in strings(project_ids)),
                  *(("api_key_ids", k) for k in strings(api_key_ids))]
        if batch is not None:
            params.append(("batch", "true" if batch else "false"))
        return built(_usage, self.report("/organization/usage/completions", start, end, params, limit), "openai")

    def costs(self, start: date | datetime, end: date | datetime, *, group_by: Sequence[str] = ("line_item",),
              project_ids: Sequence[str] = (), limit: int | None = None) -> list[CostBucket]:
        """Daily costs per group (`/v1/organization/costs`; OpenAI buckets costs by day only)."""
        params = [("bucket_width", "1d"), *(("group_by", g) for g in checked(group_by, COST_GROUPS, "group_by")),
                  *(("project_ids", p) for p in strings(project_ids))]
        return built(_cost, self.report("/organization/costs", start, end, params, limit), "openai")



def _usage(start: datetime, end: datetime, row: dict[str, Any]) -> UsageBucket:
    batch = row.get("batch")
    requests = row.get("num_model_requests")
    return UsageBucket(
        provider="openai", start=start, end=end, model=text(row, "model"), project_id=text(row, "project_id"),
        api_key_id=text(row, "api_key_id"), user_id=text(row, "user_id"), service_tier=text(row, "service_tier"),
        batch=batch if isinstance(batch, bool) else None, input_tokens=count(row, "input_tokens", "openai"),
        output_tokens=count(row, "output_tokens", "openai"),
        cache_read_tokens=count(row, "input_cached_tokens", "openai"),
        cache_write_tokens=count(row, "input_cache_write_tokens", "openai"),
        requests=None if requests is None else count(row, "num_model_requests", "openai"))


def _cost(start: datetime, end: datetime, row: dict[str, Any]) -> CostBucket:
    amount = row.get("amount")
    value = amount.get("value") if isinstance(amount, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or not Decimal(value).is_finite():
        raise MalformedResponseError(f"/organization/costs: a result without a numeric amount.value: {row!r:.200}",
                                     provider="openai")
    currency = amount.get("currency") if isinstance(amount, dict) else None
    line_item = text(row, "line_item")
    model, kind = split_line_item(line_item)
    quantity = row.get("quantity")
    return CostBucket(
        provider="openai", start=start, end=end, amount_usd=Decimal(value),
        currency=currency.upper() if isinstance(currency, str) and currency else "USD", line_item=line_item,
        model=model, token_type=kind, project_id=text(row, "project_id"), api_key_id=text(row, "api_key_id"),
        quantity=Decimal(quantity) if isinstance(quantity, (int, Decimal)) and not isinstance(quantity, bool) else None,
        quantity_unit=text(row, "quantity_unit"))
