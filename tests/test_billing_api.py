"""The organisation usage/cost clients (`llmclient.billing`) on authored cassettes (cassettes/billing/,
provenance in their headers and README). Every expected value is read off the cassette bodies by
hand and written here: token sums, cents to dollars, the day each bucket starts on."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from llmclient.billing import AnthropicAdmin, OpenAIAdmin
from llmclient.billing.openai_admin import split_line_item
from llmclient.cassettes import CassetteSession, use_cassette
from llmclient.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
)

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "billing"
OPENAI_KEY = "sk-admin-test-placeholder-0000"
ANTHROPIC_KEY = "sk-ant-admin-test-placeholder-0000"
UTC = timezone.utc


@pytest.fixture(autouse=True)
def admin_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)


def cassette(name: str) -> AbstractContextManager[CassetteSession]:
    return use_cassette(CASSETTES / name, mode="replay", strict=True)


# --- OpenAI --------------------------------------------------------------------------------------

def test_openai_usage_follows_every_page_grouped_by_model() -> None:
    with cassette("openai_usage_paged.yaml") as session:
        rows = OpenAIAdmin().usage(date(2026, 3, 1), date(2026, 3, 5), group_by=["model"], limit=2)
    # page 1: 03-01 gpt-4o-mini (1,200 in of which 200 cached, 300 out, 4 requests); 03-02 gpt-4o-mini
    # (4,000 / 1,000, 3 requests) and gpt-4o (10,000 / 1,000, 1 request); page 2: 03-03 gpt-4.1-nano
    # (800 / 100, 1 request), 03-04 an empty bucket (no row).
    assert [(r.day, r.model, r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens, r.requests)
            for r in rows] == [
        (date(2026, 3, 1), "gpt-4o-mini-2024-07-18", 1200, 300, 200, 0, 4),
        (date(2026, 3, 2), "gpt-4o-mini-2024-07-18", 4000, 1000, 0, 0, 3),
        (date(2026, 3, 2), "gpt-4o-2024-08-06", 10000, 1000, 0, 0, 1),
        (date(2026, 3, 3), "gpt-4.1-nano-2025-04-14", 800, 100, 0, 0, 1),
    ]
    assert {r.provider for r in rows} == {"openai"}
    assert rows[0].start == datetime(2026, 3, 1, tzinfo=UTC) and rows[0].end == datetime(2026, 3, 2, tzinfo=UTC)
    assert len(session.sent) == 2  # the second request carried page=<next_page of the first>
    assert "page=page_AAAAAGmlsoA%3D" in session.sent[1].uri
    assert session.sent[0].headers["authorization"] == "REDACTED"  # sent as a bearer key, never recorded


def test_openai_usage_hourly_buckets_from_aware_datetimes() -> None:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with cassette("openai_usage_hourly.yaml"):
        rows = OpenAIAdmin().usage(start, datetime(2026, 3, 2, 12, tzinfo=UTC), bucket_width="1h",
                                   group_by=["model", "project_id"])
    # 09:00 one row; 10:00 empty; 11:00 two projects (700 in with 128 cached, 80 out; 300 / 20).
    assert [(r.start.hour, r.project_id, r.input_tokens, r.output_tokens, r.cache_read_tokens, r.requests)
            for r in rows] == [
        (9, "proj_billing_demo", 500, 50, 0, 2),
        (11, "proj_billing_demo", 700, 80, 128, 1),
        (11, "proj_billing_other", 300, 20, 0, 1),
    ]
    assert {r.model for r in rows} == {"gpt-4o-mini-2024-07-18"}


def test_openai_costs_are_exact_dollars_per_line_item_mapped_to_models() -> None:
    with cassette("openai_costs_paged.yaml"):
        rows = OpenAIAdmin().costs(date(2026, 3, 2), date(2026, 3, 4), group_by=["line_item", "project_id"], limit=1)
    assert [(r.day, r.model, r.token_type, r.amount_usd, r.currency, r.project_id) for r in rows] == [
        (date(2026, 3, 2), "gpt-4o-mini-2024-07-18", "input", Decimal("0.0006"), "USD", "proj_billing_demo"),
        (date(2026, 3, 2), "gpt-4o-mini-2024-07-18", "output", Decimal("0.0006"), "USD", "proj_billing_demo"),
        (date(2026, 3, 2), "gpt-4o-2024-08-06", "input", Decimal("0.025"), "USD", "proj_billing_demo"),
        (date(2026, 3, 2), "gpt-4o-2024-08-06", "output", Decimal("0.01"), "USD", "proj_billing_demo"),
        (date(2026, 3, 3), "gpt-4o-mini-2024-07-18", "cached input", Decimal("0.000075"), "USD", "proj_billing_demo"),
        (date(2026, 3, 3), None, None, Decimal("0.025"), "USD", "proj_billing_other"),  # web search: no model
    ]
    assert rows[-1].line_item == "web search tool calls"
    assert rows[0].quantity == Decimal(4000) and rows[0].quantity_unit == "tokens"
    # Decimal all the way: 0.0006 + 0.0006 + 0.025 + 0.01 + 0.000075 + 0.025 = 0.061275, exactly.
    assert sum((r.amount_usd for r in rows), Decimal(0)) == Decimal("0.061275")


def test_openai_report_without_results_is_an_empty_list() -> None:
    with cassette("openai_empty.yaml"):
        assert OpenAIAdmin().usage(date(2026, 2, 1), date(2026, 2, 3)) == []


@pytest.mark.parametrize("name", ["openai_401.yaml", "openai_403.yaml"])
def test_openai_refusing_the_key_says_an_admin_key_is_needed(name: str) -> None:
    with cassette(name), pytest.raises(AuthenticationError) as caught:
        OpenAIAdmin().usage(date(2026, 3, 2), date(2026, 3, 5), limit=3)
    error = caught.value
    assert error.status_code == (401 if "401" in name else 403)
    assert error.provider == "openai"
    assert "admin key" in error.message and "OPENAI_ADMIN_KEY" in error.message
    said = "Incorrect API key provided" if "401" in name else "Missing scopes: api.usage.read"
    assert said in error.message
    assert OPENAI_KEY not in str(error)


def test_openai_rate_limit_carries_retry_after() -> None:
    with cassette("openai_rate_limit.yaml"), pytest.raises(RateLimitError) as caught:
        OpenAIAdmin().costs(date(2026, 3, 2), date(2026, 3, 5), limit=3)
    assert caught.value.retry_after == 20.0 and caught.value.status_code == 429


def test_openai_answer_that_is_not_json_is_malformed() -> None:
    with cassette("openai_malformed.yaml"), pytest.raises(MalformedResponseError) as caught:
        OpenAIAdmin().costs(date(2026, 3, 2), date(2026, 3, 5), limit=3)
    assert "not JSON" in caught.value.message and "text/html" in caught.value.message


@pytest.mark.parametrize("line_item, expected", [
    ("gpt-4o-mini-2024-07-18, input", ("gpt-4o-mini-2024-07-18", "input")),
    ("gpt-4o-2024-08-06, cached input", ("gpt-4o-2024-08-06", "cached input")),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123, output", ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "output")),
    ("web search tool calls", (None, None)),
    ("file search tool calls | gpt-4o, calls", (None, None)),
    (None, (None, None)),
])
def test_openai_line_items_name_their_model(line_item: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_line_item(line_item) == expected


# --- Anthropic -----------------------------------------------------------------------------------

def test_anthropic_usage_follows_every_page_and_counts_cache_in_input() -> None:
    with cassette("anthropic_usage_paged.yaml") as session:
        rows = AnthropicAdmin().usage(date(2026, 3, 1), date(2026, 3, 4), group_by=["model"], limit=2)
    # 03-01 Sonnet: uncached 4,000 + cache read 1,000 + 5-minute cache write 500 = 5,500 input; 800 out.
    # 03-02 Haiku: uncached 2,000 + 1-hour cache write 300 = 2,300 input; 400 out. Page 2: an empty bucket.
    assert [(r.day, r.model, r.input_tokens, r.cache_read_tokens, r.cache_write_tokens, r.output_tokens, r.requests)
            for r in rows] == [
        (date(2026, 3, 1), "claude-sonnet-4-5-20250929", 5500, 1000, 500, 800, None),
        (date(2026, 3, 2), "claude-haiku-4-5-20251001", 2300, 0, 300, 400, None),
    ]
    assert len(session.sent) == 2
    first = session.sent[0]
    assert first.headers["x-api-key"] == "REDACTED" and first.headers["anthropic-version"] == "2023-06-01"
    assert "group_by%5B%5D=model" in first.uri and "starting_at=2026-03-01T00%3A00%3A00Z" in first.uri


def test_anthropic_usage_one_minute_buckets_by_model_and_workspace() -> None:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with cassette("anthropic_usage_minutely.yaml"):
        rows = AnthropicAdmin().usage(start, datetime(2026, 3, 2, 9, 3, tzinfo=UTC), bucket_width="1m",
                                      group_by=["model", "workspace_id"])
    # 09:00 Sonnet 1,500 in; 09:01 empty; 09:02 Sonnet 100 uncached + 2,000 cache read = 2,100, Haiku 900.
    assert [(r.start.minute, r.model, r.workspace_id, r.input_tokens, r.output_tokens) for r in rows] == [
        (0, "claude-sonnet-4-5-20250929", "wrkspc_billing_demo", 1500, 200),
        (2, "claude-sonnet-4-5-20250929", "wrkspc_billing_demo", 2100, 60),
        (2, "claude-haiku-4-5-20251001", None, 900, 90),
    ]


def test_anthropic_cost_amounts_are_cents_converted_to_exact_dollars() -> None:
    with cassette("anthropic_costs_paged.yaml"):
        rows = AnthropicAdmin().costs(date(2026, 3, 1), date(2026, 3, 3), group_by=["description", "workspace_id"],
                                      limit=1)
    # "123.45" cents = $1.2345 (the API reference's own example); "1.2" = $0.012; "0.03" = $0.0003; "1" = $0.01.
    assert [(r.day, r.model, r.line_item, r.amount_usd, r.cost_type, r.token_type, r.workspace_id) for r in rows] == [
        (date(2026, 3, 1), "claude-sonnet-4-5-20250929", "Claude Sonnet 4.5 Usage - Input Tokens", Decimal("1.2345"),
         "tokens", "uncached_input_tokens", "wrkspc_billing_demo"),
        (date(2026, 3, 1), "claude-sonnet-4-5-20250929", "Claude Sonnet 4.5 Usage - Output Tokens", Decimal("0.012"),
         "tokens", "output_tokens", "wrkspc_billing_demo"),
        (date(2026, 3, 2), "claude-haiku-4-5-20251001", "Claude Haiku 4.5 Usage - Cache Read", Decimal("0.0003"),
         "tokens", "cache_read_input_tokens", None),
        (date(2026, 3, 2), None, "Web Search", Decimal("0.01"), "web_search", None, None),
    ]
    assert {r.currency for r in rows} == {"USD"}


def test_anthropic_report_without_buckets_is_an_empty_list() -> None:
    with cassette("anthropic_empty.yaml"):
        assert AnthropicAdmin().usage(date(2026, 2, 1), date(2026, 2, 3)) == []


@pytest.mark.parametrize("name", ["anthropic_401.yaml", "anthropic_403.yaml"])
def test_anthropic_refusing_the_key_says_an_admin_key_is_needed(name: str) -> None:
    with cassette(name), pytest.raises(AuthenticationError) as caught:
        AnthropicAdmin().usage(date(2026, 3, 2), date(2026, 3, 5), limit=3)
    error = caught.value
    assert error.status_code == (401 if "401" in name else 403)
    assert error.error_type == ("authentication_error" if "401" in name else "permission_error")
    assert "admin key" in error.message and "ANTHROPIC_ADMIN_KEY" in error.message
    assert ANTHROPIC_KEY not in str(error)


def test_anthropic_server_error() -> None:
    with cassette("anthropic_server_error.yaml"), pytest.raises(ServerError) as caught:
        AnthropicAdmin().costs(date(2026, 3, 2), date(2026, 3, 5), limit=3)
    assert caught.value.status_code == 500 and "Internal server error" in caught.value.message


# --- both: what is refused or answered before any request ------------------------------------------

CLIENTS = [OpenAIAdmin, AnthropicAdmin]


@pytest.mark.parametrize("client", CLIENTS)
def test_an_empty_range_is_an_empty_list_without_a_request(client: type[OpenAIAdmin], monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    monkeypatch.delenv(client.key_env)  # no key and no cassette: any request would fail
    assert client().usage(date(2026, 3, 2), date(2026, 3, 2)) == []
    assert client().costs(datetime(2026, 3, 2, 5, tzinfo=UTC), datetime(2026, 3, 2, 5, tzinfo=UTC)) == []


@pytest.mark.parametrize("client", CLIENTS)
def test_no_admin_key_names_the_variable(client: type[OpenAIAdmin], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(client.key_env)
    with pytest.raises(ConfigurationError) as caught:
        client().costs(date(2026, 3, 2), date(2026, 3, 3))
    assert client.key_env in str(caught.value) and "admin key" in str(caught.value)


@pytest.mark.parametrize("client", CLIENTS)
def test_arguments_are_checked_before_any_request(client: type[OpenAIAdmin]) -> None:
    with pytest.raises(InvalidRequestError, match="ends .* before it starts"):
        client().usage(date(2026, 3, 5), date(2026, 3, 2))
    with pytest.raises(InvalidRequestError, match="no time zone"):
        client().usage(datetime(2026, 3, 2, 9), datetime(2026, 3, 2, 10))
    with pytest.raises(InvalidRequestError, match="bucket_width"):
        client().usage(date(2026, 3, 2), date(2026, 3, 3), bucket_width="1w")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="group_by"):
        client().costs(date(2026, 3, 2), date(2026, 3, 3), group_by=["colour"])
    with pytest.raises(InvalidRequestError, match="limit"):
        client().usage(date(2026, 3, 2), date(2026, 3, 3), limit=0)


def test_the_key_never_shows_in_repr() -> None:
    assert OPENAI_KEY not in repr(OpenAIAdmin(OPENAI_KEY))


# --- what no provider answers on demand: served by an in-process httpx transport ---------------------

@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Each request the clients send goes to `answers` (queued httpx.Responses) and is kept."""
    seen: list[httpx.Request] = []

    def client(timeout: float) -> httpx.Client:
        def handle(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return ANSWERS.pop(0)
        return httpx.Client(transport=httpx.MockTransport(handle), timeout=timeout)

    monkeypatch.setattr("llmclient.transport.sync_client", client)
    ANSWERS.clear()
    return seen


ANSWERS: list[httpx.Response] = []


def test_a_cursor_that_repeats_is_malformed_not_an_endless_loop(served: list[httpx.Request]) -> None:
    page = {"object": "page", "data": [], "has_more": True, "next_page": "page_same"}
    ANSWERS.extend([httpx.Response(200, json=page), httpx.Response(200, json=page)])
    with pytest.raises(MalformedResponseError, match="next_page is 'page_same' \\(seen before\\)"):
        OpenAIAdmin().usage(date(2026, 3, 2), date(2026, 3, 3))
    assert [dict(r.url.params).get("page") for r in served] == [None, "page_same"]


def test_has_more_without_a_cursor_is_malformed(served: list[httpx.Request]) -> None:
    ANSWERS.append(httpx.Response(200, json={"data": [], "has_more": True, "next_page": None}))
    with pytest.raises(MalformedResponseError, match="no cursor to follow"):
        AnthropicAdmin().usage(date(2026, 3, 2), date(2026, 3, 3))


def test_a_key_echoed_in_an_error_is_masked(served: list[httpx.Request]) -> None:
    body = {"type": "error", "error": {"type": "authentication_error", "message": f"bad key {ANTHROPIC_KEY}"}}
    ANSWERS.append(httpx.Response(401, json=body))
    with pytest.raises(AuthenticationError) as caught:
        AnthropicAdmin().costs(date(2026, 3, 2), date(2026, 3, 3))
    assert ANTHROPIC_KEY not in str(caught.value) and "bad key REDACTED" in str(caught.value)
    assert served[0].headers["x-api-key"] == ANTHROPIC_KEY  # sent where it belongs, and nowhere else


def test_a_redirect_is_not_followed(served: list[httpx.Request]) -> None:
    ANSWERS.append(httpx.Response(302, headers={"location": "https://elsewhere.example/"}))
    with pytest.raises(APIError, match="redirects are not followed") as caught:
        OpenAIAdmin().costs(date(2026, 3, 2), date(2026, 3, 3))
    assert caught.value.status_code == 302 and len(served) == 1


def test_a_page_without_data_is_malformed(served: list[httpx.Request]) -> None:
    ANSWERS.append(httpx.Response(200, json={"error": "nope"}))
    with pytest.raises(MalformedResponseError, match="not a report page"):
        OpenAIAdmin().costs(date(2026, 3, 2), date(2026, 3, 3))
