"""Anthropic's organisation usage and cost reports (admin key in ANTHROPIC_ADMIN_KEY, sent as
`x-api-key` with `anthropic-version: 2023-06-01`).

    GET https://api.anthropic.com/v1/organizations/usage_report/messages
        starting_at, ending_at (RFC 3339; buckets that start on or after / end before them),
        bucket_width 1m|1h|1d, group_by[] (api_key_id, workspace_id, model, service_tier,
        context_window, inference_geo, speed, account_id, service_account_id), models[],
        workspace_ids[], api_key_ids[], limit, page
    GET https://api.anthropic.com/v1/organizations/cost_report
        starting_at, ending_at, bucket_width 1d, group_by[] (workspace_id, description), limit, page

Both answer `{"data": [{"starting_at", "ending_at", "results": [...]}], "has_more", "next_page"}`
(platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages and .../admin/cost_report).
A usage result counts `uncached_input_tokens`, `cache_read_input_tokens` and
`cache_creation.{ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}` apart: their sum is our
`input_tokens`. A cost result's `amount` is a decimal string in the currency's lowest unit: cents
("123.45" USD is $1.2345), converted here exactly. Grouped by `description`, a token cost names its
`model`; web search and code execution costs name none. Priority Tier costs are never in the cost
report (Anthropic's usage and cost API guide): their usage is, their dollars are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from llmclient.billing.admin_http import AdminAPI, built, checked, count, strings, text
from llmclient.billing.types import BUCKET_WIDTHS, BucketWidth, CostBucket, UsageBucket
from llmclient.errors import MalformedResponseError

USAGE_GROUPS = ("api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo", "speed",
                "account_id", "service_account_id")
COST_GROUPS = ("workspace_id", "description")
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAdmin(AdminAPI):
    """`AnthropicAdmin().usage(date(2026, 3, 1), date(2026, 3, 8))`: the 7 UTC days from 1 March, by
    model (ranges, pages and errors as `AdminAPI` says)."""

    provider = "anthropic"
    key_env = "ANTHROPIC_ADMIN_KEY"
    default_base_url = "https://api.anthropic.com/v1"
    label = "Anthropic's organization usage and cost reports"
    key_shape = "sk-ant-admin..."
    start_key, end_key = "starting_at", "ending_at"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}

    def instant(self, moment: datetime) -> str:
        """RFC 3339 in UTC, with microseconds only when there are some."""
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if moment.microsecond == 0 else "%Y-%m-%dT%H:%M:%S.%fZ")

    def usage(self, start: date | datetime, end: date | datetime, *, bucket_width: BucketWidth = "1d",
              group_by: Sequence[str] = ("model",), models: Sequence[str] = (), workspace_ids: Sequence[str] = (),
              api_key_ids: Sequence[str] = (), limit: int | None = None) -> list[UsageBucket]:
        """Messages usage per time bucket and group (`/v1/organizations/usage_report/messages`)."""
        width = checked([bucket_width], BUCKET_WIDTHS, "bucket_width")[0]
        params = [("bucket_width", width), *(("group_by[]", g) for g in checked(group_by, USAGE_GROUPS, "group_by")),
                  *(("models[]", m) for m in strings(models)),
                  *(("workspace_ids[]", w) for w in strings(workspace_ids)),
                  *(("api_key_ids[]", k) for k in strings(api_key_ids))]
        return built(_usage, self.report("/organizations/usage_report/messages", start, end, params, limit),
                     "anthropic")

    def costs(self, start: date | datetime, end: date | datetime, *, group_by: Sequence[str] = ("description",),
              limit: int | None = None) -> list[CostBucket]:
        """Daily costs per group (`/v1/organizations/cost_report`; Anthropic buckets costs by day only)."""
        params = [("bucket_width", "1d"), *(("group_by[]", g) for g in checked(group_by, COST_GROUPS, "group_by"))]
        return built(_cost, self.report("/organizations/cost_report", start, end, params, limit), "anthropic")



def _usage(start: datetime, end: datetime, row: dict[str, Any]) -> UsageBucket:
    created = row.get("cache_creation")
    created = created if isinstance(created, dict) else {}
    written = (count(created, "ephemeral_5m_input_tokens", "anthropic")
               + count(created, "ephemeral_1h_input_tokens", "anthropic"))
    read = count(row, "cache_read_input_tokens", "anthropic")
    return UsageBucket(
        provider="anthropic", start=start, end=end, model=text(row, "model"), api_key_id=text(row, "api_key_id"),
        workspace_id=text(row, "workspace_id"), service_tier=text(row, "service_tier"),
        context_window=text(row, "context_window"),
        input_tokens=count(row, "uncached_input_tokens", "anthropic") + read + written,
        output_tokens=count(row, "output_tokens", "anthropic"), cache_read_tokens=read, cache_write_tokens=written)


def _cost(start: datetime, end: datetime, row: dict[str, Any]) -> CostBucket:
    return CostBucket(
        provider="anthropic", start=start, end=end, amount_usd=_dollars(row.get("amount")),
        currency=text(row, "currency") or "USD", line_item=text(row, "description"), model=text(row, "model"),
        token_type=text(row, "token_type"), cost_type=text(row, "cost_type"), workspace_id=text(row, "workspace_id"),
        service_tier=text(row, "service_tier"))


def _dollars(amount: Any) -> Decimal:
    """Anthropic's amount (a decimal string of cents) as exact dollars."""
    try:  # documented as a string; a JSON number is read the same way
        cents = Decimal(amount) if isinstance(amount, (str, int, Decimal)) and not isinstance(amount, bool) else None
    except InvalidOperation:
        cents = None
    if cents is None or not cents.is_finite():
        raise MalformedResponseError(f"/organizations/cost_report: amount {amount!r:.80} is not a decimal string "
                                     f"of cents", provider="anthropic")
    return cents.scaleb(-2)
